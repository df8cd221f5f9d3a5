-- ARGV: vid, now
local vid = ARGV[2]
local v = hgetall(vk(vid))
if not v then return refuse('unknown_volunteer', vid) end
if tonumber(v.disconnected_at) == 0 then return 0 end
redis.call('HSET', vk(vid), 'disconnected_at', 0)
redis.call('ZREM', DROPS, vid)
refresh(vid)
return 1
