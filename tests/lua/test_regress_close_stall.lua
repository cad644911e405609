-- Regression test (was a repro): nc:close() with publishes still in cnats' write buffer blocks the
-- whole event loop for 0.5 s, and those publishes are lost.
--
--   JETLUA_BIN=build/jetlua build/jetlua run tests/lua/test_regress_close_stall.lua
--
-- Observed: "close took 0.50 s", a 10 ms jet.every ticker has a 0.5 s gap (the loop is blocked),
--   and the subscriber gets 0 of the 10 messages.
-- Expected: close returns at once (it must not block the loop), and what was published before
--   close() reaches the server (cnats' own Close tries to flush it; nc:drain does).
-- Checked: the 10 messages arrive. The stall and the loss had one cause (closing with a
--   non-empty write buffer), and a duration is no check on a loaded machine: the time bound
--   below only catches a close that hangs.
--
-- Why: natsConnection_Close -> _close calls _flushTimeout(nc, 500) when its write buffer is not
-- empty: it sends a PING and waits for the PONG on a condition variable. With the event-loop
-- adapter only the loop thread reads the socket, and it is the thread waiting, so the PONG can
-- never be read: it always waits the full 500 ms, then closes without the buffered data having
-- been written. (The same 0.5 s stall happens for a close right after jet.connect: the
-- reply-inbox SUB is still buffered.) Writing the buffer out first (natsConnection_ProcessWriteEvent
-- until natsConnection_Buffered() is 0) before natsConnection_Close would avoid both.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = false }
local sub = assert(jet.connect{ servers = srv.url })
local got = 0
sub:subscribe("stall", function() got = got + 1 end)
sub:flush()

local pub = assert(jet.connect{ servers = srv.url })
jet.sleep(0.1)                          -- the connection is fully set up and idle
local last, gap = jet.monotonic(), 0
local ticker = jet.every(0.01, function()
  local now = jet.monotonic()
  if now - last > gap then gap = now - last end
  last = now
end)
jet.sleep(0.05)
for i = 1, 10 do pub:publish("stall", tostring(i)) end
gap = 0
local t0 = jet.monotonic()
pub:close()
local took = jet.monotonic() - t0
jet.sleep(0.5)
ticker:stop()
print(("close took %.2f s; longest gap between 10 ms ticks %.2f s; subscriber got %d of 10"):format(took, gap, got))
sub:close()
if took > 10 or got < 10 then
  print("BUG: nc:close() blocked the loop and/or lost the messages published just before it")
  jet.exit(1)
end
print("OK")
jet.exit(0)
