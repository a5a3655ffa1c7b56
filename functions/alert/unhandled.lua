-- Count a batch's unhandled events and say which cross the threshold.
-- One hash per (host, window): fields are fingerprints -> counts, plus a
-- "!<fp>" flag once a meta-alert fired for that fingerprint in the window.
-- The number of fingerprints per host and window is capped: a flood of
-- unique messages lands in one overflow counter, so memory stays bounded.
-- One call per batch: every key carries the hash tag {unhandled}, so the
-- call is legal on Redis Cluster (the same choice as correlation's {corr}).
-- The window's top fingerprints over all hosts are kept too (a sorted set
-- of counts, capped, and one sample "host<TAB>message" per fingerprint), so
-- `mutt status` can say which unhandled events to write a rule for.
--
-- KEYS[1..n]  the (host, window) hashes of the batch, each once
-- KEYS[n+1]   the window's top fingerprints (sorted set fp -> count)
-- KEYS[n+2]   the window's samples (hash fp -> "host\tmessage")
-- ARGV[1]     threshold
-- ARGV[2]     window in ms (a hash expires after it)
-- ARGV[3]     max fingerprints per hash, and in the top set
-- ARGV[4]     m, the number of samples that follow
-- ARGV[5..4+2m]  fingerprint, sample pairs (the batch's first event of each)
-- ARGV[5+2m..]   per event, in order: the index of its key in KEYS, its fingerprint
-- returns     per event: the count when it fires the meta-alert, else 0
local threshold = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local max_fields = tonumber(ARGV[3])
local samples = tonumber(ARGV[4])
local top = KEYS[#KEYS - 1]
local sample_key = KEYS[#KEYS]
local first = 5 + 2 * samples
local out = {}
for i = first, #ARGV, 2 do
  local key = KEYS[tonumber(ARGV[i])]
  local fp = ARGV[i + 1]
  local result = 0
  redis.call("ZINCRBY", top, 1, fp)
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
for i = 5, first - 1, 2 do
  redis.call("HSETNX", sample_key, ARGV[i], ARGV[i + 1])
end
local excess = redis.call("ZCARD", top) - max_fields
if excess > 0 then
  -- drop the rarest; their samples go with them
  local gone = redis.call("ZRANGE", top, 0, excess - 1)
  redis.call("ZREMRANGEBYRANK", top, 0, excess - 1)
  redis.call("HDEL", sample_key, unpack(gone))
end
for _, key in ipairs(KEYS) do
  if redis.call("PTTL", key) < 0 then
    redis.call("PEXPIRE", key, window_ms)
  end
end
return out
