-- (Prefixed at load time with shared/sliding_window.lua.)
-- Take a whole request's permits from the global ingest rate limit, all or
-- nothing, before its events are admitted partition by partition
-- (admit.lua): with several stream partitions the limiter's slot ({p}) is
-- not every partition's, so it cannot be taken inside their scripts.
--
-- KEYS[1]  rate limiter hash
-- ARGV[1]  rate limit (> 0)
-- ARGV[2]  rate window ms
-- ARGV[3]  permits wanted (the request's events)
-- returns  {granted, retry_after_ms}: granted is 0 or all of them
local granted, retry_after = sliding_window(
  KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), true)
return {granted, retry_after}
