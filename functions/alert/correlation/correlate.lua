-- One batch of correlation, atomically and in event order. This driver runs after
-- dedup_window.lua, pairing.lua, flapping.lua and storm.lua (concatenated before it;
-- ms() comes first, from ms.lua).
--
-- KEYS[2i-1]   item i's state hash (for a storm timer: its window hash)
-- KEYS[2i]     item i's host storm window (triggers; others repeat KEYS[2i-1])
-- KEYS[#KEYS]  the global storm window
-- ARGV[1..8]   now ms, dedup ms, flap threshold, flap window ms, settle ms,
--              host cap, global cap, how long an open key is kept (ms)
-- ARGV[9+5(i-1)+1 ..+5]  item i: op (t trigger, r clear, s flapping timer,
--              S storm timer), id (alert id, clear id, or timer due), JSON
--              (paired triggers and clears), severity, paired (1/0)
-- returns      one verdict per item: {name, details...}
local c = {
  now = tonumber(ARGV[1]), dedup = tonumber(ARGV[2]), flap_n = tonumber(ARGV[3]),
  flap_window = tonumber(ARGV[4]), settle = tonumber(ARGV[5]), host_cap = tonumber(ARGV[6]),
  global_cap = tonumber(ARGV[7]), open_ttl = tonumber(ARGV[8]),
}

-- Expire state when nothing open or flapping needs it any more.
local function keep(H)
  local v = redis.call('HMGET', H, 'o', 'F')
  local ttl = math.max(c.dedup, c.flap_window, 600000)
  if v[1] or v[2] then ttl = c.open_ttl end
  redis.call('PEXPIRE', H, ttl)
end

local function trigger(H, SH, G, id, json, sev, paired)
  if paired then
    if pair_redelivered(H, id) then return {'emit'} end
    if flap_active(H) then
      local r = flap_hold(H, id, 't', json, c)
      keep(H)
      return r
    end
    if not redis.call('HGET', H, 'oa') and flap_change(H, c) then
      local r = flap_begin(H, id, 't', json, json, id, c)
      keep(H)
      return r
    end
  end
  local r = dedup_repeat(H, id, c)
  if r then return r end
  r = storm_check(SH, G, id, sev, c)
  if r then return r end
  dedup_mark(H, id, c)
  if paired then pair_open(H, id, json) end
  if paired or c.dedup > 0 then keep(H) end
  return {'emit'}
end

local function clear(H, id, json)
  local closed = pair_closed_by(H, id)
  if closed then return {'resolve', closed} end
  if flap_active(H) then
    local r = flap_hold(H, id, 'r', json, c)
    keep(H)
    return r
  end
  local v = redis.call('HMGET', H, 'o', 'oa')
  if not v[1] then return {'noop'} end
  if flap_change(H, c) then
    local r = flap_begin(H, id, 'r', json, v[1], v[2], c)
    keep(H)
    return r
  end
  pair_close(H, id)
  dedup_forget(H)
  keep(H)
  return {'resolve', v[1]}
end

local out = {}
local G = KEYS[#KEYS]
for i = 1, (#ARGV - 8) / 5 do
  local at = 8 + (i - 1) * 5
  local op, id, json, sev, paired = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4],
    ARGV[at + 5] == '1'
  local H, SH = KEYS[2 * i - 1], KEYS[2 * i]
  if op == 't' then
    out[i] = trigger(H, SH, G, id, json, sev, paired)
  elseif op == 'r' then
    out[i] = clear(H, id, json)
  elseif op == 's' then
    out[i] = flap_settle(H, id, c)
    if out[i][1] ~= 'gone' then keep(H) end
  elseif op == 'S' then
    out[i] = storm_summary(H)
  else
    out[i] = {'error', 'unknown op ' .. tostring(op)}
  end
end
return out
