-- (Prefixed at load time with shared/sliding_window.lua.)
-- Admit a request's events (of one stream partition) in one atomic step and
-- one round trip:
--   1. the global rate limit (all or nothing for the request), when this
--      call takes the permits: with one partition it does, in this same step;
--      with several the request's permits are taken first by permits.lua
--      (the limiter's {p} slot is not every partition's),
--   2. dedup: an event whose source+id was accepted within the window is
--      acknowledged but not published again,
--   3. publish the new events to the stream.
-- Either the whole request is refused (rate limit) or every new event is in
-- the stream when this returns, with its dedup mark set in the same step.
--
-- KEYS[1]       event stream
-- KEYS[2..n+1]  dedup key per event
-- KEYS[n+2]     rate limiter hash, only when this call takes the permits
-- ARGV[1]       rate limit (0 = off)
-- ARGV[2]       rate window ms
-- ARGV[3]       dedup ttl seconds (0 = off)
-- ARGV[4..n+3]  entry body per event
-- returns       {1, retry_after_ms} when refused by the rate limit,
--               {0, published, duplicate flag per event...} when admitted
local n = #ARGV - 3
local limit = tonumber(ARGV[1])
local ttl = tonumber(ARGV[3])

if limit > 0 and #KEYS == n + 2 then
  local granted, retry_after = sliding_window(KEYS[n + 2], limit, tonumber(ARGV[2]), n, true)
  if granted == 0 then
    return {1, retry_after}
  end
end

local result = {0, 0}
local published = 0
for i = 1, n do
  local fresh = 1
  if ttl > 0 then
    if not redis.call("SET", KEYS[i + 1], "1", "NX", "EX", ttl) then fresh = 0 end
  end
  if fresh == 1 then
    redis.call("XADD", KEYS[1], "*", "ce", ARGV[i + 3])
    published = published + 1
  end
  result[i + 2] = 1 - fresh
end
result[2] = published
return result
