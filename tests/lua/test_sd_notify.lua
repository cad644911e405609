-- The systemd notify protocol (Type=notify units), tested with a plain socket listener instead
-- of systemd: READY=1 once the main chunk has returned (its consumer and subscription are up),
-- RELOADING=1 / READY=1 around every reload (a failed one too), STOPPING=1 when the shutdown
-- begins, WATCHDOG=1 from the loop when WATCHDOG_USEC is set, path and abstract sockets, and
-- NOTIFY_SOCKET hidden from the script and its children.
local jet = require "jetlua"
local T = require "jetlua.testing"
local proc = jet.process

local srv = T.server{}

-- one line per datagram ("\n" inside shown as "|"); a READY=1 line also says whether the
-- main chunk's marker file existed when it arrived
local LISTENER = [[
import os, socket, sys
addr, out, marker = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
with open(out, "a") as f:
    f.write("listening\n"); f.flush()
    while True:
        d = s.recv(65536).decode()
        line = d.replace("\n", "|")
        if "READY=1" in d.split("\n"):
            line += " marker=" + ("yes" if os.path.exists(marker) else "no")
        f.write(line + "\n"); f.flush()
]]

local function listen(dir, addr)
  local script = T.write_file(dir .. "/listener.py", LISTENER)
  local out, marker = dir .. "/notify.log", dir .. "/main-returned"
  local p = assert(proc.spawn({ "/usr/bin/python3", script, addr, out, marker },
    { stdout = dir .. "/listener.out", stderr = dir .. "/listener.out" }))
  T.wait_until(function() return (T.read_file(out) or ""):find("listening") end, 20, "the listener binds")
  return p, out, marker
end

-- the datagrams received so far, WATCHDOG=1 pings left out unless asked for
local function states(out, pings)
  local list = {}
  for line in (T.read_file(out) or ""):gmatch("[^\n]+") do
    if line ~= "listening" and (pings or line ~= "WATCHDOG=1") then list[#list + 1] = line end
  end
  return list
end

local function count(list, prefix)
  local n = 0
  for _, l in ipairs(list) do if l:sub(1, #prefix) == prefix then n = n + 1 end end
  return n
end

local APP = [[
local jet = require "jetlua"
local marker = ...
local nc = assert(jet.connect())
local js = nc:jetstream()
assert(js:stream{ name = "NOTIFY", subjects = { "notify.>" }, storage = "memory" })
assert(js:consumer("NOTIFY", { durable = "worker" }))
assert(js:consume("NOTIFY", "worker", function(msg) nc:publish("notify-done", msg.data) end))
nc:subscribe("notify-ping", function(m) m:respond("pong") end)
print("env", tostring(os.getenv("NOTIFY_SOCKET")), tostring(os.getenv("WATCHDOG_USEC")))
jet.sleep(0.3)    -- READY=1 must wait for this too
local f = assert(io.open(marker, "w")); f:write("x"); f:close()
]]

T.test("path socket: READY after the main chunk, RELOADING/READY around reloads, STOPPING", function()
  local dir = T.tmpdir()
  local listener, out, marker = listen(dir, dir .. "/notify.sock")
  T.write_file(dir .. "/app.lua", APP)
  local child = T.jetlua({ "run", "--server", srv.url, dir .. "/app.lua", marker },
    { stdout = dir .. "/out", stderr = dir .. "/err", env = { NOTIFY_SOCKET = dir .. "/notify.sock" } })
  T.wait_until(function() return count(states(out), "READY=1") >= 1 end, 20, "READY=1; log: " .. dir)
  local s = states(out)
  T.eq(s[1], "READY=1|STATUS=running marker=yes", "the first datagram, sent after the main chunk returned")
  T.ok((T.read_file(dir .. "/out") or ""):find("env\tnil\tnil", 1, true), "NOTIFY_SOCKET is hidden from the script")

  -- the consumer runs: a message published now is handled
  local nc = assert(jet.connect{ servers = srv.url })
  local done = 0
  nc:subscribe("notify-done", function() done = done + 1 end)
  nc:flush()
  assert(nc:jetstream():publish("notify.a", "1"))
  T.wait_until(function() return done == 1 end, 20, "the consumer handles a message")

  -- a good reload
  child:kill("HUP")
  T.wait_until(function() return count(states(out), "READY=1") >= 2 end, 20, "READY=1 after the reload")
  s = states(out)
  T.ok(s[2]:find("^RELOADING=1|STATUS=reloading|MONOTONIC_USEC=%d+$"), s[2])
  T.eq(s[3], "READY=1|STATUS=running; reload #1 ok marker=yes")

  -- a failed reload keeps the old code running: still ready
  T.write_file(dir .. "/app.lua", "this is not lua\n")
  child:kill("HUP")
  T.wait_until(function() return count(states(out), "READY=1") >= 3 end, 20, "READY=1 after the failed reload")
  s = states(out)
  T.ok(s[4]:find("^RELOADING=1|"), s[4])
  T.eq(s[5], "READY=1|STATUS=running; reload #2 failed, the previous code keeps running marker=yes")
  assert(nc:jetstream():publish("notify.b", "2"))
  T.wait_until(function() return done == 2 end, 20, "the old code still handles messages")

  child:kill("TERM")
  T.eq(child:wait(30), 0, T.read_file(dir .. "/err"))
  s = states(out)
  T.eq(s[6], "STOPPING=1|STATUS=shutting down")
  T.eq(#s, 6, table.concat(s, "\n"))
  listener:kill("KILL")
  nc:close()
end)

T.test("abstract socket and WATCHDOG=1 pings from the loop; a main chunk that raises is never READY", function()
  local dir = T.tmpdir()
  local addr = ("@jetlua-test-%d-%d"):format(proc.pid(), proc.free_port())
  local listener, out = listen(dir, addr)
  T.write_file(dir .. "/app.lua", [[
    local jet = require "jetlua"
    local nc = assert(jet.connect())
    nc:subscribe("x", function() end)
  ]])
  local child = T.jetlua({ "run", "--server", srv.url, dir .. "/app.lua" },
    { stdout = dir .. "/out", stderr = dir .. "/err", env = { NOTIFY_SOCKET = addr, WATCHDOG_USEC = "100000" } })
  T.wait_until(function() return count(states(out), "READY=1") == 1 end, 20, "READY=1 on the abstract socket")
  T.wait_until(function() return count(states(out, true), "WATCHDOG=1") >= 3 end, 20, "WATCHDOG=1 pings")
  child:kill("TERM")
  T.eq(child:wait(30), 0, T.read_file(dir .. "/err"))
  T.eq(states(out)[#states(out)], "STOPPING=1|STATUS=shutting down")

  -- WATCHDOG_PID names another process: no pings for us
  local before = #states(out, true)
  local c2 = T.jetlua({ "run", "--server", srv.url, dir .. "/app.lua" },
    { stdout = dir .. "/out2", stderr = dir .. "/err2",
      env = { NOTIFY_SOCKET = addr, WATCHDOG_USEC = "100000", WATCHDOG_PID = "1" } })
  T.wait_until(function() return #states(out, true) >= before + 1 end, 20, "READY=1 of the second run")
  jet.sleep(0.5)
  c2:kill("TERM")
  T.eq(c2:wait(30), 0, T.read_file(dir .. "/err2"))
  local all = states(out, true)
  T.eq(count({ unpack(all, before + 1) }, "WATCHDOG=1"), 0, "pings for another pid")

  -- a main chunk that raises: STOPPING=1, never READY=1
  T.write_file(dir .. "/bad.lua", "local jet = require 'jetlua'\nerror('boom')\n")
  before = #states(out)
  local c3 = T.jetlua({ "run", "--server", srv.url, dir .. "/bad.lua" },
    { stdout = dir .. "/out3", stderr = dir .. "/err3", env = { NOTIFY_SOCKET = addr } })
  T.eq(c3:wait(30), 1)
  T.wait_until(function() return #states(out) > before end, 20, "STOPPING=1 of the failed run")
  local s = states(out)
  T.eq(#s, before + 1, table.concat(s, "\n"))
  T.eq(s[#s], "STOPPING=1|STATUS=shutting down")
  listener:kill("KILL")
end)

T.test("NOTIFY_SOCKET that is not a socket address: a warning, then business as usual", function()
  local dir = T.tmpdir()
  T.write_file(dir .. "/app.lua", "print('ran')\n")
  local child = T.jetlua({ "run", dir .. "/app.lua" },
    { stdout = dir .. "/out", stderr = dir .. "/err", env = { NOTIFY_SOCKET = "relative/path" } })
  T.eq(child:wait(30), 0, T.read_file(dir .. "/err"))
  T.eq(T.read_file(dir .. "/out"), "ran\n")
  T.ok(T.read_file(dir .. "/err"):find("NOTIFY_SOCKET='relative/path' is not a socket path or @name: ignored", 1, true))
end)

T.run()
