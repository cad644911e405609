-- Regression test (was a repro): a graceful exit with an open connection sometimes dies with SIGABRT.
--
--   JETLUA_BIN=build/jetlua build/jetlua run tests/lua/test_regress_exit_abort.lua
--
-- Child: connect, subscribe, jet.timer(0.05, function() jet.exit(3) end). 24 children, 8 at a time.
-- Observed (HEAD f28fde1, 2 cores): a few of them (6 of 40 in one run) end with SIGABRT instead of
--   status 3, after "connection jetlua closed" was logged. Sequential runs rarely show it; it needs
--   some load. It also makes T.run() itself (which ends with jet.exit) crash now and then, e.g.
--   lua.test_lifecycle failed once in ctest with "jet.exit(3): expected 3, got 0" (status 0 + signal 6).
-- Expected: status 3 every time.
-- Why (core): a cnats thread (the drain/close thread started by natsConnection_DrainTimeout in the
-- shutdown hook) is still inside natsConn_close -> the adapter's detach -> enqueue (rt_natsuv.c:187)
-- -> uv_async_send -> abort(), after the loop got the closed event, finished the shutdown and
-- close_walk closed (async_closed freed) the adapter's uv_async. The adapter can be called from
-- cnats threads after the connection reported "closed"; nothing waits for those threads before the
-- loop's handles go away.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = false }
local dir = T.tmpdir()
T.write_file(dir .. "/child.lua", [[
  local jet = require "jetlua"
  local nc = assert(jet.connect())
  nc:subscribe("forever", function() end)
  jet.every(1, function() end)
  jet.timer(0.05, function() jet.exit(3) end)
]])
local bad, n = 0, 0
for round = 1, 3 do
  local kids = {}
  for i = 1, 8 do
    kids[i] = T.jetlua({ "run", "--server", srv.url, dir .. "/child.lua" },
      { stdout = "ignore", stderr = dir .. "/err" .. round .. "_" .. i })
  end
  for i = 1, 8 do
    local status, sig = kids[i]:wait(20)
    n = n + 1
    if status ~= 3 or (sig or 0) ~= 0 then
      bad = bad + 1
      print(("child %d.%d: status %s signal %s"):format(round, i, tostring(status), tostring(sig)))
    end
  end
end
if bad > 0 then
  print(("BUG: %d of %d children did not exit with status 3"):format(bad, n))
  jet.exit(1)
end
print(("OK: %d children exited with status 3 (the race needs load: run it again)"):format(n))
jet.exit(0)
