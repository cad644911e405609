-- Process lifecycle, in child processes: exit by itself, jet.exit, SIGTERM (graceful, bounded,
-- forced by a second signal), the embedded default server and its cleanup, version and help.
local jet = require "jetlua"
local T = require "jetlua.testing"

-- Run a script in a child jetlua; returns proc, dir (stdout/stderr in dir/out, dir/err).
-- The child never sees the NATS_URL of whoever runs the tests.
local function child(src, args, env)
  local dir = T.tmpdir()
  T.write_file(dir .. "/app.lua", src)
  local argv = { "run" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = dir .. "/app.lua"
  env = env or {}
  if env.NATS_URL == nil then env.NATS_URL = false end
  local p = T.jetlua(argv, { stdout = dir .. "/out", stderr = dir .. "/err", env = env, cwd = dir })
  return p, dir
end

-- exit status, or "signal N" when the child was killed by a signal (wait returns status 0 then)
local function status(p, timeout)
  local st, sig = p:wait(timeout)
  if sig and sig ~= 0 then return "signal " .. sig end
  return st
end

local function out(dir) return T.read_file(dir .. "/out") or "" end
local function err(dir) return T.read_file(dir .. "/err") or "" end
local function both(dir) return "stdout:\n" .. out(dir) .. "\nstderr:\n" .. err(dir) end

local servers_with = T.servers_with

local srv = T.server{ js = false }

T.test("the process exits 0 by itself when the last timer ends", function()
  local p, dir = child([[
    local jet = require "jetlua"
    local n = 0
    local t; t = jet.every(0.01, function() n = n + 1; if n == 5 then t:stop(); print("every done") end end)
    jet.timer(0.2, function() print("timer") end)
    jet.log.info("log line", 42)
    jet.log.debug("hidden at info")
    jet.log.warn("a warning")
  ]])
  T.eq(status(p, 30), 0, both(dir))      -- (nil: still running after 30 s)
  -- both ran (in either order: on a loaded machine the 10 ms ticks can come after 0.2 s)
  local lines = {}
  for l in out(dir):gmatch("[^\n]+") do lines[#lines + 1] = l end
  table.sort(lines)
  T.eq(lines, { "every done", "timer" }, out(dir))
  T.ok(err(dir):find("%d%d%d%d%-%d%d%-%d%dT[%d:.]+Z INFO  log line 42"), err(dir))
  T.ok(err(dir):find("WARN  a warning", 1, true), err(dir))
  T.ok(not err(dir):find("hidden at info", 1, true), err(dir))
end)

T.test("the process exits 0 by itself when its last subscription ends", function()
  -- the handler unsubscribes after 3 messages; the connection is still open: shutdown closes it
  local p, dir = child([[
    local jet = require "jetlua"
    local nc = assert(jet.connect())
    local n = 0
    local sub; sub = nc:subscribe("life", function(m)
      n = n + 1
      if n == 3 then sub:unsubscribe(); print("unsubscribed after " .. n) end
    end)
    for i = 1, 5 do nc:publish("life", tostring(i)) end
    nc:on("closed", function() print("closed by the shutdown") end)
  ]], { "--server", srv.url })
  T.eq(status(p, 10), 0, both(dir))
  T.ok(out(dir):find("unsubscribed after 3\n", 1, true), both(dir))
  T.ok(err(dir):find("connection jetlua closed", 1, true), both(dir))
  -- a drained subscription ends too; a jet.spawn still waiting keeps it alive until done
  p, dir = child([[
    local jet = require "jetlua"
    local nc = assert(jet.connect())
    local sub = nc:subscribe("life2", function(m) print("got " .. m.data) end)
    nc:publish("life2", "one")
    jet.spawn(function() jet.sleep(0.3); print("spawn done") end)
    nc:flush()
    sub:drain()
    print("drained")
  ]], { "--server", srv.url })
  T.eq(status(p, 10), 0, both(dir))
  T.eq(out(dir), "got one\ndrained\nspawn done\n")
end)

T.test("jet.exit(code) sets the exit status, even with work left", function()
  local cases = { { "jet.exit(3)", 3 }, { "jet.exit()", 0 }, { "jet.exit(true)", 0 }, { "jet.exit(false)", 1 },
                  { "jet.exit(0)", 0 } }
  for _, c in ipairs(cases) do
    local p, dir = child(([[
      local jet = require "jetlua"
      local nc = assert(jet.connect())
      nc:subscribe("forever", function() end)
      jet.every(1, function() end)
      jet.timer(0.05, function() %s; print("not reached") end)
    ]]):format(c[1]), { "--server", srv.url })
    T.eq(status(p, 10), c[2], c[1] .. "\n" .. both(dir))
    T.ok(not out(dir):find("not reached", 1, true), c[1] .. ": the code after jet.exit ran")
  end
  -- and every time, also when several exit at once (the shutdown used to race cnats' close
  -- thread and abort now and then: test_regress_exit_abort.lua)
  local kids = {}
  for i = 1, 8 do
    kids[i] = { child([[
      local jet = require "jetlua"
      local nc = assert(jet.connect())
      nc:subscribe("forever", function() end)
      jet.timer(0.05, function() jet.exit(3) end)
    ]], { "--server", srv.url }) }
  end
  for i = 1, 8 do T.eq(status(kids[i][1], 20), 3, "child " .. i .. "\n" .. both(kids[i][2])) end
end)

-- a child that subscribes and then waits for ever; prints "ready"
local forever_src = [[
  local jet = require "jetlua"
  local nc = assert(jet.connect())
  local handled = 0
  nc:subscribe("forever", function() handled = handled + 1 end)
  nc:on("closed", function() print("closed after " .. handled) end)
  nc:flush()
  print("ready")
]]

T.test("SIGTERM shuts a subscriber down gracefully: status 0, within the bound, logged", function()
  local p, dir = child(forever_src, { "--server", srv.url, "--shutdown-timeout", "5" })
  T.wait_until(function() return out(dir):find("ready") end, 10, "child ready")
  p:kill("TERM")
  T.eq(status(p, 30), 0, both(dir))
  -- within the bound: a shutdown that reaches --shutdown-timeout says so and exits 1
  T.ok(not err(dir):find("shutdown timed out", 1, true), err(dir))
  T.ok(err(dir):find("received SIGTERM: shutting down gracefully", 1, true), err(dir))
  T.ok(out(dir):find("closed after 0", 1, true), "the connection was not closed cleanly: " .. both(dir))
  -- SIGINT does the same
  p, dir = child(forever_src, { "--server", srv.url })
  T.wait_until(function() return out(dir):find("ready") end, 10, "child ready")
  p:kill("INT")
  T.eq(status(p, 15), 0, both(dir))
  T.ok(err(dir):find("received SIGINT: shutting down gracefully", 1, true), err(dir))
end)

T.test("SIGTERM lets a handler waiting on I/O finish before exiting", function()
  -- the test process is the slow service: it answers after 0.5 s
  local svc = assert(jet.connect{ servers = srv.url })
  svc:subscribe("slow.svc", function(m) jet.sleep(0.5); m:respond("late answer") end, { concurrency = 10 })
  svc:flush()
  local p, dir = child([[
    local jet = require "jetlua"
    local nc = assert(jet.connect())
    nc:subscribe("work", function()
      print("handler started")
      local r, e = nc:request("slow.svc", "q", { timeout = 5 })
      print("handler got " .. tostring(r and r.data or e))
    end)
    nc:flush()
    print("ready")
  ]], { "--server", srv.url, "--shutdown-timeout", "5" })
  T.wait_until(function() return out(dir):find("ready") end, 10, "child ready")
  svc:publish("work", "")
  T.wait_until(function() return out(dir):find("handler started") end, 5, "handler started")
  p:kill("TERM")
  T.eq(status(p, 10), 0, both(dir))
  T.ok(out(dir):find("handler got late answer", 1, true), both(dir))
  svc:close()
end)

T.test("a stuck handler: shutdown ends at --shutdown-timeout with status 1; a second SIGTERM forces", function()
  local stuck_src = [[
    local jet = require "jetlua"
    local nc = assert(jet.connect())
    nc:subscribe("stuck", function() nc:request("nobody.home", "", { timeout = 120 }) end)
    nc:subscribe("stuck2", function() while true do nc:flush(120) end end)
    nc:publish("stuck", "x")
    nc:publish("stuck2", "x")
    jet.sleep(0.2)
    print("ready")
  ]]
  -- one SIGTERM: bounded by --shutdown-timeout 1. Its handlers wait 120 s (a request; a flush
  -- whose PONG never comes after the shutdown abandons the connection): an exit within 60 s
  -- is the bound at work, not them ending.
  local p, dir = child(stuck_src, { "--server", srv.url, "--shutdown-timeout", "1" })
  T.wait_until(function() return out(dir):find("ready") end, 10, "child ready")
  local t0 = jet.monotonic()
  p:kill("TERM")
  local st = status(p, 60)
  local took = jet.monotonic() - t0
  T.eq(st, 1, both(dir))
  T.ok(took >= 0.9, ("exited %.2f s after SIGTERM, before its --shutdown-timeout 1"):format(took))
  T.ok(err(dir):find("shutdown timed out after 1.0s", 1, true), err(dir))

  -- two SIGTERMs: the first waits, the second forces (status 128 + 15; without it the exit
  -- would come after the 300 s --shutdown-timeout, with status 1)
  p, dir = child(stuck_src, { "--server", srv.url, "--shutdown-timeout", "300" })
  T.wait_until(function() return out(dir):find("ready") end, 10, "child ready")
  p:kill("TERM")
  jet.sleep(0.3)
  T.ok(p:running(), "exited before its handlers finished")
  p:kill("TERM")
  st = status(p, 60)
  T.eq(st, 143, both(dir))
  T.ok(err(dir):find("received SIGTERM again: forced exit", 1, true), err(dir))
end)

local embedded_src = [[
  local jet = require "jetlua"
  local nc = assert(jet.connect())
  local got
  nc:subscribe("emb", function(m) got = m.data end)
  nc:publish("emb", "hello")
  while not got do jet.sleep(0.01) end
  print("got " .. got .. " from " .. nc:connected_url())
  if arg[1] == "wait" then nc:subscribe("never", function() end) print("ready") else nc:drain() end
]]

T.test("embedded default: a private server for the run, gone after a clean exit", function()
  local p, dir = child(embedded_src, { "--state-dir", "state" }, { NATS_URL = false })
  T.eq(status(p, 30), 0, both(dir))
  T.ok(out(dir):find("got hello from nats://127.0.0.1:", 1, true), both(dir))
  T.ok(err(dir):find("embedded nats-server started", 1, true), err(dir))
  T.ok(T.read_file(dir .. "/state/nats-server.log"), "no server log in the state dir")
  T.wait_until(function() return #servers_with(dir .. "/state") == 0 end, 5, "embedded server gone")
  T.eq(servers_with(dir .. "/state"), {})
end)

T.test("embedded default: no orphan after SIGTERM or SIGKILL", function()
  for _, sig in ipairs{ "TERM", "KILL" } do
    local dir = T.tmpdir()
    local state = dir .. "/state-" .. sig
    T.write_file(dir .. "/app.lua", embedded_src)
    local p = T.jetlua({ "run", "--state-dir", state, dir .. "/app.lua", "wait" },
      { stdout = dir .. "/out", stderr = dir .. "/err", env = { NATS_URL = false } })
    T.wait_until(function() return out(dir):find("ready") end, 20, "child ready")
    T.eq(#servers_with(state), 1, "the embedded server is not running (or twice): " .. both(dir))
    p:kill(sig)
    local st = status(p, 30)
    T.eq(st, sig == "TERM" and 0 or "signal 9", both(dir))
    T.wait_until(function() return #servers_with(state) == 0 end, 30, "server gone after SIG" .. sig)
  end
end)

T.test("version prints 4 lines; help tells the truth", function()
  local dir = T.tmpdir()
  local p = T.jetlua({ "version" }, { stdout = dir .. "/v" })
  T.eq(status(p, 10), 0)
  local v = T.read_file(dir .. "/v")
  local lines = {}
  for l in v:gmatch("[^\n]+") do lines[#lines + 1] = l end
  T.eq(#lines, 4, v)
  T.ok(lines[1]:find("^jetlua %d+%.%d+"), v)
  T.ok(lines[2]:find("^LuaJIT 2%.1"), v)
  T.ok(lines[3]:find("^libuv 1%.%d+"), v)
  T.ok(lines[4]:find("^cnats %d+%.%d+%.%d+"), v)
  T.eq(lines[1], "jetlua " .. jet.version().jetlua)
  T.eq(lines[4], "cnats " .. jet.version().cnats)
  p = T.jetlua({ "--help" }, { stdout = dir .. "/h" })
  T.eq(status(p, 10), 0)
  local h = T.read_file(dir .. "/h")
  for _, w in ipairs{ "jetlua run", "--server", "NATS_URL", "--log-level", "--state-dir", "--shutdown-timeout",
                      "SIGTERM" } do
    T.ok(h:find(w, 1, true), "help lacks " .. w)
  end
end)

T.run()
