-- ARGV: vid, channels (comma list; '' = every channel the volunteer takes), state, now(,
-- expected branch, queues JSON, cap cutoff, offer timeout: then the volunteer is matched
-- in the same step, see match_volunteer). Returns {changed channels, branch, match}.
local vid, channels, state, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local v = hgetall(vk(vid))
if not v then return refuse('unknown_volunteer', vid) end
if channels == '' then channels = v.channels end
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
  v.idle_since = now
  redis.call('HSET', vk(vid), 'idle_since', now)
end
if state == 'available' then v.missed = '0'; redis.call('HSET', vk(vid), 'missed', 0) end
for _, ch in ipairs(changed) do
  v['p_' .. ch] = state
  redis.call('HSET', vk(vid), 'p_' .. ch, state)
end
refresh(vid, v)
local matched = {}
if (ARGV[7] or '') ~= '' then
  matched = match_volunteer(vid, ARGV[6], ARGV[7], tonumber(ARGV[8]), tonumber(now), tonumber(ARGV[9]), v)
end
return {changed, v.branch, matched}
