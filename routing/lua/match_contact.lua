-- ARGV: cid, tiers (JSON list of lists of branches; '~' = every branch), now, offer
-- timeout, avoid (JSON list of volunteer ids), tiers if nobody of the home branch is on
-- duty (JSON, or ''). Returns the offer made, or nil.
local cid = ARGV[2]
local c = hgetall(ck(cid))
if not c or c.state ~= 'waiting' then return nil end
local unstaffed = nil
if (ARGV[7] or '') ~= '' then unstaffed = cjson.decode(ARGV[7]) end
return match_contact(cid, c, cjson.decode(ARGV[3]), unstaffed, cjson.decode(ARGV[6] or '[]'),
  tonumber(ARGV[4]), tonumber(ARGV[5]))
