-- The small jet.* functions, object accessors, slow-consumer reporting, and the test helper itself.
local jet = require "jetlua"
local T = require "jetlua.testing"

T.test("jet.json, jet.now, jet.monotonic, jet.version", function()
  local s = jet.json.encode({ a = 1, list = { 1, 2, 3 }, name = "x" })
  T.eq(jet.json.decode(s), { a = 1, list = { 1, 2, 3 }, name = "x" })
  T.eq(jet.json.decode('{"n":null}').n, jet.json.null)
  T.raises(function() jet.json.decode("{bad") end)
  T.near(jet.now(), os.time(), 2, "jet.now")
  -- never early (the next test); the upper bound only catches a sleep that does not end
  local m0 = jet.monotonic()
  jet.sleep(0.05)
  local slept = jet.monotonic() - m0
  T.ok(slept >= 0.04 and slept < 10, "jet.sleep(0.05) took " .. slept .. " s")
  local v = jet.version()
  T.ok(v.jetlua and v.luajit:find("LuaJIT") and v.libuv and v.cnats == "3.4.1", jet.json.encode(v))
end)

T.test("jet.sleep and jet.timer never end early after work that held the loop", function()
  -- libuv counts timeouts from the time the loop iteration began; a job
  -- that ran 0.3 s first used to see a 0.1 s sleep end at once
  local function hold() local t0 = os.clock(); while os.clock() - t0 < 0.3 do end end
  jet.sleep(0)
  hold()
  local m0 = jet.monotonic()
  jet.sleep(0.1)
  T.ok(jet.monotonic() - m0 >= 0.099, ("jet.sleep(0.1) ended after %.3f s"):format(jet.monotonic() - m0))
  jet.sleep(0)
  hold()
  m0 = jet.monotonic()
  local fired_after
  jet.timer(0.1, function() fired_after = jet.monotonic() - m0 end)
  T.wait_until(function() return fired_after end, 10)
  T.ok(fired_after >= 0.099, ("jet.timer(0.1) fired after %.3f s"):format(fired_after))
end)

T.test("timers: one-shot, every, stop, active, args to spawn", function()
  local fired = 0
  local t = jet.timer(0.02, function(self) fired = fired + 1; T.eq(self:active(), false) end)
  T.eq(t:active(), true)
  local stopped = jet.timer(0.01, function() fired = fired + 100 end)
  T.eq(stopped:stop(), true)
  T.eq(stopped:stop(), false)
  local n = 0
  local e = jet.every(0.01, function() n = n + 1 end)
  T.wait_until(function() return n >= 4 end, 30, "4 ticks of jet.every")
  e:stop()
  local seen = n
  jet.sleep(0.05)
  T.eq(fired, 1)
  T.eq(n, seen, "every kept firing after stop")
  local got
  jet.spawn(function(a, b) jet.sleep(0.01); got = a + b end, 2, 3)
  T.wait_until(function() return got end, 2)
  T.eq(got, 5)
end)

T.test("jet.every skips a tick while the previous run is busy", function()
  local running, overlaps, runs = false, 0, 0
  local e = jet.every(0.01, function()
    if running then overlaps = overlaps + 1 end
    running = true
    runs = runs + 1
    jet.sleep(0.05)
    running = false
  end)
  -- ticks come every 10 ms, each run takes 50 ms: several runs, never two at once
  T.wait_until(function() return runs >= 4 end, 30, "4 runs")
  e:stop()
  T.eq(overlaps, 0)
end)

T.test("connection and subscription accessors, closed event", function()
  local srv = T.server{ js = false }
  local nc = assert(jet.connect{ servers = srv.url, name = "accessors" })
  T.eq(nc:status(), "connected")
  T.eq(nc:connected_url(), srv.url)
  T.ok(tostring(nc):find("accessors", 1, true))
  local got
  local sub = nc:subscribe("acc.>", function(m) got = m end)
  T.eq(sub:subject(), "acc.>")
  nc:publish("acc.x", "12345", { reply = "acc.reply" })
  T.wait_until(function() return got end, 5)
  T.eq(got.size, 5)
  T.eq(got.reply, "acc.reply")
  T.eq(got.headers, {})
  T.raises(function() got.data = "x" end, "msg: fields are read%-only %(cannot set 'data'%)")
  T.eq(sub:stats().delivered, 1)
  local closed = false
  nc:on("closed", function() closed = true end)
  nc:close()
  T.wait_until(function() return closed end, 5, "closed event")
  T.eq(nc:connected_url(), nil)
end)

T.test("a slow subscriber drops beyond pending_limit and reports it", function()
  local srv = T.server{ js = false }
  local nc = assert(jet.connect{ servers = srv.url })
  local errors = {}
  nc:on("error", function(_, info) errors[#errors + 1] = info end)
  local handled = 0
  local sub = nc:subscribe("slow", function() handled = handled + 1; jet.sleep(0.02) end, { pending_limit = 5 })
  for i = 1, 200 do nc:publish("slow", tostring(i)) end
  nc:flush()
  T.wait_until(function() return sub:stats().dropped > 0 and #errors > 0 end, 5, "drops reported")
  T.eq(errors[1], "slow_consumer")
  sub:unsubscribe()
  T.ok(handled < 200, "nothing was dropped")
  nc:close()
end)

T.test("the test helper: kill -9 is observed, rmtree refuses paths outside /tmp", function()
  local p = jet.process.spawn({ "sleep", "30" })
  T.eq(p:running(), true)
  T.eq(p:wait(0.05), nil, "wait before exit")
  p:kill("KILL")
  local _, sig = p:wait(5)
  T.eq(sig, 9)
  T.eq(p:running(), false)
  T.raises(function() jet.process.rmtree("/etc") end, "is not under")
  T.eq(select(2, jet.process.wait_port("127.0.0.1", jet.process.free_port(), 0.1)), "timeout")
  T.ok(jet.process.pid() > 1)
  T.eq(jet.process.getenv("JETLUA_NO_SUCH_VARIABLE"), nil)
  local c0 = jet.process.cpu()
  local x = 0
  for i = 1, 3e6 do x = x + i % 7 end
  T.ok(jet.process.cpu() > c0, "cpu() did not grow")
  -- env: added, and removed with false
  local dir = T.tmpdir()
  p = jet.process.spawn({ "sh", "-c", "echo \"$JETLUA_A-${HOME:-nohome}\"" },
    { env = { JETLUA_A = "added", HOME = false }, stdout = dir .. "/env" })
  T.eq(p:wait(5), 0)
  T.eq(T.read_file(dir .. "/env"), "added-nohome\n")
end)

T.test("a 3-node cluster on loopback routes messages between nodes", function()
  local c = T.cluster(3)
  local a = assert(jet.connect{ servers = c.urls[1] })
  local b = assert(jet.connect{ servers = c.urls[3] })
  local got
  b:subscribe("cluster.x", function(m) got = m.data end)
  b:flush()
  T.wait_until(function()
    a:publish("cluster.x", "across")
    jet.sleep(0.05)
    return got
  end, 10, "a message across the route")
  T.eq(got, "across")
  a:close(); b:close()
end)

T.run()
