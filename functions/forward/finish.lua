-- After one sink's sends (follows breaker.lua, which defines the functions):
-- the delivered markers of what the sink accepted, then the breaker's record
-- of the outcomes, in one atomic call and one round trip.
--
-- KEYS[1]     the breaker hash
-- KEYS[2..]   delivered markers to set
-- ARGV[1]     outcomes in order, S (success) / F (failure); may be empty
-- ARGV[2]     breaker failure threshold
-- ARGV[3]     marker time to live, seconds
-- returns {state, failures}; {"", 0} when there were no outcomes
for i = 2, #KEYS do
  redis.call("SET", KEYS[i], "1", "EX", ARGV[3])
end
if #ARGV[1] == 0 then
  return {"", 0}
end
local state, failures = breaker_record(KEYS[1], breaker_now(), ARGV[1], tonumber(ARGV[2]))
return {state, failures}
