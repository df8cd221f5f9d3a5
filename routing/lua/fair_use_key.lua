-- ARGV: key id, ttl, fresh random hex. The key of the day, created once, expiring.
local key = P .. ':fu:key:' .. ARGV[2]
redis.call('SET', key, ARGV[4], 'NX', 'EX', ARGV[3])
return redis.call('GET', key)
