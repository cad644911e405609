-- Regression test (was a repro): an nc:request rejected for bad headers leaves its reply waiter behind;
-- its timeout later resumes an unrelated coroutine, and the process segfaults at exit.
--
--   JETLUA_BIN=build/jetlua build/jetlua run tests/lua/test_regress_request_bad_headers.lua
--
-- Observed: "sleep(1) returned after 0.20 s with nil, timeout" (the jet.sleep of another
--   coroutine is woken by the dead request's 0.2 s timeout), and the child exits with SIGSEGV
--   (status 139) in natsConnection_Destroy from conn_gc during lua_close.
-- Expected: the request raises "bad argument 'headers'" and nothing else happens: the sleep lasts
--   1 s, the process exits 0.
--
-- Why: nc_request (lconn.c) registers the reply (jl_conn_reply_add: map entry + uv timer holding
-- the coroutine pointer) before jl_conn_publish checks the headers and raises. The raise skips the
-- cleanup, so: the reply timer fires later and req_done calls rt_co_prepare/rt_co_resume on that
-- rt_co, which by then is back in the pool and running (waiting in) someone else's job; and
-- req_done calls jl_conn_release for a reference that was never taken (jl_conn_retain only
-- happens after a successful publish), so the connection is destroyed twice at exit.
-- Any header error does it (headers = 1, {A = 1}, {["a b"] = "x"}).
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = false }
local dir = T.tmpdir()
T.write_file(dir .. "/child.lua", [[
  local jet = require "jetlua"
  local nc = assert(jet.connect{ servers = arg[1] })
  nc:flush()
  jet.spawn(function()
    print("rejected:", pcall(nc.request, nc, "nobody", "x", { timeout = 0.2, headers = 1 }))
  end)
  local woke
  jet.spawn(function()          -- reuses the pooled coroutine of the rejected request
    local t0 = jet.monotonic()
    local a, b = jet.sleep(1)
    woke = ("sleep(1) returned after %.2f s with %s, %s"):format(jet.monotonic() - t0, tostring(a), tostring(b))
  end)
  jet.sleep(1.5)
  print(woke)
  nc:close()
]])
local p = T.jetlua({ "run", dir .. "/child.lua", srv.url }, { stdout = dir .. "/out", stderr = dir .. "/err" })
local status, sig = p:wait(30)
local out = T.read_file(dir .. "/out") or ""
io.write(out)
print(("child: status %s, signal %s"):format(tostring(status), tostring(sig)))
local slept = tonumber(out:match("returned after ([%d.]+) s"))
if status ~= 0 or (sig or 0) ~= 0 or not slept or slept < 0.9 then
  print("BUG: the rejected request woke another coroutine and/or the process crashed at exit")
  jet.exit(1)
end
print("OK")
jet.exit(0)
