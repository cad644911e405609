-- Reconnect after the server is killed with SIGKILL and restarted on the same port.
local jet = require "jetlua"
local T = require "jetlua.testing"

T.test("subscriptions resume after kill -9 and restart; no handler runs twice", function()
  local srv = T.server{ js = false }
  local nc = assert(jet.connect{ servers = srv.url, reconnect = { wait = 0.1 } })
  local events = {}
  nc:on("disconnected", function(c) events[#events + 1] = { "disconnected", c == nc } end)
  nc:on("reconnected", function(c, url) events[#events + 1] = { "reconnected", c == nc, url } end)
  local count, order = {}, {}
  nc:subscribe("rc.>", function(m)
    count[m.data] = (count[m.data] or 0) + 1
    order[#order + 1] = m.data
  end)
  nc:flush()
  for i = 1, 100 do nc:publish("rc.before", "b" .. i) end
  T.wait_until(function() return count["b100"] end, 5, "messages before the kill")

  srv:kill()
  T.wait_until(function() return nc:status() == "reconnecting" end, 5, "reconnecting status")
  T.wait_until(function() return events[1] end, 5, "disconnected event")
  T.eq(events[1], { "disconnected", true })
  T.eq(nc:connected_url(), nil, "no URL while disconnected")
  jet.sleep(0.3)                            -- a few failed attempts while the server is down
  srv:restart()
  T.wait_until(function() return events[2] end, 10, "reconnected event")
  T.eq(events[2], { "reconnected", true, srv.url })
  T.eq(nc:status(), "connected")
  T.eq(nc:connected_url(), srv.url)

  -- publish after the reconnect, from the reconnected connection and from a fresh one
  local pub = assert(jet.connect{ servers = srv.url })
  for i = 1, 500 do nc:publish("rc.self", "s" .. i) end
  for i = 1, 500 do pub:publish("rc.other", "a" .. i) end
  nc:flush(); pub:flush()
  T.wait_until(function() return count["s500"] and count["a500"] end, 10, "messages after the restart")
  nc:flush()
  jet.sleep(0.2)
  for i = 1, 500 do T.eq(count["s" .. i], 1, "deliveries of s" .. i) end
  for i = 1, 500 do T.eq(count["a" .. i], 1, "deliveries of a" .. i) end
  for i = 1, 100 do T.eq(count["b" .. i], 1, "deliveries of b" .. i) end
  T.eq(#order, 1100, "no handler ran twice, nothing extra")
  T.eq(#events, 2, "exactly one disconnect and one reconnect")
  pub:close()
  nc:close()
end)

T.test("a reconnect mid-stream: each id at most once, everything after the reconnect arrives", function()
  local srv = T.server{ js = false }
  local rx = assert(jet.connect{ servers = srv.url, reconnect = { wait = 0.05 } })
  local tx = assert(jet.connect{ servers = srv.url, reconnect = { wait = 0.05 } })
  local seen, dup = {}, {}
  rx:subscribe("stream", function(m)
    if seen[m.data] then dup[#dup + 1] = m.data end
    seen[m.data] = true
  end)
  rx:flush()
  local reconnected = { rx = false, tx = false }
  rx:on("reconnected", function() reconnected.rx = true end)
  tx:on("reconnected", function() reconnected.tx = true end)
  -- a steady publisher; ids published after both reconnected must all arrive
  local id, first_after = 0, nil
  local ticker = jet.every(0.002, function()
    for _ = 1, 5 do
      id = id + 1
      tx:publish("stream", tostring(id))
    end
    if not first_after and reconnected.rx and reconnected.tx then first_after = id + 1 end
  end)
  jet.sleep(0.2)
  srv:kill()
  jet.sleep(0.2)
  srv:restart()
  T.wait_until(function() return first_after end, 10, "both connections reconnected")
  -- both reconnected: is the subscription re-established on the server yet? prove it first
  rx:flush()
  local mark = id + 1
  jet.sleep(0.3)
  ticker:stop()
  local last = id
  tx:flush()
  T.wait_until(function() return seen[tostring(last)] end, 10, "the last id")
  rx:flush()
  jet.sleep(0.1)
  T.eq(dup, {}, "ids handled twice")
  local missing = {}
  for i = mark, last do if not seen[tostring(i)] then missing[#missing + 1] = i end end
  T.eq(missing, {}, "ids published after the reconnect that never arrived")
  T.ok(last - mark > 100, "too few messages after the reconnect: " .. (last - mark))
  rx:close(); tx:close()
end)

T.test("a connection opened while another one reconnects keeps receiving after that reconnect", function()
  -- the new connection's socket gets the fd number the reconnecting one just closed; closing the
  -- old poll handle at the reconnect used to remove it from epoll (the subscriber went deaf)
  local a, b = T.server{ js = false }, T.server{ js = false }
  local pub = assert(jet.connect{ servers = b.url })
  pub:flush()
  local nc1 = assert(jet.connect{ servers = a.url, reconnect = { wait = 0.05 } })
  nc1:flush()
  a:kill()
  T.wait_until(function() return nc1:status() == "reconnecting" end, 5)
  local sub = assert(jet.connect{ servers = b.url })
  local got = 0
  sub:subscribe("fdreuse", function() got = got + 1 end)
  sub:flush()
  pub:publish("fdreuse", "1")
  T.wait_until(function() return got == 1 end, 5, "the first message")
  local reconnected = false
  nc1:on("reconnected", function() reconnected = true end)
  a:restart()
  T.wait_until(function() return reconnected end, 10, "the other connection reconnected")
  pub:publish("fdreuse", "2")
  pub:flush()
  T.wait_until(function() return got == 2 end, 3, "a message after the other connection reconnected")
  pub:close(); nc1:close(); sub:close()
end)

T.test("a failed first connect is retried until the server comes up", function()
  local port = jet.process.free_port()
  local nc, err
  jet.spawn(function()
    nc, err = jet.connect{ servers = "nats://127.0.0.1:" .. port, reconnect = { wait = 0.1 } }
  end)
  jet.sleep(0.5)
  T.eq(nc, nil, "connected before the server existed")
  T.eq(err, nil, "gave up before the server existed")
  local srv = T.server{ js = false, port = port }
  T.wait_until(function() return nc or err end, 10, "connect")
  T.ok(nc, err)
  T.eq(nc:status(), "connected")
  nc:flush()
  nc:close()
  srv:stop()
end)

T.test("a list of servers: the first that answers is used, the next one after it dies", function()
  local dead = "nats://127.0.0.1:" .. jet.process.free_port()
  local a, b = T.server{ js = false }, T.server{ js = false }
  local nc = assert(jet.connect{ servers = { dead, a.url, b.url }, reconnect = { wait = 0.05 } })
  T.eq(nc:connected_url(), a.url)
  local got = 0
  nc:subscribe("fail.over", function() got = got + 1 end)
  nc:flush()
  local urls = {}
  nc:on("reconnected", function(_, url) urls[#urls + 1] = url end)
  a:kill()
  T.wait_until(function() return urls[1] end, 10, "reconnect to another server")
  T.eq(urls[1], b.url)
  nc:publish("fail.over", "x")
  T.wait_until(function() return got == 1 end, 5, "a message through the new server")
  nc:close()
end)

T.test("reconnect.max bounds the first connect", function()
  local port = jet.process.free_port()
  local t0 = jet.monotonic()
  local nc, code, detail = jet.connect{ servers = "nats://127.0.0.1:" .. port, reconnect = { max = 2, wait = 0.1 } }
  T.eq(nc, nil)
  T.eq(code, "connect_failed")
  T.ok(detail:find("127.0.0.1:" .. port, 1, true), detail)
  T.ok(detail:find("(3 attempts in ", 1, true), "the first try and 2 retries: " .. detail)
  T.ok(jet.monotonic() - t0 >= 0.15, "did not wait between attempts")
  nc, code = jet.connect{ servers = "nats://127.0.0.1:" .. port, timeout = 0.5 }
  T.eq(nc, nil); T.eq(code, "connect_failed")
end)

T.run()
