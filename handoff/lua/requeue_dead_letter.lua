-- Send a dead letter's event back to its inbound shard and take it off the dead letters, at
-- once: a crash never leaves it in both places or in neither. Journaled with who did it.
-- KEYS[1] dead letters stream, KEYS[2] the event's inbound shard stream, KEYS[3] journal
-- ARGV[1] dead letter id, ARGV[2] event JSON, ARGV[3] shard MAXLEN, ARGV[4] conversation,
-- ARGV[5] actor, ARGV[6] now, ARGV[7] journal MAXLEN
-- Returns the new inbound entry id, or false when the letter is gone (requeued already).
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return false end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*',
  'conv', ARGV[4], 'action', 'requeue_dead_letter', 'from', '', 'to', '', 'actor', ARGV[5],
  'reason', '', 'at', ARGV[6], 'version', '', 'owner', '', 'letter', ARGV[1], 'entry', id)
return id
