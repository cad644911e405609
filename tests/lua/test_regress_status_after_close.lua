-- Regression test (was a repro): right after nc:close() returns, the connection still says
-- "connected", and calls on it fail differently than a moment later.
--
--   JETLUA_BIN=build/jetlua build/jetlua run tests/lua/test_regress_status_after_close.lua
--
-- Observed: nc:status() == "connected" right after nc:close(); nc:publish/nc:subscribe then
--   return nil, "closed", "...: Connection Closed"; once the loop has run the closed event
--   (a few ms later) status is "closed" and the same calls raise "...: the connection is closed".
-- Expected: nc:close() is synchronous as documented ("close now"): status "closed" as soon as it
--   returns, and one consistent behaviour for calls on a closed connection.
-- Why: lconn.c nc_close only calls natsConnection_Close; c->state becomes JL_CONN_CLOSED in
-- conn_closed(), which runs when cnats' closed callback is posted back to the loop.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = false }
local nc = assert(jet.connect{ servers = srv.url })
jet.sleep(0.05)
nc:close()
local status_now = nc:status()
local ok_pub, r1, r2 = pcall(nc.publish, nc, "x", "y")
print("right after close: status", status_now, "| publish ->", ok_pub, r1, r2)
jet.sleep(0.1)
local ok_pub2, e2 = pcall(nc.publish, nc, "x", "y")
print("100 ms later:      status", nc:status(), "| publish ->", ok_pub2, e2)
if status_now ~= "closed" or ok_pub ~= ok_pub2 then
  print("BUG: status/behaviour right after nc:close() differs from a moment later")
  jet.exit(1)
end
print("OK")
jet.exit(0)
