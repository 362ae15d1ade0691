-- Claim: queued -> assigned. The first claim wins; the operator must be known, not offline
-- (a paused operator may claim by hand, auto-assignment wants `online`) and below capacity,
-- counted by SCARD of the operator's set here so two claims can never both fit the last slot.
-- The claim starts the reply clock: the customer has been waiting for a human since the handoff.
-- KEYS[1] conversation hash, KEYS[2] queue zset, KEYS[3] operator hash, KEYS[4] operator's
-- conversation set, KEYS[5] waiting zset, KEYS[6] wait samples list, KEYS[7] journal stream,
-- KEYS[8] customer outbox stream
-- ARGV[1] JSON: conv, op, auto, now, at, expected_version, notices[], samples_max,
--   journal_maxlen, outbox_maxlen, report {prefix, ttl}
-- Returns {error, state, version, owner, detail}; error '' on success.
--!include lib_report
local a = cjson.decode(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'state', 'version', 'owner', 'queued_at',
  'handoff_tags')
local state, version, owner = cur[1] or 'bot', tonumber(cur[2]) or 0, cur[3] or ''

if state == 'assigned' then return {'taken', state, version, owner, ''} end
if a.expected_version >= 0 and version ~= a.expected_version then
  return {'version', state, version, owner, ''}
end
if state ~= 'queued' then return {'wrong_state', state, version, owner, ''} end
local op = redis.call('HMGET', KEYS[3], 'status', 'capacity')
if not op[1] then return {'unknown_operator', state, version, owner, a.op} end
if op[1] == 'offline' or (a.auto and op[1] ~= 'online') then
  return {'offline', state, version, owner, op[1]}
end
local load, capacity = redis.call('SCARD', KEYS[4]), tonumber(op[2]) or 0
if load >= capacity then
  return {'capacity', state, version, owner, load .. '/' .. capacity}
end

version = version + 1
redis.call('HSET', KEYS[1], 'state', 'assigned', 'owner', a.op, 'assigned_at', a.at,
  'version', version, 'updated_at', a.at, 'customer_waiting_since', a.at)
redis.call('HDEL', KEYS[1], 'reminded', 'first_response_at')
redis.call('ZREM', KEYS[2], a.conv)
redis.call('SADD', KEYS[4], a.conv)
redis.call('ZADD', KEYS[5], a.now, a.conv)
local waited = math.max(0, a.now - (tonumber(cur[4]) or a.now))
redis.call('LPUSH', KEYS[6], string.format('%.1f', waited))
redis.call('LTRIM', KEYS[6], 0, a.samples_max - 1)
local r = report_at(a, a.now, a.op, cur[5])
report_count(r, 'taken')
report_peak(r, 'op:' .. a.op, redis.call('SCARD', KEYS[4]))
redis.call('XADD', KEYS[7], 'MAXLEN', '~', a.journal_maxlen, '*',
  'conv', a.conv, 'action', 'claim', 'from', 'queued', 'to', 'assigned', 'actor', a.op,
  'reason', a.auto and 'auto' or 'manual', 'at', a.at, 'version', version, 'owner', a.op,
  'waited', string.format('%.1f', waited))
for _, message in ipairs(a.notices) do
  redis.call('XADD', KEYS[8], 'MAXLEN', '~', a.outbox_maxlen, '*', 'm', message)
end
return {'', 'assigned', version, a.op, ''}
