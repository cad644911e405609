-- Hot reload of a JetStream pull consumer while messages flow: the handler
-- module rewritten 20 times (3 broken) -> every stream sequence handled
-- exactly once, by exactly one good generation; the connection never drops;
-- the consumer is kept (swapped in place), a consumer that is gone is
-- drained, a new one starts.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url })
local js = nc:jetstream()

local function write_handler(dir, version, broken)
  local body = broken and "return function(nc, msg) this is not lua\n"
    or ("return function(nc, msg) nc:publish('results', msg:metadata().stream_seq .. ':v%d') end\n"):format(version)
  T.write_file(dir .. "/handler.tmp", body)
  assert(os.rename(dir .. "/handler.tmp", dir .. "/handler.lua"))
end

T.test("--watch: 20 rewrites (3 broken) while a consumer works: each sequence once, by one good version", function()
  assert(js:stream{ name = "FLOW", subjects = { "flow.>" }, storage = "file" })
  assert(js:consumer("FLOW", { durable = "W", ack_wait = 30 }))
  local dir = T.tmpdir()
  write_handler(dir, 1)
  T.write_file(dir .. "/app.lua", [[
    local jet = require "jetlua"
    local handler = require "handler"
    local nc = assert(jet.connect())
    local js = nc:jetstream()
    assert(js:consume("FLOW", "W", function(msg) handler(nc, msg) end, { max_messages = 200 }))
    jet.on_reload(function(info) nc:publish("reloaded", tostring(info.generation)) end)
    nc:on("disconnected", function() nc:publish("results", "DISCONNECTED") end)
    print("ready")
  ]])
  local child = T.jetlua({ "run", "--watch", "--server", srv.url, "app.lua" },
    { stdout = dir .. "/out", stderr = dir .. "/err", cwd = dir })
  T.wait_until(function() return (T.read_file(dir .. "/out") or ""):find("ready") end, 10)
  local results, reloads = {}, 0
  nc:subscribe("results", function(m) results[#results + 1] = m.data end)
  nc:subscribe("reloaded", function() reloads = reloads + 1 end)
  nc:flush()
  local sent, flowing = 0, true
  jet.spawn(function()
    while flowing do
      sent = sent + 1
      js:publish_async("flow.x", tostring(sent))
      if sent % 5 == 0 then jet.sleep(0.005) end
    end
  end)
  local broken = { [5] = true, [11] = true, [17] = true }
  local good, bad = 0, 0
  local function failures()
    return select(2, (T.read_file(dir .. "/err") or ""):gsub("reload failed", ""))
  end
  for v = 2, 21 do
    jet.sleep(0.25)
    write_handler(dir, v, broken[v])
    if broken[v] then
      bad = bad + 1
      T.wait_until(function() return failures() >= bad end, 10, "the failed reload of v" .. v .. " is logged")
    else
      good = good + 1
      T.wait_until(function() return reloads >= good end, 10, "reload to v" .. v)
    end
  end
  jet.sleep(0.3)
  flowing = false
  T.eq(js:publish_async_complete(10), 0)
  T.wait_until(function() return #results >= sent end, 20, "every message handled")
  jet.sleep(0.3)
  local seen, versions = {}, {}
  for _, r in ipairs(results) do
    T.ok(r ~= "DISCONNECTED", "the connection never dropped")
    local n, v = r:match("^(%d+):v(%d+)$")
    T.ok(n, r)
    T.eq(seen[n], nil, "sequence " .. n .. " handled twice")
    seen[n] = true
    v = tonumber(v)
    versions[v] = (versions[v] or 0) + 1
    T.ok(not broken[v], "a broken version ran: v" .. v)
  end
  T.eq(#results, sent, "each sequence handled exactly once")
  for i = 1, sent do T.ok(seen[tostring(i)], "sequence " .. i .. " handled") end
  T.ok(versions[1] and versions[21], "the first and the last version both handled messages")
  local err = T.read_file(dir .. "/err")
  T.eq(select(2, err:gsub("reload failed: [^\n]*handler%.lua:1:", "")), 3, err)
  T.ok(err:find("reload #1 ok %(handler%.lua changed%): 1 handler%(s%) swapped, 0 started, 0 stopped"), err)
  local ci = js:consumer_info("FLOW", "W")
  T.eq(ci.num_ack_pending, 0); T.eq(ci.num_redelivered, 0, "nothing redelivered: no message was dropped")
  child:kill("TERM")
  T.eq(child:wait(10), 0, err)
end)

T.test("SIGHUP: a consumer that is gone is drained, a new one starts, options change in place", function()
  assert(js:stream{ name = "SW", subjects = { "sw.>" } })
  assert(js:consumer("SW", { durable = "A" })); assert(js:consumer("SW", { durable = "B" }))
  local dir = T.tmpdir()
  T.write_file(dir .. "/version", "1")
  T.write_file(dir .. "/app.lua", [[
    local jet = require "jetlua"
    local f = io.open((arg[0]:match("^(.*)/") or ".") .. "/version"); local v = f:read("*l"); f:close()
    local nc = assert(jet.connect())
    local js = nc:jetstream()
    local running, peak = 0, 0
    local function h(name) return function(msg)
      running = running + 1; if running > peak then peak = running end
      jet.sleep(0.05)
      running = running - 1
      nc:publish("out", name .. v .. ":" .. msg.data .. ":" .. peak)
    end end
    if v == "1" then assert(js:consume("SW", "A", h("a"))) end
    if v == "2" then
      assert(js:consume("SW", "B", h("b"), { concurrency = 4 }))
    end
    print("ran " .. v)
  ]])
  local child = T.jetlua({ "run", "--server", srv.url, dir .. "/app.lua" },
    { stdout = dir .. "/out", stderr = dir .. "/err" })
  T.wait_until(function() return (T.read_file(dir .. "/out") or ""):find("ran 1") end, 10)
  local out = {}
  nc:subscribe("out", function(m) out[#out + 1] = m.data end)
  nc:flush()
  assert(js:publish("sw.x", "1"))
  T.wait_until(function() return #out == 1 end, 5)
  T.eq(out[1], "a1:1:1")
  T.write_file(dir .. "/version", "2")
  child:kill("HUP")
  T.wait_until(function()
    return (T.read_file(dir .. "/err") or ""):find("0 handler(s) swapped, 1 started, 1 stopped", 1, true)
  end, 10, T.read_file(dir .. "/err"))
  -- the server forgets A's pull requests once it sees their reply subject has no interest
  -- (not at once: the log line can come first)
  T.wait_until(function() return js:consumer_info("SW", "A").num_waiting == 0 end, 30, "A no longer pulls")
  for i = 2, 9 do assert(js:publish("sw.x", tostring(i))) end
  -- B is a durable of its own: it handles 1..9
  T.wait_until(function() return #out == 10 end, 10, "B handles them")
  local peak = 0
  for i = 2, 10 do
    T.ok(out[i]:find("^b2:"), out[i])
    peak = math.max(peak, tonumber(out[i]:match(":(%d+)$")))
  end
  T.eq(peak, 4, "concurrency 4 in B")
  -- the same consumer with new options: concurrency 4 -> 2, swapped in place
  T.write_file(dir .. "/app.lua", (T.read_file(dir .. "/app.lua"):gsub("concurrency = 4", "concurrency = 2")))
  child:kill("HUP")
  T.wait_until(function()
    return (T.read_file(dir .. "/err") or "")
      :find("reload #2 ok (SIGHUP): 1 handler(s) swapped, 0 started, 0 stopped", 1, true)
  end, 10, T.read_file(dir .. "/err"))
  for i = 10, 17 do assert(js:publish("sw.x", tostring(i))) end
  T.wait_until(function() return #out == 18 end, 10, "B goes on")
  for i = 11, 18 do
    T.ok(out[i]:find("^b2:"), out[i])
    T.ok(tonumber(out[i]:match(":(%d+)$")) <= 2, "concurrency now 2: " .. out[i])
  end
  T.eq(js:consumer_info("SW", "B").num_ack_pending, 0)
  child:kill("TERM")
  T.eq(child:wait(10), 0, T.read_file(dir .. "/err"))
end)

T.run()
