-- ARGV: vid, now. Returns {requeued ids...}, {closed contact as flat list}... or nil.
local vid, now = ARGV[2], tonumber(ARGV[3])
local deadline = redis.call('ZSCORE', DROPS, vid)
if not deadline or tonumber(deadline) > now or redis.call('EXISTS', vk(vid)) == 0 then
  return nil
end
local requeued, closed = {}, {}
local cids = redis.call('SMEMBERS', vck(vid))
table.sort(cids)
for _, cid in ipairs(cids) do
  local c = hgetall(ck(cid))
  if c.state == 'offered' then
    withdraw(cid, c, now)
  elseif c.state == 'active' then
    requeue_active(cid, c, now)
    requeued[#requeued + 1] = cid
  else
    unload(cid, c, vid, now, true)
    c.state = 'closed'
    local flat = delete(cid, c)
    table.insert(flat, 1, cid)
    closed[#closed + 1] = flat
  end
end
redis.call('ZREM', DROPS, vid)
redis.call('HSET', vk(vid), 'disconnected_at', 0, 'missed', 0, 'p_phone', 'off_duty',
  'p_chat', 'off_duty')
refresh(vid)
return {requeued, closed}
