-- A shift started or ended (`state` on/off), applied once per edge: at the start an offline
-- operator goes online, at the end an online or paused one goes offline (and `status_since`
-- starts the grace period after which their conversations return to the queue). Between
-- edges /online and /offline rule: overtime and leaving early are the operator's call.
-- A revoked operator's shift never brings them back.
-- KEYS[1] operator hash, KEYS[2] journal stream, KEYS[3] revoked set
-- ARGV[1] JSON: op, state, now, at, journal_maxlen
-- Returns the status now when the edge was new, else '' (seen already, or no shift).
local a = cjson.decode(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'shift_state', 'status', 'shift')
if not cur[3] or cur[1] == a.state then return '' end
local status = cur[2] or 'offline'
local new = status
if a.state == 'on' and status == 'offline' and redis.call('SISMEMBER', KEYS[3], a.op) == 0 then
  new = 'online'
end
if a.state == 'off' and status ~= 'offline' then new = 'offline' end
redis.call('HSET', KEYS[1], 'shift_state', a.state)
if new ~= status then redis.call('HSET', KEYS[1], 'status', new, 'status_since', a.at) end
local action = 'shift_end'
if a.state == 'on' then action = 'shift_start' end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', a.journal_maxlen, '*',
  'conv', '', 'action', action, 'from', status, 'to', new, 'actor', 'shift', 'reason', cur[3],
  'at', a.at, 'version', '', 'owner', a.op)
return new
