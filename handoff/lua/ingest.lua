-- Append an inbound event unless its platform id was seen before.
-- KEYS[1] dedup marker, KEYS[2] inbound shard stream
-- ARGV[1] marker TTL (s), ARGV[2] stream MAXLEN (approximate), ARGV[3] event JSON
-- Returns the new stream id, or false for a duplicate.
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return false
end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[3])
