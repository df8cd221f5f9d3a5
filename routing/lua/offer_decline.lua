-- ARGV: cid, vid, now. offered (to vid) -> waiting, in its place; remembers the decliner.
-- A decline is an answer: it ends the volunteer's streak of missed offers.
local cid, vid, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local c = hgetall(ck(cid))
if not c then return refuse('unknown_contact', cid) end
if c.state ~= 'offered' or c.offered_to ~= vid then return refuse('not_your_offer', cid) end
withdraw(cid, c, now)
redis.call('HSET', ck(cid), 'declined_by', vid)
if redis.call('EXISTS', vk(vid)) == 1 then redis.call('HSET', vk(vid), 'missed', 0) end
return 1
