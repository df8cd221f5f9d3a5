-- ARGV: cid, tiers (JSON list of lists of branches), now, offer timeout, avoid (JSON list
-- of volunteer ids), tiers if nobody of the home branch is on duty (JSON, or '').
-- Offers a waiting contact to the best free volunteer of the first tier that has one;
-- whoever declined it last only if nobody else is free; never one in avoid. Whether the
-- home branch is staffed (strict rings) is checked here, in the same atomic step.
local cid, tiers, now, timeout = ARGV[2], cjson.decode(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local avoid = cjson.decode(ARGV[6] or '[]')
local c = hgetall(ck(cid))
if not c or c.state ~= 'waiting' then return nil end
if (ARGV[7] or '') ~= '' and redis.call('SCARD', dk(c.home, c.channel)) == 0 then
  tiers = cjson.decode(ARGV[7])
end
local function skipper(extra)
  local s = {}
  for _, vid in ipairs(avoid) do s[vid] = true end
  if extra ~= '' then s[extra] = true end
  return s
end
local passes = {skipper(c.declined_by)}
if c.declined_by ~= '' then passes[2] = skipper('') end
local n = #avoid + 1
for _, skip in ipairs(passes) do
  for _, tier in ipairs(tiers) do
    local bs, bv = nil, nil
    for _, b in ipairs(tier) do
      local r = redis.call('ZRANGE', fk(b, c.channel), 0, n, 'WITHSCORES')
      for i = 1, #r, 2 do
        if not skip[r[i]] then
          local s = tonumber(r[i + 1])
          if bs == nil or s < bs or (s == bs and r[i] < bv) then bs, bv = s, r[i] end
          break
        end
      end
    end
    if bv then return offer(cid, c, bv, now, timeout) end
  end
end
return nil
