-- wrk script of the ingest benchmarks (one thread: wrk -t1).
--
-- wrk ... -s bench/wrk_ingest.lua URL -- MODE PREFIX POOL [LIMIT [KEY]]
--   MODE    ce      binary-mode CloudEvent at POST /, one event per request;
--                   the ce-id header is PREFIX..n (a Lua counter), so dedup
--                   never hides work
--           legacy  JSON array at POST /api/v2/ingest; X-Request-ID is PREFIX..n
--                   (item i of request n gets id PREFIX..n:i)
--           cebatch application/cloudevents-batch+json at POST /; every "@ID@"
--                   in the body is replaced by PREFIX..n
--   POOL    a file of request templates, one per line ("<ce-type>\t<body>" in
--           ce mode, the body otherwise); request n uses line n modulo the count
--   LIMIT   0 (default): run for wrk's duration. N > 0: ids wrap after N (so any
--           request beyond the N-th is a duplicate, never published twice) and
--           the thread stops after N responses.
--   KEY     optional: sent as X-API-KEY on every request
-- done() prints one line: BENCH_JSON {...} (latencies in microseconds).

local mode, prefix, limit = "ce", "r", 0
local types, bodies = {}, {}
local n, responses, non2xx = 0, 0, 0

function setup(thread)
  threads = threads or {}
  table.insert(threads, thread)
end

function init(args)
  mode, prefix = args[1], args[2]
  limit = tonumber(args[4] or "0")
  for line in io.lines(args[3]) do
    if mode == "ce" then
      local tab = string.find(line, "\t", 1, true)
      table.insert(types, string.sub(line, 1, tab - 1))
      table.insert(bodies, string.sub(line, tab + 1))
    else
      table.insert(bodies, line)
    end
  end
  wrk.method = "POST"
  if args[5] and args[5] ~= "" then
    wrk.headers["X-API-KEY"] = args[5]
  end
  if mode == "ce" then
    wrk.path = "/"
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["ce-specversion"] = "1.0"
    wrk.headers["ce-source"] = "/bench/wrk"
  elseif mode == "legacy" then
    wrk.path = "/api/v2/ingest"
    wrk.headers["Content-Type"] = "application/json"
  else
    wrk.path = "/"
    wrk.headers["Content-Type"] = "application/cloudevents-batch+json"
  end
  if limit <= 0 then
    response = nil -- wrk then skips parsing headers and bodies
  end
end

function request()
  n = n + 1
  local id = n
  if limit > 0 then
    id = ((n - 1) % limit) + 1
  end
  local k = ((n - 1) % #bodies) + 1
  local body = bodies[k]
  if mode == "ce" then
    wrk.headers["ce-id"] = prefix .. id
    wrk.headers["ce-type"] = types[k]
  elseif mode == "legacy" then
    wrk.headers["X-Request-ID"] = prefix .. id
  else
    body = string.gsub(body, "@ID@", prefix .. id)
  end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
  if limit > 0 and responses >= limit then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local extra = 0
  for _, thread in ipairs(threads or {}) do
    extra = extra + (thread:get("non2xx") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d, "non2xx": %d, "p50_us": %d, "p90_us": %d, '
      .. '"p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    extra - e.status > 0 and extra - e.status or 0,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
