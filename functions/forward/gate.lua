-- What of one sink's share of a batch may be sent now, in one atomic call
-- (follows sliding_window.lua and breaker.lua, which define the functions):
--
-- 1. delivered markers: jobs whose marker exists were delivered before (a
--    redelivered entry) and are not sent again;
-- 2. the circuit breaker admits some of the rest (none when open, one probe
--    when half-open) -- only if something is left, so an already-delivered
--    batch never takes the half-open probe;
-- 3. the sink's rate limit grants permits to what the breaker admitted.
--
-- The same steps, in the same order, as three calls used to make; here they
-- cost one round trip, and nothing can change between them.
--
-- KEYS[1]     the breaker hash
-- KEYS[2]     the sink's rate-limit hash
-- KEYS[3..]   delivered markers, one per job (distinct)
-- ARGV[1]     breaker cooldown ms
-- ARGV[2]     breaker probe timeout ms
-- ARGV[3]     rate limit per window (0 = off: no permits taken)
-- ARGV[4]     rate window ms
-- returns {admitted, breaker state, breaker retry_after_ms,
--          granted, rate-limit retry_after_ms, done}
--   done: one character per marker, "1" delivered before, "0" to send;
--   admitted and granted count from the first job whose marker is "0".
local done = {}
local fresh = 0
for i = 3, #KEYS do
  if redis.call("EXISTS", KEYS[i]) == 1 then
    done[#done + 1] = "1"
  else
    done[#done + 1] = "0"
    fresh = fresh + 1
  end
end
done = table.concat(done)
if fresh == 0 then
  return {0, "", 0, 0, 0, done}
end

local admitted, state, breaker_wait = breaker_admit(
  KEYS[1], breaker_now(), fresh, tonumber(ARGV[1]), tonumber(ARGV[2]))
local granted, limit_wait = admitted, 0
local limit = tonumber(ARGV[3])
if limit > 0 and admitted > 0 then
  granted, limit_wait = sliding_window(KEYS[2], limit, tonumber(ARGV[4]), admitted, false)
end
return {admitted, state, breaker_wait, granted, limit_wait, done}
