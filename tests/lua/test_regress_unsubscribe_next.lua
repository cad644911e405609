-- Regression: a handler that unsubscribes another subscription of the same
-- connection, while messages for both arrived in the same read. The loop that
-- hands messages to handlers kept a pointer to the next subscription, which
-- the handler had just freed (AddressSanitizer: heap-use-after-free in
-- jl_conn_after_read). The same for a handler that stops another consumer.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url })
local pub = assert(jet.connect{ servers = srv.url })

T.test("a handler unsubscribes the next subscription in the list", function()
  local ran, b = 0, 0
  for round = 1, 50 do
    local subs = {}
    -- the list is newest first: the one made last is pumped first
    subs[2] = nc:subscribe("u.b" .. round, function() b = b + 1 end)
    subs[1] = nc:subscribe("u.a" .. round, function()
      ran = ran + 1
      subs[2]:unsubscribe()
      collectgarbage()
    end)
    nc:flush()
    pub:publish("u.a" .. round, "x"); pub:publish("u.b" .. round, "y")
    pub:flush()
    T.wait_until(function() return ran == round end, 5)
    subs[1]:unsubscribe()
  end
  T.eq(ran, 50)
  T.ok(b <= 50, "b handled at most once per round")
end)

T.test("a consumer's handler stops another consumer of the same connection", function()
  local js = nc:jetstream()
  assert(js:stream{ name = "UN", subjects = { "un.>" }, storage = "memory" })
  local stopped = 0
  for round = 1, 20 do
    local ca, cb = "A" .. round, "B" .. round
    assert(js:consumer("UN", { durable = ca })); assert(js:consumer("UN", { durable = cb }))
    local ha, hb
    hb = assert(js:consume("UN", cb, function() end))
    ha = assert(js:consume("UN", ca, function()
      if not hb:closed() then hb:stop(); stopped = stopped + 1 end
      collectgarbage()
    end))
    assert(js:publish("un.x", tostring(round)))
    T.wait_until(function() return hb:closed() end, 5)
    ha:stop()
  end
  T.eq(stopped, 20)
end)

T.run()
