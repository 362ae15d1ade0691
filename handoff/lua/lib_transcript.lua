-- Keep a transcript at its cap by moving its oldest entries to the conversation's archive list
-- (the same key with `:archive` for `:transcript`, so in the same hash slot), never dropping
-- them; the archive lives 400 days after its last addition (Keys.transcript_archive).
local TRANSCRIPT_ARCHIVE_TTL = 400 * 86400

local function transcript_cap(key, max)
  local over = redis.call('LLEN', key) - max
  if over <= 0 then return end
  local archive = string.gsub(key, ':transcript$', ':archive')
  local oldest = redis.call('LRANGE', key, 0, over - 1)
  for first = 1, #oldest, 500 do  -- unpack has a stack limit: in chunks
    redis.call('RPUSH', archive, unpack(oldest, first, math.min(first + 499, #oldest)))
  end
  redis.call('LTRIM', key, over, -1)
  redis.call('EXPIRE', archive, TRANSCRIPT_ARCHIVE_TTL)
end
