-- Handler policies: jet.retry.backoff with a dead-letter subject, permanent
-- failures, custom policies, the server killed during DLQ publishes, and
-- jet.idempotent on a KV bucket.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url, reconnect = { wait = 0.1, max = -1 } })
local js = nc:jetstream{ timeout = 2 }

local function fresh(name, ccfg)
  js:delete_stream(name)
  assert(js:stream{ name = name, subjects = { name:lower() .. ".>" }, storage = "file" })
  if ccfg then
    ccfg.durable = ccfg.durable or "C"
    assert(js:consumer(name, ccfg))
  end
end

local function dlq_entries(stream)
  local out = {}
  local n = js:stream_info(stream).state.last_seq
  for seq = 1, n do
    local m = js:get_msg(stream, seq)
    if m then out[#out + 1] = m end
  end
  return out
end

local function settled(stream)
  local ci = js:consumer_info(stream, "C")
  return ci.num_pending == 0 and ci.num_ack_pending == 0
end

T.test("failing every 3rd message with max_deliver=3: the DLQ holds exactly those, once, with headers", function()
  fresh("WORK", { ack_wait = 5 }); fresh("DLQ")
  for i = 1, 30 do assert(js:publish("work.x", "job " .. i)) end
  local deliveries = {}
  local h = assert(js:consume("WORK", "C", function(msg)
    local seq = msg:metadata().stream_seq
    deliveries[seq] = (deliveries[seq] or 0) + 1
    if seq % 3 == 0 then error("poison " .. seq) end
  end, { retry = jet.retry.backoff{ initial = 0.05, max = 0.2, max_deliver = 3, dlq = "dlq.work" } }))
  T.wait_until(function() return js:stream_info("DLQ").state.messages == 10 and settled("WORK") end, 20)
  jet.sleep(0.5)
  local d = dlq_entries("DLQ")
  T.eq(#d, 10)
  local got = {}
  for _, m in ipairs(d) do
    local seq = tonumber(m.headers["Jetlua-Dlq-Sequence"])
    T.ok(seq % 3 == 0, "only poisoned messages: " .. seq)
    T.ok(not got[seq], "each once"); got[seq] = true
    T.eq(m.data, "job " .. seq)
    T.eq(m.headers["Jetlua-Dlq-Subject"], "work.x")
    T.eq(m.headers["Jetlua-Dlq-Stream"], "WORK")
    T.eq(m.headers["Jetlua-Dlq-Delivered"], "3")
    T.ok(m.headers["Jetlua-Dlq-Error"]:find("poison " .. seq, 1, true), m.headers["Jetlua-Dlq-Error"])
    T.ok(m.headers["Jetlua-Dlq-Time"]:find("^%d%d%d%d%-%d%d%-%d%dT"), m.headers["Jetlua-Dlq-Time"])
    T.eq(m.headers["Nats-Msg-Id"], "WORK:" .. seq)
  end
  for seq = 1, 30 do
    T.eq(deliveries[seq], seq % 3 == 0 and 3 or 1, "deliveries of " .. seq)
  end
  jet.sleep(1)
  for seq = 3, 30, 3 do T.eq(deliveries[seq], 3, "termed: not delivered again") end
  T.eq(h:stats().termed, 10)
  h:stop()
end)

T.test("backoff delays follow initial * factor^(n-1)", function()
  fresh("BO", { ack_wait = 10 })
  assert(js:publish("bo.x", "x"))
  local times = {}
  local policy = jet.retry.backoff{ initial = 0.3, factor = 2, jitter = 0, max_deliver = 4, on_exhausted = "term" }
  local want = { 0.3, 0.6, 1.2 }
  for i = 1, 3 do T.near(policy.delay(i), want[i], 1e-9, "the policy's delay " .. i) end
  local h = assert(js:consume("BO", "C", function()
    times[#times + 1] = jet.monotonic()
    error("always")
  end, { retry = policy }))
  T.wait_until(function() return #times == 4 end, 60)
  -- the server held each redelivery back at least that long (how much longer depends on the
  -- machine)
  for i = 1, 3 do
    local gap = times[i + 1] - times[i]
    T.ok(gap >= want[i] - 0.05, ("delay %d: redelivered after %.2f s, before %.1f s"):format(i, gap, want[i]))
  end
  jet.sleep(1.5)
  T.eq(#times, 4, "termed after max_deliver")
  h:stop()
end)

T.test("jet.fail.permanent goes straight to the DLQ; custom policies", function()
  fresh("PERM", { ack_wait = 5 }); fresh("PDLQ")
  assert(js:publish("perm.x", "bad data"))
  local n = 0
  local h = assert(js:consume("PERM", "C", function(msg)
    n = n + 1
    jet.fail.permanent("cannot parse " .. msg.data)
  end, { retry = jet.retry.backoff{ max_deliver = 5, dlq = "pdlq.x" } }))
  T.wait_until(function() return js:stream_info("PDLQ").state.messages == 1 end, 10)
  T.eq(n, 1, "no retry")
  local m = js:get_msg("PDLQ", 1)
  T.eq(m.headers["Jetlua-Dlq-Delivered"], "1")
  T.ok(m.headers["Jetlua-Dlq-Error"]:find("cannot parse bad data", 1, true), m.headers["Jetlua-Dlq-Error"])
  h:stop()
  -- a custom policy: a plain function (msg, err, meta) -> action
  fresh("CUST", { ack_wait = 5 })
  assert(js:publish("cust.x", "1")); assert(js:publish("cust.x", "2"))
  local seen, errs = {}, {}
  h = assert(js:consume("CUST", "C", function(msg)
    seen[#seen + 1] = msg.data .. "@" .. msg:metadata().num_delivered
    error("nope")
  end, { retry = function(msg, err, meta)
    errs[#errs + 1] = tostring(err):match("nope") and meta.stream or "?"
    if msg.data == "1" and meta.num_delivered < 2 then return "nak", 0.1 end
    return "ack"
  end }))
  T.wait_until(function() return #seen == 3 end, 10)
  jet.sleep(0.5)
  table.sort(seen)
  T.eq(seen, { "1@1", "1@2", "2@1" })
  T.eq(errs, { "CUST", "CUST", "CUST" })
  T.ok(settled("CUST"))
  h:stop()
end)

T.test("the server killed during DLQ publishes: nothing lost, no DLQ duplicate", function()
  fresh("KW", { ack_wait = 3 }); fresh("KDLQ")
  local n = 400
  for i = 1, n do js:publish_async("kw.x", tostring(i)) end
  T.eq(js:publish_async_complete(30), 0)
  local h = assert(js:consume("KW", "C", function()
    jet.fail.permanent("poison")
  end, { concurrency = 4, retry = jet.retry.backoff{ max_deliver = 1, dlq = "kdlq.x" } }))
  T.wait_until(function() return js:stream_info("KDLQ").state.messages >= 100 end, 30)
  srv:kill()
  jet.sleep(0.3)
  srv:start()
  T.wait_until(function()
    local ok, done = pcall(function() return js:stream_info("KDLQ").state.messages == n and settled("KW") end)
    return ok and done
  end, 60, "every message in the DLQ and every original termed")
  jet.sleep(1)
  local d = dlq_entries("KDLQ")
  T.eq(#d, n, "no duplicate in the DLQ")
  local seqs = {}
  for _, m in ipairs(d) do
    local s = tonumber(m.headers["Jetlua-Dlq-Sequence"])
    T.ok(not seqs[s], "once: " .. s); seqs[s] = true
  end
  for i = 1, n do T.ok(seqs[i], "in the DLQ: " .. i) end
  T.eq(js:stream_info("KW").state.messages, n, "originals kept in their stream")
  h:stop()
end)

T.test("jet.idempotent: 10,000 messages each delivered twice, the side effect once each", function()
  fresh("IDEM", { ack_wait = 30 })
  js:delete_kv("idem_done")
  local n = 10000
  for i = 1, n do js:publish_async("idem.x", tostring(i)) end
  T.eq(js:publish_async_complete(30), 0)
  local effects, total = {}, 0
  local once = jet.idempotent{ js = js, bucket = "idem_done", ttl = 600 }
  local handler = once(function(msg)
    local s = msg:metadata().stream_seq
    effects[s] = (effects[s] or 0) + 1
    total = total + 1
  end)
  for pass = 1, 2 do
    if pass == 2 then
      assert(js:delete_consumer("IDEM", "C"))
      assert(js:consumer("IDEM", { durable = "C", ack_wait = 30 }))   -- everything again
    end
    local h = assert(js:consume("IDEM", "C", handler, { concurrency = 64 }))
    T.wait_until(function() return settled("IDEM") and h:stats().delivered >= n end, 120, "pass " .. pass)
    T.eq(h:stats().delivered, n)
    h:drain()
  end
  T.eq(total, n, "side effects")
  for i = 1, n do if effects[i] ~= 1 then error("stream_seq " .. i .. ": " .. tostring(effects[i])) end end
  T.eq(jet.metrics.counter("jetlua_idempotent_skipped_total"):value(), n)
end)

T.test("bad input to the policies raises naming the argument", function()
  T.raises(function() jet.retry.backoff{ intial = 1 } end, "jet.retry.backoff: unknown option 'intial'")
  T.raises(function() jet.retry.backoff{ max_deliver = "3" } end, "bad argument 'max_deliver'")
  T.raises(function() jet.retry.backoff{ on_exhausted = "dlq" } end, "bad argument 'dlq'")
  T.raises(function() jet.retry.backoff{ on_exhausted = "drop" } end, "bad argument 'on_exhausted'")
  T.raises(function() jet.idempotent{ bucket = "x" } end, "jet.idempotent: bad argument 'js'")
  T.raises(function() jet.idempotent{ js = js, bucket = "x", ttl = "1d" } end, "bad argument 'ttl'")
  T.raises(function() jet.idempotent{ js = js, bucket = "x" }(42) end, "bad argument 'handler'")
  fresh("RB", {})
  T.raises(function() js:consume("RB", "C", print, { retry = "backoff" }) end, "js:consume: bad argument 'retry'")
end)

T.run()
