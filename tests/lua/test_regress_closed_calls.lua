-- Regression test (issue #11): on a closed connection, nc:* and js:* I/O calls return
-- nil, "closed", detail as documented, instead of raising. Misuse (a wrong argument type)
-- still raises. Every entry point is called after nc:close() and after nc:drain().
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{}

-- an I/O result on a closed connection: nil, "closed", a sentence naming the call
local function closed(what, ...)
  local n = select("#", ...)
  local v, code, detail = ...
  T.eq(v, nil, what .. ": value")
  T.eq(code, "closed", what .. ": code")
  T.ok(type(detail) == "string" and detail:find("closed"), what .. ": detail " .. tostring(detail))
  T.ok(n >= 3, what .. ": nil, code, detail")
end

local function check_all(nc, js, js2, kv, oc)
  T.eq(nc:status(), "closed")
  closed("nc:publish", nc:publish("x", "y"))
  closed("nc:publish with headers", nc:publish("x", "y", { headers = { A = "1" }, reply = "r" }))
  closed("nc:subscribe", nc:subscribe("x", function() end))
  closed("nc:request", nc:request("x", "y", { timeout = 1 }))
  closed("nc:flush", nc:flush(1))
  T.eq(nc:drain(), true, "draining a closed connection returns at once")
  T.eq(nc:close(), true, "closing twice is harmless")
  T.eq(nc:connected_url(), nil)
  T.eq(type(nc:stats()), "table")
  nc:on("error", function() end)
  T.eq(type(nc:jetstream()), "table", "a context of a closed connection can be made")
  -- misuse still raises
  T.raises(function() nc:publish(42, "y") end, "nc:publish: bad argument 'subject'")
  T.raises(function() nc:subscribe("x", "not a function") end, "nc:subscribe: bad argument 'handler'")
  T.raises(function() nc:request("x", "y", { timeout = -1 }) end, "nc:request: bad argument 'timeout'")

  for _, j in ipairs{ js, js2 } do
    closed("js:stream", j:stream{ name = "S", subjects = { "s.>" } })
    closed("js:stream_info", j:stream_info("S"))
    closed("js:delete_stream", j:delete_stream("S"))
    closed("js:purge", j:purge("S"))
    closed("js:get_msg", j:get_msg("S", 1))
    closed("js:get_last_msg", j:get_last_msg("S", "s.a"))
    closed("js:delete_msg", j:delete_msg("S", 1))
    closed("js:stream_names", j:stream_names())
    closed("js:streams", j:streams())
    closed("js:account_info", j:account_info())
    closed("js:consumer", j:consumer("S", { durable = "d" }))
    closed("js:consumer_info", j:consumer_info("S", "d"))
    closed("js:delete_consumer", j:delete_consumer("S", "d"))
    closed("js:consumers", j:consumers("S"))
    closed("js:ensure_stream_for", j:ensure_stream_for("s.a"))
    closed("js:publish", j:publish("s.a", "x"))
    closed("js:publish_async", j:publish_async("s.a", "x"))
    closed("js:publish_async with msg_id", j:publish_async("s.a", "x", { msg_id = "m1" }))
    T.eq(j:publish_async_pending(), 0)
    T.eq(j:publish_async_complete(1), 0)
    T.eq(j:publish_async_stats().pending, 0)
    j:on_publish_error(function() end)
    closed("js:consume", j:consume("S", "d", function() end))
    closed("js:messages", j:messages("S", "d"))
    closed("js:fetch", j:fetch("S", "d", 1))
    closed("js:fetch_bytes", j:fetch_bytes("S", "d", 1000))
    closed("js:create_kv", j:create_kv{ bucket = "b" })
    closed("js:kv", j:kv("b"))
    closed("js:delete_kv", j:delete_kv("b"))
    local o = j:ordered("S")
    closed("ordered:fetch", o:fetch(1, { expires = 1 }))
    closed("ordered:consume", o:consume(function() end))
    closed("ordered:messages", o:messages())
    -- misuse still raises
    T.raises(function() j:publish_async(nil, "x") end, "js:publish_async: bad argument 'subject'")
    T.raises(function() j:publish(42, "x") end, "js:publish: bad argument 'subject'")
    T.raises(function() j:stream_info(42) end, "js:stream_info: bad argument 'name'")
    T.raises(function() j:fetch("S", "d", 0) end, "js:fetch: bad argument 'n'")
  end
  -- objects made while open
  closed("kv:get", kv:get("k"))
  closed("kv:put", kv:put("k", "v"))
  closed("kv:create", kv:create("k2", "v"))
  closed("kv:update", kv:update("k", "v", 1))
  closed("kv:delete", kv:delete("k"))
  closed("kv:purge", kv:purge("k"))
  closed("kv:status", kv:status())
  local list, code = oc:fetch(1, { expires = 1 })
  T.eq({ list, code }, { nil, "closed" }, "ordered:fetch (made and used while open)")
end

local function setup()
  local nc = assert(jet.connect{ servers = srv.url })
  local js = nc:jetstream()
  assert(js:stream{ name = "S", subjects = { "s.>" }, storage = "memory" })
  assert(js:consumer("S", { durable = "d" }))
  assert(js:publish_async("s.a", "warm the publisher up"):wait(5))
  local kv = assert(js:create_kv{ bucket = "b", storage = "memory" })
  local oc = js:ordered("S")
  T.eq(#assert(oc:fetch(1, { expires = 1 })), 1)
  return nc, js, kv, oc
end

T.test("every call after nc:close() returns nil, 'closed' (or its harmless value)", function()
  local nc, js, kv, oc = setup()
  nc:close()
  check_all(nc, js, nc:jetstream(), kv, oc)
  jet.sleep(0.05)     -- the same once the closed event went through
  check_all(nc, js, nc:jetstream(), kv, oc)
end)

T.test("every call after nc:drain() returns nil, 'closed' (or its harmless value)", function()
  local nc, js, kv, oc = setup()
  T.eq(nc:drain(5), true)
  check_all(nc, js, nc:jetstream(), kv, oc)
end)

T.run()
