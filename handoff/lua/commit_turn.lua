-- Commit one processed inbound event: the conversation's new state, its transcript, the replies
-- and an optional handoff, and acknowledge the event, all at once. A crash before this script
-- leaves the event pending (it is processed again); after it, nothing is processed twice.
-- KEYS[1] conversation hash, KEYS[2] transcript list, KEYS[3] inbound stream,
-- KEYS[4] customer outbox stream, KEYS[5] journal stream, KEYS[6] queue zset,
-- KEYS[7] desk outbox stream, KEYS[8] waiting zset, KEYS[9] trainers' inbox stream,
-- KEYS[10] the day's stats hash, KEYS[11] / KEYS[12] the day's HyperLogLogs of conversations
-- the bot talked to / handed off
-- ARGV[1] JSON: conv, group, entry, version (-1: any), state ('*': any), owner?, dialogue?,
--   profile?, now, transcript[], transcript_max, outbox[], desk[], outbox_maxlen, journal_maxlen,
--   customer_waiting? (the customer wrote to a human), operator_reply?, flag?/unflag? (a
--   conversation flag such as comment_pending to set or clear),
--   clear_unreachable?, unreachable? (reason),
--   handoff? {reason, priority, tags, score, notice},
--   inbox[] (JSON entries of messages the bot did not understand), inbox_maxlen,
--   stats? {intent, fallback} (a bot turn to count), stats_ttl (seconds the day keys live),
--   report {prefix, ttl} (an operator's reply is counted in the reports)
--!include lib_report
--!include lib_transcript
local a = cjson.decode(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'version', 'state', 'last_event', 'owner',
  'customer_waiting_since', 'queued_at', 'handoff_tags')
local version = tonumber(cur[1]) or 0
local state = cur[2] or 'bot'

if a.entry ~= '' and cur[3] == a.entry then
  redis.call('XACK', KEYS[3], a.group, a.entry)
  return {'duplicate', version, state, 0}
end
if (a.version ~= -1 and version ~= a.version) or (a.state ~= '*' and state ~= a.state)
    or (a.owner and cur[4] ~= a.owner) then
  return {'conflict', version, state, 0}
end

local function replace(text, needle, value)
  local i, j = string.find(text, needle, 1, true)
  if not i then return text end
  return string.sub(text, 1, i - 1) .. value .. string.sub(text, j + 1)
end

version = version + 1
local now = tostring(a.now)
redis.call('HSET', KEYS[1], 'version', version, 'updated_at', now, 'last_event', a.entry)
redis.call('HSETNX', KEYS[1], 'created_at', now)
if a.dialogue then redis.call('HSET', KEYS[1], 'dialogue', a.dialogue) end
if a.profile then redis.call('HSET', KEYS[1], 'profile', a.profile) end
if a.clear_unreachable then redis.call('HDEL', KEYS[1], 'unreachable') end
-- the customer wrote (not a block): the index of customers by last activity (Keys.customers)
if a.clear_unreachable then redis.call('ZADD', a.report.prefix .. 'customers', a.now, a.conv) end
if a.unreachable then redis.call('HSET', KEYS[1], 'unreachable', a.unreachable) end
if a.flag then redis.call('HSET', KEYS[1], a.flag, '1') end
if a.unflag then redis.call('HDEL', KEYS[1], a.unflag) end
-- route? (linked accounts: where the customer wrote from; only while still linked to it)
if a.route then
  if a.route == a.conv then
    redis.call('HDEL', KEYS[1], 'route')
  elseif redis.call('HGET', KEYS[1], 'linked') == a.route then
    redis.call('HSET', KEYS[1], 'route', a.route)
  end
end

for _, entry in ipairs(a.transcript) do
  redis.call('RPUSH', KEYS[2], entry)
end
if #a.transcript > 0 then
  transcript_cap(KEYS[2], a.transcript_max)
end

local position = 0
local outbox = a.outbox
if type(a.handoff) == 'table' then
  local h = a.handoff
  redis.call('HSET', KEYS[1], 'state', 'queued', 'handoff_reason', h.reason,
    'handoff_priority', h.priority, 'handoff_tags', h.tags, 'queued_at', now)
  redis.call('HINCRBY', KEYS[1], 'handoffs', 1)
  redis.call('ZADD', KEYS[6], h.score, a.conv)
  position = redis.call('ZRANK', KEYS[6], a.conv) + 1
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', a.journal_maxlen, '*',
    'conv', a.conv, 'action', 'handoff', 'from', state, 'to', 'queued', 'actor', 'bot',
    'reason', h.reason, 'priority', h.priority, 'at', now, 'version', version)
  redis.call('HINCRBY', KEYS[10], 'handoff:' .. h.reason, 1)
  redis.call('PFADD', KEYS[12], a.conv)
  redis.call('EXPIRE', KEYS[12], a.stats_ttl)
  if h.notice ~= '' then
    outbox[#outbox + 1] = replace(h.notice, '{position}', tostring(position))
  end
  state = 'queued'
end
-- rules? {fired[] {name, did}, tags, priority, band, desk}: automation rules of this turn;
-- KEYS[13] the day's rule counts
if type(a.rules) == 'table' then
  local r = a.rules
  if state ~= 'bot' and r.tags ~= '' then
    local seen, tags = {}, {}
    for tag in string.gmatch((redis.call('HGET', KEYS[1], 'handoff_tags') or '') .. ',' .. r.tags,
        '[^,]+') do
      if not seen[tag] then seen[tag] = true; tags[#tags + 1] = tag end
    end
    redis.call('HSET', KEYS[1], 'handoff_tags', table.concat(tags, ','))
  end
  if state ~= 'bot' and r.priority ~= '' then
    redis.call('HSET', KEYS[1], 'handoff_priority', r.priority)
    local score = tonumber(redis.call('ZSCORE', KEYS[6], a.conv))
    if score then
      redis.call('ZADD', KEYS[6], string.format('%.0f', r.band * 1e13 + score % 1e13), a.conv)
    end
  end
  if r.desk ~= '' then redis.call('HSETNX', KEYS[1], 'desk', r.desk) end
  for _, rule in ipairs(r.fired) do
    redis.call('XADD', KEYS[5], 'MAXLEN', '~', a.journal_maxlen, '*', 'conv', a.conv,
      'action', 'rule', 'actor', 'rule:' .. rule.name, 'reason', rule.did, 'at', now,
      'version', version)
    redis.call('HINCRBY', KEYS[13], rule.name, 1)
  end
  redis.call('EXPIRE', KEYS[13], a.stats_ttl)
end

for _, message in ipairs(outbox) do
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', a.outbox_maxlen, '*', 'm', message)
end
for _, message in ipairs(a.desk) do
  redis.call('XADD', KEYS[7], 'MAXLEN', '~', a.outbox_maxlen, '*', 'm', message)
end
if a.customer_waiting and state == 'assigned' then
  if redis.call('ZADD', KEYS[8], 'NX', a.now, a.conv) == 1 then
    redis.call('HSET', KEYS[1], 'customer_waiting_since', now)
  end
end
if a.operator_reply then
  redis.call('ZREM', KEYS[8], a.conv)
  redis.call('HDEL', KEYS[1], 'customer_waiting_since', 'reminded')
  local first = redis.call('HSETNX', KEYS[1], 'first_response_at', now) == 1
  report_operator_reply(a, cur[4] or '', cur[7], cur[5], first and cur[6] or nil)
end
for _, entry in ipairs(a.inbox) do
  redis.call('XADD', KEYS[9], 'MAXLEN', '~', a.inbox_maxlen, '*', 'conv', a.conv, 'e', entry)
end
if type(a.stats) == 'table' then
  redis.call('HINCRBY', KEYS[10], 'turns', 1)
  if a.stats.intent ~= '' then redis.call('HINCRBY', KEYS[10], 'intent:' .. a.stats.intent, 1) end
  if a.stats.fallback then redis.call('HINCRBY', KEYS[10], 'fallbacks', 1) end
  redis.call('PFADD', KEYS[11], a.conv)
  redis.call('EXPIRE', KEYS[11], a.stats_ttl)
end
if type(a.stats) == 'table' or type(a.handoff) == 'table' then
  redis.call('EXPIRE', KEYS[10], a.stats_ttl)
end
if a.entry ~= '' then
  redis.call('XACK', KEYS[3], a.group, a.entry)
end
return {'ok', version, state, position}
