-- Count a batch's unhandled events and say which cross the threshold.
-- One hash per (host, window): fields are fingerprints -> counts, plus a
-- "!<fp>" flag once a meta-alert fired for that fingerprint in the window.
-- The number of fingerprints per host and window is capped: a flood of
-- unique messages lands in one overflow counter, so memory stays bounded.
-- One call per batch: every key carries the hash tag {unhandled}, so the
-- call is legal on Redis Cluster (the same choice as correlation's {corr}).
--
-- KEYS[1..]   the (host, window) hashes of the batch, each once
-- ARGV[1]     threshold
-- ARGV[2]     window in ms (a hash expires after it)
-- ARGV[3]     max fingerprints per hash
-- ARGV[4..]   per event, in order: the index of its key in KEYS, its fingerprint
-- returns     per event: the count when it fires the meta-alert, else 0
local threshold = tonumber(ARGV[1])
local max_fields = tonumber(ARGV[3])
local out = {}
for i = 4, #ARGV, 2 do
  local key = KEYS[tonumber(ARGV[i])]
  local fp = ARGV[i + 1]
  local result = 0
  if redis.call("HEXISTS", key, "!" .. fp) == 0 then
    if redis.call("HEXISTS", key, fp) == 0 and redis.call("HLEN", key) >= max_fields then
      fp = "~overflow"
    end
    if redis.call("HEXISTS", key, "!" .. fp) == 0 then
      local count = redis.call("HINCRBY", key, fp, 1)
      if count >= threshold then
        redis.call("HSET", key, "!" .. fp, count)
        result = count
      end
    end
  end
  out[#out + 1] = result
end
for _, key in ipairs(KEYS) do
  if redis.call("PTTL", key) < 0 then
    redis.call("PEXPIRE", key, tonumber(ARGV[2]))
  end
end
return out
