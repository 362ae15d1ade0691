-- Tell a waiting customer their new place in the queue, only while they still wait.
-- KEYS[1] conversation hash, KEYS[2] customer outbox stream
-- ARGV[1] position, ARGV[2] message JSON, ARGV[3] outbox MAXLEN
if redis.call('HGET', KEYS[1], 'state') ~= 'queued' then
  return 0
end
redis.call('HSET', KEYS[1], 'told_position', ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'm', ARGV[2])
return 1
