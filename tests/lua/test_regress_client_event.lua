-- Regression test: every client of a connection hears its close, even when another client's
-- close handling stops one of them.
--
-- At close the async publisher fails its pending futures with "closed", which resumes the
-- coroutines waiting on them at once; such a coroutine may stop a consumer (another client of
-- the same connection). The connection's loop over its clients took the next client before
-- calling the publisher; the stopped consumer was unlinked (its next pointer cleared), so the
-- loop ended there and the clients after it never heard the close: a consumer stayed open
-- forever (h:closed() false, its subscription still counted by the connection).
-- Now each client hears each event once, and the loop starts over when the list changed.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }

T.test("a consumer stopped by a future failing at close does not hide the close from others", function()
  local nc = assert(jet.connect{ servers = srv.url })
  local js = nc:jetstream()
  assert(js:stream{ name = "CE", subjects = { "ce.>" }, storage = "memory" })
  assert(js:consumer("CE", { durable = "c" }))
  assert(js:consumer("CE", { durable = "a" }))
  -- clients are told newest first: the publisher (made by the first publish), then ha, then hc
  local hc = assert(js:consume("CE", "c", function() end))
  local ha = assert(js:consume("CE", "a", function() end))
  local f = js:publish_async("ce.x", "1")
  local stopped, code, _
  jet.spawn(function()
    _, code = f:wait()
    ha:stop()
    stopped = true
  end)
  nc:close()                      -- the PubAck can no longer arrive: the future fails "closed"
  T.wait_until(function() return stopped end, 10, "the future's coroutine ran")
  T.eq(code, "closed")
  T.wait_until(function() return ha:closed() end, 10, "the stopped consumer closed")
  T.wait_until(function() return hc:closed() end, 10, "the other consumer heard the close")
end)

T.run()
