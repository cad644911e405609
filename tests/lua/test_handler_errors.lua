-- A handler, timer callback, spawned coroutine or event handler that raises: the error is logged
-- with a traceback, and everything else goes on.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = false }

T.test("a handler raising for some messages: the others are handled, the subscription lives on", function()
  local nc = assert(jet.connect{ servers = srv.url })
  local ok_seen, calls = {}, 0
  local sub = nc:subscribe("he.mixed", function(m)
    calls = calls + 1
    local i = tonumber(m.data)
    if i % 3 == 0 then error("poisoned " .. i) end
    if i % 7 == 0 then error({ code = i }) end       -- not a string
    if i % 11 == 0 then local t = nil; return t.field end   -- a runtime error
    ok_seen[#ok_seen + 1] = i
  end)
  nc:flush()
  for i = 1, 100 do nc:publish("he.mixed", tostring(i)) end
  T.wait_until(function() return calls == 100 end, 5, "100 handler calls")
  local want = {}
  for i = 1, 100 do if i % 3 ~= 0 and i % 7 ~= 0 and i % 11 ~= 0 then want[#want + 1] = i end end
  T.eq(ok_seen, want, "the messages that did not raise, in order")
  T.eq(sub:stats().closed, false)
  T.eq(sub:stats().delivered, 100)
  -- still subscribed, still in order
  nc:publish("he.mixed", "101")
  T.wait_until(function() return ok_seen[#ok_seen] == 101 end, 5, "a message after the errors")
  nc:close()
end)

T.test("with concurrency, a raising handler does not take a slot for ever", function()
  local nc = assert(jet.connect{ servers = srv.url })
  local done = 0
  local sub = nc:subscribe("he.conc", function(m)
    jet.sleep(0.01)
    if tonumber(m.data) % 2 == 0 then error("even") end
    done = done + 1
  end, { concurrency = 4 })
  nc:flush()
  for i = 1, 40 do nc:publish("he.conc", tostring(i)) end
  T.wait_until(function() return done == 20 end, 5, "20 odd messages handled")
  T.wait_until(function() return sub:stats().running == 0 end, 5, "no handler left running")
  nc:close()
end)

T.test("a responder that raises: that request times out, the next one is answered", function()
  local svc = assert(jet.connect{ servers = srv.url })
  local cli = assert(jet.connect{ servers = srv.url })
  svc:subscribe("he.svc", function(m)
    if m.data == "bad" then error("cannot answer " .. m.data) end
    m:respond("ok:" .. m.data)
  end)
  svc:flush()
  local r, err = cli:request("he.svc", "bad", { timeout = 0.3 })
  T.eq(r, nil)
  T.eq(err, "timeout")
  r = cli:request("he.svc", "good", { timeout = 2 })
  T.eq(r and r.data, "ok:good")
  svc:close(); cli:close()
end)

T.test("a timer callback raising does not stop other timers", function()
  local a, b, once = 0, 0, 0
  local ea = jet.every(0.01, function()
    a = a + 1
    error("every raises on each tick")
  end)
  local eb = jet.every(0.01, function() b = b + 1 end)
  jet.timer(0.02, function() once = once + 1; error("one-shot raises") end)
  local later = false
  jet.timer(0.05, function() later = true end)
  -- both keep ticking: 5 ticks each (a raising tick does not stop its timer or the other one)
  T.wait_until(function() return a >= 5 and b >= 5 and later end, 30, "5 ticks of each jet.every, the later timer")
  T.eq(once, 1)
  T.eq(later, true, "a later one-shot timer did not fire")
  T.eq(ea:active(), true, "a raising jet.every is still armed")
  ea:stop(); eb:stop()
end)

T.test("spawned coroutines and event handlers that raise do not disturb the rest", function()
  local after = 0
  for i = 1, 5 do jet.spawn(function() jet.sleep(0.01); error("spawned " .. i) end) end
  jet.spawn(function() jet.sleep(0.02); after = after + 1 end)
  local nc = assert(jet.connect{ servers = srv.url })
  nc:on("closed", function() error("closed handler raises") end)
  local got = 0
  nc:subscribe("he.ev", function() got = got + 1 end)
  nc:publish("he.ev", "")
  T.wait_until(function() return got == 1 and after == 1 end, 5)
  nc:close()
  T.wait_until(function() return nc:status() == "closed" end, 5)
  jet.sleep(0.05)
  local nc2 = assert(jet.connect{ servers = srv.url })
  nc2:subscribe("he.ev", function() got = got + 1 end)
  nc2:publish("he.ev", "")
  T.wait_until(function() return got == 2 end, 5, "a new connection after the raising closed handler")
  nc2:close()
end)

-- The log: run the same kind of failures in a child and read its stderr.
T.test("each error is logged once, with its message, file:line and a traceback (a repeat as a count); "
  .. "exit status 0", function()
  local dir = T.tmpdir()
  T.write_file(dir .. "/app.lua", [[
local jet = require "jetlua"
local nc = assert(jet.connect())
local handled, seen = 0, 0
local function check(m)
  if m.data == "bad" then
    error("poisoned message " .. m.subject)
  end
end
nc:subscribe("h.*", function(m) seen = seen + 1
  check(m)
  handled = handled + 1
end)
nc:subscribe("q", function(m) error({}) end, { queue = "workers" })
for _, d in ipairs{ "a", "bad", "b", "bad", "c" } do nc:publish("h.x", d) end
nc:publish("q", "")
local ticks = 0
local t; t = jet.every(0.01, function()
  ticks = ticks + 1
  if ticks == 3 then error("timer trouble") end
  if ticks == 10 then t:stop() end
end)
jet.spawn(function() jet.sleep(0.01); error("spawned trouble") end)
-- until all 5 messages were seen and the timer stopped itself (then a little longer: a
-- stopped timer that ticked on would show)
local deadline = jet.monotonic() + 30
while (seen < 5 or ticks < 10) and jet.monotonic() < deadline do jet.sleep(0.01) end
jet.sleep(0.05)
print("handled " .. handled .. " ticks " .. ticks)
nc:drain()
]])
  local p = T.jetlua({ "run", "--server", srv.url, dir .. "/app.lua" },
    { stdout = dir .. "/out", stderr = dir .. "/err", env = { NATS_URL = false } })
  local status, sig = p:wait(60)
  if sig and sig ~= 0 then status = "signal " .. sig end
  local out, err = T.read_file(dir .. "/out") or "", T.read_file(dir .. "/err") or ""
  T.eq(status, 0, "handler errors do not change the exit status: " .. err)
  T.ok(out:find("handled 3 ticks 10", 1, true), out .. err)
  -- the message with file:line, the traceback with the helper and the handler frames
  local poisoned = "ERROR handler for 'h%.%*' failed: [^\n]*app%.lua:6: poisoned message h%.x"
  local first = err:find(poisoned .. "\nstack traceback:\n")
  T.ok(first, err)
  local tb = err:sub(first, (err:find("\n%d%d%d%d%-", first) or #err + 1) - 1)
  T.ok(tb:find("app.lua:6: in function 'check'", 1, true) or tb:find("app.lua:6: in function <", 1, true), tb)
  T.ok(tb:find("app.lua:10:", 1, true), "the handler's frame is missing from:\n" .. tb)
  local _, n = err:gsub("handler for 'h%.%*' failed", "")
  T.eq(n, 2, "logged once per failing message")
  T.ok(err:find("ERROR handler for 'q' in queue workers failed: table: ", 1, true), err)
  T.ok(err:find("ERROR jet.every callback failed: [^\n]*app.lua:19: timer trouble"), err)
  T.ok(err:find("ERROR jet.spawn coroutine failed: [^\n]*app.lua:22: spawned trouble"), err)
  -- the second identical poisoned message is counted, not logged again in full
  T.ok(err:find(poisoned .. " %(repeated 1 time in the last %d+ s%)\n"), err)
  local _, tbs = err:gsub("stack traceback:", "")
  T.eq(tbs, 4, "one traceback per distinct error")
end)

T.run()
