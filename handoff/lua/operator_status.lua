-- An operator's status (and name, username, capacity). `status_since` moves only when the
-- status changes, so the offline grace period counts from going offline, not from the last
-- repeated /offline.
-- KEYS[1] operator hash, KEYS[2] operators set
-- ARGV[1] JSON: op, status, name, username, capacity (0: keep, or the default when new),
--   default_capacity, at
local a = cjson.decode(ARGV[1])
if redis.call('HGET', KEYS[1], 'status') ~= a.status then
  redis.call('HSET', KEYS[1], 'status', a.status, 'status_since', a.at)
end
if a.name ~= '' then redis.call('HSET', KEYS[1], 'name', a.name) end
if a.username ~= '' then redis.call('HSET', KEYS[1], 'username', a.username) end
if a.capacity > 0 then
  redis.call('HSET', KEYS[1], 'capacity', a.capacity)
else
  redis.call('HSETNX', KEYS[1], 'capacity', a.default_capacity)
end
redis.call('SADD', KEYS[2], a.op)
return 1
