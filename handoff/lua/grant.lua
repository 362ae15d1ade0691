-- Give an operator a role (operator, supervisor, trainer); a revoked operator is let back in.
-- Journaled with who did it.
-- KEYS[1] the role's set, KEYS[2] revoked set, KEYS[3] journal stream
-- ARGV[1] JSON: op, role, by, now, at, journal_maxlen
local a = cjson.decode(ARGV[1])
local added = redis.call('SADD', KEYS[1], a.op)
redis.call('SREM', KEYS[2], a.op)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', a.journal_maxlen, '*',
  'conv', '', 'action', 'grant', 'from', '', 'to', '', 'actor', a.by, 'reason', a.role,
  'at', a.at, 'version', '', 'owner', a.op)
return added
