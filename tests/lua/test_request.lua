-- Request/reply: respond, timeout, no responders, many concurrent requests.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = false }
local nc = assert(jet.connect{ servers = srv.url })

nc:subscribe("svc.upper", function(m)
  m:respond(m.data:upper(), { headers = { Served = "yes" } })
end)
nc:subscribe("svc.slow", function(m) jet.sleep(0.05); m:respond("slow:" .. m.data) end, { concurrency = 100 })

T.test("request gets the reply with its headers", function()
  local r, err = nc:request("svc.upper", "hello", { timeout = 2 })
  T.ok(r, err)
  T.eq(r.data, "HELLO")
  T.eq(r.headers.Served, "yes")
end)

T.test("a request nobody answers times out on time", function()
  nc:subscribe("svc.mute", function() end)
  local t0 = jet.monotonic()
  local r, err = nc:request("svc.mute", "x", { timeout = 0.3 })
  local dt = jet.monotonic() - t0
  T.eq(r, nil)
  T.eq(err, "timeout")
  T.near(dt, 0.3, 0.15, "elapsed")
end)

T.test("no responders is reported at once", function()
  local t0 = jet.monotonic()
  local r, err = nc:request("svc.nobody", "x", { timeout = 5 })
  T.eq(r, nil)
  T.eq(err, "no_responders")
  T.ok(jet.monotonic() - t0 < 1, "no_responders took " .. (jet.monotonic() - t0) .. "s")
end)

T.test("many concurrent requests each get their own answer", function()
  local answers, n = {}, 200
  for i = 1, n do
    jet.spawn(function()
      local r = nc:request("svc.slow", tostring(i), { timeout = 5 })
      answers[i] = r and r.data or "error"
    end)
  end
  T.wait_until(function() local c = 0; for _ in pairs(answers) do c = c + 1 end; return c == n end, 10)
  for i = 1, n do T.eq(answers[i], "slow:" .. i) end
end)

T.test("respond without a reply subject raises", function()
  local got
  nc:subscribe("svc.noreply", function(m) got = m end)
  nc:publish("svc.noreply", "x")
  T.wait_until(function() return got end, 5)
  T.raises(function() got:respond("y") end, "msg:respond: the message has no reply subject")
end)

T.run()
