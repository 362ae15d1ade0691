-- One recipient of a notice, decided and (when allowed) sent in one step: the outcome is written
-- once in the notice's `done` hash, the message goes into the customer outbox of the network
-- the customer wrote from last, and into their transcript. A crash before this script leaves the
-- recipient for the resumed run; after it, a resumed run finds the outcome and sends nothing.
-- KEYS[1] notice hash, KEYS[2] notice done hash, KEYS[3] conversation hash,
-- KEYS[4] transcript list, KEYS[5] customer outbox stream (of the `route` expected)
-- ARGV[1] JSON: conv, route (the linked network the message is addressed to, '' none),
--   message (OutboundMessage JSON), entry (transcript entry JSON), transcript_max, outbox_maxlen
-- Returns {outcome, detail}: sent | opted_out | unreachable | banned | missing | done (already
-- decided: detail is that outcome) | cancelled | moved (the route changed: detail is the new one)
--!include lib_transcript
local a = cjson.decode(ARGV[1])
local before = redis.call('HGET', KEYS[2], a.conv)
if before then return {'done', before} end
if redis.call('HGET', KEYS[1], 'status') == 'cancelled' then return {'cancelled', ''} end
local c = redis.call('HMGET', KEYS[3], 'version', 'banned', 'notices_off', 'unreachable', 'route')
local outcome = 'sent'
if not c[1] then
  outcome = 'missing'
elseif c[2] == '1' then
  outcome = 'banned'
elseif c[3] == '1' then
  outcome = 'opted_out'
elseif c[4] and c[4] ~= '' then
  outcome = 'unreachable'
elseif (c[5] or '') ~= a.route then
  return {'moved', c[5] or ''}
end
redis.call('HSET', KEYS[2], a.conv, outcome)
redis.call('HINCRBY', KEYS[1], outcome, 1)
if outcome == 'sent' then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', a.outbox_maxlen, '*', 'm', a.message)
  redis.call('RPUSH', KEYS[4], a.entry)
  transcript_cap(KEYS[4], a.transcript_max)
end
return {outcome, ''}
