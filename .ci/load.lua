-- wrk script for .ci/load.sh: one mix of EchoTuner traffic, sent unchanged to the protected
-- and the unprotected server, counting every response by status so that the shell script can
-- prove there was nothing but 2xx and the intended 429s.
--
-- The mix, per thread, repeating: health, search, generate, search.
--   * Searches rotate over a pool of device ids, as many users behind one address would, so
--     that the per-session search limit (100 per 60 s) stays on its allow path: the point is
--     what the protection costs a request it lets through.
--   * Generates all come from one device per thread, so after its first 10 every one of them
--     is refused by the per-device limit (10 per 300 s): the intended 429s, and a steady
--     share of the refusal path in every round rather than only in the first.
-- Requests are formatted once in init(): string building in Lua would otherwise cost the
-- client CPU it shares with the server on a small machine.

local threads = {}
local next_id = 0

-- Device ids per thread (LOAD_DEVICES). The mix visits them in turn, so each one sees a search
-- every pool_size / (searches per second) seconds; the search limit refills one request every
-- 0.6 s, so a pool of at least 0.6 × that rate keeps every device on its allow path for as long
-- as the run lasts, whatever its length.
local pool_size = tonumber(os.getenv("LOAD_DEVICES") or "65536")
-- LOAD_PRIME=<n>: send one search per device id from the n-th on, then only health checks,
-- so that the server holds every key the mix will use before anything is measured (load.sh's
-- memory check starts after this). done() reports how far every thread got.
local prime_from = tonumber(os.getenv("LOAD_PRIME") or "")

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  local origin = "https://app.example"
  health = wrk.format("GET", "/config/health")
  searches = {}
  for i = 1, pool_size do
    local device = string.format("load-t%d-d%d", tid, i)
    searches[i] = wrk.format("GET", "/search?q=jazz",
      { ["X-Device-ID"] = device, ["Origin"] = origin })
  end
  local gen_device = string.format("load-t%d-gen", tid)
  local body = string.format(
    '{"prompt":"upbeat jazz for a rainy afternoon","session_id":"load-session-%d","device_id":"%s"}',
    tid, gen_device)
  generate = wrk.format("POST", "/playlist/generate",
    { ["X-Device-ID"] = gen_device, ["Origin"] = origin,
      ["Content-Type"] = "application/json" }, body)
  step = 0
  search_next = prime_from and prime_from - 1 or 0
end

function request()
  if prime_from then
    if search_next >= pool_size then
      return health
    end
    search_next = search_next + 1
    return searches[search_next]
  end
  step = step + 1
  local kind = step % 4
  if kind == 1 then
    return health
  elseif kind == 3 then
    return generate
  end
  search_next = search_next % pool_size + 1
  return searches[search_next]
end

function response(status, headers, body)
  local key = "s" .. status
  counts[key] = (counts[key] or 0) + 1
end

-- One machine-readable line for load.sh: throughput, wrk's own error counters and the
-- per-status counts summed over threads.
function done(summary, latency, requests)
  local total = {}
  local primed = pool_size
  for _, thread in ipairs(threads) do
    primed = math.min(primed, thread:get("search_next") or 0)
    local c = thread:get("counts") or {}
    for key, n in pairs(c) do
      total[key] = (total[key] or 0) + n
    end
  end
  local statuses = {}
  for key, n in pairs(total) do
    table.insert(statuses, string.sub(key, 2) .. ":" .. n)
  end
  table.sort(statuses)
  local e = summary.errors
  io.write(string.format(
    "LOAD requests=%d duration_us=%d rps=%.1f connect=%d read=%d write=%d timeout=%d status=%d p50_us=%d p99_us=%d primed=%d statuses=%s\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), primed, table.concat(statuses, ",")))
end
