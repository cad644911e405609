-- worker_pool.lua: a work queue served by a pool of concurrent handlers.
--   jetlua run scripts/examples/worker_pool.lua [jobs] [concurrency]
-- A workqueue stream (a job is removed once acked), one pull consumer, and up
-- to `concurrency` handlers running at once in one process. Start more
-- processes on the same durable and they share the jobs.
local jet = require "jetlua"

local jobs, conc = tonumber(arg[1]) or 200, tonumber(arg[2]) or 8
local nc = assert(jet.connect())
local js = nc:jetstream()
js:delete_stream("JOBS")
assert(js:stream{ name = "JOBS", subjects = { "jobs.>" }, retention = "workqueue" })
assert(js:consumer("JOBS", { durable = "workers", ack_wait = 10 }))
for i = 1, jobs do js:publish_async("jobs.resize", jet.json.encode{ image = "img-" .. i .. ".png" }) end
assert(js:publish_async_complete(30) == 0, "every job stored")

local running, peak, done = 0, 0, 0
local t0 = jet.monotonic()
local h = assert(js:consume("JOBS", "workers", function()
  running = running + 1
  if running > peak then peak = running end
  jet.sleep(0.02)                  -- the "work": yields, so other jobs run meanwhile
  running = running - 1
  done = done + 1
end, { concurrency = conc }))

local deadline = jet.monotonic() + 60
while done < jobs and jet.monotonic() < deadline do jet.sleep(0.02) end
h:drain()
local left = js:stream_info("JOBS").state.messages
while left > 0 and done == jobs and jet.monotonic() < deadline do   -- the last acks reach the server
  jet.sleep(0.02)
  left = js:stream_info("JOBS").state.messages
end
print(("%d jobs done in %.2f s, up to %d at once; %d left in the queue")
  :format(done, jet.monotonic() - t0, peak, left))
nc:close()
if done ~= jobs or left ~= 0 then jet.exit(1) end   -- an example that did not work says so
