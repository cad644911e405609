-- Hot reload (--watch and SIGHUP) of a script with core subscriptions: handlers swapped in
-- place while messages flow, broken versions never run and keep the old code, the
-- connection never drops, subscriptions that are gone are drained, new ones start.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = false }
local nc = assert(jet.connect{ servers = srv.url })

local function write_handler(dir, version, broken)
  -- written to a temp file and renamed over, as editors do
  local body = broken and "return function(msg) this is not lua\n"
    or ("return function(nc, msg) nc:publish('results', msg.data .. ':v%d') end\n"):format(version)
  T.write_file(dir .. "/handler.tmp", body)
  assert(os.rename(dir .. "/handler.tmp", dir .. "/handler.lua"))
end

T.test("--watch: 8 rewrites (2 broken) while messages flow: each handled once, by a good version", function()
  local dir = T.tmpdir()
  write_handler(dir, 1)
  T.write_file(dir .. "/app.lua", [[
    local jet = require "jetlua"
    local handler = require "handler"
    local nc = assert(jet.connect())
    nc:subscribe("work", function(msg) handler(nc, msg) end)
    jet.on_reload(function(info) nc:publish("reloaded", tostring(info.generation)) end)
    nc:on("disconnected", function() nc:publish("results", "DISCONNECTED") end)
    nc:flush()   -- the SUB has reached the server before the test publishes (else, under
                 -- load, the first messages found no subscriber: core NATS drops them)
    print("ready")
  ]])
  local child = T.jetlua({ "run", "--watch", "--server", srv.url, "app.lua" },   -- a relative path
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
      nc:publish("work", tostring(sent))
      jet.sleep(0.002)
    end
  end)
  local broken = { [3] = true, [6] = true }
  local good, bad = 0, 0
  local function failures()
    return select(2, (T.read_file(dir .. "/err") or ""):gsub("reload failed", ""))
  end
  for v = 2, 9 do
    jet.sleep(0.4)
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
  jet.sleep(0.3)
  nc:flush()
  T.wait_until(function() return #results >= sent end, 60, "every message handled")
  local seen, versions = {}, {}
  for _, r in ipairs(results) do
    T.ok(r ~= "DISCONNECTED", "the connection never dropped")
    local n, v = r:match("^(%d+):v(%d+)$")
    T.ok(n, r)
    T.eq(seen[n], nil, "message " .. n .. " handled twice")
    seen[n] = true
    v = tonumber(v)
    versions[v] = (versions[v] or 0) + 1
    T.ok(not broken[v], "a broken version ran: v" .. v)
  end
  T.eq(#results, sent, "each message handled exactly once")
  T.ok(versions[1] and versions[9], "the first and the last version both handled messages")
  local err = T.read_file(dir .. "/err")
  local fails = select(2, err:gsub("reload failed: [^\n]*handler%.lua:1:", ""))
  T.eq(fails, 2, err)
  T.ok(err:find("reload #1 ok %(handler%.lua changed%): 1 handler%(s%) swapped, 0 started, 0 stopped"), err)
  child:kill("TERM")
  T.eq(child:wait(10), 0, err)
end)

T.test("SIGHUP: a subscription that is gone is drained, a new one starts; a raise keeps the old code", function()
  local dir = T.tmpdir()
  T.write_file(dir .. "/version", "1")
  T.write_file(dir .. "/app.lua", [[
    local jet = require "jetlua"
    local f = io.open((arg[0]:match("^(.*)/") or ".") .. "/version"); local v = f:read("*l"); f:close()
    local nc = assert(jet.connect())
    if v == "1" then nc:subscribe("old", function(m) nc:publish("out", "old:" .. m.data) end) end
    if v == "2" then nc:subscribe("new", function(m) nc:publish("out", "new:" .. m.data) end) end
    if v == "3" then nc:subscribe("three", function() end); error("boom in version 3") end
    nc:flush()   -- the SUB has reached the server before the test publishes
    print("ran " .. v)
  ]])
  local child = T.jetlua({ "run", "--server", srv.url, dir .. "/app.lua" },
    { stdout = dir .. "/out", stderr = dir .. "/err" })
  T.wait_until(function() return (T.read_file(dir .. "/out") or ""):find("ran 1") end, 10)
  local out = {}
  nc:subscribe("out", function(m) out[#out + 1] = m.data end)
  nc:flush()
  nc:publish("old", "a")
  T.wait_until(function() return out[1] end, 5)
  T.write_file(dir .. "/version", "2")
  child:kill("HUP")
  T.wait_until(function() return (T.read_file(dir .. "/out") or ""):find("ran 2") end, 10)
  T.wait_until(function()
    return (T.read_file(dir .. "/err") or ""):find("0 handler(s) swapped, 1 started, 1 stopped", 1, true)
  end, 10, T.read_file(dir .. "/err"))
  jet.sleep(0.2)
  nc:publish("old", "b"); nc:publish("new", "c")
  T.wait_until(function() return #out >= 2 end, 5)
  jet.sleep(0.2)
  T.eq(out, { "old:a", "new:c" })
  T.write_file(dir .. "/version", "3")
  child:kill("HUP")
  T.wait_until(function() return (T.read_file(dir .. "/err") or ""):find("reload failed: .*boom in version 3") end, 10)
  nc:publish("new", "d"); nc:publish("three", "x")
  T.wait_until(function() return #out >= 3 end, 5, T.read_file(dir .. "/err"))
  T.eq(out[3], "new:d", "version 2 still runs")
  child:kill("TERM")
  T.eq(child:wait(10), 0, T.read_file(dir .. "/err"))
end)

T.run()
