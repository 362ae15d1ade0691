-- Revoke an operator's access at once: every role goes, they are marked revoked (so an open desk
-- ignores them too), their status turns offline, and the journal says who and why. Their
-- conversations then go back to the queue one script each (requeue.lua, grace 0).
-- KEYS[1] revoked set, KEYS[2] operator hash, KEYS[3] journal stream, KEYS[4..] role sets
-- ARGV[1] JSON: op, by, reason, now, at, journal_maxlen
local a = cjson.decode(ARGV[1])
local had = {}
for i = 4, #KEYS do
  if redis.call('SREM', KEYS[i], a.op) == 1 then had[#had + 1] = KEYS[i] end
end
redis.call('SADD', KEYS[1], a.op)
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'status', 'offline', 'status_since', a.at)
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', a.journal_maxlen, '*',
  'conv', '', 'action', 'revoke', 'from', '', 'to', '', 'actor', a.by, 'reason', a.reason,
  'at', a.at, 'version', '', 'owner', a.op)
return #had
