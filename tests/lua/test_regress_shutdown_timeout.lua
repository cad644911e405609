-- Regression test (was a repro): --shutdown-timeout does not bound the exit, and the exit after it
-- sometimes dies with SIGABRT.
--
--   JETLUA_BIN=build/jetlua build/jetlua run tests/lua/test_regress_shutdown_timeout.lua
--
-- Child: a handler that never ends (nc:flush() in a loop) and one waiting on a 60 s request,
-- run with --shutdown-timeout 1, then SIGTERM.
-- Observed (HEAD 0a95a3e): "shutdown timed out after 1.0s ... exiting anyway" is logged at 1 s,
--   but the process only exits ~13 s after SIGTERM (status 1; 23 s when several run at once):
--   uv_run keeps waiting for the nc:flush still running in the libuv threadpool
--   (natsConnection_FlushTimeout, 10 s), and nothing else bounds it. About 1 run in 8 it aborts
--   instead (status 134); the core shows cnats' flusher thread in natsConn_bufferFlush ->
--   rt_natsuv write -> enqueue (rt_natsuv.c:187) -> uv_async_send -> abort(): close_walk had
--   already closed (and async_closed freed) the adapter's uv_async while the connection and its
--   threads were still alive (the connection was abandoned, not closed, by the timeout).
-- Expected: exit with status 1 shortly after the 1 s bound, every time.
-- Checked: the flushes here wait up to 120 s for their PONG (nc:flush(120)), so an exit that
--   waited for one comes after 120 s; 6 exits within 60 s with status 1 are the bound at work
--   (the time is printed, not checked further: CI machines are loaded).
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = false }
local dir = T.tmpdir()
T.write_file(dir .. "/child.lua", [[
  local jet = require "jetlua"
  local nc = assert(jet.connect())
  nc:subscribe("stuck", function() nc:request("nobody.home", "", { timeout = 120 }) end)
  nc:subscribe("stuck2", function() while true do nc:flush(120) end end)
  nc:publish("stuck", "x")
  nc:publish("stuck2", "x")
  jet.sleep(0.2)
  print("ready")
]])
local kids = {}
for i = 1, 6 do
  kids[i] = T.jetlua({ "run", "--server", srv.url, "--shutdown-timeout", "1", dir .. "/child.lua" },
    { stdout = dir .. "/out" .. i, stderr = dir .. "/err" .. i })
end
for i = 1, 6 do
  T.wait_until(function() return (T.read_file(dir .. "/out" .. i) or ""):find("ready") end, 10, "child ready")
end
local t0 = jet.monotonic()
for i = 1, 6 do kids[i]:kill("TERM") end
local bad = 0
for i = 1, 6 do
  local status, sig = kids[i]:wait(60)
  local took = jet.monotonic() - t0
  print(("child %d: status %s signal %s, exited %.1f s after SIGTERM")
    :format(i, tostring(status), tostring(sig), took))
  if status ~= 1 or (sig or 0) ~= 0 or took > 60 or took < 0.9 then bad = bad + 1 end
end
if bad > 0 then
  print(("BUG: %d of 6 children did not exit with status 1 between 1 and 60 s after SIGTERM (--shutdown-timeout 1)")
    :format(bad))
  jet.exit(1)
end
print("OK")
jet.exit(0)
