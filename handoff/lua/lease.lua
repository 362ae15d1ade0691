-- Take or renew a lease: succeeds when the key is free or already ours.
-- KEYS[1] lease key; ARGV[1] owner token, ARGV[2] TTL in ms
-- Returns 1 when the lease is ours, else minus the holder's remaining milliseconds, at least
-- one (0 would read as ours): a waiter sleeps exactly until the lease can change hands instead
-- of polling blindly.
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then left = tonumber(ARGV[2]) end  -- a holder without expiry: look again later
return -math.max(left, 1)
