-- Reconnect after the server is killed with SIGKILL and restarted on the same port.
local jet = require "jetlua"
local T = require "jetlua.testing"

T.test("subscriptions resume after kill -9 and restart; no handler runs twice", function()
  local srv = T.server{ js = false }
  local nc = assert(jet.connect{ servers = srv.url, reconnect = { wait = 0.1 } })
  local events = {}
  nc:on("disconnected", function() events[#events + 1] = "disconnected" end)
  nc:on("reconnected", function(_, url) events[#events + 1] = "reconnected " .. url end)
  local count = {}
  nc:subscribe("rc.>", function(m) count[m.data] = (count[m.data] or 0) + 1 end)
  nc:flush()
  for i = 1, 100 do nc:publish("rc.before", "b" .. i) end
  T.wait_until(function() return count["b100"] end, 5, "messages before the kill")

  srv:kill()
  T.wait_until(function() return nc:status() == "reconnecting" end, 5, "reconnecting status")
  srv:start()
  T.wait_until(function() return nc:status() == "connected" end, 10, "reconnect")
  T.eq(events[1], "disconnected")
  T.eq(events[2], "reconnected " .. srv.url)

  -- a second connection publishes after the restart
  local pub = assert(jet.connect{ servers = srv.url })
  for i = 1, 500 do pub:publish("rc.after", "a" .. i) end
  pub:flush()
  T.wait_until(function() return count["a500"] end, 10, "messages after the restart")
  jet.sleep(0.2)
  for i = 1, 500 do T.eq(count["a" .. i], 1, "deliveries of a" .. i) end
  for i = 1, 100 do T.eq(count["b" .. i], 1, "deliveries of b" .. i) end
  pub:close()
  nc:close()
end)

T.test("a failed first connect is retried until the server comes up", function()
  local port = jet.process.free_port()
  local nc, err
  jet.spawn(function()
    nc, err = jet.connect{ servers = "nats://127.0.0.1:" .. port, reconnect = { wait = 0.1 } }
  end)
  jet.sleep(0.5)
  T.eq(nc, nil, "connected before the server existed")
  local srv = T.server{ js = false, port = port }
  T.wait_until(function() return nc or err end, 10, "connect")
  T.ok(nc, err)
  T.eq(nc:status(), "connected")
  nc:close()
  srv:stop()
end)

T.test("reconnect.max bounds the first connect", function()
  local port = jet.process.free_port()
  local t0 = jet.monotonic()
  local nc, code, detail = jet.connect{ servers = "nats://127.0.0.1:" .. port, reconnect = { max = 2, wait = 0.1 } }
  T.eq(nc, nil)
  T.eq(code, "connect_failed")
  T.ok(detail:find("127.0.0.1:" .. port, 1, true), detail)
  T.ok(jet.monotonic() - t0 < 3, "took too long")
  nc, code = jet.connect{ servers = "nats://127.0.0.1:" .. port, timeout = 0.5 }
  T.eq(code, "timeout")
end)

T.run()
