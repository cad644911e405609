-- The pipeline benchmark (issue #6): a 2-stage pipeline (consume -> map ->
-- publish_async -> ack) next to a plain consume+ack, same server, same run.
--   jetlua run pipeline.lua URL N SIZE RUNS
-- Prints RESULT lines; run_pipeline.sh makes the table.
local jet = require "jetlua"
local url, n, size, runs = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
local nc = assert(jet.connect{ servers = url })
local js = nc:jetstream{ max_pending = 4000 }
local data = string.rep("x", size)

local function fill()
  js:delete_stream("SRC"); js:delete_stream("DST")
  assert(js:stream{ name = "SRC", subjects = { "src.>" }, storage = "file" })
  assert(js:stream{ name = "DST", subjects = { "dst.>" }, storage = "file" })
  for _ = 1, n do js:publish_async("src.x", data) end
  assert(js:publish_async_complete(120) == 0, "fill")
  assert(js:consumer("SRC", { durable = "C", ack_wait = 60, max_ack_pending = 100000 }))
end

local function wait_settled()
  while true do
    local ci = js:consumer_info("SRC", "C")
    if ci.num_pending == 0 and ci.num_ack_pending == 0 then return end
    jet.sleep(0.01)
  end
end

local function plain()
  fill()
  local count, done = 0, nil
  local t0, c0 = jet.monotonic(), jet.process.cpu()
  local h = assert(js:consume("SRC", "C", function()
    count = count + 1
    if count == n then done = jet.monotonic() end
  end))
  while not done do jet.sleep(0.001) end
  nc:flush()
  local secs = jet.monotonic() - t0
  print(("RESULT plain msgs=%d secs=%.4f rate=%.0f cpu_us_per_msg=%.3f"):format(n, secs, n / secs,
    (jet.process.cpu() - c0) * 1e6 / n))
  h:stop()
  wait_settled()
end

local function pipe()
  fill()
  local t0, c0 = jet.monotonic(), jet.process.cpu()
  local p = assert(jet.pipeline{ js = js, name = "C", from = { stream = "SRC" }, to = "dst.x",
    steps = { { map = function(v) return v:upper() end } } })
  while p:stats().acked < n do jet.sleep(0.001) end
  nc:flush()
  local secs = jet.monotonic() - t0
  print(("RESULT pipeline msgs=%d secs=%.4f rate=%.0f cpu_us_per_msg=%.3f"):format(n, secs, n / secs,
    (jet.process.cpu() - c0) * 1e6 / n))
  p:stop()
  assert(js:stream_info("DST").state.messages == n, "every message reached DST")
end

for _ = 1, runs do plain(); pipe() end
nc:close()
