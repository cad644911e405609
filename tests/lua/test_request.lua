-- Request/reply: respond, timeout, no responders, many concurrent requests.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = false }
local svc = assert(jet.connect{ servers = srv.url, name = "service" })
local nc = assert(jet.connect{ servers = srv.url, name = "client" })

local seen_request
svc:subscribe("svc.upper", function(m)
  seen_request = { reply = m.reply, trace = m:header("Trace"), data = m.data }
  T.eq(m:respond(m.data:upper(), { headers = { Served = "yes", Multi = { "1", "2" } } }), true)
end)
local slow_running, slow_peak = 0, 0
svc:subscribe("svc.slow", function(m)
  slow_running = slow_running + 1
  if slow_running > slow_peak then slow_peak = slow_running end
  jet.sleep(0.05)
  slow_running = slow_running - 1
  m:respond("slow:" .. m.data)
end, { concurrency = 100 })
svc:subscribe("svc.echo", function(m) m:respond(m.data) end, { concurrency = 50 })
svc:subscribe("svc.mute", function() end)
svc:subscribe("svc.twice", function(m) m:respond("first"); m:respond("second") end)
svc:flush()

T.test("request gets the reply with its headers", function()
  local r, err = nc:request("svc.upper", "hello", { timeout = 2, headers = { Trace = "t-1" } })
  T.ok(r, err)
  T.eq(r.data, "HELLO")
  T.eq(r.headers.Served, "yes")
  T.eq(r:header_values("Multi"), { "1", "2" })
  T.eq(seen_request.data, "hello")
  T.eq(seen_request.trace, "t-1", "request headers reach the responder")
  T.ok(seen_request.reply and #seen_request.reply > 0, "the request has a reply subject")
  -- default options, and a request on the same connection as the responder
  r = svc:request("svc.upper", "same conn")
  T.eq(r and r.data, "SAME CONN")
end)

T.test("a request nobody answers times out, never early", function()
  for _, timeout in ipairs{ 0.2, 0.5 } do
    local t0 = jet.monotonic()
    local r, err = nc:request("svc.mute", "x", { timeout = timeout })
    local dt = jet.monotonic() - t0
    T.eq(r, nil)
    T.eq(err, "timeout")
    T.ok(dt >= timeout - 0.02, ("returned after %.3f s, before its %.1f s timeout"):format(dt, timeout))
    -- only a timeout that does not fire (or counts in the wrong unit) is this late
    T.ok(dt < 10, ("returned after %.3f s for a %.1f s timeout"):format(dt, timeout))
  end
end)

T.test("no responders is reported, not a timeout", function()
  local r, err = nc:request("svc.nobody", "x", { timeout = 60 })
  T.eq(r, nil)
  T.eq(err, "no_responders")
  -- a responder that goes away: no_responders again, not a timeout
  local sub = svc:subscribe("svc.gone", function(m) m:respond("here") end)
  svc:flush()
  T.eq(nc:request("svc.gone", "", { timeout = 2 }).data, "here")
  sub:unsubscribe()
  svc:flush()
  r, err = nc:request("svc.gone", "", { timeout = 5 })
  T.eq(r, nil); T.eq(err, "no_responders")
end)

T.test("only the first reply counts", function()
  local r = nc:request("svc.twice", "", { timeout = 2 })
  T.eq(r and r.data, "first")
  -- the late second reply does not confuse the next request
  r = nc:request("svc.upper", "next", { timeout = 2 })
  T.eq(r and r.data, "NEXT")
end)

T.test("many concurrent requests each get their own answer", function()
  -- 200 coroutines with one slow request each: they overlap
  local answers, n = {}, 200
  for i = 1, n do
    jet.spawn(function()
      local r, err = nc:request("svc.slow", tostring(i), { timeout = 5 })
      answers[i] = r and r.data or ("error: " .. tostring(err))
    end)
  end
  T.wait_until(function() local c = 0; for _ in pairs(answers) do c = c + 1 end; return c == n end, 10)
  for i = 1, n do T.eq(answers[i], "slow:" .. i) end
  -- one at a time, the service would never have had two of them in hand
  T.ok(slow_peak > 1, "the 200 requests did not overlap: at most " .. slow_peak .. " at once")

  -- 10 coroutines, 100 requests each, back to back, mixed with timeouts in between
  local bad, done, total = {}, 0, 0
  for w = 1, 10 do
    jet.spawn(function()
      for k = 1, 100 do
        local payload = ("w%d-k%d-%s"):format(w, k, string.rep("x", (w * k) % 50))
        local r, err = nc:request("svc.echo", payload, { timeout = 5 })
        total = total + 1
        if not r or r.data ~= payload then bad[#bad + 1] = payload .. " -> " .. tostring(r and r.data or err) end
        if k % 25 == 0 then
          local _, e = nc:request("svc.mute", "", { timeout = 0.01 })
          if e ~= "timeout" then bad[#bad + 1] = "mute -> " .. tostring(e) end
        end
      end
      done = done + 1
    end)
  end
  T.wait_until(function() return done == 10 end, 20, "10 workers")
  T.eq(total, 1000)
  T.eq(bad, {})
end)

T.test("respond without a reply subject raises", function()
  local got
  svc:subscribe("svc.noreply", function(m) got = m end)
  svc:flush()
  nc:publish("svc.noreply", "x")
  T.wait_until(function() return got end, 5)
  T.eq(got.reply, nil)
  T.raises(function() got:respond("y") end, "msg:respond: the message has no reply subject")
end)

T.test("replies under a fast prefix are read on the loop; a 503 there still says no_responders", function()
  svc:subscribe("fast.echo.*", function(m) m:respond("r:" .. m.subject) end, { concurrency = 50 })
  svc:flush()
  local c2 = assert(jet.connect{ servers = srv.url })
  T.eq(c2:_fast_replies("fast.echo."), true)
  T.eq(c2:_fast_replies("fast.none."), true)
  T.eq(c2:stats().fast_replies, 0)
  local done = 0
  for i = 1, 40 do
    jet.spawn(function()
      local m = assert(c2:request("fast.echo." .. i, "x", { timeout = 10 }))
      T.eq(m.data, "r:fast.echo." .. i)
      done = done + 1
    end)
  end
  T.wait_until(function() return done == 40 end, 30, "40 concurrent requests answered")
  T.eq(c2:stats().fast_replies, 40, "every reply read on the loop")
  -- nobody answers under fast.none.: the 503 names no request on the fast path; the request
  -- still ends as no_responders (when its timeout comes), the next one at once (slow path)
  local m, code = c2:request("fast.none.1", "x", { timeout = 1 })
  T.eq(m, nil); T.eq(code, "no_responders", "the first request")
  m, code = c2:request("fast.none.2", "x", { timeout = 10 })
  T.eq(m, nil); T.eq(code, "no_responders", "the next request")
  -- after a 503 every prefix takes the slow path, until a reply under it comes back there
  local f0 = c2:stats().fast_replies
  T.eq(assert(c2:request("fast.echo.a", "x")).data, "r:fast.echo.a")
  T.eq(c2:stats().fast_replies, f0, "the slow path after a 503")
  T.eq(assert(c2:request("fast.echo.b", "x")).data, "r:fast.echo.b")
  T.eq(c2:stats().fast_replies, f0 + 1, "the fast path again")
  c2:close()
  T.eq(c2:_fast_replies("fast.x."), false, "closed: refused, no crash")
end)

T.test("a request waiting when its connection closes ends with an error", function()
  local c2 = assert(jet.connect{ servers = srv.url })
  c2:flush()
  local r, err = "pending", nil
  jet.spawn(function() r, err = c2:request("svc.mute", "", { timeout = 10 }) end)
  jet.sleep(0.05)
  T.eq(r, "pending")
  c2:close()
  -- "closed", not the "timeout" its 10 s would give
  T.wait_until(function() return r ~= "pending" end, 30, "the request to end")
  T.eq(r, nil)
  T.eq(err, "closed")
end)

T.run()
