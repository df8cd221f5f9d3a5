-- ARGV: cid, now. offered/active -> waiting at the head. Returns {released vid, hash...}.
local cid, now = ARGV[2], tonumber(ARGV[3])
local c = hgetall(ck(cid))
if not c then return refuse('unknown_contact', cid) end
if c.state == 'wrap_up' then return refuse('contact_closed', cid) end
if c.state == 'waiting' then return refuse('not_active', cid) end
local released
if c.state == 'offered' then
  released = c.offered_to
  unload(cid, c, released, now, false)
  back_to_queue(cid, c, true)
else
  released = c.volunteer
  requeue_active(cid, c, now)
end
return {released, redis.call('HGETALL', ck(cid))}
