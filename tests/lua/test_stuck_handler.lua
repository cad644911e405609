-- A handler that never yields holds the event loop. Signals must still work (they are handled
-- by a thread of their own): the first starts the graceful shutdown, a second one or the
-- --shutdown-timeout bound ends the process, with a log line naming the handler, and the
-- embedded nats-server goes with it. A handler that holds the loop longer than --slow-handler
-- is reported (with file:line when the interpreter can tell, else by name).
local T = require "jetlua.testing"

local function child(src, args)
  local dir = T.tmpdir()
  T.write_file(dir .. "/app.lua", src)
  local argv = { "run", "--state-dir", dir .. "/state" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = dir .. "/app.lua"
  local p = T.jetlua(argv, { stdout = dir .. "/out", stderr = dir .. "/err", env = { NATS_URL = false } })
  return p, dir
end

local function out(dir) return T.read_file(dir .. "/out") or "" end
local function err(dir) return T.read_file(dir .. "/err") or "" end
local function both(dir) return "stdout:\n" .. out(dir) .. "\nstderr:\n" .. err(dir) end

-- exit status, or "signal N"
local function status(p, timeout)
  local st, sig = p:wait(timeout)
  if sig and sig ~= 0 then return "signal " .. sig end
  return st
end

-- running nats-server processes whose command line mentions needle
local servers_with = T.servers_with

-- a subscription handler that spins for ever, on the embedded server
local spin_src = [[
  local jet = require "jetlua"
  local nc = assert(jet.connect())
  nc:subscribe("spin", function()
    print("spinning")
    while true do end
  end)
  nc:publish("spin", "x")
]]

local function started(dir)
  T.wait_until(function() return out(dir):find("spinning") end, 30, "the handler started: " .. both(dir))
  T.eq(#servers_with(dir .. "/state"), 1, "the embedded server is not running: " .. both(dir))
end

local function no_orphan(dir)
  T.wait_until(function() return #servers_with(dir .. "/state") == 0 end, 10,
    "the embedded server to die with jetlua")
end

T.test("SIGTERM then SIGTERM (and SIGINT twice) end a process whose handler never yields", function()
  local kids = {}
  for i, sig in ipairs{ "TERM", "INT" } do
    local p, dir = child(spin_src, { "--shutdown-timeout", "60" })
    kids[i] = { p = p, dir = dir, sig = sig }
  end
  for _, k in ipairs(kids) do started(k.dir) end
  for _, k in ipairs(kids) do
    local name = "SIG" .. k.sig
    k.p:kill(k.sig)
    -- the first signal is seen and logged although the loop is blocked
    T.wait_until(function() return err(k.dir):find("received " .. name .. ": shutting down gracefully", 1, true) end,
      20, "the first " .. name .. " to be logged: " .. both(k.dir))
    T.ok(k.p:running(), "exited on the first signal")
    k.p:kill(k.sig)
    T.eq(status(k.p, 20), k.sig == "TERM" and 143 or 130, both(k.dir))
    T.ok(err(k.dir):find("received " .. name .. " again: forced exit (handler for 'spin' has been running for ",
      1, true), both(k.dir))
    no_orphan(k.dir)
  end
end)

T.test("SIGTERM alone: the --shutdown-timeout bound ends it, naming the handler", function()
  local p, dir = child(spin_src, { "--shutdown-timeout", "2" })
  started(dir)
  p:kill("TERM")
  T.eq(status(p, 30), 1, both(dir))
  T.ok(err(dir):find("received SIGTERM: shutting down gracefully", 1, true), both(dir))
  T.ok(err(dir):find("shutdown timed out after 2.0s: forced exit (handler for 'spin' has been running for ", 1, true),
    both(dir))
  no_orphan(dir)
end)

-- a timer callback that holds the loop ~1.5 s, then the process ends by itself
local slow_src = [[
  local jet = require "jetlua"
  if arg[1] == "nojit" then jit.off() end
  jet.timer(0.01, function()
    local t = jet.monotonic() + 1.5
    local n = 0
    while jet.monotonic() < t do
      n = n + 1
    end
    print("done")
  end)
]]

T.test("--slow-handler: a handler holding the loop is reported with its name or file:line", function()
  local runs = {}
  for i, mode in ipairs{ "nojit", "jit" } do
    local dir = T.tmpdir()
    T.write_file(dir .. "/app.lua", slow_src)
    runs[i] = { dir = dir, mode = mode, p = T.jetlua({ "run", "--slow-handler", "0.5", dir .. "/app.lua", mode },
      { stdout = dir .. "/out", stderr = dir .. "/err" }) }
  end
  -- 0 turns it off
  local off = T.tmpdir()
  T.write_file(off .. "/app.lua", slow_src)
  local poff = T.jetlua({ "run", "--slow-handler", "0", off .. "/app.lua" },
    { stdout = off .. "/out", stderr = off .. "/err" })
  for _, r in ipairs(runs) do
    T.eq(status(r.p, 30), 0, r.mode .. "\n" .. both(r.dir))
    T.eq(out(r.dir), "done\n")
    local e = err(r.dir)
    local warn = e:match("WARN  (jet%.timer callback has been running for [%d.]+s without yielding: "
      .. "the event loop is blocked[^\n]*)")
    T.ok(warn, r.mode .. ": no warning while it ran\n" .. e)
    local held = e:match("WARN  (jet%.timer callback held the event loop for [%d.]+s[^\n]*)")
    T.ok(held, r.mode .. ": no warning when it returned\n" .. e)
    if r.mode == "nojit" then
      -- interpreted code runs the hook: the line inside the loop
      T.ok(warn:find("%(at [^\n]*app%.lua:[67]%)$"), warn)
      T.ok(held:find("app.lua:[67]%)$"), held)
    end
  end
  T.eq(status(poff, 30), 0, both(off))
  T.ok(not err(off):find("WARN", 1, true), both(off))
  -- a bad value is a command-line mistake
  local p = T.jetlua({ "run", "--slow-handler", "soon", off .. "/app.lua" },
    { stdout = off .. "/out2", stderr = off .. "/err2" })
  T.eq(status(p, 10), 2)
  T.ok((T.read_file(off .. "/err2") or ""):find("--slow-handler: 'soon' is not a number of seconds", 1, true))
end)

T.run()
