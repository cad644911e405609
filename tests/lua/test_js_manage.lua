-- JetStream management from Lua: streams and consumers as code.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url })
local js = nc:jetstream()

T.test("stream create-or-update: the declaration is the desired state", function()
  local decl = { name = "ORDERS", subjects = { "orders.>" }, storage = "file",
    max_age = 3600, duplicate_window = 60, description = "orders" }
  local info, changed = js:stream(decl)
  T.ok(info, changed)
  T.eq(changed, "created")
  T.eq(info.config.max_age, 3600)
  T.eq(info.config.duplicate_window, 60)
  T.eq(info.config.storage, "file")
  info, changed = js:stream(decl)
  T.eq(changed, nil, "re-declaring the same config must not update")
  T.eq(info.config.max_age, 3600)
  decl.max_msgs = 1000
  info, changed = js:stream(decl)
  T.eq(changed, "updated")
  T.eq(info.config.max_msgs, 1000)
  T.eq(info.config.max_age, 3600, "what is still declared is kept")
  -- settings removed from the declaration go back to the server's defaults
  info, changed = js:stream{ name = "ORDERS", subjects = { "orders.>" } }
  T.eq(changed, "updated")
  T.eq(info.config.max_msgs, -1)
  T.eq(info.config.max_age, 0)
  T.eq(info.config.duplicate_window, 120)
  T.eq(info.config.description, nil)
  info, changed = js:stream{ name = "ORDERS", subjects = { "orders.>" }, storage = "file" }
  T.eq(changed, nil, "declaring a default explicitly is no change")
  T.eq(info.config.storage, "file")
end)

T.test("changing an immutable field is a clear error", function()
  local info, code, detail = js:stream{ name = "ORDERS", storage = "memory" }
  T.eq(info, nil)
  T.eq(code, "immutable")
  T.ok(detail:find("storage", 1, true), detail)
end)

T.test("bad names, unknown keys and wrong types raise", function()
  for _, bad in ipairs{ "a.b", "a*", "a>", "a/b", "a\\b", "a b", "" } do
    T.raises(function() js:stream{ name = bad } end, "js:stream: bad argument 'name': invalid name")
  end
  T.raises(function() js:stream{ name = "X", max_agee = 1 } end, "js:stream: unknown option 'max_agee'")
  T.raises(function() js:stream{ name = "X", storage = "disk" } end,
    "js:stream: bad argument 'storage': 'disk' is not one of file, memory")
  T.raises(function() js:stream{ name = "X", max_age = "1h" } end, "js:stream: bad argument 'max_age': number expected")
  T.raises(function() js:consumer("ORDERS", { durable = "a.b" }) end,
    "js:consumer: bad argument 'durable': invalid name")
  T.raises(function() js:consumer("ORDERS", { durable = "ok", ack_policy = "sometimes" }) end,
    "bad argument 'ack_policy'")
  T.raises(function() js:consumer("ORDERS", { durable = "ok", max_deliverr = 1 }) end,
    "js:consumer: unknown option 'max_deliverr'")
  T.raises(function() nc:jetstream{ domian = "x" } end, "nc:jetstream: unknown option 'domian'")
  T.raises(function() js:purge("ORDERS", { subjct = "x" }) end, "js:purge: unknown option 'subjct'")
end)

T.test("purge variants, get and delete messages", function()
  js:stream{ name = "P", subjects = { "p.>" }, storage = "memory" }
  for i = 1, 10 do assert(js:publish(i % 2 == 0 and "p.even" or "p.odd", tostring(i))) end
  local m = js:get_msg("P", 3)
  T.eq(m.subject, "p.odd"); T.eq(m.data, "3"); T.eq(m.seq, 3)
  T.eq(js:get_last_msg("P", "p.even").data, "10")
  T.eq(js:purge("P", { keep = 7 }), 3)             -- 1, 2, 3 go
  T.eq(js:stream_info("P").state.messages, 7)
  T.eq(js:delete_msg("P", 5), true)
  local none, code = js:get_msg("P", 5)
  T.eq(none, nil); T.eq(code, "no_message_found")
  T.eq(js:purge("P", { subject = "p.odd" }), 2)    -- 7 and 9
  T.eq(js:stream_info("P").state.messages, 4)
  T.eq(js:purge("P", { seq = 10 }), 3)             -- everything below seq 10: 4, 6, 8
  T.eq(js:stream_info("P").state.messages, 1)
  T.eq(js:purge("P"), 1)
  T.eq(js:stream_info("P").state.messages, 0)
end)

T.test("consumers as code", function()
  local c, changed = js:consumer("ORDERS", { durable = "billing", ack_wait = 15, max_deliver = 5,
    filter_subject = "orders.new", max_ack_pending = 100, deliver_policy = "all" })
  T.ok(c, changed)
  T.eq(changed, "created")
  T.eq(c.config.ack_wait, 15)
  T.eq(c.config.filter_subject, "orders.new")
  c, changed = js:consumer("ORDERS", { durable = "billing", ack_wait = 15, max_deliver = 5,
    filter_subject = "orders.new", max_ack_pending = 100, deliver_policy = "all" })
  T.eq(changed, nil); T.eq(c.config.max_ack_pending, 100)
  c, changed = js:consumer("ORDERS", { durable = "billing", ack_wait = 15, max_deliver = 5,
    filter_subject = "orders.new", max_ack_pending = 200 })
  T.eq(changed, "updated")
  T.eq(c.config.max_ack_pending, 200)
  -- removed from the declaration: back to the server's defaults
  c, changed = js:consumer("ORDERS", { durable = "billing", filter_subject = "orders.new" })
  T.eq(changed, "updated")
  T.eq(c.config.ack_wait, 30); T.eq(c.config.max_deliver, -1); T.eq(c.config.max_ack_pending, 1000)
  c, changed = js:consumer("ORDERS", { durable = "billing", filter_subject = "orders.new" })
  T.eq(changed, nil); T.eq(c.config.max_ack_pending, 1000)
  c = js:consumer("ORDERS", { durable = "retry", backoff = { 1, 5, 10 }, max_deliver = 5 })
  T.eq(c.config.backoff, { 1, 5, 10 })
  T.eq(js:consumer_info("ORDERS", "billing").name, "billing")
  local list = js:consumers("ORDERS")
  T.eq(#list, 2)
  T.eq(js:delete_consumer("ORDERS", "retry"), true)
  local gone, code = js:consumer_info("ORDERS", "retry")
  T.eq(gone, nil); T.eq(code, "consumer_not_found")
end)

T.test("more than 256 streams are listed across pages", function()
  local n = 260
  for i = 1, n do
    assert(js:stream{ name = ("PG%03d"):format(i), subjects = { ("pg.%d"):format(i) }, storage = "memory" })
  end
  local names = js:stream_names()
  local count = 0
  for _, name in ipairs(names) do if name:find("^PG") then count = count + 1 end end
  T.eq(count, n)
  local infos = js:streams()
  count = 0
  for _, info in ipairs(infos) do if info.config.name:find("^PG") then count = count + 1 end end
  T.eq(count, n)
  T.ok(js:account_info().streams >= n)
  for i = 1, n do js:delete_stream(("PG%03d"):format(i)) end
end)

T.test("management calls from several coroutines at once", function()
  local done, results = 0, {}
  for i = 1, 20 do
    jet.spawn(function()
      local info = js:stream{ name = "CC" .. i, subjects = { "cc." .. i }, storage = "memory" }
      results[i] = info and js:stream_info("CC" .. i).config.name
      js:delete_stream("CC" .. i)
      done = done + 1
    end)
  end
  T.wait_until(function() return done == 20 end, 20)
  for i = 1, 20 do T.eq(results[i], "CC" .. i) end
end)

T.test("ensure_stream_for maps a subject to a stream", function()
  local info, changed = js:ensure_stream_for("invoices.created", { storage = "memory", max_age = 60 })
  T.ok(info, changed)
  T.eq(info.config.name, "INVOICES")
  T.eq(info.config.subjects, { "invoices.>" })
  T.eq(info.config.max_age, 60)
end)

T.run()
