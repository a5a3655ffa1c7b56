-- A circuit breaker shared by every forward instance, one hash per sink.
-- Both operations run atomically here, so two instances can never both take
-- the single half-open probe or lose a failure count (the original did a
-- read-modify-write from Python and let all traffic through when half-open).
--
-- KEYS[1]  the breaker hash: state (closed|open|half_open), failures,
--          opened_at (ms), probe_until (ms)
-- ARGV[1]  "admit" or "record"
-- admit:   ARGV[2] wanted, ARGV[3] cooldown ms, ARGV[4] probe timeout ms
--          returns {admitted, state, retry_after_ms}
-- record:  ARGV[2] results in order as a string of S (success) and F (failure),
--          ARGV[3] failure threshold
--          returns {state, failures}
local key = KEYS[1]
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call("HGET", key, "state") or "closed"

if ARGV[1] == "admit" then
  local wanted = tonumber(ARGV[2])
  local cooldown = tonumber(ARGV[3])
  local probe_timeout = tonumber(ARGV[4])
  if state == "closed" then
    return {wanted, state, 0}
  end
  if state == "open" then
    local opened = tonumber(redis.call("HGET", key, "opened_at") or "0")
    if now < opened + cooldown then
      return {0, state, opened + cooldown - now}
    end
    state = "half_open"
    redis.call("HSET", key, "state", state, "probe_until", 0)
  end
  -- half open: one probe at a time; a probe that never reported expires
  local probe_until = tonumber(redis.call("HGET", key, "probe_until") or "0")
  if now < probe_until then
    return {0, state, probe_until - now}
  end
  redis.call("HSET", key, "probe_until", now + probe_timeout)
  return {1, state, 0}
end

-- record
local results = ARGV[2]
local threshold = tonumber(ARGV[3])
local failures = tonumber(redis.call("HGET", key, "failures") or "0")
for i = 1, #results do
  local ok = string.sub(results, i, i) == "S"
  if ok then
    state = "closed"
    failures = 0
  else
    failures = failures + 1
    if state == "half_open" or (state == "closed" and failures >= threshold) then
      state = "open"
      redis.call("HSET", key, "opened_at", now)
    end
  end
end
redis.call("HSET", key, "state", state, "failures", failures, "probe_until", 0)
return {state, failures}
