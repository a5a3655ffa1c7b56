-- A circuit breaker shared by every forward instance, one hash per sink.
-- Both operations run atomically inside one script, so two instances can
-- never both take the single half-open probe or lose a failure count (the
-- original did a read-modify-write from Python and let all traffic through
-- when half-open).
--
-- This file defines functions; scripts that need them are this file followed
-- by their own (gate.lua, finish.lua; LuaScript.from_files in shared/lua.py),
-- as with shared/sliding_window.lua.
--
-- The hash: state (closed|open|half_open), failures, opened_at (ms),
-- probe_until (ms). ``now`` is the server's clock in ms (breaker_now()).

local function breaker_now()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Up to ``wanted`` when closed, one probe when half-open, none when open.
-- returns admitted, state, retry_after_ms
local function breaker_admit(key, now, wanted, cooldown, probe_timeout)
  local state = redis.call("HGET", key, "state") or "closed"
  if state == "closed" then
    return wanted, state, 0
  end
  if state == "open" then
    local opened = tonumber(redis.call("HGET", key, "opened_at") or "0")
    if now < opened + cooldown then
      return 0, state, opened + cooldown - now
    end
    state = "half_open"
    redis.call("HSET", key, "state", state, "probe_until", 0)
  end
  -- half open: one probe at a time; a probe that never reported expires
  local probe_until = tonumber(redis.call("HGET", key, "probe_until") or "0")
  if now < probe_until then
    return 0, state, probe_until - now
  end
  redis.call("HSET", key, "probe_until", now + probe_timeout)
  return 1, state, 0
end

-- ``results``: outcomes in order, a string of S (success) and F (failure).
-- returns state, failures
local function breaker_record(key, now, results, threshold)
  local state = redis.call("HGET", key, "state") or "closed"
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
  return state, failures
end
