-- The customer's rating (1..5) and/or comment of their last closed handoff, stored on that
-- history entry and counted for the operator who owned it. Rating again replaces the earlier
-- score: its counter goes down, the sum moves by the difference, the count stays.
-- KEYS[1] conversation hash, KEYS[2] history list, KEYS[3] the owner's ratings hash,
-- KEYS[4] journal stream
-- ARGV[1] JSON: conv, owner (whose ratings KEYS[3] is), score (0: comment only), comment?,
--   now, at, journal_maxlen, report {prefix, ttl}
-- Returns {error, state, version, owner, detail}; 'stale' when the entry's owner is not the
-- one the caller passed keys for. Not a conversation write: `version` does not move.
--!include lib_report
local a = cjson.decode(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'state', 'version')
local state, version = cur[1] or 'bot', tonumber(cur[2]) or 0
local raw = redis.call('LINDEX', KEYS[2], -1)
if not raw then return {'wrong_state', state, version, '', 'nothing to rate'} end
local entry = cjson.decode(raw)
local previous = tonumber(entry.rating)  -- before this rating replaces it
local owner = type(entry.owner) == 'string' and entry.owner or ''
if entry.outcome ~= 'close' or owner == '' then
  return {'wrong_state', state, version, owner, 'nothing to rate'}
end
if owner ~= a.owner then return {'stale', state, version, owner, ''} end

if a.score > 0 then
  local old = tonumber(entry.rating)
  if old then
    redis.call('HINCRBY', KEYS[3], tostring(old), -1)
    redis.call('HINCRBY', KEYS[3], 'sum', a.score - old)
  else
    redis.call('HINCRBY', KEYS[3], 'count', 1)
    redis.call('HINCRBY', KEYS[3], 'sum', a.score)
  end
  redis.call('HINCRBY', KEYS[3], tostring(a.score), 1)
  entry.rating = a.score
  entry.rated_at = a.now
end
-- Counted in the hour of the close it rates, so a late rating lands in the right report.
local r = report_at(a, tonumber(entry.closed) or a.now, owner, entry.tags)
if a.score > 0 then
  if previous then
    report_count(r, 'csat|' .. previous, -1)
    report_count(r, 'csat_sum', a.score - previous)
  else
    report_count(r, 'csat_n', 1)
    report_count(r, 'csat_sum', a.score)
  end
  report_count(r, 'csat|' .. a.score, 1)
end
if type(a.comment) == 'string' and a.comment ~= '' then
  if (entry.comment or '') == '' then report_count(r, 'comments', 1) end
  redis.call('LPUSH', a.report.prefix .. 'report:comments', cjson.encode({
    at = r.at, op = owner, conv = a.conv, comment = a.comment,
    score = tonumber(entry.rating) or (a.score > 0 and a.score or cjson.null)}))
  redis.call('LTRIM', a.report.prefix .. 'report:comments', 0, 9999)
end
if type(a.comment) == 'string' then entry.comment = a.comment end
redis.call('LSET', KEYS[2], -1, cjson.encode(entry))
redis.call('XADD', KEYS[4], 'MAXLEN', '~', a.journal_maxlen, '*',
  'conv', a.conv, 'action', 'rating', 'from', state, 'to', state, 'actor', 'customer',
  'reason', '', 'at', a.at, 'version', version, 'owner', owner,
  'score', a.score > 0 and tostring(a.score) or '', 'comment', a.comment or '')
return {'', state, version, owner, ''}
