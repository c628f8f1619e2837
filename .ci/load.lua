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

-- Device ids per thread; sized in load.sh's terms (LOAD_DEVICES) so the per-device search rate
-- stays far below 100 per minute at the throughputs measured.
local pool_size = tonumber(os.getenv("LOAD_DEVICES") or "4096")

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
  search_next = 0
end

function request()
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
  for _, thread in ipairs(threads) do
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
    "LOAD requests=%d duration_us=%d rps=%.1f connect=%d read=%d write=%d timeout=%d status=%d p50_us=%d p99_us=%d statuses=%s\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), table.concat(statuses, ",")))
end
