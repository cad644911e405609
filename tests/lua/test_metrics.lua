-- --metrics HOST:PORT: /metrics in the Prometheus text format with values matching what
-- the script did, /healthz flipping with the connection; jet.metrics for script metrics.
local jet = require "jetlua"
local T = require "jetlua.testing"

local function curl(url)
  local dir = T.tmpdir()
  local p = assert(jet.process.spawn({ "curl", "-s", "-o", dir .. "/body", "-w", "%{http_code}", url },
    { stdout = dir .. "/code" }))
  p:wait(10)
  return tonumber(T.read_file(dir .. "/code")), T.read_file(dir .. "/body") or ""
end

local function value(text, series)
  for line in text:gmatch("[^\n]+") do
    local name, v = line:match("^(%S+) (%S+)$")
    if name == series then return tonumber(v) end
  end
end

T.test("a child with --metrics: values match, /healthz flips when the server goes", function()
  local srv = T.server{ js = true }
  local dir = T.tmpdir()
  local port = jet.process.free_port()
  T.write_file(dir .. "/child.lua", [[
    local jet = require "jetlua"
    local nc = assert(jet.connect{ reconnect = { wait = 0.1 } })
    local js = nc:jetstream()
    assert(js:stream{ name = "M", subjects = { "m.>" } })
    for i = 1, 25 do js:publish_async("m.x", tostring(i)) end
    js:publish_async("nostream.x", "y"):wait()             -- one failure: no_responders
    assert(js:publish_async_complete(5) == 0)
    local seen = 0
    nc:subscribe("core.>", function(m) seen = seen + 1; if m.data == "boom" then error("boom") end end)
    for i = 1, 7 do nc:publish("core.x", "hi") end
    nc:publish("core.x", "boom")
    assert(js:consumer("M", { durable = "W" }))
    local failed, handled = false, 0
    assert(js:consume("M", "W", function(m)
      if m.data == "13" and not failed then failed = true; error("once") end
      handled = handled + 1
    end))
    while handled < 25 do jet.sleep(0.01) end
    local c = jet.metrics.counter("orders_total", { kind = "new", shop = 7 }, "orders seen")
    c:inc(); c:inc(2)
    jet.metrics.counter("orders_total", { shop = 7, kind = "new" }):inc()   -- same series
    jet.metrics.gauge("queue_depth"):set(42)
    local h = jet.metrics.histogram("work_seconds", nil, { buckets = { 0.1, 1 }, help = "work" })
    h:observe(0.05); h:observe(0.5); h:observe(3)
    nc:flush()
    print("ready")
    jet.sleep(60)
  ]])
  local child = T.jetlua({ "run", "--server", srv.url, "--metrics", "127.0.0.1:" .. port, dir .. "/child.lua" },
    { stdout = dir .. "/out", stderr = dir .. "/err" })
  T.wait_until(function() return (T.read_file(dir .. "/out") or ""):find("ready") end, 10,
    "child ready: " .. (T.read_file(dir .. "/err") or ""))
  local base = "http://127.0.0.1:" .. port
  local code, text = curl(base .. "/metrics")
  T.eq(code, 200)
  T.eq(value(text, 'jetlua_js_published_total{mode="async"}'), 26, text)
  T.eq(value(text, 'jetlua_js_publish_acked_total{mode="async"}'), 25, text)
  T.eq(value(text, 'jetlua_js_publish_failed_total{error="no_responders",mode="async"}'), 1, text)
  T.eq(value(text, "jetlua_js_publish_pending"), 0, text)
  T.eq(value(text, "jetlua_messages_received_total"), 8, text)
  T.eq(value(text, "jetlua_handler_errors_total"), 2, text)
  local w = '{consumer="W",stream="M"}'
  T.eq(value(text, "jetlua_consumer_delivered_total" .. w), 26, text)
  T.eq(value(text, "jetlua_consumer_redelivered_total" .. w), 1, text)
  T.eq(value(text, "jetlua_consumer_acked_total" .. w), 25, text)
  T.eq(value(text, "jetlua_consumer_naked_total" .. w), 1, text)
  T.eq(value(text, "jetlua_consumer_termed_total" .. w), 0, text)
  T.eq(value(text, "jetlua_consumer_handler_errors_total" .. w), 1, text)
  T.eq(value(text, "jetlua_consumer_buffered" .. w), 0, text)
  T.eq(value(text, "jetlua_consumer_in_flight" .. w), 0, text)
  T.eq(value(text, 'orders_total{kind="new",shop="7"}'), 4, text)
  T.ok(text:find("# HELP orders_total orders seen\n# TYPE orders_total counter\n", 1, true), text)
  T.eq(value(text, "queue_depth"), 42, text)
  T.eq(value(text, 'work_seconds_bucket{le="0.1"}'), 1, text)
  T.eq(value(text, 'work_seconds_bucket{le="1"}'), 2, text)
  T.eq(value(text, 'work_seconds_bucket{le="+Inf"}'), 3, text)
  T.eq(value(text, "work_seconds_count"), 3, text)
  T.eq(value(text, "work_seconds_sum"), 3.55, text)

  local hc, body = curl(base .. "/healthz")
  T.eq(hc, 200); T.eq(body, "ok\n")
  T.eq((curl(base .. "/nothing")), 404)

  srv:kill()
  T.wait_until(function() return curl(base .. "/healthz") == 503 end, 10, "/healthz says not ready")
  hc, body = curl(base .. "/healthz")
  T.eq(hc, 503, body); T.ok(body:find("not ready: connection .* is reconnecting"), body)
  srv:restart()
  T.wait_until(function() return curl(base .. "/healthz") == 200 end, 10, "/healthz ready again")
  code, text = curl(base .. "/metrics")
  T.eq(code, 200, text)
  T.eq(value(text, "jetlua_reconnects_total"), 1, text)
  T.eq(value(text, "jetlua_disconnects_total"), 1, text)
  child:kill("TERM")
  T.eq(child:wait(15), 0, T.read_file(dir .. "/err"))
end)

T.test("jet.metrics bad input", function()
  T.raises(function() jet.metrics.counter("1bad") end,
    "jet.metrics.counter: bad argument 'name': invalid metric name '1bad'")
  T.raises(function() jet.metrics.counter("ok_total", { ["bad-label"] = "x" }) end, "invalid label name 'bad%-label'")
  T.raises(function() jet.metrics.counter("ok_total", { a = {} }) end, "value of 'a' must be a string or number")
  jet.metrics.counter("ok_total")
  T.raises(function() jet.metrics.gauge("ok_total") end, "'ok_total' is already a counter")
  T.raises(function() jet.metrics.counter("up_total"):inc(-1) end, "a counter only goes up")
  T.raises(function() jet.metrics.counter("up2_total"):set(1) end, "metric:set: not available on a counter")
  T.raises(function() jet.metrics.histogram("h1", nil, { buckets = { 2, 1 } }) end, "bounds must be ascending")
  T.raises(function() jet.metrics.histogram("h2", nil, { bucket = { 1 } }) end, "unknown option 'bucket'")
end)

T.test("--metrics with a bad address is a command-line error", function()
  local dir = T.tmpdir()
  T.write_file(dir .. "/x.lua", "")
  local p = T.jetlua({ "run", "--metrics", "nowhere", dir .. "/x.lua" }, { stderr = dir .. "/err" })
  T.eq(p:wait(10), 2)
  T.ok(T.read_file(dir .. "/err"):find("--metrics: 'nowhere' is not HOST:PORT", 1, true), T.read_file(dir .. "/err"))
end)

T.run()
