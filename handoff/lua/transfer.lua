-- Transfer: assigned -> assigned to another operator (who must be known, not offline and below
-- capacity), or back to the queue (`to` = '') with its priority and original queued_at, so the
-- customer does not lose their place for having been taken once.
-- KEYS[1] conversation hash, KEYS[2] queue zset, KEYS[3] waiting zset, KEYS[4] the current
-- owner's conversation set, KEYS[5] journal stream, KEYS[6] customer outbox stream,
-- KEYS[7] target operator hash, KEYS[8] target's conversation set (7 and 8 only with `to`)
-- ARGV[1] JSON: conv, by, to, owner (whose set KEYS[4] is), force, reason, now, at,
--   expected_version, notices[], journal_maxlen, outbox_maxlen, report {prefix, ttl}
-- Returns {error, state, version, owner, detail}; 'stale' when the owner changed under the
-- caller's KEYS[4] (the caller retries with the new owner).
--!include lib_report
local a = cjson.decode(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'state', 'version', 'owner', 'handoff_priority',
  'queued_at', 'customer_waiting_since', 'handoff_tags')
local state, version, owner = cur[1] or 'bot', tonumber(cur[2]) or 0, cur[3] or ''

if a.expected_version >= 0 and version ~= a.expected_version then
  return {'version', state, version, owner, ''}
end
if state ~= 'assigned' then return {'wrong_state', state, version, owner, ''} end
if not a.force and owner ~= a.by then return {'not_owner', state, version, owner, ''} end
if owner ~= a.owner then return {'stale', state, version, owner, ''} end
if a.to == owner then return {'same_operator', state, version, owner, a.to} end

local to_state = 'assigned'
if a.to ~= '' then
  local op = redis.call('HMGET', KEYS[7], 'status', 'capacity')
  if not op[1] then return {'unknown_operator', state, version, owner, a.to} end
  if op[1] == 'offline' then return {'offline', state, version, owner, a.to} end
  local load, capacity = redis.call('SCARD', KEYS[8]), tonumber(op[2]) or 0
  if load >= capacity then
    return {'capacity', state, version, owner, load .. '/' .. capacity}
  end
  redis.call('HSET', KEYS[1], 'owner', a.to)
  redis.call('SMOVE', KEYS[4], KEYS[8], a.conv)
  -- The new owner gets a fresh reply timer and a reminder of their own.
  redis.call('HDEL', KEYS[1], 'reminded')
  if cur[6] then
    redis.call('HSET', KEYS[1], 'customer_waiting_since', a.at)
    redis.call('ZADD', KEYS[3], a.now, a.conv)
  end
else
  to_state = 'queued'
  local ranks = {low = 0, normal = 1, high = 2, urgent = 3}
  local rank = ranks[cur[4] or 'normal'] or 1
  local queued_ms = math.floor((tonumber(cur[5]) or a.now) * 1000)
  redis.call('ZADD', KEYS[2], string.format('%.0f', (3 - rank) * 1e13 + queued_ms), a.conv)
  redis.call('HSET', KEYS[1], 'state', 'queued')
  redis.call('HDEL', KEYS[1], 'owner', 'assigned_at', 'reminded', 'customer_waiting_since',
    'first_response_at')
  redis.call('SREM', KEYS[4], a.conv)
  redis.call('ZREM', KEYS[3], a.conv)
end
version = version + 1
redis.call('HSET', KEYS[1], 'version', version, 'updated_at', a.at)
local r = report_at(a, a.now, owner, cur[7])
report_count(r, 'transferred')
if a.to ~= '' then report_peak(r, 'op:' .. a.to, redis.call('SCARD', KEYS[8])) end
redis.call('XADD', KEYS[5], 'MAXLEN', '~', a.journal_maxlen, '*',
  'conv', a.conv, 'action', 'transfer', 'from', state, 'to', to_state, 'actor', a.by,
  'reason', a.reason, 'at', a.at, 'version', version, 'owner', owner, 'to_operator', a.to)
for _, message in ipairs(a.notices) do
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', a.outbox_maxlen, '*', 'm', message)
end
if a.to == '' then return {'', 'queued', version, '', ''} end
return {'', 'assigned', version, a.to, ''}
