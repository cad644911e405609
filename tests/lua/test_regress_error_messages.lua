-- Regression test (was a repro): small inconsistencies in misuse error messages.
--
--   JETLUA_BIN=build/jetlua build/jetlua run tests/lua/test_regress_error_messages.lua
--
-- Each check prints the observed message and what would match the rest of the API; the script
-- exits 1 while any of them is still as observed.
--  1. An absent `self` reads "got no value", although absent arguments read "got nil" everywhere
--     else (commit 47f4e7c "absent arguments read as nil in errors"): jl_conn_check, check_sub
--     (lsub.c), lmsg.c's check and lprocess.c's check use luaL_typename directly.
--  2. jet.sleep/jet.timer with a number above the 1e9 s limit say "seconds must be >= 0, got 1e+10".
--  3. Type errors in nested options name the bare field ('max', 'wait', 'ca', 'cert') while range
--     and file errors name the full path ('reconnect.wait', 'tls.ca', 'tls.cert').
--  4. jet.connect{timeout = -1} is accepted and silently means "no timeout"; every other timeout
--     option rejects values <= 0.
local jet = require "jetlua"
local T = require "jetlua.testing"

local function err_of(f, ...) local ok, e = pcall(f, ...); return ok and "(no error)" or tostring(e) end
local bad = 0
local function expect(label, got, want)
  local ok = got:find(want, 1, true) ~= nil
  if not ok then bad = bad + 1 end
  print(("%s %s\n   observed: %s\n   expected: ...%s..."):format(ok and "ok " or "BUG", label, got, want))
end

local srv = T.server{ js = false }
local nc = assert(jet.connect{ servers = srv.url })
local sub = nc:subscribe("x", function() end)
expect("absent self (nc)", err_of(nc.publish), "connection expected, got nil")
expect("absent self (sub)", err_of(sub.stats), "subscription expected, got nil")
expect("too large sleep", err_of(jet.sleep, 1e10), "<=")
expect("nested option type", err_of(jet.connect, { reconnect = { max = "x" } }), "'reconnect.max'")
expect("nested tls option type", err_of(jet.connect, { tls = { ca = 1 } }), "'tls.ca'")
expect("negative connect timeout", err_of(jet.connect, { servers = "nats://127.0.0.1:1", timeout = -1,
  reconnect = { max = 0 } }), "'timeout': must be > 0")
nc:close()
if bad > 0 then print(("BUG: %d inconsistent message(s)"):format(bad)) end
jet.exit(bad > 0 and 1 or 0)   -- the server T.server started is killed at exit
