-- Move one dead letter back to its stage's input stream, at most once.
-- XDEL first: only the caller that actually removed the entry publishes it,
-- so two replays at once (an operator, the janitor, the operator API) never
-- publish it twice; a crash leaves it in exactly one place.
--
-- KEYS[1]  the stage's DLQ
-- KEYS[2]  the stage's input stream (same hash tag)
-- ARGV[1]  the dead letter's id
-- ARGV[2]  the CloudEvent to publish
-- returns  the new entry's id, or false when the entry was gone already
if redis.call('XDEL', KEYS[1], ARGV[1]) == 1 then
  return redis.call('XADD', KEYS[2], '*', 'ce', ARGV[2])
end
return false
