-- Core pub/sub: data and headers, wildcards, ordering, queue groups, unsubscribe, concurrency.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = false }

local function connect() return assert(jet.connect{ servers = srv.url }) end

T.test("data and multi-value headers arrive intact", function()
  local nc = connect()
  local got
  nc:subscribe("pubsub.h", function(m) got = { subject = m.subject, data = m.data, h = m.headers,
    first = m:header("Multi"), all = m:header_values("Multi") } end)
  local payload = string.rep("\0\1\255x", 100)
  assert(nc:publish("pubsub.h", payload, { headers = { One = "1", Multi = { "a", "b", "c" } } }))
  T.wait_until(function() return got end, 5, "message")
  T.eq(got.subject, "pubsub.h")
  T.eq(got.data, payload)
  T.eq(got.h.One, "1")
  T.eq(got.h.Multi, { "a", "b", "c" })
  T.eq(got.first, "a")
  T.eq(got.all, { "a", "b", "c" })
  nc:close()
end)

T.test("wildcards * and > match exactly what they should", function()
  local nc = connect()
  local star, full = {}, {}
  nc:subscribe("w.*.x", function(m) star[#star + 1] = m.subject end)
  nc:subscribe("w.>", function(m) full[#full + 1] = m.subject end)
  for _, s in ipairs{ "w.a.x", "w.b.x", "w.a.y", "w.a.x.z", "w", "v.a.x" } do
    if s ~= "w" or true then nc:publish(s, "") end
  end
  nc:flush()
  T.wait_until(function() return #full >= 4 and #star >= 2 end, 5)
  jet.sleep(0.1)
  table.sort(star); table.sort(full)
  T.eq(star, { "w.a.x", "w.b.x" })
  T.eq(full, { "w.a.x", "w.a.x.z", "w.a.y", "w.b.x" })
  nc:close()
end)

T.test("one subscription sees messages in publish order", function()
  local nc = connect()
  local got = {}
  nc:subscribe("order", function(m) got[#got + 1] = tonumber(m.data) end)
  for i = 1, 2000 do nc:publish("order", tostring(i)) end
  T.wait_until(function() return #got == 2000 end, 10)
  for i = 1, 2000 do if got[i] ~= i then error("position " .. i .. " holds " .. tostring(got[i])) end end
  nc:close()
end)

T.test("queue group: each message to exactly one member", function()
  local a, b = connect(), connect()
  local seen, per = {}, { 0, 0, 0 }
  local function member(i) return function(m)
    seen[m.data] = (seen[m.data] or 0) + 1
    per[i] = per[i] + 1
  end end
  a:subscribe("q.work", member(1), { queue = "workers" })
  a:subscribe("q.work", member(2), { queue = "workers" })
  b:subscribe("q.work", member(3), { queue = "workers" })
  a:flush(); b:flush()
  for i = 1, 300 do b:publish("q.work", tostring(i)) end
  T.wait_until(function() return per[1] + per[2] + per[3] >= 300 end, 10, "300 deliveries")
  jet.sleep(0.2)
  T.eq(per[1] + per[2] + per[3], 300, "total deliveries")
  for i = 1, 300 do T.eq(seen[tostring(i)], 1, "deliveries of message " .. i) end
  local members = 0
  for i = 1, 3 do if per[i] > 0 then members = members + 1 end end
  T.ok(members > 1, "only one member got messages: " .. table.concat(per, ","))
  a:close(); b:close()
end)

T.test("unsubscribe stops delivery", function()
  local nc = connect()
  local n = 0
  local sub = nc:subscribe("u", function() n = n + 1 end)
  nc:publish("u", "1")
  T.wait_until(function() return n == 1 end, 5)
  T.eq(sub:unsubscribe(), true)
  T.eq(sub:unsubscribe(), false, "second unsubscribe")
  nc:publish("u", "2")
  nc:flush()
  jet.sleep(0.2)
  T.eq(n, 1)
  nc:close()
end)

T.test("concurrency lets handlers overlap; default keeps them in order", function()
  local nc = connect()
  local done, maxrun, running = 0, 0, 0
  nc:subscribe("c.par", function()
    running = running + 1
    if running > maxrun then maxrun = running end
    jet.sleep(0.1)
    running = running - 1
    done = done + 1
  end, { concurrency = 10 })
  local t0 = jet.monotonic()
  for i = 1, 10 do nc:publish("c.par", "") end
  T.wait_until(function() return done == 10 end, 5)
  T.ok(jet.monotonic() - t0 < 0.6, "10 overlapping 0.1 s handlers took " .. (jet.monotonic() - t0))
  T.eq(maxrun, 10)

  local order, busy, overlap = {}, false, false
  nc:subscribe("c.seq", function(m)
    if busy then overlap = true end
    busy = true
    jet.sleep(0.01)
    order[#order + 1] = tonumber(m.data)
    busy = false
  end)
  for i = 1, 20 do nc:publish("c.seq", tostring(i)) end
  T.wait_until(function() return #order == 20 end, 5)
  T.eq(overlap, false)
  for i = 1, 20 do T.eq(order[i], i) end
  nc:close()
end)

T.run()
