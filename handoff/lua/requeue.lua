-- Requeue: an offline operator's conversation goes back to the queue once the grace period is
-- over, with its priority and original queued_at. Checked here, not by the caller, so an
-- operator who came back online a moment ago keeps their conversations.
-- KEYS[1] conversation hash, KEYS[2] queue zset, KEYS[3] waiting zset, KEYS[4] operator hash,
-- KEYS[5] operator's conversation set, KEYS[6] journal stream, KEYS[7] customer outbox stream
-- ARGV[1] JSON: conv, op, grace, now, at, notices[], journal_maxlen, outbox_maxlen
-- Returns {error, state, version, owner, detail}; on success detail is the operator it left.
local a = cjson.decode(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'state', 'version', 'owner', 'handoff_priority',
  'queued_at')
local state, version, owner = cur[1] or 'bot', tonumber(cur[2]) or 0, cur[3] or ''

if state ~= 'assigned' then return {'wrong_state', state, version, owner, ''} end
if owner ~= a.op then return {'not_owner', state, version, owner, ''} end
local op = redis.call('HMGET', KEYS[4], 'status', 'status_since')
if op[1] ~= 'offline' then return {'not_due', state, version, owner, op[1] or ''} end
if a.now - (tonumber(op[2]) or a.now) < a.grace then
  return {'not_due', state, version, owner, 'grace'}
end

local ranks = {low = 0, normal = 1, high = 2, urgent = 3}
local rank = ranks[cur[4] or 'normal'] or 1
local queued_ms = math.floor((tonumber(cur[5]) or a.now) * 1000)
version = version + 1
redis.call('ZADD', KEYS[2], string.format('%.0f', (3 - rank) * 1e13 + queued_ms), a.conv)
redis.call('HSET', KEYS[1], 'state', 'queued', 'version', version, 'updated_at', a.at)
redis.call('HDEL', KEYS[1], 'owner', 'assigned_at', 'reminded', 'customer_waiting_since',
  'first_response_at')
redis.call('SREM', KEYS[5], a.conv)
redis.call('ZREM', KEYS[3], a.conv)
redis.call('XADD', KEYS[6], 'MAXLEN', '~', a.journal_maxlen, '*',
  'conv', a.conv, 'action', 'requeue', 'from', 'assigned', 'to', 'queued', 'actor', 'system',
  'reason', 'operator offline', 'at', a.at, 'version', version, 'owner', owner)
for _, message in ipairs(a.notices) do
  redis.call('XADD', KEYS[7], 'MAXLEN', '~', a.outbox_maxlen, '*', 'm', message)
end
return {'', 'queued', version, '', owner}
