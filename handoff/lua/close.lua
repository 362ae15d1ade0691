-- End a handoff, back to the bot: close, return_to_bot, cancel (the customer's /cancel) and ban.
-- One script for the four because they reset the same fields; they differ in the states they
-- accept (cancel: queued; close, return_to_bot: queued or assigned; ban: any) and what they add
-- (close: `closed` counter and the operator's handled count; ban: `banned`).
-- Everything of the finished handoff goes: owner, queue and waiting membership, the operator's
-- set, SLA marks, and the dialogue (the bot's flows start fresh). A handoff that was queued or
-- assigned leaves a history entry (JSON), which the rating is later stored on.
-- KEYS[1] conversation hash, KEYS[2] queue zset, KEYS[3] waiting zset, KEYS[4] owner's
-- conversation set, KEYS[5] owner's stats hash, KEYS[6] history list, KEYS[7] journal stream,
-- KEYS[8] customer outbox stream
-- ARGV[1] JSON: conv, action, by, owner (whose keys KEYS[4..5] are; '' for none), force,
--   reason, now, at, expected_version, notices[], history_max, journal_maxlen, outbox_maxlen,
--   report {prefix, ttl}
-- Returns {error, state, version, owner, detail}; 'stale' when the owner differs from the one
-- the caller passed keys for (the caller retries).
--!include lib_report
local a = cjson.decode(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'state', 'version', 'owner', 'queued_at',
  'assigned_at', 'handoff_reason', 'handoff_priority', 'handoff_tags', 'first_response_at')
local state, version, owner = cur[1] or 'bot', tonumber(cur[2]) or 0, cur[3] or ''
local accepts = {
  close = {queued = true, assigned = true}, return_to_bot = {queued = true, assigned = true},
  cancel = {queued = true}, ban = {bot = true, queued = true, assigned = true},
}

if a.expected_version >= 0 and version ~= a.expected_version then
  return {'version', state, version, owner, ''}
end
if not accepts[a.action][state] then return {'wrong_state', state, version, owner, ''} end
if state == 'assigned' and not a.force and owner ~= a.by then
  return {'not_owner', state, version, owner, ''}
end
if owner ~= a.owner then return {'stale', state, version, owner, ''} end

version = version + 1
redis.call('HSET', KEYS[1], 'state', 'bot', 'version', version, 'updated_at', a.at)
redis.call('HDEL', KEYS[1], 'owner', 'assigned_at', 'queued_at', 'handoff_reason',
  'handoff_priority', 'handoff_tags', 'escalated', 'reminded', 'customer_waiting_since',
  'first_response_at', 'dialogue')
redis.call('ZREM', KEYS[2], a.conv)
redis.call('ZREM', KEYS[3], a.conv)
if owner ~= '' then redis.call('SREM', KEYS[4], a.conv) end
if a.action == 'close' then redis.call('HINCRBY', KEYS[1], 'closed', 1) end
if a.action == 'ban' then redis.call('HSET', KEYS[1], 'banned', '1') end

local function number(value) return tonumber(value) or cjson.null end
if state ~= 'bot' then
  redis.call('RPUSH', KEYS[6], cjson.encode({
    opened = number(cur[4]), claimed = number(cur[5]), closed = a.now, owner = owner,
    reason = cur[6] or '', priority = cur[7] or 'normal', tags = cur[8] or '',
    first_response = number(cur[9]), outcome = a.action, closed_by = a.by,
    close_reason = a.reason, rating = cjson.null, comment = '',
  }))
  redis.call('LTRIM', KEYS[6], -a.history_max, -1)
  -- the index of finished handoffs, newest by score: handoff/records.py lists and searches it
  redis.call('ZADD', a.report.prefix .. 'closed', a.now, a.conv .. '|' .. a.at)
  redis.call('ZREMRANGEBYSCORE', a.report.prefix .. 'closed', '-inf', a.now - a.report.ttl)
end
-- Per-operator figures, counted here because every relay path ends in this script.
if owner ~= '' and a.action == 'close' then
  redis.call('HINCRBY', KEYS[5], 'handled', 1)
end
if state ~= 'bot' then
  local outcomes = {close = 'closed', return_to_bot = 'returned', cancel = 'cancelled',
    ban = 'banned'}
  local r = report_at(a, a.now, owner, cur[8])
  report_count(r, outcomes[a.action])
  if a.action == 'close' and owner ~= '' and cur[5] then
    report_duration(r, 'handle', a.now - tonumber(cur[5]))
  end
end
if owner ~= '' and cur[5] and cur[9] then
  redis.call('HINCRBY', KEYS[5], 'first_responses', 1)
  redis.call('HINCRBYFLOAT', KEYS[5], 'first_response_seconds',
    math.max(0, tonumber(cur[9]) - tonumber(cur[5])))
end

redis.call('XADD', KEYS[7], 'MAXLEN', '~', a.journal_maxlen, '*',
  'conv', a.conv, 'action', a.action, 'from', state, 'to', 'bot', 'actor', a.by,
  'reason', a.reason, 'at', a.at, 'version', version, 'owner', owner)
for _, message in ipairs(a.notices) do
  redis.call('XADD', KEYS[8], 'MAXLEN', '~', a.outbox_maxlen, '*', 'm', message)
end
return {'', 'bot', version, '', ''}
