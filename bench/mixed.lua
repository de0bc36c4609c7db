-- wrk script of bench/load.py: cycle through the paths given after `--` (the first argument is the bearer
-- token), count answers by class, and print one machine-readable line when the run is done.
--   wrk -s bench/mixed.lua URL -- TOKEN /path1 /path2 ...

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  paths = {}
  for i = 2, #args do
    paths[#paths + 1] = args[i]
  end
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  -- Threads start at different paths, so each path sees the whole range of concurrency.
  n = id % #paths
  ok, shed, server, client, other = 0, 0, 0, 0, 0
end

function request()
  n = n % #paths + 1
  return wrk.format("GET", paths[n])
end

function response(status, headers, body)
  if status < 300 then
    ok = ok + 1
  elseif status == 503 then
    shed = shed + 1
  elseif status >= 500 then
    server = server + 1
  elseif status >= 400 then
    client = client + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local totals = { ok = 0, shed = 0, server = 0, client = 0, other = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + thread:get(name)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'OWR-RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
      .. '"ok": %d, "shed": %d, "server": %d, "client": %d, "other": %d, '
      .. '"connect": %d, "read": %d, "write": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    totals.ok, totals.shed, totals.server, totals.client, totals.other,
    e.connect, e.read, e.write, e.timeout
  ))
end
