-- An operator's shift: its hours as text (`shift`, parsed by handoff/shifts.py), or none
-- (empty: /online and /offline alone say when they work). A new shift forgets the last edge
-- seen, so the next tick applies the new hours at once. Journaled with who set it.
-- KEYS[1] operator hash, KEYS[2] operators set, KEYS[3] journal stream
-- ARGV[1] JSON: op, shift, by, default_capacity, now, at, journal_maxlen
local a = cjson.decode(ARGV[1])
if a.shift == '' then
  redis.call('HDEL', KEYS[1], 'shift', 'shift_state')
else
  redis.call('HSET', KEYS[1], 'shift', a.shift)
  redis.call('HDEL', KEYS[1], 'shift_state')
end
if redis.call('HSETNX', KEYS[1], 'status', 'offline') == 1 then
  redis.call('HSET', KEYS[1], 'status_since', a.at)
end
redis.call('HSETNX', KEYS[1], 'capacity', a.default_capacity)
redis.call('SADD', KEYS[2], a.op)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', a.journal_maxlen, '*',
  'conv', '', 'action', 'shift', 'from', '', 'to', '', 'actor', a.by, 'reason', a.shift,
  'at', a.at, 'version', '', 'owner', a.op)
return 1
