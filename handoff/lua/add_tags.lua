-- Add tags to a conversation (kept unique, in order), journaled.
-- KEYS[1] conversation hash, KEYS[2] journal stream
-- ARGV[1] conversation id, ARGV[2] tags (comma-separated), ARGV[3] actor, ARGV[4] now,
-- ARGV[5] journal MAXLEN
local current = redis.call('HGET', KEYS[1], 'handoff_tags') or ''
local seen, tags = {}, {}
for tag in string.gmatch(current .. ',' .. ARGV[2], '[^,]+') do
  if not seen[tag] then
    seen[tag] = true
    tags[#tags + 1] = tag
  end
end
local joined = table.concat(tags, ',')
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'handoff_tags', joined)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'conv', ARGV[1], 'action', 'tag',
  'actor', ARGV[3], 'reason', ARGV[2], 'at', ARGV[4], 'version', version)
return joined
