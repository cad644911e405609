-- What a pull consumer reports about itself (issue #11 item 10, issue #12):
-- messages that reached max_deliver (the server's MAX_DELIVERIES advisory),
-- the handler duration histogram and the lag gauges, in stats() and in the
-- per-consumer metrics series.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url })
local js = nc:jetstream()

local function fresh(name, ccfg) T.fresh_stream(js, name, ccfg) end

local function publish_n(subject, n) T.publish_n(js, subject, n) end

local function labels(stream) return { consumer = "C", stream = stream } end

T.test("max_deliver reached: counted in stats() and jetlua_consumer_max_deliveries_total", function()
  fresh("MDV", { max_deliver = 2 })
  publish_n("mdv.x", 3)
  local runs = {}
  local h = assert(js:consume("MDV", "C", function(msg)
    local s = msg:metadata().stream_seq
    runs[s] = (runs[s] or 0) + 1
    if s ~= 2 then error("bad record " .. s) end
  end, { retry = function() return "nak", 0.05 end }))
  T.wait_until(function() return h:stats().max_deliveries == 2 end, 20, "two advisories")
  T.eq(runs, { 2, 1, 2 }, "each failing message delivered max_deliver times")
  T.eq(jet.metrics.counter("jetlua_consumer_max_deliveries_total", labels("MDV")):value(), 2)
  jet.sleep(0.5)
  T.eq(h:stats().max_deliveries, 2, "one advisory per message")
  h:stop()
end)

T.test("handler duration histogram: one observation per handler run", function()
  fresh("HIST")
  publish_n("hist.x", 40)
  local n = 0
  local h = assert(js:consume("HIST", "C", function() n = n + 1; jet.sleep(0.01) end))
  T.wait_until(function() return n == 40 end, 20)
  T.wait_until(function() return h:stats().acked == 40 end, 5)
  local hist = jet.metrics.histogram("jetlua_consumer_handler_seconds", labels("HIST"))
  T.eq(hist:count(), 40)
  T.ok(hist:sum() >= 0.3, "40 handlers of >= 10 ms: " .. hist:sum() .. " s")
  h:stop()
end)

T.test("lag: num_pending from each message, num_ack_pending from consumer info", function()
  fresh("LAG", { max_ack_pending = 10 })
  publish_n("lag.x", 100)
  local it = assert(js:messages("LAG", "C", { max_messages = 50 }))
  local held = {}
  for _ = 1, 10 do held[#held + 1] = assert(it:next(5)) end
  local pending = jet.metrics.gauge("jetlua_consumer_num_pending", labels("LAG"))
  local ack_pending = jet.metrics.gauge("jetlua_consumer_num_ack_pending", labels("LAG"))
  T.eq(it:stats().num_pending, 90, "from the last message's ack subject")
  T.eq(pending:value(), 90)
  T.eq(it:stats().num_ack_pending, 0, "as read at the start")
  -- the periodic consumer info (every 10 s) brings num_ack_pending
  T.wait_until(function() return it:stats().num_ack_pending == 10 end, 20, "num_ack_pending from consumer info")
  T.eq(ack_pending:value(), 10)
  for _, m in ipairs(held) do m:ack() end
  it:stop()
end)

T.run()
