-- Drain versus close, for connections and subscriptions.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = false }

local function slow_consumer(subject)
  local nc = assert(jet.connect{ servers = srv.url })
  local handled = 0
  local sub = nc:subscribe(subject, function() jet.sleep(0.01); handled = handled + 1 end)
  nc:flush()
  local pub = assert(jet.connect{ servers = srv.url })
  for i = 1, 50 do pub:publish(subject, tostring(i)) end
  pub:flush()
  pub:close()
  -- wait until every message reached the client, most of them still unhandled
  T.wait_until(function() local s = sub:stats(); return s.delivered + s.pending >= 50 end, 5)
  return nc, sub, function() return handled end
end

T.test("nc:drain handles everything that arrived, then closes", function()
  local nc, _, handled = slow_consumer("d.conn")
  T.ok(handled() < 50, "handler was not slow enough to test anything")
  T.eq(nc:drain(10), true)
  T.eq(handled(), 50)
  T.eq(nc:status(), "closed")
end)

T.test("nc:close drops what is not handled yet", function()
  local nc, _, handled = slow_consumer("d.close")
  nc:close()
  jet.sleep(0.3)
  T.ok(handled() < 50, "close should drop queued messages, handled " .. handled())
  T.eq(nc:status(), "closed")
end)

T.test("sub:drain handles what arrived; the connection stays open", function()
  local nc, sub, handled = slow_consumer("d.sub")
  T.eq(sub:drain(), true)
  T.eq(handled(), 50)
  T.eq(sub:stats().closed, true)
  T.eq(nc:status(), "connected")
  nc:close()
end)

T.test("publishing on a closed connection raises a clear error", function()
  local nc = assert(jet.connect{ servers = srv.url })
  nc:close()
  T.wait_until(function() return nc:status() == "closed" end, 5)
  T.raises(function() nc:publish("x", "y") end, "nc:publish: the connection is closed")
  T.raises(function() nc:subscribe("x", function() end) end, "nc:subscribe: the connection is closed")
end)

T.run()
