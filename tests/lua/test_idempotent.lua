-- jet.idempotent claims a key before running the handler: copies of a message
-- running at once (concurrency > 1, or two processes sharing a consumer) do
-- the side effect exactly once; a crashed claimer does not block forever; a
-- claim held by someone else naks (never skips); a failing handler gives its
-- claim back.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url })
local js = nc:jetstream{ timeout = 5 }

local function fresh(name, ccfg)
  js:delete_stream(name)
  assert(js:stream{ name = name, subjects = { name:lower() .. ".>" }, storage = "file" })
  if ccfg then
    ccfg.durable = ccfg.durable or "C"
    assert(js:consumer(name, ccfg))
  end
end

local function settled(stream, durable)
  local ci = js:consumer_info(stream, durable or "C")
  return ci.num_pending == 0 and ci.num_ack_pending == 0
end

-- each key published twice in a row (outside any dedupe: no msg id)
local function publish_pairs(subject, n)
  for i = 1, n do
    for _ = 1, 2 do assert(js:publish(subject, "job " .. i, { headers = { ["Order-Id"] = "order-" .. i } })) end
  end
end

local function counter(name) return jet.metrics.counter(name):value() end
local by_order = function(msg) return msg:header("Order-Id") end

T.test("concurrency 8, every message twice (adjacent pairs): each side effect exactly once", function()
  fresh("IDEM1", { ack_wait = 30 })
  js:delete_kv("idem1")
  local pairs_n = 40
  publish_pairs("idem1.x", pairs_n)
  local effects, runs, running, overlap = {}, 0, 0, 0
  local skipped0 = counter("jetlua_idempotent_skipped_total")
  local once = jet.idempotent{ js = js, bucket = "idem1", key = by_order }
  local h = assert(js:consume("IDEM1", "C", once(function(msg)
    local k = msg:header("Order-Id")
    running = running + 1
    if running > 1 then overlap = overlap + 1 end
    jet.sleep(0.05)                                  -- both copies of a pair are in flight now
    running = running - 1
    effects[k] = (effects[k] or 0) + 1
    runs = runs + 1
  end), { concurrency = 8 }))
  T.wait_until(function() return runs >= pairs_n and settled("IDEM1") end, 60, "all handled")
  h:drain()
  T.ok(overlap > 0, "handlers overlapped")
  T.eq(runs, pairs_n, "side effects")
  for i = 1, pairs_n do T.eq(effects["order-" .. i], 1, "order-" .. i) end
  T.eq(counter("jetlua_idempotent_skipped_total") - skipped0, pairs_n, "each duplicate acked as done")
  local kv = assert(js:kv("idem1"))
  T.eq(kv:get("order-1").value, "done")
end)

T.test("two processes sharing a consumer, every message twice: each side effect exactly once", function()
  fresh("IDEM2", { ack_wait = 30 })
  fresh("EFFECTS")
  js:delete_kv("idem2")
  local dir = T.tmpdir()
  local script = T.write_file(dir .. "/worker.lua", [[
    local jet = require "jetlua"
    local url, tag = ...
    local nc = assert(jet.connect{ servers = url })
    local js = nc:jetstream()
    local once = jet.idempotent{ js = js, bucket = "idem2", key = function(m) return m:header("Order-Id") end }
    assert(js:consume("IDEM2", "C", once(function(msg)
      jet.sleep(0.03)
      assert(js:publish("effects.x", msg:header("Order-Id"), { headers = { Worker = tag } }))
    end), { concurrency = 8, max_messages = 4 }))
  ]])
  local procs = {}
  for i = 1, 2 do
    procs[i] = T.jetlua({ "run", script, srv.url, "w" .. i },
      { stdout = dir .. "/out" .. i, stderr = dir .. "/err" .. i })
  end
  T.wait_until(function() return js:consumer_info("IDEM2", "C").num_waiting >= 2 end, 30, "both workers pulling")
  local pairs_n = 60
  publish_pairs("idem2.x", pairs_n)
  T.wait_until(function()
    return js:stream_info("EFFECTS").state.messages >= pairs_n and settled("IDEM2")
  end, 60, "all handled")
  for i = 1, 2 do procs[i]:kill("TERM"); T.ok(procs[i]:wait(30), "worker " .. i .. " exits") end
  local n = js:stream_info("EFFECTS").state.messages
  local seen, workers = {}, {}
  for seq = 1, n do
    local m = assert(js:get_msg("EFFECTS", seq))
    seen[m.data] = (seen[m.data] or 0) + 1
    workers[m.headers.Worker] = true
  end
  T.eq(n, pairs_n, "side effects")
  for i = 1, pairs_n do T.eq(seen["order-" .. i], 1, "order-" .. i) end
  T.ok(workers.w1 and workers.w2, "both processes did work")
end)

T.test("a claim held by someone else naks (never skips); once it says done, the message is acked", function()
  fresh("IDEM3", { ack_wait = 30 })
  js:delete_kv("idem3")
  local kv = assert(js:create_kv{ bucket = "idem3" })
  assert(kv:put("order-1", ("claimed someone-else %.3f"):format(jet.now() + 3600)))
  assert(js:publish("idem3.x", "job", { headers = { ["Order-Id"] = "order-1" } }))
  local runs = 0
  local busy0 = counter("jetlua_idempotent_busy_total")
  local once = jet.idempotent{ js = js, bucket = "idem3", key = by_order }
  local h = assert(js:consume("IDEM3", "C", once(function() runs = runs + 1 end)))
  T.wait_until(function() return counter("jetlua_idempotent_busy_total") - busy0 >= 3 end, 30,
    "nak'd and redelivered while the claim is held")
  T.eq(runs, 0)
  T.eq(h:stats().acked, 0, "not acked while someone else holds the claim")
  T.ok(h:stats().naked >= 3, "nak'd")
  assert(kv:put("order-1", "done"))            -- the other claimer finished
  T.wait_until(function() return settled("IDEM3") end, 30, "acked once done")
  h:drain()
  T.eq(runs, 0, "never run here")
end)

T.test("a claimer killed with SIGKILL mid-handler: its stale claim is taken over and the work done", function()
  fresh("IDEM4", { ack_wait = 2 })
  js:delete_kv("idem4")
  local dir = T.tmpdir()
  local script = T.write_file(dir .. "/stuck.lua", [[
    local jet = require "jetlua"
    local nc = assert(jet.connect{ servers = (...) })
    local js = nc:jetstream()
    local once = jet.idempotent{ js = js, bucket = "idem4", claim_ttl = 1 }
    assert(js:consume("IDEM4", "C", once(function(msg) jet.sleep(3600) end), { in_progress = true }))
  ]])
  local p = T.jetlua({ "run", script, srv.url }, { stdout = dir .. "/out", stderr = dir .. "/err" })
  assert(js:publish("idem4.x", "job", { msg_id = "job-1" }))
  local kv
  T.wait_until(function()
    kv = kv or js:kv("idem4")
    local e = kv and kv:get("job-1")
    return e and e.value:find("^claimed ")
  end, 30, "the claim of the process that will die")
  jet.sleep(1.5)                               -- renewed past its first claim_ttl: still held
  T.ok(kv:get("job-1").value:find("^claimed "), "a live claimer keeps renewing")
  p:kill("KILL"); p:wait(10)
  local runs = 0
  local takeovers0 = counter("jetlua_idempotent_takeovers_total")
  local once = jet.idempotent{ js = js, bucket = "idem4", claim_ttl = 1 }
  local h = assert(js:consume("IDEM4", "C", once(function() runs = runs + 1 end)))
  T.wait_until(function() return runs == 1 and settled("IDEM4") end, 60, "taken over")
  h:drain()
  T.eq(kv:get("job-1").value, "done")
  T.eq(counter("jetlua_idempotent_takeovers_total") - takeovers0, 1)
end)

T.test("a long handler renews its claim: a copy arriving meanwhile waits instead of running", function()
  fresh("IDEM5", { ack_wait = 30 })
  js:delete_kv("idem5")
  publish_pairs("idem5.x", 1)
  local runs = 0
  local once = jet.idempotent{ js = js, bucket = "idem5", key = by_order, claim_ttl = 1.2 }
  local h = assert(js:consume("IDEM5", "C", once(function()
    runs = runs + 1
    jet.sleep(3.6)                 -- three claim_ttls: renewed every 0.4 s
  end), { concurrency = 2 }))
  T.wait_until(function() return settled("IDEM5") end, 60, "both copies handled")
  h:drain()
  T.eq(runs, 1)
end)

T.test("a handler that fails gives its claim back: the redelivery runs it", function()
  fresh("IDEM6", { ack_wait = 30 })
  js:delete_kv("idem6")
  assert(js:publish("idem6.x", "job", { msg_id = "job-1" }))
  local attempts = 0
  local once = jet.idempotent{ js = js, bucket = "idem6" }
  local h = assert(js:consume("IDEM6", "C", once(function()
    attempts = attempts + 1
    if attempts == 1 then error("payment service busy") end
  end), { retry = jet.retry.backoff{ initial = 0.1, max_deliver = 5 } }))
  T.wait_until(function() return attempts == 2 and settled("IDEM6") end, 30, "retried and done")
  h:drain()
  T.eq((assert(js:kv("idem6")):get("job-1")).value, "done")
end)

T.test("no concurrency option: the default runs many at once; a redelivery of a running message waits", function()
  -- ack_wait 2 s: while the handlers run, the server redelivers each message (same msg id);
  -- with the default concurrency the copy runs beside the first, finds its live claim, naks
  fresh("IDEM7", { ack_wait = 2 })
  js:delete_kv("idem7")
  local n = 10
  for i = 1, n do assert(js:publish("idem7.x", "job", { msg_id = "job-" .. i })) end
  local runs, running, most = {}, 0, 0
  local busy0 = counter("jetlua_idempotent_busy_total")
  local once = jet.idempotent{ js = js, bucket = "idem7" }
  local h = assert(js:consume("IDEM7", "C", once(function(msg)
    local id = msg:header("Nats-Msg-Id")
    runs[id] = (runs[id] or 0) + 1
    running = running + 1
    most = math.max(most, running)
    local t0 = jet.monotonic()             -- until every message's redelivery was turned away
    while counter("jetlua_idempotent_busy_total") - busy0 < n and jet.monotonic() - t0 < 30 do
      jet.sleep(0.05)
    end
    running = running - 1
  end)))
  T.wait_until(function()
    local done = 0
    for _ in pairs(runs) do done = done + 1 end
    return done == n and running == 0 and settled("IDEM7")
  end, 60, "all handled")
  h:drain()
  T.ok(most > 1, "handlers ran at once without a concurrency option (most at once: " .. most .. ")")
  T.ok(counter("jetlua_idempotent_busy_total") - busy0 >= n, "each redelivery found the live claim")
  for i = 1, n do T.eq(runs["job-" .. i], 1, "job-" .. i) end
  local kv = assert(js:kv("idem7"))
  T.eq(kv:get("job-1").value, "done")
end)

T.test("a mark refused (the claim was taken over meanwhile): nak'd, not acked; done by the other", function()
  fresh("IDEM8", { ack_wait = 30 })
  js:delete_kv("idem8")
  local kv = assert(js:create_kv{ bucket = "idem8" })
  assert(js:publish("idem8.x", "job", { msg_id = "job-1" }))
  local runs = 0
  local once = jet.idempotent{ js = js, bucket = "idem8" }
  local h = assert(js:consume("IDEM8", "C", once(function()
    runs = runs + 1
    -- someone took the claim over while this ran (as after a stall past claim_ttl)
    assert(kv:put("job-1", ("claimed someone-else %.3f"):format(jet.now() + 3600)))
  end)))
  T.wait_until(function() return h:stats().naked >= 2 end, 30, "nak'd, and nak'd again while the other holds it")
  T.eq(h:stats().acked, 0, "never acked before a mark of its own was stored")
  assert(kv:put("job-1", "done"))              -- the other claimer finished
  T.wait_until(function() return settled("IDEM8") end, 30, "acked once done")
  h:drain()
  T.eq(runs, 1, "run once here")
  T.eq(kv:get("job-1").value, "done")
end)

T.test("a claimer dead after its side effect, before its mark: the redelivery runs it once", function()
  fresh("IDEM9", { ack_wait = 2 })
  fresh("EFFECTS9")
  js:delete_kv("idem9")
  local dir = T.tmpdir()
  local script = T.write_file(dir .. "/dies.lua", [[
    local jet = require "jetlua"
    local nc = assert(jet.connect{ servers = (...) })
    local js = nc:jetstream()
    local once = jet.idempotent{ js = js, bucket = "idem9", claim_ttl = 1,
                                 key = function(m) return m:header("Order-Id") end }
    assert(js:consume("IDEM9", "C", once(function(msg)
      assert(js:publish("effects9.x", "dead"))                 -- the side effect is done
      local pid = io.open("/proc/self/stat"):read("*n")
      os.execute("kill -9 " .. pid)                            -- and the process dies before the mark
    end)))
  ]])
  local p = T.jetlua({ "run", script, srv.url }, { stdout = dir .. "/out", stderr = dir .. "/err" })
  assert(js:publish("idem9.x", "job", { headers = { ["Order-Id"] = "order-1" } }))
  T.ok(p:wait(30), "the claimer died")
  local kv = assert(js:kv("idem9"))
  T.ok(kv:get("order-1").value:find("^claimed "), "its claim is left, no mark")
  T.eq(js:stream_info("EFFECTS9").state.messages, 1)
  local runs = 0
  local takeovers0 = counter("jetlua_idempotent_takeovers_total")
  local skipped0 = counter("jetlua_idempotent_skipped_total")
  local once = jet.idempotent{ js = js, bucket = "idem9", claim_ttl = 1, key = by_order }
  local h = assert(js:consume("IDEM9", "C", once(function()
    runs = runs + 1
    assert(js:publish("effects9.x", "alive"))
  end)))
  T.wait_until(function() return runs == 1 and settled("IDEM9") end, 60, "redelivered, taken over, done")
  -- a later copy of the message (same key) is skipped
  assert(js:publish("idem9.x", "job", { headers = { ["Order-Id"] = "order-1" } }))
  T.wait_until(function() return settled("IDEM9") end, 30, "the copy handled")
  h:drain()
  T.eq(runs, 1, "run once by the redelivery")
  T.eq(counter("jetlua_idempotent_takeovers_total") - takeovers0, 1)
  T.eq(counter("jetlua_idempotent_skipped_total") - skipped0, 1, "the copy skipped")
  T.eq(kv:get("order-1").value, "done")
  T.eq(js:stream_info("EFFECTS9").state.messages, 2, "the dead claimer's effect and one more")
end)

T.test("a bucket without direct gets (made before they were asked for) still works", function()
  fresh("IDEM10", { ack_wait = 30 })
  js:delete_kv("idem10")
  assert(js:stream{ name = "KV_idem10", subjects = { "$KV.idem10.>" }, max_msgs_per_subject = 1,
                    discard = "new", allow_rollup = true, deny_delete = true })
  T.ok(assert(js:kv("idem10")).direct == false)
  publish_pairs("idem10.x", 10)
  local effects = {}
  local once = jet.idempotent{ js = js, bucket = "idem10", key = by_order }
  local h = assert(js:consume("IDEM10", "C", once(function(msg)
    local k = msg:header("Order-Id")
    effects[k] = (effects[k] or 0) + 1
  end)))
  T.wait_until(function() return settled("IDEM10") end, 30, "all handled")
  h:drain()
  for i = 1, 10 do T.eq(effects["order-" .. i], 1, "order-" .. i) end
  T.eq(assert(js:create_kv{ bucket = "idem_new" }).direct, true, "create_kv asks for direct gets")
  T.eq(js:stream_info("KV_idem_new").config.allow_direct, true)
end)

T.test("KV writes: PubAcks read on the loop from each key's first write; a deleted bucket's fail", function()
  fresh("IDEM11", { ack_wait = 30 })
  js:delete_kv("idem11")
  local js2 = nc:jetstream{ timeout = 2 }          -- a publisher of its own: its stats are this test's
  local n = 40
  for i = 1, n do assert(js:publish("idem11.x", "job", { headers = { ["Order-Id"] = "o-" .. i } })) end
  local ran = 0
  local once = jet.idempotent{ js = js2, bucket = "idem11", key = by_order }
  local h = assert(js2:consume("IDEM11", "C", once(function() ran = ran + 1 end)))
  T.wait_until(function() return settled("IDEM11") end, 30, "all handled")
  h:drain()
  T.eq(ran, n, "handlers run")
  local st = js2:publish_async_stats()
  T.eq(st.acked, 2 * n, "a claim and a mark per key")
  T.eq(st.fast_acks, 2 * n, "every PubAck read on the loop, none through cnats' thread")
  -- every key done: a second consumer over the same messages reads each key once (a direct
  -- get), and those replies too are read on the loop
  assert(js:consumer("IDEM11", { durable = "C2", ack_wait = 30 }))
  local replies0, ran2 = nc:stats().fast_replies, 0
  h = assert(js2:consume("IDEM11", "C2", once(function() ran2 = ran2 + 1 end)))
  T.wait_until(function() return settled("IDEM11", "C2") end, 30, "all acked as done")
  h:drain()
  T.eq(ran2, 0, "no handler ran again")
  T.eq(nc:stats().fast_replies - replies0, n, "one direct get per key, read on the loop")
  -- the bucket's stream gone: its 503 on the fast path names no publish; the write still fails
  -- as no_responders (when its ack is due), and the next one at once (on the slow path)
  local kv = assert(js2:kv("idem11"))
  assert(js:delete_kv("idem11"))
  local r, code = kv:_send("k1", "v", 0)
  T.eq(r, nil); T.eq(code, "no_responders", "the first write")
  r, code = kv:_send("k2", "v", 0)
  T.eq(r, nil); T.eq(code, "no_responders", "the next write")
  T.eq(js2:publish_async_stats().pending, 0, "nothing left pending")
end)

T.test("bad input", function()
  T.raises(function() jet.idempotent{ js = js, bucket = "x", claim_ttl = 0 } end,
    "jet.idempotent: bad argument 'claim_ttl': must be > 0")
  T.raises(function() jet.idempotent{ js = js, bucket = "x", claim_ttl = "1" } end,
    "jet.idempotent: bad argument 'claim_ttl': number expected, got string")
  -- a core message (no $JS.ACK reply): a clear error, raised from the wrapped handler
  local once = jet.idempotent{ js = js, bucket = "idem_core" }
  local got, err
  local sub = nc:subscribe("idem.core", function(m) got = true; err = select(2, pcall(once(function() end), m)) end)
  nc:flush()
  nc:publish("idem.core", "x")
  T.wait_until(function() return got end, 10, "the core message")
  T.eq(err, "jet.idempotent: not a JetStream message (no $JS.ACK reply subject)")
  sub:unsubscribe()
end)

T.run()
