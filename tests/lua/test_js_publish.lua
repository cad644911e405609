-- JetStream sync publish: PubAck, dedupe, expectations, headers, no responders.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url })
local js = nc:jetstream()
assert(js:stream{ name = "EV", subjects = { "ev.>" }, storage = "file", duplicate_window = 60 })

T.test("publish returns the PubAck", function()
  local ack = assert(js:publish("ev.a", "one"))
  T.eq(ack.stream, "EV"); T.eq(ack.seq, 1); T.eq(ack.duplicate, false)
end)

T.test("the same msg_id inside the window is stored once", function()
  local a = assert(js:publish("ev.d", "x", { msg_id = "order-1" }))
  local b = assert(js:publish("ev.d", "x", { msg_id = "order-1" }))
  T.eq(b.duplicate, true)
  T.eq(b.seq, a.seq)
  T.eq(js:stream_info("EV").state.messages, 2)
end)

T.test("each expectation fails with its code", function()
  local last = js:stream_info("EV").state.last_seq
  local ok, code, detail, ec = js:publish("ev.e", "x", { expect = { last_seq = last + 10 } })
  T.eq(ok, nil); T.eq(code, "wrong_last_sequence"); T.eq(ec, 10071); T.ok(detail:find("wrong last sequence"), detail)
  T.ok(js:publish("ev.e", "x", { expect = { last_seq = last } }), "right last_seq")
  ok, code = js:publish("ev.e", "x", { expect = { stream = "OTHER" } })
  T.eq(ok, nil); T.eq(code, "stream_mismatch")
  T.ok(js:publish("ev.e", "x", { expect = { stream = "EV" } }))
  ok, code = js:publish("ev.s1", "x", { expect = { last_subject_seq = 99 } })
  T.eq(ok, nil); T.eq(code, "wrong_last_sequence")
  T.ok(js:publish("ev.s1", "x", { expect = { last_subject_seq = 0 } }), "no message on the subject yet")
  js:publish("ev.m", "x", { msg_id = "m-1" })
  ok, code = js:publish("ev.m", "y", { expect = { last_msg_id = "m-0" } })
  T.eq(ok, nil); T.eq(code, "wrong_last_msg_id")
  T.ok(js:publish("ev.m", "y", { expect = { last_msg_id = "m-1" } }))
end)

T.test("multi-value headers are stored", function()
  local ack = assert(js:publish("ev.h", "x", { headers = { Tag = { "a", "b" }, One = "1" } }))
  local m = js:get_msg("EV", ack.seq)
  T.eq(m.headers.Tag, { "a", "b" })
  T.eq(m.headers.One, "1")
end)

T.test("too large and no stream", function()
  assert(js:stream{ name = "SMALL", subjects = { "small" }, storage = "memory", max_msg_size = 10 })
  local ok, code = js:publish("small", string.rep("x", 100))
  T.eq(ok, nil); T.eq(code, "message_too_large")
  local t0 = jet.monotonic()
  ok, code = js:publish("nowhere.x", "y")
  T.eq(ok, nil); T.eq(code, "no_responders")
  T.ok(jet.monotonic() - t0 >= 0.45, "no_responders was not retried twice 250 ms apart")
end)

T.test("bad input", function()
  T.raises(function() js:publish("ev.x", "y", { msgid = "a" }) end, "js:publish: unknown option 'msgid'")
  T.raises(function() js:publish("ev.x", "y", { msg_id = 1 }) end, "js:publish: bad argument 'msg_id': string expected")
  T.raises(function() js:publish("ev.x", "y", { expect = { last_sq = 1 } }) end, "unknown option 'last_sq'")
  T.raises(function() js:publish("ev.*", "y") end, "bad argument 'subject'")
end)

T.run()
