-- ARGV: cid, vid, now, handle samples kept(, expected branch, queues JSON, cap cutoff,
-- offer timeout: then the volunteer is matched in the same step). wrap_up -> closed: live
-- state deleted. Returns {final hash, match}.
local cid, vid, now, keep = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local c = hgetall(ck(cid))
if not c then return refuse('unknown_contact', cid) end
if c.state ~= 'wrap_up' or c.volunteer ~= vid then return refuse('not_in_wrap_up', cid) end
local samples = P .. ':ht:' .. c.channel
redis.call('LPUSH', samples, num(now - tonumber(c.answered_at)))
redis.call('LTRIM', samples, 0, keep - 1)
unload(cid, c, vid, now, true)
c.state = 'closed'
local final = delete(cid, c)
local matched = {}
if (ARGV[7] or '') ~= '' then
  matched = match_volunteer(vid, ARGV[6], ARGV[7], tonumber(ARGV[8]), now, tonumber(ARGV[9]))
end
return {final, matched}
