-- ARGV: vid, expected branch, queues (JSON, see match_volunteer_once), cap cutoff, now,
-- offer timeout. Fills the volunteer's free capacity: {branch, stale, offer...} or {}.
return match_volunteer(ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]))
