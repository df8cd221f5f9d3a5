-- ARGV: vid, channels (comma list), state, now. Returns the channels that changed.
local vid, channels, state, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local v = hgetall(vk(vid))
if not v then return refuse('unknown_volunteer', vid) end
local list = {}
for ch in string.gmatch(channels, '[^,]+') do
  if not has_channel(v, ch) then return refuse('channel_not_taken', ch) end
  list[#list + 1] = ch
end
local changed = {}
for _, ch in ipairs(list) do
  if v['p_' .. ch] ~= state then changed[#changed + 1] = ch end
end
if state == 'available' and #changed > 0 and v.p_phone ~= 'available' and v.p_chat ~= 'available' then
  redis.call('HSET', vk(vid), 'idle_since', now)
end
if state == 'available' then redis.call('HSET', vk(vid), 'missed', 0) end
for _, ch in ipairs(changed) do redis.call('HSET', vk(vid), 'p_' .. ch, state) end
refresh(vid)
return changed
