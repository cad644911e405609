-- Process lifecycle: exit by itself, jet.exit, handler errors isolated, SIGTERM, embedded server.
local jet = require "jetlua"
local T = require "jetlua.testing"

-- run a script in a child jetlua; returns proc, dir (stdout/stderr files in dir)
local function child(src, args, env)
  local dir = T.tmpdir()
  T.write_file(dir .. "/app.lua", src)
  local argv = { "run" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = dir .. "/app.lua"
  local p = T.jetlua(argv, { stdout = dir .. "/out", stderr = dir .. "/err", env = env, cwd = dir })
  return p, dir
end

local function out(dir) return T.read_file(dir .. "/out") or "" end
local function err(dir) return T.read_file(dir .. "/err") or "" end

-- is a nats-server whose command line mentions `needle` still running?
local function server_running(needle)
  local pd = io.popen("ls /proc")
  for pid in pd:lines() do
    if pid:match("^%d+$") then
      local f = io.open("/proc/" .. pid .. "/cmdline")
      if f then
        local cmd = (f:read("*a") or ""):gsub("%z", " ")
        f:close()
        if cmd:find("nats-server", 1, true) and cmd:find(needle, 1, true) then pd:close(); return true end
      end
    end
  end
  pd:close()
  return false
end

T.test("the process exits 0 by itself when the last timer ends", function()
  local p, dir = child([[
    local jet = require "jetlua"
    local n = 0
    local t; t = jet.every(0.01, function() n = n + 1; if n == 5 then t:stop() end end)
    jet.timer(0.05, function() print("timer") end)
    jet.log.info("log line", 42)
    jet.log.debug("hidden at info")
    jet.log.warn("a warning")
  ]])
  T.eq(p:wait(10), 0, err(dir))
  T.ok(out(dir):find("timer"), out(dir))
  T.ok(err(dir):find("%d%d%d%d%-%d%d%-%d%dT[%d:.]+Z INFO  log line 42"), err(dir))
  T.ok(err(dir):find("WARN  a warning", 1, true), err(dir))
  T.ok(not err(dir):find("hidden at info", 1, true), err(dir))
end)

T.test("a script requires modules next to it, from any working directory", function()
  local dir = T.tmpdir()
  T.write_file(dir .. "/helper.lua", "return { greet = function(n) return 'hi ' .. n end }\n")
  T.write_file(dir .. "/app.lua", "print(require('helper').greet('there'))\n")
  local p = T.jetlua({ "run", dir .. "/app.lua" }, { stdout = dir .. "/out", stderr = dir .. "/err", cwd = "/" })
  T.eq(p:wait(10), 0, T.read_file(dir .. "/err"))
  T.eq(T.read_file(dir .. "/out"), "hi there\n")
end)

T.test("jet.exit(code) sets the exit status", function()
  local p, dir = child([[ local jet = require "jetlua"; jet.timer(0.01, function() jet.exit(3) end); jet.every(1, function() end) ]])
  T.eq(p:wait(10), 3, err(dir))
end)

T.test("a raising handler is logged with a traceback and the others go on", function()
  local srv = T.server{ js = false }
  local p, dir = child([[
    local jet = require "jetlua"
    local nc = assert(jet.connect())
    local ok = 0
    nc:subscribe("h", function(m)
      if m.data == "bad" then error("poisoned message") end
      ok = ok + 1
    end)
    for _, d in ipairs{ "a", "bad", "b", "bad", "c" } do nc:publish("h", d) end
    local ticks = 0
    jet.every(0.01, function() ticks = ticks + 1; if ticks == 3 then error("timer trouble") end end)
    jet.sleep(0.3)
    print("handled " .. ok .. " ticks " .. ticks)
    jet.exit(0)
  ]], { "--server", srv.url })
  T.eq(p:wait(20), 0, err(dir))
  T.ok(out(dir):find("handled 3", 1, true), out(dir))
  T.ok(tonumber(out(dir):match("ticks (%d+)")) > 3, "the timer stopped after its error: " .. out(dir))
  local e = err(dir)
  T.ok(e:find("handler for 'h' failed: .-app.lua:5: poisoned message"), e)
  T.ok(e:find("stack traceback", 1, true), e)
  T.ok(e:find("timer trouble", 1, true), e)
end)

T.test("SIGTERM shuts down gracefully with status 0; a second signal forces", function()
  local srv = T.server{ js = false }
  local p, dir = child([[
    local jet = require "jetlua"
    local nc = assert(jet.connect())
    nc:subscribe("forever", function() end)
    print("ready")
  ]], { "--server", srv.url })
  T.wait_until(function() return out(dir):find("ready") end, 10, "child ready")
  local t0 = jet.monotonic()
  p:kill("TERM")
  T.eq(p:wait(15), 0, err(dir))
  T.ok(jet.monotonic() - t0 < 5, "shutdown took too long")
  T.ok(err(dir):find("received SIGTERM: shutting down gracefully", 1, true), err(dir))

  -- a handler that never finishes: the first SIGTERM waits, the second forces
  p, dir = child([[
    local jet = require "jetlua"
    local nc = assert(jet.connect())
    nc:subscribe("stuck", function() nc:request("nobody.home", "", { timeout = 60 }) end)
    nc:publish("stuck", "x")
    nc:subscribe("stuck2", function() while true do nc:flush() end end)
    nc:publish("stuck2", "x")
    jet.sleep(0.2)
    print("ready")
  ]], { "--server", srv.url, "--shutdown-timeout", "30" })
  T.wait_until(function() return out(dir):find("ready") end, 10, "child ready")
  p:kill("TERM")
  jet.sleep(0.3)
  T.ok(p:running(), "exited before its handlers finished")
  p:kill("TERM")
  local st = p:wait(10)
  T.ok(st ~= 0 and st ~= nil, "forced exit status " .. tostring(st))
  T.ok(err(dir):find("forced exit", 1, true), err(dir))
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

T.test("embedded default: starts a private server and stops it at exit", function()
  local p, dir = child(embedded_src, { "--state-dir", "state" }, { NATS_URL = false })
  T.eq(p:wait(30), 0, err(dir))
  T.ok(out(dir):find("got hello from nats://127.0.0.1:", 1, true), out(dir) .. err(dir))
  T.ok(err(dir):find("embedded nats-server started", 1, true), err(dir))
  T.ok(T.read_file(dir .. "/state/nats-server.log"), "no server log in the state dir")
  T.wait_until(function() return not server_running(dir) end, 5, "embedded server gone")
end)

T.test("embedded default: no orphan after SIGTERM or SIGKILL", function()
  for _, sig in ipairs{ "TERM", "KILL" } do
    local dir = T.tmpdir()
    T.write_file(dir .. "/app.lua", embedded_src)
    local p = T.jetlua({ "run", "--state-dir", dir .. "/state", dir .. "/app.lua", "wait" },
      { stdout = dir .. "/out", stderr = dir .. "/err", env = { NATS_URL = false } })
    T.wait_until(function() return out(dir):find("ready") end, 20, "child ready")
    T.ok(server_running(dir), "embedded server not found while running")
    p:kill(sig)
    p:wait(15)
    T.wait_until(function() return not server_running(dir) end, 10, "server gone after SIG" .. sig)
  end
end)

T.test("version and help tell the truth", function()
  local dir = T.tmpdir()
  local p = T.jetlua({ "version" }, { stdout = dir .. "/v" })
  T.eq(p:wait(10), 0)
  local v = T.read_file(dir .. "/v")
  T.ok(v:find("^jetlua %d") and v:find("LuaJIT 2%.1") and v:find("libuv 1%.") and v:find("cnats 3%.4%.1"), v)
  p = T.jetlua({ "--help" }, { stdout = dir .. "/h" })
  T.eq(p:wait(10), 0)
  local h = T.read_file(dir .. "/h")
  for _, w in ipairs{ "jetlua run", "--server", "NATS_URL", "--log-level", "--state-dir", "SIGTERM" } do
    T.ok(h:find(w, 1, true), "help lacks " .. w)
  end
end)

T.run()
