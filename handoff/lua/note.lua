-- An operator's internal note (from the API or the console): into the transcript, never to the
-- customer, and journaled so that every view of the conversation hears of it.
-- KEYS[1] conversation hash, KEYS[2] transcript list, KEYS[3] journal stream
-- ARGV[1] JSON: conv, op, entry (transcript JSON), at, transcript_max, journal_maxlen
-- Returns the conversation's state, or false when it does not exist (nothing written).
--!include lib_transcript
local a = cjson.decode(ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  if redis.call('EXISTS', KEYS[1]) == 0 then return false end
  state = 'bot'
end
redis.call('RPUSH', KEYS[2], a.entry)
transcript_cap(KEYS[2], a.transcript_max)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', a.journal_maxlen, '*',
  'conv', a.conv, 'action', 'note', 'from', state, 'to', state, 'actor', a.op,
  'reason', '', 'at', a.at)
return state
