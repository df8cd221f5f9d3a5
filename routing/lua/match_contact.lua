-- ARGV: cid, tiers (JSON list of lists of branches), now, offer timeout.
-- Offers a waiting contact to the best free volunteer of the first tier that has one;
-- whoever declined it last only if nobody else is free.
local cid, tiers, now, timeout = ARGV[2], cjson.decode(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local c = hgetall(ck(cid))
if not c or c.state ~= 'waiting' then return nil end
local skips = {''}
if c.declined_by ~= '' then skips = {c.declined_by, ''} end
for _, skip in ipairs(skips) do
  for _, tier in ipairs(tiers) do
    local bs, bv = nil, nil
    for _, b in ipairs(tier) do
      local r = redis.call('ZRANGE', fk(b, c.channel), 0, 1, 'WITHSCORES')
      for i = 1, #r, 2 do
        if r[i] ~= skip then
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
