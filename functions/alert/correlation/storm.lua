-- Storm control: caps on alerts per host and per minute, and in all per minute.
-- One hash per window: n (alerts counted), cap (the cap when the storm began),
-- s (worst severity suppressed), fa (first suppressed alert's id), done/dn (the
-- summary was given, with this count).

-- nil when under the cap; else '1' for the first suppressed alert (the caller
-- schedules the summary) or '' for the others.
local function storm_over(S, id, sev, cap)
  local v = redis.call('HMGET', S, 'fa', 's')
  if v[1] == id then return '1' end
  local n = redis.call('HINCRBY', S, 'n', 1)
  if n == 1 then redis.call('PEXPIRE', S, 600000) end
  if n <= cap then return nil end
  if not v[2] or tonumber(sev) < tonumber(v[2]) then redis.call('HSET', S, 's', sev) end
  if redis.call('HSETNX', S, 'fa', id) == 1 then
    redis.call('HSET', S, 'cap', cap)
    return '1'
  end
  return ''
end

-- Host cap first; only alerts a host cap lets through count toward the global cap,
-- so one storming host does not suppress everyone else's alerts.
local function storm_check(SH, G, id, sev, c)
  if c.host_cap > 0 then
    local first = storm_over(SH, id, sev, c.host_cap)
    if first then return {'storm', first} end
  end
  if c.global_cap > 0 then
    local first = storm_over(G, id, sev, c.global_cap)
    if first then return {'gstorm', first} end
  end
  return nil
end

-- The window's summary: how many were suppressed and the worst severity.
local function storm_summary(S)
  local v = redis.call('HMGET', S, 'n', 'cap', 's', 'done', 'dn')
  if not v[1] then return {'gone'} end
  if v[4] then return {'summary', v[5], v[3] or ''} end
  local count = tonumber(v[1]) - tonumber(v[2] or '0')
  redis.call('HSET', S, 'done', '1', 'dn', ms(count))
  return {'summary', ms(count), v[3] or ''}
end
