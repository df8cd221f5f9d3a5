-- ARGV: vid, queues (JSON [[tier, branch, channel, cutoff|null(, unstaffed cutoff|null)],
-- ...]), cap cutoff, now, offer timeout. Offers one contact: the oldest past the wait cap
-- in any allowed queue, else the oldest of the first tier with an eligible contact. A
-- queue with an unstaffed cutoff uses it when nobody of its branch is on duty for its
-- channel right now (strict rings), checked here in the same atomic step.
local vid, specs = ARGV[2], cjson.decode(ARGV[3])
local cap, now, timeout = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local v = hgetall(vk(vid))
if not v then return nil end
local usable, tiers, seen, waiting = {}, {}, {}, {}
for _, ch in ipairs(CHANNELS) do
  waiting[ch] = is_free(v, ch) and redis.call('ZCARD', qnk(ch)) > 0
end
for _, q in ipairs(specs) do
  if waiting[q[3]] then
    usable[#usable + 1] = q
    if not seen[q[1]] then seen[q[1]] = true; tiers[#tiers + 1] = q[1] end
  end
end
if #usable == 0 then return nil end
table.sort(tiers)
local bs, bc = nil, nil
local function consider(q, limit)
  local given = q[4]
  if q[5] ~= nil and redis.call('SCARD', dk(q[2], q[3])) == 0 then given = q[5] end
  local cut = '+inf'
  if given ~= cjson.null then cut = tonumber(given) end
  if limit ~= nil and (cut == '+inf' or limit < cut) then cut = limit end
  if cut ~= '+inf' then cut = num(cut) end
  local r = redis.call('ZRANGEBYSCORE', qk(q[2], q[3]), '-inf', cut, 'WITHSCORES', 'LIMIT', 0, 1)
  if r[1] then
    local s = tonumber(r[2])
    if bs == nil or s < bs or (s == bs and r[1] < bc) then bs, bc = s, r[1] end
  end
end
for _, q in ipairs(usable) do consider(q, cap) end
if not bc then
  for _, tier in ipairs(tiers) do
    for _, q in ipairs(usable) do
      if q[1] == tier then consider(q, nil) end
    end
    if bc then break end
  end
end
if not bc then return nil end
return offer(bc, hgetall(ck(bc)), vid, now, timeout)
