-- An operator's reply from outside the desk topic (API): only the owner of an assigned
-- conversation. The message goes to the customer outbox and the transcript in the same step
-- that stops the customer's wait (and its reminder) and notes the first response.
-- KEYS[1] conversation hash, KEYS[2] transcript list, KEYS[3] waiting zset, KEYS[4] journal
-- stream, KEYS[5] customer outbox stream
-- ARGV[1] JSON: conv, op, message (JSON OutboundMessage), message_id, entry (transcript JSON),
--   at, expected_version, transcript_max, journal_maxlen, outbox_maxlen, report {prefix, ttl}
-- Returns {error, state, version, owner, detail}; detail is the message id on success.
--!include lib_report
--!include lib_transcript
local a = cjson.decode(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'state', 'version', 'owner', 'customer_waiting_since',
  'queued_at', 'handoff_tags')
local state, version, owner = cur[1] or 'bot', tonumber(cur[2]) or 0, cur[3] or ''

if a.expected_version >= 0 and version ~= a.expected_version then
  return {'version', state, version, owner, ''}
end
if state ~= 'assigned' then return {'wrong_state', state, version, owner, ''} end
if owner ~= a.op then return {'not_owner', state, version, owner, ''} end

version = version + 1
redis.call('HSET', KEYS[1], 'version', version, 'updated_at', a.at)
local first = redis.call('HSETNX', KEYS[1], 'first_response_at', a.at) == 1
report_operator_reply(a, owner, cur[6], cur[4], first and cur[5] or nil)
redis.call('HDEL', KEYS[1], 'customer_waiting_since', 'reminded')
redis.call('ZREM', KEYS[3], a.conv)
redis.call('RPUSH', KEYS[2], a.entry)
transcript_cap(KEYS[2], a.transcript_max)
redis.call('XADD', KEYS[4], 'MAXLEN', '~', a.journal_maxlen, '*',
  'conv', a.conv, 'action', 'reply', 'from', state, 'to', state, 'actor', a.op,
  'reason', '', 'at', a.at, 'version', version, 'owner', owner, 'message', a.message_id)
redis.call('XADD', KEYS[5], 'MAXLEN', '~', a.outbox_maxlen, '*', 'm', a.message)
return {'', state, version, owner, a.message_id}
