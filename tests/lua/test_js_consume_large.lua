-- Large messages under js:consume's defaults: the window is bounded by bytes (about 32 MiB at
-- the average size seen), so nats-server never has more than its max_pending (64 MiB) queued
-- for the client and never cuts it off as a slow consumer.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url, reconnect = { wait = 0.1 } })
local js = nc:jetstream{ max_pending = 16 }

T.test("150 x 1 MiB messages at the defaults: all handled, no slow-consumer disconnect", function()
  assert(js:stream{ name = "LARGE", subjects = { "large.>" }, storage = "memory" })
  assert(js:consumer("LARGE", { durable = "C", ack_policy = "explicit" }))
  local n, size = 150, 1024 * 1024 - 1024     -- under the server's 1 MB max_payload
  local data = string.rep("x", size)
  for _ = 1, n do assert(js:publish_async("large.x", data)) end
  T.eq(js:publish_async_complete(60), 0, "every publish acked")
  local disconnects, count, bytes, most = 0, 0, 0, 0
  nc:on("disconnected", function() disconnects = disconnects + 1 end)
  local h
  h = assert(js:consume("LARGE", "C", function(msg)
    count = count + 1
    bytes = bytes + msg.size
    local st = h:stats()
    if st.buffered + st.outstanding > most then most = st.buffered + st.outstanding end
  end))
  T.wait_until(function() return count >= n end, 120, "all consumed")
  T.eq(disconnects, 0, "no slow-consumer disconnect (the window grew past 64 MiB before)")
  T.eq(bytes, n * size)
  T.eq(h:stats().redelivered, 0, "nothing redelivered")
  T.ok(h:stats().window <= 33, "window bounded by bytes: " .. h:stats().window)
  T.ok(most <= 33, "held within ~32 MiB: " .. most)
  assert(h:drain())
  T.wait_until(function() return js:consumer_info("LARGE", "C").num_ack_pending == 0 end, 10,
    "acks reached the server")
end)

T.run()
