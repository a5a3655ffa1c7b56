-- Pairing: the open alert of a key and the clear that closes it.
-- Fields: o (the open alert, JSON), oa (its id); after a clear: ra (the clear's id),
-- ro and roa (the alert it closed), so a redelivered item gets its first answer again.

local function pair_redelivered(H, id)
  local v = redis.call('HMGET', H, 'oa', 'roa')
  return v[1] == id or v[2] == id
end

local function pair_open(H, id, json)
  redis.call('HSET', H, 'o', json, 'oa', id)
end

-- Close the open alert; returns it (JSON).
local function pair_close(H, clear_id)
  local v = redis.call('HMGET', H, 'o', 'oa')
  redis.call('HSET', H, 'ra', clear_id, 'ro', v[1], 'roa', v[2])
  redis.call('HDEL', H, 'o', 'oa')
  return v[1]
end

-- The alert this clear closed before (a redelivery), or nil.
local function pair_closed_by(H, clear_id)
  local v = redis.call('HMGET', H, 'ra', 'ro')
  if v[1] == clear_id then return v[2] end
  return nil
end
