-- Liveness and readiness as Kubernetes expects them: a NATS outage makes /readyz 503 but
-- never /livez; a consumer deleted on the server makes /readyz 503 with the reason until the
-- script stops it or starts it again, even after its handle was collected.
local jet = require "jetlua"
local T = require "jetlua.testing"

local function curl(url)
  local dir = T.tmpdir()
  local p = assert(jet.process.spawn({ "curl", "-s", "--max-time", "20", "-o", dir .. "/body",
    "-w", "%{http_code}", url }, { stdout = dir .. "/code" }))
  p:wait(30)
  return tonumber(T.read_file(dir .. "/code")), T.read_file(dir .. "/body") or ""
end

-- start a child script with --metrics; it prints "ready" when set up
local function child(srv, script)
  local dir = T.tmpdir()
  local port = jet.process.free_port()
  T.write_file(dir .. "/child.lua", script)
  local p = T.jetlua({ "run", "--server", srv.url, "--metrics", "127.0.0.1:" .. port, dir .. "/child.lua",
    dir }, { stdout = dir .. "/out", stderr = dir .. "/err" })
  T.wait_until(function() return (T.read_file(dir .. "/out") or ""):find("ready") end, 30,
    "child ready: " .. (T.read_file(dir .. "/err") or ""))
  return p, dir, "http://127.0.0.1:" .. port
end

local function says(base, path, code, pattern)
  return function()
    local c, body = curl(base .. path)
    return c == code and (not pattern or body:find(pattern)) and body
  end
end

T.test("a NATS outage: /readyz 503 with the reason, /livez stays 200; both fine after", function()
  local srv = T.server{ js = true }
  local p, dir, base = child(srv, [[
    local jet = require "jetlua"
    local nc = assert(jet.connect{ name = "app", reconnect = { wait = 0.1 } })
    nc:subscribe("x", function() end)
    print("ready")
  ]])
  T.eq((curl(base .. "/readyz")), 200)
  T.eq((curl(base .. "/livez")), 200)
  srv:stop()
  T.wait_until(says(base, "/readyz", 503), 30, "/readyz 503")
  local code, body = curl(base .. "/readyz")
  T.eq(code, 503); T.eq(body, "not ready: connection app is reconnecting\n")
  code, body = curl(base .. "/healthz")
  T.eq(code, 503, "/healthz is /readyz"); T.eq(body, "not ready: connection app is reconnecting\n")
  for _ = 1, 3 do
    code, body = curl(base .. "/livez")
    T.eq(code, 200, "an outage is not a reason to restart us"); T.eq(body, "ok\n")
    jet.sleep(0.3)
  end
  srv:restart()
  T.wait_until(says(base, "/readyz", 200), 30, "/readyz ready again")
  T.eq((curl(base .. "/healthz")), 200)
  p:kill("TERM")
  T.eq(p:wait(20), 0, T.read_file(dir .. "/err"))
end)

T.test("a consumer deleted on the server: /readyz 503 until the script starts it again", function()
  local srv = T.server{ js = true }
  local nc = assert(jet.connect{ servers = { srv.url } })
  local js = nc:jetstream()
  assert(js:stream{ name = "S", subjects = { "s.>" }, storage = "memory" })
  assert(js:consumer("S", { durable = "C" }))
  assert(js:consumer("S", { durable = "D" }))
  -- the child consumes C and D; on the parent's signal (files in its directory) it drops its
  -- handle on C and collects it, then starts C again
  local p, dir, base = child(srv, [[
    local jet = require "jetlua"
    local dir = ...
    local function exists(f) local h = io.open(f) if h then h:close() end return h ~= nil end
    local nc = assert(jet.connect{ name = "app" })
    local js = nc:jetstream()
    local function start()
      return assert(js:consume("S", "C", function() end, { expires = 2, on_error = function(code, d, terminal)
        if terminal then print("terminal " .. code) end
      end }))
    end
    local c = start()
    local d = assert(js:consume("S", "D", function() end, { expires = 2 }))
    print("ready")
    jet.every(0.1, function(t)
      if c and exists(dir .. "/collect") then
        c = nil
        collectgarbage(); collectgarbage()
        print("collected")
      elseif not c and exists(dir .. "/again") then
        t:stop()
        c = start()
        print("started again")
      end
    end)
  ]])
  T.eq((curl(base .. "/readyz")), 200)
  assert(js:delete_consumer("S", "C"))
  T.wait_until(function() return (T.read_file(dir .. "/out") or ""):find("terminal consumer_deleted") end, 30,
    "the child's consumer saw the delete")
  local code, body = curl(base .. "/readyz")
  T.eq(code, 503)
  T.ok(body:find("^not ready: consumer S/C failed: consumer_deleted %(409 Consumer Deleted%)\n$"), body)
  T.eq((curl(base .. "/livez")), 200, "alive all the same")
  -- the handle is collected: the failure stays
  T.write_file(dir .. "/collect", "")
  T.wait_until(function() return (T.read_file(dir .. "/out") or ""):find("collected") end, 30)
  jet.sleep(0.3)
  code, body = curl(base .. "/readyz")
  T.eq(code, 503, "a collected handle does not hide the failure"); T.ok(body:find("consumer S/C failed"), body)
  -- started again on a new consumer: ready
  assert(js:consumer("S", { durable = "C" }))
  T.write_file(dir .. "/again", "")
  T.wait_until(function() return (T.read_file(dir .. "/out") or ""):find("started again") end, 30)
  T.wait_until(says(base, "/readyz", 200), 30, "ready again: " .. select(2, curl(base .. "/readyz")))
  p:kill("TERM")
  T.eq(p:wait(20), 0, T.read_file(dir .. "/err"))
  nc:close()
end)

T.test("stop and drain forget a failed consumer; js:messages counts too", function()
  local srv = T.server{ js = true }
  local nc = assert(jet.connect{ servers = { srv.url } })
  local js = nc:jetstream()
  assert(js:stream{ name = "S", subjects = { "s.>" }, storage = "memory" })
  for _, c in ipairs({ "A", "B", "I" }) do assert(js:consumer("S", { durable = c })) end
  local p, dir, base = child(srv, [[
    local jet = require "jetlua"
    local dir = ...
    local function exists(f) local h = io.open(f) if h then h:close() end return h ~= nil end
    local nc = assert(jet.connect{ name = "app" })
    local js = nc:jetstream()
    local a = assert(js:consume("S", "A", function() end, { expires = 2, on_error = function() end }))
    local b = assert(js:consume("S", "B", function() end, { expires = 2, on_error = function() end }))
    local it = assert(js:messages("S", "I", { expires = 2, on_error = function() end }))
    jet.every(1, function() end)             -- stays alive once they are stopped
    print("ready")
    jet.every(0.1, function(t)
      if exists(dir .. "/stop") then
        t:stop()
        a:stop(); b:drain(); it:stop()
        print("stopped")
      end
    end)
  ]])
  T.eq((curl(base .. "/readyz")), 200)
  for _, c in ipairs({ "A", "B", "I" }) do assert(js:delete_consumer("S", c)) end
  T.wait_until(function()
    local code, body = curl(base .. "/readyz")
    return code == 503 and body:find("S/A failed") and body:find("S/B failed") and body:find("S/I failed")
  end, 30, "all three unready: " .. select(2, curl(base .. "/readyz")))
  T.write_file(dir .. "/stop", "")
  T.wait_until(function() return (T.read_file(dir .. "/out") or ""):find("stopped") end, 30)
  T.wait_until(says(base, "/readyz", 200), 30, "stopped on purpose: ready")
  p:kill("TERM")
  T.eq(p:wait(20), 0, T.read_file(dir .. "/err"))
  nc:close()
end)

T.run()
