-- Heartbeat of one member of a group of processes (the workers sharing the inbound shards),
-- or its leave; returns the members alive now.
-- KEYS[1] sorted set member -> expiry (ms, Redis time); ARGV[1] member, ARGV[2] TTL in ms,
-- ARGV[3] 'beat' or 'leave'
-- Redis's clock, not the callers': processes on several machines agree on who is alive.
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if ARGV[3] == 'leave' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 3)
return redis.call('ZRANGE', KEYS[1], 0, -1)
