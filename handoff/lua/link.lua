-- Link a customer's account on another network (the alias) to a conversation (the home): the
-- alias's events are handled as the home's from now on, and its recent transcript is copied
-- over so operators see the earlier history. The one-time code is spent.
-- KEYS[1] code key, KEYS[2] home hash, KEYS[3] alias hash, KEYS[4] home transcript,
-- KEYS[5] alias transcript, KEYS[6] journal
-- ARGV: home, alias, now, journal_maxlen, transcript_max, entries to copy
--!include lib_transcript
local home, alias = ARGV[1], ARGV[2]
if redis.call('GET', KEYS[1]) ~= home then return 'unknown' end
for _, key in ipairs({KEYS[2], KEYS[3]}) do
  local cur = redis.call('HMGET', key, 'linked', 'linked_to')
  if cur[1] or cur[2] then return 'already_linked' end
end
local state = redis.call('HGET', KEYS[3], 'state') or 'bot'
if state ~= 'bot' then return 'busy' end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[3], 'linked_to', home)
redis.call('HSET', KEYS[2], 'linked', alias, 'route', alias)
local earlier = redis.call('LRANGE', KEYS[5], -tonumber(ARGV[6]), -1)
for _, entry in ipairs(earlier) do redis.call('RPUSH', KEYS[4], entry) end
redis.call('RPUSH', KEYS[4], cjson.encode({at = tonumber(ARGV[3]), dir = 'system',
  text = 'linked: ' .. alias}))
transcript_cap(KEYS[4], tonumber(ARGV[5]))
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[4], '*', 'conv', home, 'action', 'link',
  'actor', 'customer', 'linked', alias, 'at', ARGV[3])
return 'ok'
