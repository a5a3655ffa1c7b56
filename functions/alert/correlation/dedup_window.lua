-- Dedup window: repeats of an alert key within the window are counted, not delivered.
-- Fields of the key's state hash: d (window end, ms), da (id of the alert delivered
-- for the window), dn (repeats counted in the window).

-- A verdict when decided here ({'emit'} for a redelivered alert, {'dup', n}), else nil.
local function dedup_repeat(H, id, c)
  if c.dedup <= 0 then return nil end
  local v = redis.call('HMGET', H, 'd', 'da')
  if v[2] == id then return {'emit'} end
  if v[1] and tonumber(v[1]) > c.now then
    return {'dup', ms(redis.call('HINCRBY', H, 'dn', 1))}
  end
  return nil
end

-- The alert is delivered: its window starts now.
local function dedup_mark(H, id, c)
  if c.dedup > 0 then
    redis.call('HSET', H, 'd', ms(c.now + c.dedup), 'da', id, 'dn', '0')
  end
end

-- The problem was resolved: the next trigger is a new problem, not a repeat.
local function dedup_forget(H)
  redis.call('HDEL', H, 'd', 'da', 'dn')
end
