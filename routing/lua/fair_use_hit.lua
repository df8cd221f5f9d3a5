-- ARGV: counter id (window:digest), limit, ttl. Counts unless the limit is reached.
local key = P .. ':fu:n:' .. ARGV[2]
local n = tonumber(redis.call('GET', key) or '0')
if n >= tonumber(ARGV[3]) then return -1 end
n = redis.call('INCR', key)
if n == 1 then redis.call('EXPIRE', key, ARGV[4]) end
return n
