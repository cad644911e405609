-- The jetlua side of the JetStream sync publish latency benchmark: (re)create
-- the file-storage stream STREAM (subjects "STREAM.>"), 100 untimed warm-up
-- publishes, then M messages of SIZE bytes to "STREAM.msg" one after the other
-- with js:publish (each waits for its PubAck), timing each call.
--   jetlua run --log-level warn js_pubsync.lua URL STREAM M SIZE
-- Prints: RESULT sync msgs=M p50_us=P p99_us=P mean_us=U rate=R
local jet = require "jetlua"
local url, stream, m, size = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4])
local WARMUP = 100

local nc = assert(jet.connect{ servers = url })
local js = nc:jetstream()
local _, err, detail = js:delete_stream(stream)
if err and err ~= "stream_not_found" then error("delete stream: " .. tostring(detail)) end
assert(js:stream{ name = stream, subjects = { stream .. ".>" }, storage = "file" })

local subject, data = stream .. ".msg", string.rep("x", size)
local mono = jet.monotonic
local lat = {}
for i = 1, WARMUP + m do
  local t0 = mono()
  local ack, code, why = js:publish(subject, data)
  local dt = mono() - t0
  if not ack then error(("js:publish: %s (%s)"):format(tostring(code), tostring(why))) end
  if i > WARMUP then lat[i - WARMUP] = dt end
end
local total = 0
for i = 1, m do total = total + lat[i] end
table.sort(lat)
-- nearest-rank percentile, as bench_js_pubsync.c
local function pct(p) return lat[math.min(m, math.max(1, math.ceil(p / 100 * m - 1e-6)))] end
print(("RESULT sync msgs=%d p50_us=%.1f p99_us=%.1f mean_us=%.1f rate=%.0f"):format(m, pct(50) * 1e6, pct(99) * 1e6,
  total / m * 1e6, m / total))
nc:close()
