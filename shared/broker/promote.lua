-- Move due deferred entries back into their stream, atomically: an entry is
-- always either scheduled or in the stream, never both and never neither.
--
-- KEYS[1]  schedule ZSET (member -> due time in ms)
-- KEYS[2]  payload HASH (member -> entry body)
-- KEYS[3]  target stream
-- ARGV[1]  now in ms
-- ARGV[2]  max entries to move
-- returns  {number moved, number still scheduled}
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "LIMIT", 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local body = redis.call("HGET", KEYS[2], member)
  if body then
    redis.call("XADD", KEYS[3], "*", "ce", body)
  end
  redis.call("ZREM", KEYS[1], member)
  redis.call("HDEL", KEYS[2], member)
end
return {#due, redis.call("ZCARD", KEYS[1])}
