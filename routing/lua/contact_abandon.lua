-- ARGV: cid, now. waiting/offered -> abandoned (deleted); active -> wrap_up.
local cid, now = ARGV[2], tonumber(ARGV[3])
local c = hgetall(ck(cid))
if not c then return refuse('unknown_contact', cid) end
if c.state == 'wrap_up' then return refuse('contact_closed', cid) end
if c.state == 'active' then
  redis.call('HSET', ck(cid), 'state', 'wrap_up', 'ended_at', num(now),
    'talked_s', num(tonumber(c.talked_s) + now - tonumber(c.answered_at)))
  return redis.call('HGETALL', ck(cid))
end
if c.state == 'offered' then unload(cid, c, c.offered_to, now, false) end
c.state = 'abandoned'; c.ended_at = num(now)
return delete(cid, c)
