-- Regression test (issue #11): a subject longer than the server's max_control_line (4096
-- bytes; nats-server 2.9.10 does not announce it in INFO) made nc:publish return true; the
-- server answered -ERR 'Maximum Control Line Exceeded' and closed the connection for good.
-- Now subjects, reply subjects and queue names that would make a PUB/HPUB/SUB line too long
-- raise an argument error, in nc:publish, nc:request, nc:subscribe, msg:respond, js:publish and
-- js:publish_async, and the connection stays up. A payload over the server's max_payload
-- (headers included) returns nil, "max_payload" with the sizes.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{}
local long = ("a"):rep(4100)            -- over the line limit by itself
local edge = ("e"):rep(4096 - #"PUB  1\r\n" + 1)   -- "PUB <edge> 1\r\n" is 4097 bytes

-- the connection must still work: a round trip through a subscription
local function alive(nc, what)
  local got
  local sub = nc:subscribe("alive.check", function(m) got = m.data end)
  nc:flush()
  assert(nc:publish("alive.check", "yes"))
  T.wait_until(function() return got == "yes" end, 5, "the connection to work after " .. what)
  sub:unsubscribe()
  T.eq(nc:status(), "connected", what)
end

T.test("too long subjects, replies and queues raise; the connection stays up", function()
  local nc = assert(jet.connect{ servers = srv.url })
  local closed = false
  nc:on("closed", function() closed = true end)
  local js = nc:jetstream()
  assert(js:stream{ name = "LIM", subjects = { "lim.>" }, storage = "memory" })
  local line = "over the server's max_control_line of 4096"
  T.raises(function() nc:publish(long, "x") end,
    "nc:publish: bad argument 'subject': a subject of 4100 bytes makes the PUB protocol line")
  T.raises(function() nc:publish(long, "x") end, line)
  T.raises(function() nc:publish("ok", "x", { reply = long }) end,
    "nc:publish: bad argument 'reply': a reply subject of 4100 bytes")
  T.raises(function() nc:publish(long, "x", { headers = { A = "1" } }) end, "makes the HPUB protocol line")
  T.raises(function() nc:publish(edge, "x") end, "nc:publish: bad argument 'subject'")
  T.eq(nc:publish(edge:sub(2), "x"), true, "a line of exactly 4096 bytes is fine")
  T.raises(function() nc:request(long, "x") end, "nc:request: bad argument 'subject': .*" .. line)
  T.raises(function() nc:subscribe(long, function() end) end,
    "nc:subscribe: bad argument 'subject': .*SUB protocol line")
  T.raises(function() nc:subscribe("ok.>", function() end, { queue = long }) end,
    "nc:subscribe: bad argument 'queue'")
  T.raises(function() js:publish("lim." .. long, "x") end, "js:publish: bad argument 'subject'")
  T.raises(function() js:publish_async("lim." .. long, "x") end, "js:publish_async: bad argument 'subject'")
  -- msg:respond: a reply subject as long as a request may carry still fits the response line
  local responded
  nc:subscribe("lim.svc", function(m) responded = { pcall(m.respond, m, "x") } end)
  nc:flush()
  local reply = "r." .. ("r"):rep(4000)
  local got
  nc:subscribe(reply, function(m) got = m.data end)
  nc:flush()
  assert(nc:publish("lim.svc", "q", { reply = reply }))
  T.wait_until(function() return responded and got end, 5, "the response")
  T.eq(responded[1], true, tostring(responded[2]))
  alive(nc, "the refused calls")
  T.eq(closed, false, "the connection was closed")
  T.ok(nc:flush(5), "a round trip")
  nc:close()
end)

T.test("a payload over max_payload returns nil, 'max_payload' with the sizes", function()
  local nc = assert(jet.connect{ servers = srv.url })
  local js = nc:jetstream()
  assert(js:stream{ name = "BIG", subjects = { "big.>" }, storage = "memory" })
  local big = ("x"):rep(1024 * 1024 + 1)
  local function too_large(what, v, code, detail)
    T.eq(v, nil, what)
    T.eq(code, "max_payload", what)
    T.ok(tostring(detail):find("1048577 greater than maximum allowed: 1048576", 1, true),
      what .. ": " .. tostring(detail))
  end
  too_large("nc:publish", nc:publish("big.a", big))
  too_large("nc:request", nc:request("big.a", big, { timeout = 1 }))
  too_large("js:publish", js:publish("big.a", big))
  too_large("js:publish_async", js:publish_async("big.a", big):wait(5))
  -- headers count: data that fits alone is over the limit with its header block
  local v, code, detail = nc:publish("big.a", ("x"):rep(1024 * 1024 - 4), { headers = { H = "value" } })
  T.eq({ v, code }, { nil, "max_payload" }, tostring(detail))
  alive(nc, "the refused payloads")
  nc:close()
end)

T.run()
