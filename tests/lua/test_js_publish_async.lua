-- JetStream async publish: futures, the in-flight window, complete, errors,
-- retries, and a server killed with SIGKILL in the middle of 50,000 publishes.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url, reconnect = { wait = 0.1 } })

T.test("futures: wait, on, status", function()
  local js = nc:jetstream()
  assert(js:stream{ name = "FA", subjects = { "fa.>" }, storage = "memory" })
  local f = js:publish_async("fa.one", "x")
  T.eq(f:status(), "pending")
  local ack = assert(f:wait(5))
  T.eq(ack.stream, "FA"); T.eq(ack.seq, 1); T.eq(ack.duplicate, false)
  T.eq(f:status(), "acked")
  T.eq(f:wait().seq, 1, "a resolved future answers at once")
  local got
  js:publish_async("fa.two", "y"):on(function(a, err) got = { a and a.seq, err } end)
  T.wait_until(function() return got end, 5, "f:on callback")
  T.eq(got, { 2, nil })
  local late
  f:on(function(a) late = a.seq end)    -- on an already resolved future: runs now
  T.wait_until(function() return late end, 5)
  T.eq(late, 1)
end)

T.test("the window holds in-flight <= max_pending; complete waits for every ack", function()
  local js = nc:jetstream{ max_pending = 50 }
  assert(js:stream{ name = "WIN", subjects = { "win.>" }, storage = "file" })
  local maxp, n = 0, 5000
  local watcher = jet.every(0.001, function()
    local p = js:publish_async_pending()
    if p > maxp then maxp = p end
  end)
  for i = 1, n do
    js:publish_async("win.x", tostring(i))
    local p = js:publish_async_pending()
    if p > maxp then maxp = p end
  end
  T.eq(js:publish_async_complete(30), 0, "nothing left")
  watcher:stop()
  T.eq(js:publish_async_pending(), 0)
  T.ok(maxp <= 50, "in flight never above max_pending, saw " .. maxp)
  T.ok(maxp >= 40, "the window was used, saw " .. maxp)
  T.eq(js:stream_info("WIN").state.messages, n)
  local st = js:publish_async_stats()
  T.eq(st.acked, n); T.eq(st.failed, 0); T.eq(st.max_pending, 50)
end)

T.test("publishers in several coroutines share the window", function()
  local js = nc:jetstream{ max_pending = 20 }
  assert(js:stream{ name = "CO", subjects = { "co.>" }, storage = "memory" })
  local done = 0
  for w = 1, 4 do
    jet.spawn(function()
      for i = 1, 500 do js:publish_async("co." .. w, tostring(i)) end
      done = done + 1
    end)
  end
  T.wait_until(function() return done == 4 end, 20)
  T.eq(js:publish_async_complete(10), 0)
  T.eq(js:stream_info("CO").state.messages, 2000)
end)

T.test("dedupe: the same msg_id twice stores one message", function()
  local js = nc:jetstream()
  assert(js:stream{ name = "DD", subjects = { "dd.>" }, duplicate_window = 60 })
  local a = js:publish_async("dd.x", "1", { msg_id = "order-7" })
  local b = js:publish_async("dd.x", "1", { msg_id = "order-7" })
  local ra, rb = assert(a:wait()), assert(b:wait())
  T.eq(ra.duplicate, false); T.eq(rb.duplicate, true); T.eq(rb.seq, ra.seq)
  T.eq(js:stream_info("DD").state.messages, 1)
end)

T.test("expectations fail with their codes; headers are stored", function()
  local js = nc:jetstream()
  assert(js:stream{ name = "EX", subjects = { "ex.>" } })
  assert(js:publish_async("ex.a", "1", { msg_id = "m1", headers = { K = { "a", "b" } } }):wait())
  local m = assert(js:get_msg("EX", 1))
  T.eq(m.headers.K, { "a", "b" })
  local _, code, detail, ec = js:publish_async("ex.a", "2", { expect = { last_seq = 9 } }):wait()
  T.eq(code, "wrong_last_sequence"); T.eq(ec, 10071); T.ok(detail:find("wrong last sequence"), detail)
  _, code = js:publish_async("ex.a", "2", { expect = { stream = "NOPE" } }):wait()
  T.eq(code, "stream_mismatch")
  _, code = js:publish_async("ex.a", "2", { expect = { last_msg_id = "zz" } }):wait()
  T.eq(code, "wrong_last_msg_id")
  _, code = js:publish_async("ex.b", "2", { expect = { last_subject_seq = 5 } }):wait()
  T.eq(code, "wrong_last_sequence")
  T.ok(js:publish_async("ex.a", "3", { expect = { last_seq = 1, stream = "EX", last_msg_id = "m1" } }):wait())
end)

T.test("no responders: reported, or retried until the stream exists", function()
  local js = nc:jetstream()
  local _, code = js:publish_async("late.x", "1"):wait()
  T.eq(code, "no_responders")
  -- with retry: create the stream while the retries (250 ms apart) go on
  local f = js:publish_async("late.x", "2", { retry = 5 })
  jet.sleep(0.3)
  assert(js:stream{ name = "LATE", subjects = { "late.>" } })
  local ack = assert(f:wait(10))
  T.eq(ack.stream, "LATE")
  T.ok(js:publish_async_stats().retried >= 1, "it was retried")
  local m = assert(js:get_msg("LATE", ack.seq))
  T.ok(m.headers["Nats-Msg-Id"], "a generated Nats-Msg-Id makes a retry safe")
end)

-- PubAcks of subjects that had one come on a synchronous subscription read on the loop, where
-- cnats hides which publish a 503 answers. A stream deleted after its subject was learned:
-- the 503 still ends as no_responders (at the ack timeout), and what follows takes the path
-- that names the message of a 503 (at once).
T.test("no responders after the stream went away: still no_responders", function()
  local js = nc:jetstream{ ack_timeout = 0.5 }
  assert(js:stream{ name = "GONE", subjects = { "gone.>" }, storage = "memory" })
  for i = 1, 3 do assert(js:publish_async("gone.x", tostring(i)):wait(5)) end
  assert(js:delete_stream("GONE"))
  local _, code, detail = js:publish_async("gone.x", "4"):wait(5)
  T.eq(code, "no_responders", detail)
  _, code, detail = js:publish_async("gone.x", "5"):wait(5)
  T.eq(code, "no_responders", detail)
  T.eq(detail, "no stream is listening on this subject")
  assert(js:stream{ name = "GONE", subjects = { "gone.>" }, storage = "memory" })
  T.eq(assert(js:publish_async("gone.x", "6"):wait(5)).seq, 1)
  T.eq(assert(js:publish_async("gone.x", "7"):wait(5)).seq, 2)
end)

T.test("ack timeout while the server is paused; on_publish_error hears it", function()
  local js = nc:jetstream{ ack_timeout = 0.3 }
  assert(js:stream{ name = "TO", subjects = { "to.>" }, storage = "memory" })
  local errs = {}
  js:on_publish_error(function(info) errs[#errs + 1] = info end)
  srv:pause()
  local f = js:publish_async("to.x", "a", { msg_id = "t-1" })
  js:publish_async("to.y", "b")            -- nobody waits on this one: on_publish_error
  local _, code = f:wait()
  T.eq(code, "timeout")
  T.wait_until(function() return #errs == 1 end, 5)
  srv:resume()
  T.eq(errs[1].subject, "to.y"); T.eq(errs[1].error, "timeout"); T.eq(errs[1].data, "b")
  T.eq(js:publish_async_pending(), 0)
  T.ok(js:publish_async("to.z", "c"):wait(5), "works again after the pause")
end)

T.test("bad input raises naming the function and argument", function()
  local js = nc:jetstream()
  T.raises(function() js:publish_async("a..b", "x") end, "js:publish_async: bad argument 'subject'")
  T.raises(function() js:publish_async("a.*", "x") end, "bad argument 'subject'")
  T.raises(function() js:publish_async("a.b", {}) end, "js:publish_async: bad argument 'data'")
  T.raises(function() js:publish_async("a.b", "x", { msgid = "1" }) end, "unknown option 'msgid'")
  T.raises(function() js:publish_async("a.b", "x", { retry = "yes" }) end, "bad argument 'retry'")
  T.raises(function() js:publish_async("a.b", "x", { timeout = 0 }) end, "bad argument 'timeout'")
  T.raises(function() js:publish_async("a.b", "x", { headers = { ["a b"] = "1" } }) end, "invalid header name")
  T.raises(function() js:publish_async("a.b", "x", "opts") end, "bad argument 'opts'")
  -- a userdata that is not a received message: raised before anything is built or counted
  -- (the check ran after the entry entered the window, whose bytes then stayed there for good)
  T.raises(function() js:publish_async("a.b", "x", { ack = nc }) end, "js:publish_async: bad argument 'ack'")
  T.eq(js:publish_async_stats().pending_bytes, 0)
  T.raises(function() nc:jetstream{ max_pending = 0 } end, "bad argument 'max_pending'")
  T.raises(function() nc:jetstream{ max_pending = 3e9 } end, "must be between 1 and 1,000,000")
  T.raises(function() nc:jetstream{ ack_timeout = -1 } end, "bad argument 'ack_timeout'")
  T.raises(function() nc:jetstream{ retry = { attempt = 3 } } end, "unknown option 'attempt'")
  T.raises(function() js:on_publish_error(42) end, "bad argument 'fn'")
  T.raises(function() js:publish_async_complete(-1) end, "bad argument 'timeout'")
  local f = js:publish_async("fa.bad", "x")
  T.raises(function() f:on("nope") end, "f:on: bad argument 'fn'")
  T.raises(function() f.wait() end, "f:wait: bad argument 'self'")
  f:wait()
end)

-- The server is killed with SIGKILL in the middle and restarted (file storage).
local function kill_run(js, subj, n, opts)
  local acked, failed = 0, 0
  local futs = {}
  for i = 1, n do
    futs[i] = js:publish_async(subj, tostring(i), opts)
    if i == math.floor(n / 3) then
      srv:kill()
      jet.spawn(function() jet.sleep(1.0); srv:restart() end)
    end
  end
  for i = 1, n do
    if futs[i]:wait() then acked = acked + 1 else failed = failed + 1 end
  end
  return acked, failed
end

T.test("SIGKILL during 50,000 async publishes: every one is acked or reported", function()
  local js = nc:jetstream{ ack_timeout = 2 }
  assert(js:stream{ name = "K1", subjects = { "k1.>" }, storage = "file" })
  local n = 50000
  local acked, failed = kill_run(js, "k1.x", n)
  T.eq(acked + failed, n, "the counts add up")
  T.ok(failed > 0, "the kill failed some publishes (" .. failed .. ")")
  T.wait_until(function() return nc:status() == "connected" end, 10)
  local stored = js:stream_info("K1").state.messages
  T.ok(stored >= acked, ("every acked message is stored (%d stored, %d acked)"):format(stored, acked))
end)

-- Also the regression test of runtime/rt_natsuv.c reset_parser: before it, about 1 run in 4
-- (under ASan) reconnected 100+ times after the restart and never recovered, because cnats
-- kept the parser of the socket that died in the middle of a PubAck.
T.test("SIGKILL during 50,000 async publishes with retry: exactly 50,000 distinct messages", function()
  T.wait_until(function() return nc:status() == "connected" end, 10)
  local js = nc:jetstream{ ack_timeout = 2, retry = { attempts = 10, delay = 0.25 } }
  assert(js:stream{ name = "K2", subjects = { "k2.>" }, storage = "file", duplicate_window = 120 })
  local n = 50000
  local disconnects = 0
  nc:on("disconnected", function() disconnects = disconnects + 1 end)
  local acked, failed = kill_run(js, "k2.x", n)
  nc:on("disconnected", nil)
  T.eq(disconnects, 1, "one disconnect: the reconnect held")
  T.eq(failed, 0, "nothing failed for good")
  T.eq(acked, n)
  T.ok(js:publish_async_stats().retried > 0, "some were retried")
  local info = js:stream_info("K2")
  T.eq(info.state.messages, n, "one copy of each message")
  -- read them all back: every payload once, every Nats-Msg-Id distinct
  local seen, ids, workers = {}, {}, 0
  local next_seq, last = info.state.first_seq, info.state.last_seq
  for _ = 1, 8 do
    workers = workers + 1
    jet.spawn(function()
      while next_seq <= last do
        local seq = next_seq; next_seq = next_seq + 1
        local m = js:get_msg("K2", seq)
        if m then
          seen[m.data] = (seen[m.data] or 0) + 1
          ids[m.headers["Nats-Msg-Id"]] = true
        end
      end
      workers = workers - 1
    end)
  end
  T.wait_until(function() return workers == 0 end, 120, "reading the stream back")
  local distinct, dup, nids = 0, 0, 0
  for _, c in pairs(seen) do distinct = distinct + 1; if c > 1 then dup = dup + 1 end end
  for _ in pairs(ids) do nids = nids + 1 end
  T.eq(distinct, n, "every payload stored"); T.eq(dup, 0, "no payload twice"); T.eq(nids, n, "distinct msg ids")
end)

T.test("shutdown waits for pending acks, reports every unacked publish, exit status 1", function()
  local s2 = T.server{ js = true }
  local dir = T.tmpdir()
  T.write_file(dir .. "/child.lua", [[
    local jet = require "jetlua"
    local nc = assert(jet.connect())
    local js = nc:jetstream{ ack_timeout = 1 }
    assert(js:stream{ name = "SD", subjects = { "sd.>" } })
    for i = 1, 100 do js:publish_async("sd.ok", tostring(i)) end   -- acked during shutdown
    print("ready")
    io.stdout:flush()
    jet.sleep(0.5)
    js:publish_async("sd.stuck", "a", { msg_id = "stuck-1" })
    js:publish_async("sd.stuck", "b", { msg_id = "stuck-2" })
    jet.exit(0)
  ]])
  local child = T.jetlua({ "run", "--server", s2.url, "--shutdown-timeout", "3", dir .. "/child.lua" },
    { stdout = dir .. "/out", stderr = dir .. "/err" })
  T.wait_until(function() return (T.read_file(dir .. "/out") or ""):find("ready") end, 10, "child ready")
  jet.sleep(0.2)
  s2:pause()                                   -- the last two never get an ack
  local status = child:wait(20)
  s2:resume()
  local err = T.read_file(dir .. "/err") or ""
  T.eq(status, 1, "exit status says publishes were lost: " .. err)
  T.ok(err:find("'sd.stuck' %(msg_id stuck%-1%) was never acknowledged: timeout"), err)
  T.ok(err:find("'sd.stuck' %(msg_id stuck%-2%) was never acknowledged: timeout"), err)
  T.ok(err:find("2 async publish%(es%) were never acknowledged"), err)
  local nc2 = assert(jet.connect{ servers = s2.url })
  T.eq(nc2:jetstream():stream_info("SD").state.messages >= 100, true, "the first 100 were stored")
  nc2:close()
end)

T.test("a script that ends with pending publishes lives until they are acked", function()
  local dir = T.tmpdir()
  T.write_file(dir .. "/child.lua", [[
    local jet = require "jetlua"
    local nc = assert(jet.connect())
    local js = nc:jetstream()
    assert(js:stream{ name = "END", subjects = { "end.>" } })
    for i = 1, 3000 do js:publish_async("end.x", tostring(i)) end
  ]])
  local child = T.jetlua({ "run", "--server", srv.url, dir .. "/child.lua" },
    { stdout = dir .. "/out", stderr = dir .. "/err" })
  T.eq(child:wait(20), 0, T.read_file(dir .. "/err"))
  T.eq(nc:jetstream():stream_info("END").state.messages, 3000)
end)

T.test("a rejection the script waited for is not reported at exit, even when it calls jet.exit", function()
  local dir = T.tmpdir()
  T.write_file(dir .. "/child.lua", [[
    local jet = require "jetlua"
    local nc = assert(jet.connect())
    local js = nc:jetstream()
    js:delete_stream("REJ")
    assert(js:stream{ name = "REJ", subjects = { "rej.>" }, storage = "memory" })
    local f = js:publish_async("rej.a", "x", { expect = { last_seq = 7 } })
    local ok, code = f:wait()
    print(tostring(ok) .. " " .. tostring(code))
    jet.exit(0)          -- runs inside the failure's resolution
  ]])
  local child = T.jetlua({ "run", "--server", srv.url, dir .. "/child.lua" },
    { stdout = dir .. "/out", stderr = dir .. "/err" })
  local status = child:wait(20)
  local err = T.read_file(dir .. "/err") or ""
  T.eq(T.read_file(dir .. "/out"), "nil wrong_last_sequence\n")
  T.ok(not err:find("never acknowledged"), err)
  T.eq(status, 0, err)
end)

T.test("ack = msg under js:consume's auto-ack: the message waits for its output's PubAck", function()
  local js = nc:jetstream()
  assert(js:stream{ name = "HIN", subjects = { "hin.>" } })
  assert(js:stream{ name = "HOUT", subjects = { "hout.>" } })
  assert(js:consumer("HIN", { durable = "C", ack_wait = 30 }))
  assert(js:publish("hin.x", "job"))
  -- the first delivery's output is refused (a wrong expectation): the message must be nak'd
  -- and come back, not auto-acked when the handler returns
  local deliveries = 0
  local h = assert(js:consume("HIN", "C", function(msg)
    deliveries = deliveries + 1
    local expect = deliveries == 1 and { last_subject_seq = 99 } or nil
    assert(js:publish_async("hout.x", msg.data, { ack = msg, expect = expect }))
  end))
  T.wait_until(function()
    local ci = js:consumer_info("HIN", "C")
    return deliveries >= 2 and ci.num_pending == 0 and ci.num_ack_pending == 0
  end, 30, "redelivered after the refused output, then acked")
  h:drain()
  T.eq(deliveries, 2)
  T.eq(h:stats().naked, 1); T.eq(h:stats().acked, 1)
  T.eq(js:stream_info("HOUT").state.messages, 1, "one output stored")
end)

T.run()
