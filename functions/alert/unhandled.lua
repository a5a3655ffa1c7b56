-- Count one unhandled event and say whether it crosses the threshold.
-- One hash per (host, window): fields are fingerprints -> counts, plus a
-- "!<fp>" flag once a meta-alert fired for that fingerprint in the window.
-- The number of fingerprints per host and window is capped: a flood of
-- unique messages lands in one overflow counter, so memory stays bounded.
--
-- KEYS[1]  the (host, window) hash
-- ARGV[1]  fingerprint
-- ARGV[2]  threshold
-- ARGV[3]  window in ms (the hash expires after it)
-- ARGV[4]  max fingerprints per hash
-- returns  the count when this event fires the meta-alert, else 0
local key, fp = KEYS[1], ARGV[1]
if redis.call("HEXISTS", key, "!" .. fp) == 1 then
  return 0
end
if redis.call("HEXISTS", key, fp) == 0 and redis.call("HLEN", key) >= tonumber(ARGV[4]) then
  fp = "~overflow"
  if redis.call("HEXISTS", key, "!" .. fp) == 1 then return 0 end
end
local count = redis.call("HINCRBY", key, fp, 1)
if redis.call("PTTL", key) < 0 then
  redis.call("PEXPIRE", key, tonumber(ARGV[3]))
end
if count >= tonumber(ARGV[2]) then
  redis.call("HSET", key, "!" .. fp, count)
  return count
end
return 0
