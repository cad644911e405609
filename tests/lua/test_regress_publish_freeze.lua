-- Regression test (issue #11): publish retries during a frozen connection grew memory without
-- bound (6,000 x 256 KiB with retries during a 20 s freeze: RSS 560 MB -> 2.9 GB, then
-- "nats_error (No Memory)"). Each retry appended another copy of a payload that still sat in
-- cnats' write buffer, and the window was bounded in messages only. Now the window is bounded in
-- bytes too (max_pending_bytes), a retry never duplicates a payload still in the write buffer,
-- and nc:publish waits while that buffer is over its bound. The connection goes through a
-- proxy (T.proxy) that freezes forwarding: the server stops reading, as when it hangs.
local jet = require "jetlua"
local T = require "jetlua.testing"

local MiB = 1024 * 1024
local KiB256 = ("x"):rep(256 * 1024)

local function rss_mib()
  return tonumber(T.read_file("/proc/self/status"):match("VmRSS:%s*(%d+)")) / 1024
end

-- AddressSanitizer keeps freed memory in quarantine (256 MB by default): RSS then measures it
local asan = (T.read_file("/proc/self/maps") or ""):find("libasan", 1, true) ~= nil
local slack = asan and 64 + 256 or 64

local srv = T.server{}

-- run fn; whatever happens, thaw the proxy (a failed assertion must not leave the publisher
-- waiting on a frozen connection until the shutdown timeout)
local function frozen(px, nc, fn)
  local ok, err = pcall(fn)
  px:thaw()
  if not ok then nc:close(); error(err, 0) end
end

-- samples the peak RSS and the peak of the connection's write buffer while active
local function sampler(nc)
  local s = { rss = 0, buffered = 0, on = false }
  s.timer = jet.every(0.02, function()
    if not s.on then return end
    s.rss = math.max(s.rss, rss_mib())
    s.buffered = math.max(s.buffered, nc:stats().buffered)
  end)
  return s
end

T.test("async publishing through a frozen connection: bounded memory, no piled-up copies", function()
  local px = T.proxy{ target = srv.url }
  local nc = assert(jet.connect{ servers = px.url })
  local bound = 16 * MiB
  local js = nc:jetstream{ ack_timeout = 1, retry = { attempts = 20 }, max_pending_bytes = bound }
  assert(js:stream{ name = "FREEZE", subjects = { "freeze.>" }, storage = "memory" })
  local n = 600                                    -- 150 MiB in all, 64 of them fit the window
  local s = sampler(nc)
  collectgarbage()
  local base = rss_mib()
  px:freeze()
  s.on = true
  local futures, done = {}, false
  jet.spawn(function()
    for i = 1, n do futures[i] = js:publish_async("freeze.x", KiB256, { msg_id = "f" .. i }) end
    done = true
  end)
  frozen(px, nc, function()
    T.wait_until(function() return js:publish_async_stats().pending >= 60 end, 30, "the window to fill")
    jet.sleep(4)      -- several ack timeouts (1 s) pass while the messages wait in the write buffer
    s.on = false
    local st = js:publish_async_stats()
    T.ok(st.pending_bytes <= bound, "the window holds " .. st.pending_bytes .. " bytes")
    T.ok(st.published < n, "the publisher waits for room")
    T.ok(s.buffered <= bound + MiB, ("the write buffer held %.1f MiB (bound %d MiB): copies piled up")
      :format(s.buffered / MiB, bound / MiB))
    -- the window, one copy of it in cnats' buffer, and room for the allocator and the sampler
    T.ok(s.rss - base <= 3 * bound / MiB + slack, ("RSS grew by %.0f MiB while frozen (bound %d MiB)")
      :format(s.rss - base, bound / MiB))
    print(("# frozen: RSS +%.0f MiB, write buffer peak %.1f MiB, %d published, %d timeouts re-armed")
      :format(s.rss - base, s.buffered / MiB, st.published, st.buffer_waits))
    T.ok(st.buffer_waits > 0, "timeouts of messages still in the write buffer were re-armed")
  end)
  T.wait_until(function() return done end, 60, "the publisher to finish")
  T.eq(js:publish_async_complete(60), 0)
  for i = 1, n do T.ok(futures[i]:wait(), "message " .. i .. " acked") end
  T.eq(js:stream_info("FREEZE").state.messages, n, "each message stored once")
  s.timer:stop()
  nc:close()
end)

T.test("without retries, failures during a freeze come at once and say what may have happened", function()
  local px = T.proxy{ target = srv.url }
  local nc = assert(jet.connect{ servers = px.url })
  local js = nc:jetstream{ ack_timeout = 1, max_pending_bytes = 4 * MiB }
  assert(js:stream{ name = "NORETRY", subjects = { "noretry.>" }, storage = "memory" })
  local n = 40
  px:freeze()
  local futures = {}
  for i = 1, n do futures[i] = js:publish_async("noretry.x", KiB256, { msg_id = "n" .. i }) end
  -- every one fails with "timeout" while the connection is still frozen
  T.wait_until(function() return js:publish_async_pending() == 0 end, 60, "every future to fail")
  local in_buffer, sent = 0, 0
  for i = 1, n do
    local ack, code, detail = futures[i]:wait(0)
    T.eq({ ack, code }, { nil, "timeout" }, tostring(detail))
    if detail:find("still waits in the connection's write buffer", 1, true) then in_buffer = in_buffer + 1
    elseif detail:find("was sent", 1, true) then sent = sent + 1 end
    T.ok(detail:find("same msg_id", 1, true), detail)
  end
  T.eq(in_buffer + sent, n, "every detail says where the message was")
  T.ok(in_buffer > 0, "some were still in the write buffer")
  px:thaw()
  -- the answer to "may have been stored": publish again with the same msg_id
  for i = 1, n do futures[i] = js:publish_async("noretry.x", KiB256, { msg_id = "n" .. i }) end
  T.eq(js:publish_async_complete(60), 0)
  for i = 1, n do T.ok(futures[i]:wait(), "republished " .. i) end
  T.eq(js:stream_info("NORETRY").state.messages, n, "no message stored twice")
  nc:close()
end)

T.test("nc:publish waits while the write buffer is over its bound, then goes on", function()
  local px = T.proxy{ target = srv.url }
  local nc = assert(jet.connect{ servers = px.url })
  local cap = nc:stats().max_buffered
  local big = ("y"):rep(512 * 1024)
  local n = math.floor(cap * 2 / #big)               -- twice what the buffer may hold
  local s = sampler(nc)
  px:freeze()
  s.on = true
  local published, results = 0, {}
  jet.spawn(function()
    for i = 1, n do
      results[i] = nc:publish("core.big", big)
      published = i
    end
  end)
  frozen(px, nc, function()
    T.wait_until(function() return nc:stats().buffered > cap end, 30, "the buffer to fill")
    local at = published
    jet.sleep(0.5)
    T.eq(published, at, "the publisher waits")
    T.ok(published < n, "the publisher waits")
    s.on = false
    T.ok(s.buffered <= cap + 2 * MiB, ("the write buffer held %.1f MiB (bound %d MiB)")
      :format(s.buffered / MiB, cap / MiB))
  end)
  T.wait_until(function() return published == n end, 60, "every publish")
  for i = 1, n do T.eq(results[i], true) end
  T.ok(nc:flush(30))
  s.timer:stop()
  nc:close()
end)

T.test("the proxy helper: cut() drops every connection; they reconnect through it", function()
  local px = T.proxy{ target = srv.url }
  local nc = assert(jet.connect{ servers = px.url, reconnect = { wait = 0.1 } })
  local events = {}
  nc:on("disconnected", function() events[#events + 1] = "disconnected" end)
  nc:on("reconnected", function() events[#events + 1] = "reconnected" end)
  px:cut()
  T.wait_until(function() return events[2] == "reconnected" end, 10, "a reconnect")
  T.eq(events, { "disconnected", "reconnected" })
  local got
  nc:subscribe("after.cut", function(m) got = m.data end)
  nc:flush()
  nc:publish("after.cut", "ok")
  T.wait_until(function() return got == "ok" end, 5, "a message after the cut")
  nc:close()
end)

T.run()
