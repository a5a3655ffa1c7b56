-- Flapping: more than flap_n state changes of a paired key within flap_window.
-- Fields: t (recent change times, ms, comma separated). While flapping: F (onset, ms),
-- l (last change), x (actual state: 1 open, 0 closed), h/hk/ha (the last held item:
-- JSON, 't' trigger or 'r' clear, id), fo/foa (the alert the flapping alert is made
-- from), fc (the item that began it), tm (due time of the live timer). After settling,
-- s* fields keep the answer so a redelivered timer gets it again.

-- Record a state change; true when it makes the key flap.
local function flap_change(H, c)
  if c.flap_n <= 0 then return false end
  local kept = {}
  local raw = redis.call('HGET', H, 't')
  if raw then
    for t in string.gmatch(raw, '[^,]+') do
      if tonumber(t) > c.now - c.flap_window then kept[#kept + 1] = t end
    end
  end
  kept[#kept + 1] = ms(c.now)
  if #kept > c.flap_n then
    redis.call('HDEL', H, 't')
    return true
  end
  redis.call('HSET', H, 't', table.concat(kept, ','))
  return false
end

local function flap_active(H)
  return redis.call('HGET', H, 'F')
end

-- The key starts flapping with this item (held); fo is the flapping alert's basis.
local function flap_begin(H, id, kind, held, fo, foa, c)
  local due = ms(c.now + c.settle)
  redis.call('HSET', H, 'F', ms(c.now), 'l', ms(c.now), 'x', kind == 't' and '1' or '0',
    'h', held, 'hk', kind, 'ha', id, 'fo', fo, 'foa', foa, 'fc', id, 'tm', due)
  return {'onset', fo, ms(c.now), due}
end

-- An item of a flapping key: a change is held (remembered), a repeat ignored.
local function flap_hold(H, id, kind, json, c)
  local v = redis.call('HMGET', H, 'fc', 'fo', 'F', 'tm', 'x', 'ha')
  if v[1] == id then return {'onset', v[2], v[3], v[4]} end
  if v[6] == id then return {'held'} end
  local want = kind == 't' and '1' or '0'
  if v[5] ~= want then
    redis.call('HSET', H, 'x', want, 'h', json, 'hk', kind, 'ha', id, 'l', ms(c.now))
    return {'held'}
  end
  if kind == 't' then return {'held'} end
  return {'noop'}
end

-- The timer of a flapping key: settled (quiet for settle ms), wait, or gone.
-- Settled returns the basis, the held item to deliver ('' if the sink already
-- agrees), its kind, the alert it closes (clears) and the onset time.
local function flap_settle(H, due, c)
  local v = redis.call('HMGET', H, 'F', 'tm', 'l', 'x', 'h', 'ha', 'fo', 'o')
  if not v[1] then
    local s = redis.call('HMGET', H, 'sdue', 'sfo', 'sfin', 'sfk', 'soj', 'sF')
    if s[1] == due then return {'settled', s[2], s[3], s[4], s[5], s[6]} end
    return {'gone'}
  end
  if v[2] ~= due then return {'gone'} end
  local last = tonumber(v[3])
  if c.now - last < c.settle then
    local next_due = ms(last + c.settle)
    redis.call('HSET', H, 'tm', next_due)
    return {'wait', next_due}
  end
  local fin, kind, closes = '', '', ''
  if v[4] == '1' and not v[8] then
    fin, kind = v[5], 't'
    pair_open(H, v[6], v[5])
    dedup_mark(H, v[6], c)
  elseif v[4] == '0' and v[8] then
    fin, kind, closes = v[5], 'r', v[8]
    pair_close(H, v[6])
    dedup_forget(H)
  end
  redis.call('HDEL', H, 'F', 'l', 'x', 'h', 'hk', 'ha', 'fo', 'foa', 'fc', 'tm', 't')
  redis.call('HSET', H, 'sdue', due, 'sF', v[1], 'sfo', v[7], 'sfin', fin, 'sfk', kind,
    'soj', closes)
  return {'settled', v[7], fin, kind, closes, v[1]}
end
