-- The jetlua side of the --workers benchmark: every process (one, or each worker of
-- `jetlua run --workers N`) js:consume's the same filled durable with default options
-- (auto-ack) and counts; every 20 ms it asks the server whether the consumer is done (nothing
-- pending, nothing unacked), then prints its RESULT and exits 0 (a worker that exits 0 is not
-- restarted: the master ends when all have).
--   jetlua run [--workers N] js_consume_workers.lua URL STREAM CONSUMER N
-- RESULT worker=I count=C first=T0 last=T1: wall-clock seconds (jet.now) of this process's
-- first and last handled message, so the runner can take the group's span (processes start
-- at different times; the span counts from the first message anyone got).
local jet = require "jetlua"
local url, stream, consumer, n = arg[1], arg[2], arg[3], tonumber(arg[4])
local w = jet.worker()
local nc = assert(jet.connect{ servers = url })
local js = nc:jetstream()
local count, first, last = 0, 0, 0

assert(js:consume(stream, consumer, function()
  count = count + 1
  last = jet.now()
  if first == 0 then first = last end
end))

local guard = jet.timer(300, function()
  print("RESULT incomplete: gave up after 300 s")
  jet.exit(1)
end)
local done = false
jet.every(0.02, function()
  if done then return end
  local ci = js:consumer_info(stream, consumer)
  if ci and ci.num_pending == 0 and ci.num_ack_pending == 0 and ci.ack_floor.stream_seq >= n then
    done = true
    guard:stop()
    print(("RESULT worker=%d count=%d first=%.6f last=%.6f"):format(w.index, count, first, last))
    io.stdout:flush()
    jet.exit(0)
  end
end)
