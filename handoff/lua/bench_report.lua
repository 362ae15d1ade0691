-- bench.reports only: the counting one handled conversation causes, through the very functions
-- the transition scripts call (claim, first reply, two more replies, close, rating), at times
-- the benchmark chooses. Never called by the product.
-- ARGV[1] JSON: conv, op, tags, queued, claimed, replies[], closed, score, report {prefix, ttl}
--!include lib_report
local a = cjson.decode(ARGV[1])
local function at(t) return report_at(a, t, a.op, a.tags) end
report_count(at(a.claimed), 'taken')
report_peak(at(a.claimed), 'op:' .. a.op, a.parallel)
for i, t in ipairs(a.replies) do
  local since = i == 1 and a.claimed or a.replies[i - 1]
  report_duration(at(t), 'response', t - since)
  if i == 1 then report_duration(at(t), 'first_reaction', t - a.queued) end
end
report_count(at(a.closed), 'closed')
report_duration(at(a.closed), 'handle', a.closed - a.claimed)
report_count(at(a.closed), 'csat_n', 1)
report_count(at(a.closed), 'csat_sum', a.score)
report_count(at(a.closed), 'csat|' .. a.score, 1)
return 1
