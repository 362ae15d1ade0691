-- Undo a link: the alias is a conversation of its own again, replies go to the home's network.
-- KEYS[1] home hash, KEYS[2] alias hash, KEYS[3] home transcript, KEYS[4] journal
-- ARGV: home, alias, now, journal_maxlen, transcript_max
--!include lib_transcript
local home, alias = ARGV[1], ARGV[2]
if redis.call('HGET', KEYS[1], 'linked') ~= alias
    or redis.call('HGET', KEYS[2], 'linked_to') ~= home then
  return 'not_linked'
end
redis.call('HDEL', KEYS[1], 'linked', 'route')
redis.call('HDEL', KEYS[2], 'linked_to')
redis.call('RPUSH', KEYS[3], cjson.encode({at = tonumber(ARGV[3]), dir = 'system',
  text = 'unlinked: ' .. alias}))
transcript_cap(KEYS[3], tonumber(ARGV[5]))
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'conv', home, 'action', 'unlink',
  'actor', 'customer', 'linked', alias, 'at', ARGV[3])
return 'ok'
