-- Report counters (handoff/reports.py reads them, docs/reports.md). Included by the transition
-- scripts, so a figure is counted in the same atomic step as the transition it describes.
-- One hash per hour (`<prefix>report:<hour since the epoch>`, kept `hour_ttl`) and one per UTC
-- day (`<prefix>report:d<day since the epoch>`, kept `ttl`), fields `<dimension>|<metric>`:
-- dimensions `op:<operator>`, `all`, `ch:<channel>`, `tag:<tag>`; durations as histograms
-- (`|b<i>` per bucket of REPORT_BOUNDS, `|n`, `|sum`); `|peak` is a maximum, not a count.
-- The hour's key is derived here from the event's time: a rating counts in its close's hour.
local REPORT_BOUNDS = {5, 10, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 14400,
  28800, 86400}

-- the hour's and the day's hash of a moment, with how long each is kept, and the team's
-- all-time totals (never expire: Prometheus histograms are cumulative; only the `all` dimension)
local function report_keys(r)
  return {{r.prefix .. 'report:' .. tostring(math.floor(r.at / 3600)), r.hour_ttl},
          {r.prefix .. 'report:d' .. tostring(math.floor(r.at / 86400)), r.ttl},
          {r.prefix .. 'report:total', 0}}
end

local function report_dims_of(r, key)
  if key[2] == 0 then return {'all'} end
  return r.dims
end

local function report_expire(key)
  if key[2] > 0 then redis.call('EXPIRE', key[1], key[2]) end
end

local function report_dims(op, conv, tags)
  local dims = {'all'}
  if op ~= nil and op ~= '' then dims[#dims + 1] = 'op:' .. op end
  local channel = string.match(conv, '^([^:]+):')
  if channel then dims[#dims + 1] = 'ch:' .. channel end
  for tag in string.gmatch(tags or '', '[^,]+') do dims[#dims + 1] = 'tag:' .. tag end
  return dims
end

-- r: {prefix, ttl, hour_ttl, at (seconds), dims}
local function report_count(r, metric, n)
  for _, key in ipairs(report_keys(r)) do
    for _, dim in ipairs(report_dims_of(r, key)) do
      redis.call('HINCRBY', key[1], dim .. '|' .. metric, n or 1)
    end
    report_expire(key)
  end
end

local function report_duration(r, metric, seconds)
  seconds = math.max(0, seconds)
  local bucket = #REPORT_BOUNDS + 1
  for i, bound in ipairs(REPORT_BOUNDS) do
    if seconds <= bound then bucket = i break end
  end
  for _, key in ipairs(report_keys(r)) do
    for _, dim in ipairs(report_dims_of(r, key)) do
      local field = dim .. '|' .. metric
      redis.call('HINCRBY', key[1], field .. '|b' .. bucket, 1)
      redis.call('HINCRBY', key[1], field .. '|n', 1)
      redis.call('HINCRBYFLOAT', key[1], field .. '|sum', seconds)
    end
    report_expire(key)
  end
end

local function report_peak(r, dim, value)
  for _, key in ipairs(report_keys(r)) do
    local field = dim .. '|peak'
    if key[2] > 0 and (tonumber(redis.call('HGET', key[1], field)) or 0) < value then
      redis.call('HSET', key[1], field, value)
      report_expire(key)
    end
  end
end

-- The counting context of one moment: where, how long kept, which dimensions.
local function report_at(a, at, op, tags)
  return {prefix = a.report.prefix, ttl = a.report.ttl, hour_ttl = a.report.hour_ttl, at = at,
    dims = report_dims(op, a.conv, tags)}
end

-- An operator's message to the customer: the response time (since the customer's unanswered
-- message, or since the claim) and, for the first reply of the handoff, the first reaction
-- (since it was queued). `waiting_since` and `queued_at` are the hash's values (or nil).
local function report_operator_reply(a, owner, tags, waiting_since, queued_at)
  local r = report_at(a, a.now, owner, tags)
  if waiting_since then report_duration(r, 'response', a.now - tonumber(waiting_since)) end
  if queued_at then report_duration(r, 'first_reaction', a.now - tonumber(queued_at)) end
end
