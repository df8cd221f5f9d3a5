-- ARGV: vid, branch, channels (comma list), chat_limit, now
local vid, branch, channels, limit, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local v = hgetall(vk(vid))
if not v then
  redis.call('HSET', vk(vid), 'branch', branch, 'channels', '', 'chat_limit', limit,
    'p_phone', 'off_duty', 'p_chat', 'off_duty', 'l_phone', 0, 'l_chat', 0, 'missed', 0,
    'idle_since', now, 'disconnected_at', 0)
  redis.call('SADD', VOLS, vid)
else
  unlist(vid, v)
  redis.call('SREM', bvk(v.branch), vid)
end
redis.call('HSET', vk(vid), 'branch', branch, 'channels', channels, 'chat_limit', limit)
local wanted = ',' .. channels .. ','
for _, ch in ipairs(CHANNELS) do
  if not string.find(wanted, ',' .. ch .. ',', 1, true) then
    redis.call('HSET', vk(vid), 'p_' .. ch, 'off_duty')
  end
end
redis.call('SADD', bvk(branch), vid)
refresh(vid)
return 1
