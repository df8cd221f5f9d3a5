-- ARGV: cid... The facts of queue_view for many contacts in one step, the per-channel
-- ones once: {{channel, capacity, mean handle time or ''}..., {state, channel, ahead,
-- enqueued_at} or {} per contact, in order}.
local out = {}
for _, ch in ipairs(CHANNELS) do
  local samples = redis.call('LRANGE', P .. ':ht:' .. ch, 0, -1)
  local mean = ''
  if #samples > 0 then
    local sum = 0
    for _, s in ipairs(samples) do sum = sum + tonumber(s) end
    mean = num(sum / #samples)
  end
  out[#out + 1] = {ch, tonumber(redis.call('GET', capk(ch)) or '0'), mean}
end
for i = 2, #ARGV do
  local cid = ARGV[i]
  local c = redis.call('HMGET', ck(cid), 'state', 'channel', 'enqueued_at')
  if not c[1] then
    out[#out + 1] = {}
  else
    local ahead = 0
    if c[1] == 'waiting' then ahead = redis.call('ZRANK', qnk(c[2]), cid) or 0 end
    out[#out + 1] = {c[1], c[2], ahead, c[3]}
  end
end
return out
