-- The platform refused delivery for good (blocked bot, deleted account): remember it, journal it.
-- KEYS[1] conversation hash, KEYS[2] journal stream
-- ARGV[1] conversation id, ARGV[2] reason, ARGV[3] now, ARGV[4] journal MAXLEN
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'unreachable', ARGV[2], 'updated_at', ARGV[3])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'conv', ARGV[1],
  'action', 'unreachable', 'actor', 'platform', 'reason', ARGV[2], 'at', ARGV[3],
  'version', version)
return version
