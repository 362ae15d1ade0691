-- SLA: a conversation queued and unclaimed for too long climbs the ladder: `escalated` holds
-- the level reached (1..3), each set once. The first level moves it one priority up (urgent
-- stays urgent); its score keeps the original queued time (the low 13 digits), so among
-- equals it stays in its place. Higher levels only call more people (the desk's part).
-- KEYS[1] conversation hash, KEYS[2] queue zset, KEYS[3] journal stream
-- ARGV[1] JSON: conv, due_before (queued_at must be at or before), level, now, at,
--   journal_maxlen
-- Returns {error, state, version, owner, detail}; detail is the priority (new at level 1).
local a = cjson.decode(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'state', 'version', 'escalated', 'handoff_priority')
local state, version = cur[1] or 'bot', tonumber(cur[2]) or 0
local score = tonumber(redis.call('ZSCORE', KEYS[2], a.conv))

if state ~= 'queued' or not score then return {'wrong_state', state, version, '', ''} end
local reached = tonumber(cur[3]) or 0
if reached >= a.level then return {'not_due', state, version, '', 'escalated already'} end
local band = 1e13
local queued_ms = score % band
if queued_ms > a.due_before * 1000 then return {'not_due', state, version, '', ''} end

local names = {'low', 'normal', 'high', 'urgent'}
local ranks = {low = 1, normal = 2, high = 3, urgent = 4}
local old = cur[4] or 'normal'
local rank = ranks[old] or 2
if reached == 0 then
  rank = math.min(rank + 1, 4)
  redis.call('ZADD', KEYS[2], 'XX', string.format('%.0f', (4 - rank) * band + queued_ms), a.conv)
end
version = version + 1
redis.call('HSET', KEYS[1], 'handoff_priority', names[rank], 'escalated', a.level,
  'version', version, 'updated_at', a.at)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', a.journal_maxlen, '*',
  'conv', a.conv, 'action', 'escalate', 'from', 'queued', 'to', 'queued', 'actor', 'sla',
  'reason', 'unclaimed', 'at', a.at, 'version', version, 'priority', names[rank],
  'from_priority', old, 'level', a.level)
return {'', state, version, '', names[rank]}
