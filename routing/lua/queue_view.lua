-- ARGV: cid. {state, channel, ahead, capacity, enqueued_at, handle samples...} or nil.
local cid = ARGV[2]
local c = hgetall(ck(cid))
if not c then return nil end
local ahead = 0
if c.state == 'waiting' then ahead = redis.call('ZRANK', qnk(c.channel), cid) or 0 end
local cap = tonumber(redis.call('GET', capk(c.channel)) or '0')
local out = {c.state, c.channel, ahead, cap, c.enqueued_at}
for _, s in ipairs(redis.call('LRANGE', P .. ':ht:' .. c.channel, 0, -1)) do out[#out + 1] = s end
return out
