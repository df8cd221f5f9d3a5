-- ARGV: cid, now, missed offers to pause(, vid). Without vid: the offer ran out (nil if
-- not offered or not due). With vid: that volunteer missed it now (busy, no answer):
-- refused unless offered to them. Returns {cid, vid, channel, paused} or nil.
local cid, now, to_pause, missed_by = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] or ''
local c = hgetall(ck(cid))
if missed_by ~= '' then
  if not c then return refuse('unknown_contact', cid) end
  if c.state ~= 'offered' or c.offered_to ~= missed_by then return refuse('not_your_offer', cid) end
elseif not c or c.state ~= 'offered' or tonumber(c.offer_expires_at) > now then
  return nil
end
local vid = c.offered_to
withdraw(cid, c, now)
redis.call('HSET', ck(cid), 'declined_by', vid)
local paused = '0'
if redis.call('EXISTS', vk(vid)) == 1 then
  local missed = redis.call('HINCRBY', vk(vid), 'missed', 1)
  if missed >= to_pause then
    paused = '1'
    for _, ch in ipairs(CHANNELS) do
      if redis.call('HGET', vk(vid), 'p_' .. ch) == 'available' then
        redis.call('HSET', vk(vid), 'p_' .. ch, 'paused')
      end
    end
    refresh(vid)
  end
end
return {cid, vid, c.channel, paused}
