-- Core pub/sub: data and headers, wildcards, ordering, queue groups, unsubscribe, concurrency.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = false }

local function connect() return assert(jet.connect{ servers = srv.url }) end

-- every byte value, and a payload bigger than cnats' read buffer
local all_bytes = {}
for i = 0, 255 do all_bytes[#all_bytes + 1] = string.char(i) end
all_bytes = table.concat(all_bytes)

T.test("data and multi-value headers arrive intact", function()
  local nc = connect()
  local got = {}
  nc:subscribe("pubsub.h", function(m)
    got[#got + 1] = { subject = m.subject, data = m.data, size = m.size, reply = m.reply, h = m.headers,
      first = m:header("Multi"), all = m:header_values("Multi"), none = m:header("Absent"),
      none_all = m:header_values("Absent") }
  end)
  nc:flush()
  local big = string.rep(all_bytes, 1200)          -- 300 KiB, all byte values, NULs included
  T.eq(nc:publish("pubsub.h", big, { headers = { One = "1", Multi = { "a", "b c", "d:e" },
    Single = { "only" }, Spaces = "  x y  " } }), true)
  T.eq(nc:publish("pubsub.h", "", { reply = "pubsub.answer" }), true)
  T.eq(nc:publish("pubsub.h"), true)               -- data may be omitted
  T.wait_until(function() return #got == 3 end, 5, "3 messages")
  local m = got[1]
  T.eq(m.subject, "pubsub.h")
  T.ok(m.data == big, "payload changed: " .. #m.data .. " bytes instead of " .. #big)
  T.eq(m.size, #big)
  T.eq(m.reply, nil)
  T.eq(m.h.One, "1")
  T.eq(m.h.Multi, { "a", "b c", "d:e" })
  T.eq(m.h.Single, "only", "a one-element list arrives as a plain value")
  T.eq(m.first, "a")
  T.eq(m.all, { "a", "b c", "d:e" })
  T.eq(m.none, nil)
  T.eq(m.none_all, {})
  T.ok(m.h.Spaces and m.h.Spaces:find("x y", 1, true), "Spaces header: " .. tostring(m.h.Spaces))
  T.eq(got[2].data, "")
  T.eq(got[2].size, 0)
  T.eq(got[2].reply, "pubsub.answer")
  T.eq(got[2].h, {})
  T.eq(got[3].data, "")
  nc:close()
end)

T.test("wildcards * and > match exactly what they should", function()
  local sub_nc, pub_nc = connect(), connect()
  local seen = { star = {}, full = {}, one = {}, mid = {} }
  local function rec(list) return function(m) list[#list + 1] = m.subject end end
  sub_nc:subscribe("w.*.x", rec(seen.star))
  sub_nc:subscribe("w.>", rec(seen.full))
  sub_nc:subscribe("w.*", rec(seen.one))
  sub_nc:subscribe("*.a.*", rec(seen.mid))
  sub_nc:flush()
  for _, s in ipairs{ "w", "w.a", "w.a.x", "w.b.x", "w.a.y", "w.a.x.z", "w.a.xx", "ww.a.x", "v.a.x", "x.w.a", "a" } do
    pub_nc:publish(s, "")
  end
  -- sentinels, published last on the same connection: once each arrived, everything before it has
  pub_nc:publish("w.end.x", "")   -- star, full
  pub_nc:publish("w.end", "")     -- full, one
  pub_nc:publish("z.a.end", "")   -- mid
  local function has(list, s) for _, v in ipairs(list) do if v == s then return true end end end
  T.wait_until(function()
    return has(seen.star, "w.end.x") and has(seen.full, "w.end") and has(seen.one, "w.end")
      and has(seen.mid, "z.a.end")
  end, 5, "sentinels")
  local function without_sentinels(list)
    local out = {}
    for _, s in ipairs(list) do if not s:find("end", 1, true) then out[#out + 1] = s end end
    table.sort(out)
    return out
  end
  T.eq(without_sentinels(seen.star), { "w.a.x", "w.b.x" }, "w.*.x")
  T.eq(without_sentinels(seen.full), { "w.a", "w.a.x", "w.a.x.z", "w.a.xx", "w.a.y", "w.b.x" }, "w.>")
  T.eq(without_sentinels(seen.one), { "w.a" }, "w.*")
  T.eq(without_sentinels(seen.mid), { "v.a.x", "w.a.x", "w.a.xx", "w.a.y", "ww.a.x" }, "*.a.*")
  sub_nc:close(); pub_nc:close()
end)

T.test("one subscription sees messages in publish order", function()
  local sub_nc, pub_nc = connect(), connect()
  local got = {}
  sub_nc:subscribe("order", function(m) got[#got + 1] = tonumber(m.data) end)
  sub_nc:flush()
  for i = 1, 5000 do pub_nc:publish("order", tostring(i)) end
  T.wait_until(function() return #got == 5000 end, 10, "5000 messages")
  for i = 1, 5000 do if got[i] ~= i then error("position " .. i .. " holds " .. tostring(got[i])) end end
  sub_nc:close(); pub_nc:close()
end)

-- 3 members of one queue group; conns[i] is the connection of member i
local function queue_group(conns, subject)
  local pub = connect()
  local seen, per = {}, { 0, 0, 0 }
  for i = 1, 3 do
    conns[i]:subscribe(subject, function(m)
      seen[m.data] = (seen[m.data] or 0) + 1
      per[i] = per[i] + 1
    end, { queue = "workers" })
  end
  for i = 1, 3 do conns[i]:flush() end
  for i = 1, 300 do pub:publish(subject, tostring(i)) end
  pub:flush()
  T.wait_until(function() return per[1] + per[2] + per[3] >= 300 end, 10, "300 deliveries")
  -- give duplicates (if any) time to show up
  for i = 1, 3 do conns[i]:flush() end
  jet.sleep(0.2)
  T.eq(per[1] + per[2] + per[3], 300, "total deliveries")
  for i = 1, 300 do T.eq(seen[tostring(i)], 1, "deliveries of message " .. i) end
  local members = 0
  for i = 1, 3 do if per[i] > 0 then members = members + 1 end end
  T.ok(members > 1, "only one member got messages: " .. table.concat(per, ","))
  pub:close()
end

T.test("queue group on one connection: each message to exactly one member", function()
  local nc = connect()
  queue_group({ nc, nc, nc }, "q.same")
  nc:close()
end)

T.test("queue group on three connections: each message to exactly one member", function()
  local a, b, c = connect(), connect(), connect()
  queue_group({ a, b, c }, "q.sep")
  a:close(); b:close(); c:close()
end)

T.test("a queue group and a plain subscriber both get the message", function()
  local nc = connect()
  local plain, grouped = 0, 0
  nc:subscribe("q.mix", function() plain = plain + 1 end)
  nc:subscribe("q.mix", function() grouped = grouped + 1 end, { queue = "g1" })
  nc:subscribe("q.mix", function() grouped = grouped + 1 end, { queue = "g1" })
  nc:flush()
  for _ = 1, 50 do nc:publish("q.mix", "") end
  T.wait_until(function() return plain == 50 and grouped == 50 end, 5, "50 + 50")
  nc:flush()
  jet.sleep(0.1)
  T.eq(plain, 50)
  T.eq(grouped, 50)
  nc:close()
end)

T.test("unsubscribe stops delivery", function()
  local nc = connect()
  local n = 0
  local sub = nc:subscribe("u", function() n = n + 1 end)
  nc:publish("u", "1")
  T.wait_until(function() return n == 1 end, 5)
  T.eq(sub:unsubscribe(), true)
  T.eq(sub:unsubscribe(), false, "second unsubscribe")
  T.eq(sub:stats().closed, true)
  nc:publish("u", "2")
  nc:flush()
  jet.sleep(0.2)
  T.eq(n, 1)
  -- a second subscription on the same subject still works: only the first one was removed
  local m = 0
  nc:subscribe("u", function() m = m + 1 end)
  nc:flush()
  nc:publish("u", "3")
  T.wait_until(function() return m == 1 end, 5)
  T.eq(n, 1)
  nc:close()
end)

T.test("unsubscribe from inside the handler: nothing more is handled", function()
  local nc = connect()
  local n = 0
  local sub
  sub = nc:subscribe("u.self", function()
    n = n + 1
    if n == 5 then sub:unsubscribe() end
  end)
  nc:flush()
  for i = 1, 50 do nc:publish("u.self", tostring(i)) end   -- a burst: most are queued when it stops
  nc:flush()
  T.wait_until(function() return n >= 5 end, 5)
  jet.sleep(0.2)
  T.eq(n, 5)
  nc:close()
end)

T.test("concurrency lets handlers overlap; default keeps them in order", function()
  local nc = connect()
  -- handlers wait at a gate: 10 of them running at once shows they overlap
  local done, maxrun, running, open = 0, 0, 0, false
  nc:subscribe("c.par", function()
    running = running + 1
    if running > maxrun then maxrun = running end
    while not open do jet.sleep(0.01) end
    running = running - 1
    done = done + 1
  end, { concurrency = 10 })
  nc:flush()
  for _ = 1, 10 do nc:publish("c.par", "") end
  T.wait_until(function() return running == 10 end, 30, "10 handlers running at once")
  open = true
  T.wait_until(function() return done == 10 end, 30)
  T.eq(maxrun, 10)

  -- a limit of 3 is a limit: 3 run and wait at the gate, the other 9 wait for a free slot
  local n3, max3, run3, open3 = 0, 0, 0, false
  nc:subscribe("c.three", function()
    run3 = run3 + 1
    if run3 > max3 then max3 = run3 end
    while not open3 do jet.sleep(0.01) end
    jet.sleep(0.01)
    run3 = run3 - 1
    n3 = n3 + 1
  end, { concurrency = 3 })
  nc:flush()
  for _ = 1, 12 do nc:publish("c.three", "") end
  T.wait_until(function() return run3 == 3 end, 30, "3 handlers running")
  nc:flush()
  jet.sleep(0.1)                          -- the other 9 have arrived: none may start
  T.eq(run3, 3)
  open3 = true
  T.wait_until(function() return n3 == 12 end, 30)
  T.eq(max3, 3)

  -- default: one at a time, in order, even when each handler waits
  local order, busy, overlap = {}, false, false
  nc:subscribe("c.seq", function(m)
    if busy then overlap = true end
    busy = true
    jet.sleep(0.01)
    order[#order + 1] = tonumber(m.data)
    busy = false
  end)
  nc:flush()
  local t0 = jet.monotonic()
  for i = 1, 20 do nc:publish("c.seq", tostring(i)) end
  T.wait_until(function() return #order == 20 end, 5)
  T.eq(overlap, false)
  T.ok(jet.monotonic() - t0 >= 0.2, "20 sequential 10 ms handlers finished too fast")
  for i = 1, 20 do T.eq(order[i], i) end
  nc:close()
end)

T.run()
