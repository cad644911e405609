-- Consumers with request limits (issue #11 item 9): max_request_batch,
-- max_request_expires and max_request_max_bytes. js:consume once backed off
-- 1 -> 30 s forever on the 409 Exceeded* and delivered nothing; the engine
-- now reads the limits (consumer info) and sizes its pulls within them, and
-- adopts a limit a 409 names when the consumer changes under it.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url })
local js = nc:jetstream()

local function fresh(name, ccfg) T.fresh_stream(js, name, ccfg) end

local function publish_n(subject, n) T.publish_n(js, subject, n) end

-- consume n messages; every one delivered once, no error but informational ones
local function consume_all(name, n, opts)
  local seen, count, errs = {}, 0, {}
  opts.on_error = function(code, detail) errs[#errs + 1] = code .. ": " .. detail end
  local h = assert(js:consume(name, "C", function(msg)
    local s = msg:metadata().stream_seq
    if not seen[s] then seen[s] = true; count = count + 1 end
  end, opts))
  local ok = pcall(T.wait_until, function() return count >= n end, 30)
  T.ok(ok, ("all %d delivered (got %d; errors: %s)"):format(n, count, table.concat(errs, "; ")))
  T.eq(#errs, 0, table.concat(errs, "; "))
  local st = h:stats()
  h:stop()
  return st
end

T.test("max_request_batch: pulls of at most N, every message delivered", function()
  fresh("LB", { max_request_batch = 10 })
  T.eq(js:consumer_info("LB", "C").config.max_request_batch, 10, "the server applied the limit")
  publish_n("lb.x", 500)
  local st = consume_all("LB", 500, { max_messages = 100 })
  T.eq(st.max_request_batch, 10)
  T.ok(st.pulls >= 50, "pulls of at most 10: " .. st.pulls)
  -- the iterator too
  publish_n("lb.y", 50)
  local it = assert(js:messages("LB", "C", { max_messages = 40 }))
  for _ = 1, 50 do assert(it:next(10)):ack() end
  it:stop()
end)

T.test("max_request_batch with max_bytes: every pull carries max_bytes, the buffer stays within it", function()
  -- the pulls were split by the batch limit, and only the first carried
  -- max_bytes: the other 15 were unbounded (160 messages held, not ~10)
  fresh("LBB", { max_request_batch = 10 })
  local body = ("x"):rep(100)
  for _ = 1, 300 do js:publish_async("lbb.x", body) end
  T.eq(js:publish_async_complete(30), 0, "every publish acked")
  local it = assert(js:messages("LBB", "C", { max_bytes = 2000 }))
  T.wait_until(function()
    local st = it:stats()
    return st.buffered >= 10 and st.requests == 0
  end, 10, "the pulls answered")
  local st = it:stats()
  T.ok(st.buffered <= 2000 / 100, "held within max_bytes (2000 B of 100 B messages): " .. st.buffered)
  for _ = 1, 300 do assert(it:next(10)):ack() end
  it:stop()
end)

T.test("max_request_expires: requests expire within it, heartbeat shortened, every message delivered", function()
  fresh("LE", { max_request_expires = 1 })
  T.eq(js:consumer_info("LE", "C").config.max_request_expires, 1)
  local got, errs = 0, {}
  local h = assert(js:consume("LE", "C", function() got = got + 1 end, {  -- defaults: expires 30, heartbeat 15
    on_error = function(code, detail) errs[#errs + 1] = code .. ": " .. detail end }))
  publish_n("le.x", 100)
  T.wait_until(function() return got >= 100 end, 20, "100 delivered")
  jet.sleep(2.5)                 -- idle: requests expire (1 s) and are renewed, heartbeats every 0.5 s
  publish_n("le.x", 100)
  T.wait_until(function() return got >= 200 end, 20, "delivered after idling")
  T.eq(#errs, 0, table.concat(errs, "; "))
  T.eq(h:stats().max_request_expires, 1)
  T.eq(h:stats().heartbeats_missed, 0)
  h:stop()
end)

T.test("max_request_max_bytes: max_bytes per request capped, every message delivered", function()
  fresh("LM", { max_request_max_bytes = 1024 })
  T.eq(js:consumer_info("LM", "C").config.max_request_max_bytes, 1024)
  publish_n("lm.x", 300)
  local st = consume_all("LM", 300, { max_bytes = 64 * 1024 })
  T.eq(st.max_request_max_bytes, 1024)
end)

T.test("a message larger than max_request_max_bytes is reported, not a live-lock", function()
  fresh("LX", { max_request_max_bytes = 300 })
  assert(js:publish("lx.x", string.rep("x", 1000)))
  local errs = {}
  local h = assert(js:consume("LX", "C", function() end, { max_bytes = 4096,
    on_error = function(code) errs[#errs + 1] = code end }))
  T.wait_until(function() return #errs >= 1 end, 10)
  T.eq(errs[1], "message_too_large")
  local pulls = h:stats().pulls
  jet.sleep(0.5)
  T.eq(h:stats().pulls, pulls, "no hot loop: no pull during the back-off")
  T.eq(#errs, 1, "said once")
  h:stop()
end)

T.test("a limit set while consuming: the 409 names it, pulls adapt, every message delivered", function()
  fresh("LR", {})
  local got, errs = 0, {}
  local h = assert(js:consume("LR", "C", function() got = got + 1 end, { max_messages = 200, expires = 2,
    on_error = function(code, detail) errs[#errs + 1] = code .. ": " .. detail end }))
  publish_n("lr.x", 50)
  T.wait_until(function() return got >= 50 end, 10)
  assert(js:consumer("LR", { durable = "C", max_request_batch = 5 }))
  T.eq(js:consumer_info("LR", "C").config.max_request_batch, 5)
  publish_n("lr.x", 300)
  T.wait_until(function() return got >= 350 end, 30, ("all delivered: %d (%s)"):format(got, table.concat(errs, "; ")))
  T.eq(h:stats().max_request_batch, 5)
  T.eq(#errs, 0, "adapted, no back-off: " .. table.concat(errs, "; "))
  h:stop()
end)

T.run()
