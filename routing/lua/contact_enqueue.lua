-- ARGV: cid, channel, home, municipality, now(, tiers JSON, unstaffed tiers JSON or '',
-- offer timeout). With tiers, the new contact is matched in the same step (see
-- match_contact); returns the offer made, else {}.
local cid, ch, home, muni, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('EXISTS', ck(cid)) == 1 then return refuse('contact_closed', 'id already in use') end
local c = {
  state = 'waiting', channel = ch, home = home, municipality = muni, enqueued_at = now,
  score = now, offered_to = '', offer_expires_at = '0', volunteer = '', volunteer_branch = '',
  answered_at = '0', ended_at = '0', talked_s = '0', waited_s = '-1', declined_by = '',
  requeues = '0',
}
redis.call('HSET', ck(cid), unpack(flatten(c)))
queue_add(cid, c)
if (ARGV[7] or '') == '' then return {} end
local unstaffed = nil
if ARGV[8] ~= '' then unstaffed = cjson.decode(ARGV[8]) end
return match_contact(cid, c, cjson.decode(ARGV[7]), unstaffed, {}, tonumber(now), tonumber(ARGV[9])) or {}
