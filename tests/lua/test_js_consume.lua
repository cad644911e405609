-- Pull consumers in one process: consume, messages, fetch, acks, metadata,
-- statuses, heartbeats, stop/drain and bad input, against a real server.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url, reconnect = { wait = 0.1 } })
local js = nc:jetstream()

local function fresh(name, storage, ccfg)
  js:delete_stream(name)
  assert(js:stream{ name = name, subjects = { name:lower() .. ".>" }, storage = storage or "memory" })
  ccfg = ccfg or {}
  ccfg.durable = ccfg.durable or "C"
  assert(js:consumer(name, ccfg))
end

local function publish_n(subject, n, fmt)
  for i = 1, n do js:publish_async(subject, (fmt or "%d"):format(i)) end
  T.eq(js:publish_async_complete(30), 0, "every publish acked")
end

T.test("100,000 messages consumed: no loss, no duplicate, all acked, the connection kept", function()
  fresh("BIG", "file")
  local disconnects = 0
  nc:on("disconnected", function() disconnects = disconnects + 1 end)
  local n = 100000
  publish_n("big.x", n)
  local seen, count, dups = {}, 0, 0
  local h = assert(js:consume("BIG", "C", function(msg)
    local seq = msg:metadata().stream_seq
    if seen[seq] then dups = dups + 1 end
    seen[seq] = true
    count = count + 1
  end))
  T.wait_until(function() return count >= n end, 60, "all consumed")
  jet.sleep(0.3)
  T.eq(disconnects, 0, "no reconnect (a stale writable event once made cnats write 0 bytes and reconnect)")
  T.eq(h:stats().redelivered, 0, "nothing redelivered")
  T.eq(count, n); T.eq(dups, 0)
  for i = 1, n do if not seen[i] then error("stream_seq " .. i .. " missing") end end
  local st = h:stats()
  T.eq(st.delivered, n); T.eq(st.acked, n)
  T.ok(st.buffered + st.outstanding <= 4000, "bounded: " .. st.buffered .. "+" .. st.outstanding)
  assert(h:drain())
  T.ok(h:closed())
  T.wait_until(function() return js:consumer_info("BIG", "C").num_ack_pending == 0 end, 10, "acks reached the server")
end)

T.test("buffered + outstanding stay within max_messages with a slow handler", function()
  fresh("BND")
  publish_n("bnd.x", 300)
  local worst, count = 0, 0
  local h
  h = assert(js:consume("BND", "C", function()
    local st = h:stats()
    local held = st.buffered + st.outstanding + st.in_flight
    if held > worst then worst = held end
    count = count + 1
    jet.sleep(0.001)
  end, { max_messages = 50 }))
  T.wait_until(function() return count == 300 end, 30)
  T.ok(worst <= 50, "held at most " .. worst)
  T.ok(h:stats().pulls >= 6, "refilled in several pulls: " .. h:stats().pulls)
  h:stop()
end)

T.test("slow handlers: the window shrinks to what they get through in ack_wait/2 (no redelivery)", function()
  fresh("SLOW", "memory", { ack_wait = 3 })
  publish_n("slow.x", 150)
  local n = 0
  local h = assert(js:consume("SLOW", "C", function() n = n + 1; jet.sleep(0.04) end))
  T.wait_until(function() return n >= 60 end, 20)
  local st = h:stats()
  -- 40 ms handlers (or longer, on a busy machine), ack_wait 3 s: what they get through in
  -- 1.5 s at the pace jetlua measured, ~37 (max_messages is 500)
  local fits = 1500 / st.handler_ms
  T.ok(st.handler_ms >= 35, "handler_ms " .. st.handler_ms .. " for handlers that sleep 40 ms")
  T.ok(st.window >= 1 and st.window <= fits, ("window %d, %.1f handlers fit in ack_wait/2 (handler %.1f ms)")
    :format(st.window, fits, st.handler_ms))
  T.ok(st.buffered + st.outstanding + st.in_flight <= 128, "held " .. st.buffered + st.outstanding)
  T.wait_until(function() return n >= 150 end, 30)
  T.eq(h:stats().redelivered, 0, "no message waited past ack_wait")
  h:stop()
end)

T.test("slow start begins at 4 x concurrency (issue #13: it always began at 16)", function()
  fresh("RAMP")
  local h = assert(js:consume("RAMP", "C", function() end, { concurrency = 10 }))
  T.eq(h:stats().window, 40, "10 handlers: 40 before any is timed")
  T.wait_until(function() return h:stats().outstanding == 40 end, 10, "the first pull asks for the window")
  h:stop()
  local h1 = assert(js:consume("RAMP", "C", function() end))
  T.eq(h1:stats().window, 16, "1 handler: 16")
  h1:stop()
end)

T.test("a raise inside jet._js_pull leaves no engine behind (issue #13: it pinned it)", function()
  fresh("PIN")
  local reg = debug.getregistry()
  -- an engine holds its own userdata in the registry until it is finalized
  local function engines()
    local n = 0
    for _, v in pairs(reg) do
      if type(v) == "userdata" and getmetatable(v) == reg["jetlua.pull"] then n = n + 1 end
    end
    return n
  end
  local function held(x)
    for _, v in pairs(reg) do if rawequal(v, x) then return true end end
    return false
  end
  -- an options table that raises on a field read late (after the options the window needs)
  local late = setmetatable({ expires = 30, heartbeat = 15 }, { __index = function(_, k)
    if k == "advisory_subject" then error("late option " .. k) end
  end })
  local before = engines()    -- nothing below yields: no other engine can end meanwhile
  for _, mode in ipairs{ "consume", "messages" } do
    T.raises(function()
      jet._js_pull(nc, "$JS.API.CONSUMER.MSG.NEXT.PIN.C", mode, late, function() end, nil, "consumer PIN/C")
    end, "late option advisory_subject")
  end
  collectgarbage(); collectgarbage()
  T.eq(engines(), before, "no engine pinned in the registry")
  local h = assert(js:consume("PIN", "C", function() end))
  T.ok(held(h), "a live engine holds itself")
  h:stop()
  T.ok(not held(h), "a stopped one lets go")
end)

T.test("messages and metadata", function()
  fresh("MD")
  assert(js:publish("md.a", "hello", { headers = { ["X-K"] = { "1", "2" } } }))
  local list = assert(js:fetch("MD", "C", 1))
  T.eq(#list, 1)
  local m = list[1]
  T.eq(m.subject, "md.a"); T.eq(m.data, "hello")
  T.eq(m:header_values("X-K"), { "1", "2" })
  T.ok(m.reply:find("^%$JS%.ACK%."), m.reply)
  local md = m:metadata()
  T.eq(md.stream, "MD"); T.eq(md.consumer, "C"); T.eq(md.num_delivered, 1)
  T.eq(md.stream_seq, 1); T.eq(md.consumer_seq, 1); T.eq(md.num_pending, 0)
  T.ok(math.abs(md.timestamp - jet.now()) < 60, "timestamp in seconds: " .. md.timestamp)
  T.ok(m:ack_sync(5), "ack_sync confirmed")
  local ok, code = m:ack()
  T.eq(ok, nil); T.eq(code, "already_acked")
  T.eq(select(2, m:nak()), "already_acked"); T.eq(select(2, m:term()), "already_acked")
  T.eq(select(2, m:ack_sync()), "already_acked")
end)

T.test("a second ack of any kind sends nothing", function()
  fresh("DBL", "memory", { ack_wait = 1 })
  assert(js:publish("dbl.a", "x"))
  local m = js:fetch("DBL", "C", 1)[1]
  assert(m:term())
  T.eq(select(2, m:nak()), "already_acked")
  jet.sleep(1.5)
  -- a nak sent after the term would have made it come back
  local again = js:fetch("DBL", "C", 1, { expires = 0.5 })
  T.eq(#again, 0)
end)

T.test("handler raising: nak'd, redelivered with num_delivered growing", function()
  fresh("RAISE")
  assert(js:publish("raise.a", "x"))
  local deliveries = {}
  local h = assert(js:consume("RAISE", "C", function(msg)
    local nd = msg:metadata().num_delivered
    deliveries[#deliveries + 1] = nd
    if nd < 3 then error("boom " .. nd) end
  end))
  T.wait_until(function() return #deliveries >= 3 end, 30)   -- nak'd with 1 s, then 5 s delays
  T.eq(deliveries, { 1, 2, 3 })
  local st = h:stats()
  T.eq(st.handler_errors, 2); T.eq(st.naked, 2); T.eq(st.acked, 1); T.eq(st.redelivered, 2)
  h:stop()
end)

T.test("nak with a delay is honoured", function()
  fresh("DELAY")
  assert(js:publish("delay.a", "x"))
  local times = {}
  local h = assert(js:consume("DELAY", "C", function(msg)
    times[#times + 1] = jet.monotonic()
    if #times == 1 then msg:nak(1.0) end
  end))
  T.wait_until(function() return #times >= 2 end, 30)
  local gap = times[2] - times[1]
  T.ok(gap >= 0.9, "redelivered after " .. gap .. " s, before the 1 s delay")
  h:stop()
end)

T.test("term stops redelivery; in_progress keeps a slow message", function()
  fresh("TERM", "memory", { ack_wait = 1 })
  assert(js:publish("term.a", "x"))
  local n = 0
  local h = assert(js:consume("TERM", "C", function(msg) n = n + 1; msg:term() end))
  jet.sleep(2)
  T.eq(n, 1, "not redelivered after term")
  T.eq(h:stats().termed, 1)
  h:stop()
  fresh("WPI", "memory", { ack_wait = 1 })
  assert(js:publish("wpi.a", "x"))
  n = 0
  h = assert(js:consume("WPI", "C", function()
    n = n + 1
    jet.sleep(2.5)          -- longer than ack_wait: the automatic +WPI keeps it ours
  end, { in_progress = true }))
  T.wait_until(function() return h:stats().acked == 1 end, 10)
  jet.sleep(0.5)
  T.eq(n, 1, "no redelivery while in progress")
  T.ok(h:stats().in_progress >= 3, "in_progress sent " .. h:stats().in_progress)
  h:stop()
end)

T.test("max_ack_pending reached: consumption resumes as acks flow", function()
  fresh("MAP", "memory", { max_ack_pending = 10 })
  publish_n("map.x", 100)
  local held = {}
  local it = assert(js:messages("MAP", "C", { max_messages = 50 }))
  for _ = 1, 10 do held[#held + 1] = assert(it:next(5)) end
  T.eq(select(2, it:next(0.5)), "timeout", "the server holds the 11th")
  for _, m in ipairs(held) do m:ack() end
  local got = 10
  while got < 100 do
    local m = assert(it:next(5)); m:ack(); got = got + 1
  end
  T.eq(got, 100)
  it:stop()
end)

T.test("concurrency: handlers overlap up to the limit", function()
  fresh("CONC")
  publish_n("conc.x", 40)
  local running, peak, done = 0, 0, 0
  local h = assert(js:consume("CONC", "C", function()
    running = running + 1
    if running > peak then peak = running end
    jet.sleep(0.05)
    running = running - 1
    done = done + 1
  end, { concurrency = 8 }))
  T.wait_until(function() return done == 40 end, 20)
  T.eq(peak, 8)
  h:stop()
end)

T.test("fetch: batch, expires, no_wait, fetch_bytes", function()
  fresh("FE")
  local list, err = js:fetch("FE", "C", 5, { no_wait = true })
  T.eq(#list, 0); T.eq(err, nil, "no_wait on an empty stream: empty list, no error")
  local t0 = jet.monotonic()
  list, err = js:fetch("FE", "C", 5, { expires = 0.5 })
  T.eq(#list, 0); T.eq(err, nil)
  T.ok(jet.monotonic() - t0 >= 0.4, "waited for expires")
  publish_n("fe.x", 20, string.rep("x", 100) .. "%03d")
  list = js:fetch("FE", "C", 5)
  T.eq(#list, 5)
  for _, m in ipairs(list) do m:ack() end
  -- what the pull asked the server for, seen on the wire: without no_wait the server would hold
  -- the request open for the default expires (5 s) waiting for the other 85
  local asked = {}
  local spy = nc:subscribe("$JS.API.CONSUMER.MSG.NEXT.FE.C", function(m) asked[#asked + 1] = m.data end)
  nc:flush()
  list = js:fetch("FE", "C", 100, { no_wait = true })
  T.eq(#list, 15, "no_wait: what is there")
  T.wait_until(function() return #asked >= 1 end, 30, "the pull request seen")
  spy:unsubscribe()
  T.eq(#asked, 1, table.concat(asked, "\n"))
  T.ok(asked[1]:find('"no_wait":true', 1, true) and not asked[1]:find('"expires"', 1, true), asked[1])
  for _, m in ipairs(list) do m:ack() end
  publish_n("fe.y", 10, string.rep("y", 100) .. "%03d")
  list = js:fetch_bytes("FE", "C", 500, { expires = 1 })
  T.ok(#list >= 2 and #list <= 4, "about 500 bytes' worth: " .. #list)
  for _, m in ipairs(list) do m:ack() end
  -- an error with no message is nil, code, detail (not an empty, truthy table)
  local detail
  list, err, detail = js:fetch("FE", "NOPE", 1, { no_wait = true })
  T.eq(list, nil); T.eq(err, "consumer_not_found"); T.ok(detail:find("10014"), detail)
  list, err = js:fetch_bytes("FE", "NOPE", 100, { expires = 0.3 })
  T.eq(list, nil); T.eq(err, "consumer_not_found")
end)

T.test("messages iterator: for-loop, timeout, stop unblocks a waiter", function()
  fresh("IT")
  publish_n("it.x", 5)
  local it = assert(js:messages("IT", "C"))
  local k = 0
  for msg in it do
    k = k + 1; msg:ack()
    if k == 5 then break end
  end
  T.eq(k, 5)
  local m, err = it:next(0.2)
  T.eq(m, nil); T.eq(err, "timeout")
  local res
  jet.spawn(function() res = { it:next() } end)
  jet.sleep(0.1)
  it:stop()
  T.wait_until(function() return res end, 2, "the waiter returned")
  T.eq(res[1], nil); T.eq(res[2], "closed")
  T.eq(select(2, it:next()), "closed")
  -- drain: no more pulls, what arrived is still handed out, then "closed"
  publish_n("it.y", 6)
  it = assert(js:messages("IT", "C"))
  T.wait_until(function() return it:stats().buffered == 6 end, 5)
  it:drain()
  local got = 0
  while true do
    local dm, e = it:next(1)
    if not dm then T.eq(e, "closed"); break end
    dm:ack(); got = got + 1
  end
  T.eq(got, 6, "buffered messages handed out after drain")
  T.eq(it:stats().delivered, 6)
end)

T.test("drain finishes buffered messages; stop naks them", function()
  fresh("DR")
  publish_n("dr.x", 200)
  local n = 0
  local h = assert(js:consume("DR", "C", function() n = n + 1; jet.sleep(0.002) end, { max_messages = 100 }))
  T.wait_until(function() return h:stats().buffered > 20 end, 5)
  assert(h:drain())
  T.ok(h:closed())
  T.eq(h:stats().buffered, 0)
  T.eq(n, h:stats().delivered, "every received message handled")
  T.eq(h:stats().acked, n)
  -- stop: buffered ones are nak'd and come back at once to the next consumer
  local h2 = assert(js:consume("DR", "C", function() jet.sleep(0.05) end, { max_messages = 100 }))
  T.wait_until(function() return h2:stats().buffered > 20 end, 5)
  h2:stop()
  T.wait_until(function() return h2:closed() end, 5, "the running handler finished")
  local st = h2:stats()
  T.ok(st.naked >= 20, "buffered nak'd: " .. st.naked)
  T.eq(st.acked + st.naked, st.delivered, "every received message acked or nak'd")
  local got = 0
  local h3 = assert(js:consume("DR", "C", function() got = got + 1 end))
  T.wait_until(function() return got >= st.naked end, 5, "the nak'd ones come back at once")
  h3:stop()
end)

T.test("consumer deleted during consume: terminal on_error, closed, no hot loop", function()
  fresh("DEL")
  local errs, n = {}, 0
  local h = assert(js:consume("DEL", "C", function() n = n + 1 end, {
    expires = 2, on_error = function(code, _detail, terminal) errs[#errs + 1] = { code, terminal } end }))
  assert(js:publish("del.a", "x"))
  T.wait_until(function() return n == 1 end, 5)
  assert(js:delete_consumer("DEL", "C"))
  T.wait_until(function() return h:closed() and #errs > 0 end, 10, "closed, and on_error told")
  T.eq(errs[#errs][1], "consumer_deleted"); T.eq(errs[#errs][2], true)
  local pulls = h:stats().pulls
  jet.sleep(1)
  T.eq(h:stats().pulls, pulls, "no more pulls")
end)

T.test("a message larger than max_bytes is reported, not a live-lock", function()
  fresh("BIGMSG")
  assert(js:publish("bigmsg.x", string.rep("x", 1000)))
  local errs = {}
  local h = assert(js:consume("BIGMSG", "C", function() end, { max_bytes = 200,
    on_error = function(code) errs[#errs + 1] = code end }))
  T.wait_until(function() return #errs >= 1 end, 10)
  T.eq(errs[1], "message_too_large")
  jet.sleep(0.5)
  T.ok(h:stats().pulls <= 2, "no hot loop: " .. h:stats().pulls .. " pulls")
  h:stop()
  local list, err = js:fetch_bytes("BIGMSG", "C", 200, { expires = 1 })
  T.eq(list, nil); T.eq(err, "message_too_large")
end)

T.test("many consumers in one process, no thread each", function()
  local k, per = 20, 500
  local done, handles = {}, {}
  for i = 1, k do
    local name = "MANY" .. i
    fresh(name)
    for _ = 1, per do js:publish_async(name:lower() .. ".x", "m") end
  end
  T.eq(js:publish_async_complete(30), 0)
  local function threads()
    return tonumber(T.read_file("/proc/self/status"):match("Threads:%s*(%d+)"))
  end
  local before = threads()
  for i = 1, k do
    local name = "MANY" .. i
    done[i] = 0
    handles[i] = assert(js:consume(name, "C", function() done[i] = done[i] + 1 end, { max_messages = 100 }))
  end
  T.wait_until(function()
    for i = 1, k do if done[i] < per then return false end end
    return true
  end, 30, "every consumer got its messages")
  T.ok(threads() <= before + 1, ("threads: %d before, %d with %d consumers"):format(before, threads(), k))
  for i = 1, k do T.eq(done[i], per); handles[i]:stop() end
end)

T.test("a missing consumer is refused up front", function()
  fresh("MISS")
  local h, code = js:consume("MISS", "NOPE", function() end)
  T.eq(h, nil); T.eq(code, "consumer_not_found")
  local it, c2 = js:messages("MISS", "NOPE")
  T.eq(it, nil); T.eq(c2, "consumer_not_found")
end)

T.test("bad input raises naming the function and argument", function()
  fresh("BAD")
  T.raises(function() js:consume("BAD", "C") end, "js:consume: bad argument 'handler'")
  T.raises(function() js:consume("B.D", "C", print) end, "js:consume: bad argument 'stream'")
  T.raises(function() js:consume("BAD", "C", print, { max_mesages = 5 }) end, "unknown option 'max_mesages'")
  T.raises(function() js:consume("BAD", "C", print, { max_messages = 0 }) end, "bad argument 'max_messages'")
  T.raises(function() js:consume("BAD", "C", print, { heartbeat = 20, expires = 30 }) end,
    "bad argument 'heartbeat'")
  T.raises(function() js:consume("BAD", "C", print, { concurrency = 1.5 }) end, "bad argument 'concurrency'")
  T.raises(function() js:messages("BAD", "C", { concurrency = 2 }) end, "unknown option 'concurrency'")
  T.raises(function() js:fetch("BAD", "C", 0) end, "js:fetch: bad argument 'n'")
  T.raises(function() js:fetch("BAD", "C", 1, { no_wait = true, expires = 1 }) end, "bad argument 'no_wait'")
  T.raises(function() js:fetch_bytes("BAD", "C", -1) end, "js:fetch_bytes: bad argument 'max_bytes'")
  local m = js:fetch("BAD", "C", 1, { no_wait = true })[1]
  T.eq(m, nil)
  assert(js:publish("bad.a", "x"))
  m = js:fetch("BAD", "C", 1)[1]
  T.raises(function() m:nak(-1) end, "msg:nak: bad argument 'delay'")
  T.raises(function() m:ack_sync(0) end, "msg:ack_sync: bad argument 'timeout'")
  m:ack()
end)

T.run()
