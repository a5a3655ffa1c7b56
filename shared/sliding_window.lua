-- Sliding-window rate limit over two fixed windows (the "sliding window
-- counter"): used = previous * (remaining share of the window) + current.
-- O(1) memory and time per call, whatever the rate, unlike a ZSET of every
-- request. One hash key holds the window counters, so a script using it
-- declares every key it touches (Redis Cluster safe). Server time is used,
-- so all instances share one clock.
--
-- This file defines a function; scripts that need it are this file
-- followed by their own (LuaScript.from_files in shared/lua.py): ingest's
-- admit.lua (all or nothing per request) and forward's gate.lua (what is
-- available, per sink). A limit of 0 means no limit: they skip the call.
--
-- returns granted, retry_after_ms
local function sliding_window(key, limit, window, want, all_or_nothing)
  local t = redis.call("TIME")
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local cur = now - (now % window)
  local prev = cur - window

  local c = tonumber(redis.call("HGET", key, cur) or "0")
  local p = tonumber(redis.call("HGET", key, prev) or "0")
  local elapsed = now - cur
  local used = p * (window - elapsed) / window + c
  local avail = math.floor(limit - used)
  if avail < 0 then avail = 0 end

  local granted = want
  if granted > avail then
    if all_or_nothing then granted = 0 else granted = avail end
  end
  if granted > 0 then
    redis.call("HINCRBY", key, cur, granted)
  end
  if redis.call("HLEN", key) > 2 then
    for _, field in ipairs(redis.call("HKEYS", key)) do
      if tonumber(field) < prev then redis.call("HDEL", key, field) end
    end
  end
  redis.call("PEXPIRE", key, window * 2)

  local retry_after = 0
  if granted < want then
    local missing = want - granted
    if all_or_nothing then missing = want end
    local excess = used + missing - limit
    if p > 0 then retry_after = math.ceil(excess * window / p) end
    local to_next = window - elapsed
    if p == 0 or retry_after > to_next then retry_after = to_next end
    if retry_after < 1 then retry_after = 1 end
  end
  return granted, retry_after
end
