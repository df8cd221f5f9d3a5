-- Matching, prepended (after _lib.lua) to every script that may end in offers. Mirrors
-- MemoryStore._match_contact / _match_volunteer rule for rule.

-- The best free volunteer of the first tier that has one, for a waiting contact; nobody
-- in ``skip``. ``n``: how many ranked entries per set may be skipped at most.
local function best_of_tiers(tiers, ch, skip, n)
  for _, tier in ipairs(tiers) do
    local bs, bv = nil, nil
    for _, b in ipairs(tier) do
      local r = redis.call('ZRANGE', free_key(b, ch), 0, n, 'WITHSCORES')
      for i = 1, #r, 2 do
        if not skip[r[i]] then
          local s = tonumber(r[i + 1])
          if bs == nil or s < bs or (s == bs and r[i] < bv) then bs, bv = s, r[i] end
          break
        end
      end
    end
    if bv then return bv end
  end
  return nil
end

-- Offer waiting contact ``cid`` (hash ``c``) to the best free volunteer of the first tier
-- that has one; whoever declined it last only if nobody else is free; never one in
-- ``avoid``. ``unstaffed``: the tiers instead when nobody of the home branch is on duty
-- for the channel right now (strict rings), checked here in the same atomic step.
local function match_contact(cid, c, tiers, unstaffed, avoid, now, timeout)
  if unstaffed and redis.call('SCARD', dk(c.home, c.channel)) == 0 then tiers = unstaffed end
  local function skipper(extra)
    local s = {}
    for _, vid in ipairs(avoid) do s[vid] = true end
    if extra ~= '' then s[extra] = true end
    return s
  end
  local n = #avoid + 1
  local vid = best_of_tiers(tiers, c.channel, skipper(c.declined_by), n)
  if not vid and c.declined_by ~= '' then vid = best_of_tiers(tiers, c.channel, skipper(''), n) end
  if vid then return offer(cid, c, vid, now, timeout) end
  return nil
end

-- One offer for a volunteer with free capacity (hash ``v``): the oldest contact past the
-- wait cap in any allowed queue, else the oldest of the first tier with an eligible
-- contact. ``specs``: {tier, branch, channel, cutoff|null(, unstaffed cutoff|null)}; an
-- unstaffed cutoff applies when nobody of its branch is on duty for its channel right
-- now (strict rings). An ANY queue has no cutoff and comes only with uncut queues of its
-- channel, so the cap pass needs nothing else for that channel.
local function match_volunteer_once(vid, v, specs, cap, now, timeout)
  local usable, tiers, seen, waiting, any = {}, {}, {}, {}, {}
  for _, ch in ipairs(CHANNELS) do
    waiting[ch] = is_free(v, ch) and redis.call('ZCARD', qnk(ch)) > 0
  end
  for _, q in ipairs(specs) do
    if waiting[q[3]] then
      usable[#usable + 1] = q
      if q[2] == ANY then any[q[3]] = true end
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
    local r
    if cut == '+inf' then
      r = redis.call('ZRANGE', queue_key(q[2], q[3]), 0, 0, 'WITHSCORES')
    else
      r = redis.call('ZRANGEBYSCORE', queue_key(q[2], q[3]), '-inf', num(cut), 'WITHSCORES', 'LIMIT', 0, 1)
    end
    if r[1] then
      local s = tonumber(r[2])
      if bs == nil or s < bs or (s == bs and r[1] < bc) then bs, bc = s, r[1] end
    end
  end
  for _, q in ipairs(usable) do
    if q[2] == ANY or not any[q[3]] then consider(q, cap) end
  end
  if not bc then
    for _, tier in ipairs(tiers) do
      for _, q in ipairs(usable) do
        if q[1] == tier then consider(q, nil) end
      end
      if bc then break end
    end
  end
  if not bc then return nil end
  return offer(bc, hgetall(ck(bc)), vid, now, timeout, v)
end

-- Fill a volunteer's free capacity. ``expected``: the branch ``specs`` were computed for
-- ('' = unknown); ``v``: their hash if already read. Returns {branch, stale (1: computed
-- for another branch, nothing matched), offer...}, or {} for an unknown volunteer.
local function match_volunteer(vid, expected, specs_json, cap, now, timeout, v)
  v = v or hgetall(vk(vid))
  if not v then return {} end
  local out = {v.branch, 0}
  if v.branch ~= expected then out[2] = 1; return out end
  local specs = cjson.decode(specs_json)
  for _ = 0, tonumber(v.chat_limit) do
    local o = match_volunteer_once(vid, v, specs, cap, now, timeout)
    if not o then break end
    out[#out + 1] = o  -- offer() brought v up to date
  end
  return out
end
