-- A draining subscription waits for a flush round trip (its UNSUB reached the
-- server) on a worker thread. A subscription that ends while that flush is out
-- (unsubscribed, or its connection closed) is freed by the flush when it comes
-- back, never before: under AddressSanitizer, freeing it at once is a
-- heap-use-after-free in drain_flush_after.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = false }

T.test("sub:unsubscribe while sub:drain waits for the server", function()
  local nc = assert(jet.connect{ servers = srv.url })
  for round = 1, 20 do
    local sub = nc:subscribe("lt.unsub." .. round, function() end)
    nc:flush()
    local drained
    jet.spawn(function() drained = sub:drain() end)   -- yields: the flush is out
    T.eq(drained, nil, "the drain waits for the flush")
    T.eq(sub:unsubscribe(), true)                    -- ends it before the flush is back
    T.eq(drained, true, "the drain returns when the subscription ends")
    T.eq(sub:stats().closed, true)
    collectgarbage()
  end
  nc:flush()       -- every flush of the drains is back by now (same connection, in order)
  jet.sleep(0.05)
  T.eq(nc:status(), "connected")
  nc:close()
end)

T.test("nc:close while subscriptions wait for their drain flush", function()
  for round = 1, 10 do
    local nc = assert(jet.connect{ servers = srv.url })
    local subs, drained = {}, 0
    for i = 1, 3 do
      subs[i] = nc:subscribe("lt.close." .. round .. "." .. i, function() end)
    end
    nc:flush()
    for i = 1, 3 do jet.spawn(function() if subs[i]:drain() then drained = drained + 1 end end) end
    nc:close()
    T.wait_until(function() return drained == 3 end, 5, "every drain returns")
    for i = 1, 3 do T.eq(subs[i]:stats().closed, true) end
    collectgarbage()
  end
  jet.sleep(0.1)   -- the flushes come back (failed: closed) and free what they hold
end)

T.run()
