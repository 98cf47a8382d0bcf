-- wrk script for bench/server_bench.py: POSTs OpenRLHF /get_reward bodies (one JSON body a line
-- in $PAYLOADS, used in turn) and writes the run's figures as JSON to $WRK_OUT.

local bodies = {}
for line in io.lines(os.getenv("PAYLOADS")) do
  bodies[#bodies + 1] = line
end
local next_body = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  next_body = next_body % #bodies + 1
  return wrk.format(nil, "/get_reward", nil, bodies[next_body])
end

done = function(summary, latency, requests)
  local e = summary.errors
  local out = assert(io.open(os.getenv("WRK_OUT"), "w"))
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "stdev": %.1f, "p50": %d, "p90": %d, "p99": %d, "p999": %d, "max": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
  out:close()
end
