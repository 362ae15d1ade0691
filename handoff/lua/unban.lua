-- Unban: lift `banned`; the conversation stays with the bot, which answers again.
-- KEYS[1] conversation hash, KEYS[2] journal stream, KEYS[3] customer outbox stream
-- ARGV[1] JSON: conv, by, reason, at, expected_version, notices[], journal_maxlen,
--   outbox_maxlen
-- Returns {error, state, version, owner, detail}.
local a = cjson.decode(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'state', 'version', 'owner', 'banned')
local state, version, owner = cur[1] or 'bot', tonumber(cur[2]) or 0, cur[3] or ''

if a.expected_version >= 0 and version ~= a.expected_version then
  return {'version', state, version, owner, ''}
end
if cur[4] ~= '1' then return {'wrong_state', state, version, owner, 'not banned'} end

version = version + 1
redis.call('HDEL', KEYS[1], 'banned')
redis.call('HSET', KEYS[1], 'version', version, 'updated_at', a.at)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', a.journal_maxlen, '*',
  'conv', a.conv, 'action', 'unban', 'from', state, 'to', state, 'actor', a.by,
  'reason', a.reason, 'at', a.at, 'version', version)
for _, message in ipairs(a.notices) do
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', a.outbox_maxlen, '*', 'm', message)
end
return {'', state, version, owner, ''}
