-- One outbound message into a web visitor's chat stream, once: a redelivery of the same
-- message (a sender that died after this and before acknowledging the outbox) is skipped.
-- KEYS[1] the visitor's chat stream, KEYS[2] the message's sent marker
-- ARGV[1] stream maxlen, ARGV[2] marker ttl (seconds), ARGV[3..] the entry's field/value pairs
-- Returns the entry's id (its `seq`), or '' when it was there already.
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then return '' end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))
