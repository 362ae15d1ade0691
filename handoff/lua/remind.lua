-- SLA: the customer of an assigned conversation has waited too long for an operator reply:
-- `reminded` holds the ladder's level reached (1 the owner, 2 the supervisors, 3 both again),
-- each set once per wait (a reply or a new owner clears it); journaled with the owner, whom
-- the desk then reminds.
-- KEYS[1] conversation hash, KEYS[2] journal stream
-- ARGV[1] JSON: conv, due_before (customer_waiting_since must be at or before), level, now,
--   at, journal_maxlen
-- Returns {error, state, version, owner, detail}; detail is customer_waiting_since.
local a = cjson.decode(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'state', 'version', 'owner', 'reminded',
  'customer_waiting_since')
local state, version, owner = cur[1] or 'bot', tonumber(cur[2]) or 0, cur[3] or ''
local since = tonumber(cur[5])

if state ~= 'assigned' or not since then return {'wrong_state', state, version, owner, ''} end
if (tonumber(cur[4]) or 0) >= a.level then
  return {'not_due', state, version, owner, 'reminded already'}
end
if since > a.due_before then return {'not_due', state, version, owner, ''} end

version = version + 1
redis.call('HSET', KEYS[1], 'reminded', a.level, 'version', version, 'updated_at', a.at)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', a.journal_maxlen, '*',
  'conv', a.conv, 'action', 'remind', 'from', state, 'to', state, 'actor', 'sla',
  'reason', 'reply overdue', 'at', a.at, 'version', version, 'owner', owner,
  'waiting_since', cur[5], 'level', a.level)
return {'', state, version, owner, cur[5]}
