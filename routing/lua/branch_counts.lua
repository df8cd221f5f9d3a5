-- ARGV: branch ('' for the whole line). {waiting, oldest enqueued_at or '', on_duty, busy, paused}
local branch = ARGV[2]
local waiting, oldest = 0, nil
local function seen(cid)
  local t = tonumber(redis.call('HGET', ck(cid), 'enqueued_at'))
  if oldest == nil or t < oldest then oldest = t end
end
for _, ch in ipairs(CHANNELS) do
  local key = qnk(ch)
  if branch ~= '' then key = qk(branch, ch) end
  waiting = waiting + redis.call('ZCARD', key)
  for _, cid in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', -REQUEUE_HEAD / 2)) do seen(cid) end
  local first = redis.call('ZRANGEBYSCORE', key, -REQUEUE_HEAD / 2, '+inf', 'LIMIT', 0, 1)
  if first[1] then seen(first[1]) end
end
local vids
if branch == '' then vids = redis.call('SMEMBERS', VOLS) else vids = redis.call('SMEMBERS', bvk(branch)) end
local on_duty, busy, paused = 0, 0, 0
for _, vid in ipairs(vids) do
  local p = redis.call('HMGET', vk(vid), 'p_phone', 'p_chat')
  if p[1] == 'available' or p[2] == 'available' then
    on_duty = on_duty + 1
  elseif p[1] == 'paused' or p[2] == 'paused' then
    paused = paused + 1
  end
  if redis.call('SCARD', vck(vid)) > 0 then busy = busy + 1 end
end
local o = ''
if oldest then o = num(oldest) end
return {waiting, o, on_duty, busy, paused}
