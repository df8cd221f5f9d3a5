-- The first waiting contact of every non-empty queue: {branch, channel, cid, score}...
local out = {}
for _, name in ipairs(redis.call('SMEMBERS', QUEUES)) do
  local tab = string.find(name, '\t', 1, true)
  local b, ch = string.sub(name, 1, tab - 1), string.sub(name, tab + 1)
  local r = redis.call('ZRANGE', qk(b, ch), 0, 0, 'WITHSCORES')
  if r[1] then
    out[#out + 1] = {b, ch, r[1], r[2]}
  else
    redis.call('SREM', QUEUES, name)
  end
end
return out
