-- ARGV: vid, now, grace. Withdraws open offers; returns their contact ids.
local vid, now, grace = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local v = hgetall(vk(vid))
if not v then return refuse('unknown_volunteer', vid) end
if tonumber(v.disconnected_at) ~= 0 then return {} end
redis.call('HSET', vk(vid), 'disconnected_at', num(now))
redis.call('ZADD', DROPS, num(now + grace), vid)
local withdrawn = {}
local cids = redis.call('SMEMBERS', vck(vid))
table.sort(cids)
for _, cid in ipairs(cids) do
  local c = hgetall(ck(cid))
  if c and c.state == 'offered' then
    withdraw(cid, c, now)
    withdrawn[#withdrawn + 1] = cid
  end
end
refresh(vid)
return withdrawn
