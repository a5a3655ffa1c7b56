-- Release a task lock only if it is still ours: a run that outlived the
-- lock's expiry must not free the lock another run has taken since.
--
-- KEYS[1]  the lock
-- ARGV[1]  our token
-- returns  1 when released, 0 when the lock was not ours (or gone)
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0
