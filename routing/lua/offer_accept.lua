-- ARGV: cid, vid, now. offered (to vid, not expired) -> active.
local cid, vid, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local c = hgetall(ck(cid))
if not c then return refuse('unknown_contact', cid) end
if c.state ~= 'offered' or c.offered_to ~= vid then return refuse('not_your_offer', cid) end
if now >= tonumber(c.offer_expires_at) then return refuse('offer_expired', cid) end
local v = hgetall(vk(vid))
redis.call('ZREM', OFFERS, cid)
if tonumber(c.waited_s) < 0 then
  redis.call('HSET', ck(cid), 'waited_s', num(now - tonumber(c.enqueued_at)))
end
redis.call('HSET', ck(cid), 'state', 'active', 'offered_to', '', 'offer_expires_at', '0',
  'volunteer', vid, 'volunteer_branch', v.branch, 'answered_at', num(now))
redis.call('HSET', vk(vid), 'missed', 0)
return redis.call('HGETALL', ck(cid))
