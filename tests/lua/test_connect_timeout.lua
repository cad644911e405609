-- The first connect: it gives up after a bounded default (10 s) with connect_failed, logging
-- each attempt; `timeout` is seconds of retrying (math.huge: forever); a server that appears
-- during the window is connected; a server that accepts but never answers does not hang it.
-- No timing assertions: what happened is asserted, waits are generous and bounded.
local jet = require "jetlua"
local T = require "jetlua.testing"

local function dead_url() return "nats://127.0.0.1:" .. jet.process.free_port() end

-- The default bound takes 10 s: a child starts on it now and is checked by the last test.
local dir = T.tmpdir()
local dead = dead_url()
T.write_file(dir .. "/app.lua", [[
  local jet = require "jetlua"
  local nc, code, detail = jet.connect{ servers = arg[1] }
  print(tostring(nc), code, detail)
]])
local default_child = T.jetlua({ "run", dir .. "/app.lua", dead },
  { stdout = dir .. "/out", stderr = dir .. "/err", env = { NATS_URL = false } })

T.test("timeout is seconds of retrying: several attempts, then connect_failed", function()
  local url = dead_url()
  local nc, code, detail = jet.connect{ servers = url, timeout = 1 }
  T.eq(nc, nil)
  T.eq(code, "connect_failed", detail)
  T.ok(detail:find("cannot connect to " .. url .. ": connection refused", 1, true), detail)
  local n = tonumber(detail:match("%((%d+) attempts in "))
  T.ok(n and n > 1, "not retried: " .. detail)
  -- reconnect.max bounds the attempts as well
  nc, code, detail = jet.connect{ servers = url, timeout = 30, reconnect = { max = 2, wait = 0.05 } }
  T.eq(nc, nil); T.eq(code, "connect_failed")
  T.ok(detail:find("(3 attempts in ", 1, true), detail)
end)

T.test("a server that appears during the retry window is connected (timeout, math.huge)", function()
  for _, timeout in ipairs{ 60, math.huge } do
    local port = jet.process.free_port()
    local nc, code, detail, done
    jet.spawn(function()
      nc, code, detail = jet.connect{ servers = "nats://127.0.0.1:" .. port, timeout = timeout }
      done = true
    end)
    jet.sleep(0.5)                -- it is retrying by now (each refusal takes ~1 ms)
    T.ok(not done, "returned before the server existed: " .. tostring(code) .. " " .. tostring(detail))
    local srv = T.server{ js = false, port = port }
    T.wait_until(function() return done end, 60, "connect")
    T.ok(nc, tostring(code) .. " " .. tostring(detail))
    T.eq(nc:connected_url(), srv.url)
    nc:close()
    srv:kill()
  end
end)

T.test("a server that accepts but never sends INFO: the attempt fails, the loop runs on", function()
  local srv = T.server{ js = false }
  srv:pause()                     -- SIGSTOP: the kernel still accepts connections
  local ticks = 0
  local t = jet.every(0.02, function() ticks = ticks + 1 end)
  local nc, code, detail = jet.connect{ servers = srv.url, timeout = 1 }
  t:stop()
  srv:resume()
  T.eq(nc, nil)
  T.eq(code, "connect_failed", detail)
  T.ok(detail:find("sent no INFO", 1, true), detail)
  T.ok(ticks > 0, "the loop was blocked")
end)

T.test("timeout must be a positive number", function()
  for _, bad in ipairs{ 0, -1, 0 / 0 } do
    T.raises(function() jet.connect{ servers = dead, timeout = bad } end,
      "jet.connect: bad argument 'timeout': must be > 0 seconds")
  end
  T.raises(function() jet.connect{ servers = dead, timeout = "1" } end, "bad argument 'timeout'")
end)

T.test("by default the first connect gives up (10 s), logging each attempt", function()
  local st = default_child:wait(90)
  local out, err = T.read_file(dir .. "/out") or "", T.read_file(dir .. "/err") or ""
  T.eq(st, 0, err)
  T.ok(out:find("^nil\tconnect_failed\tjet.connect: cannot connect to " .. dead:gsub("%p", "%%%0")), out)
  local logged = 0
  for _ in err:gmatch("WARN  connect to " .. dead:gsub("%p", "%%%0") .. " failed: connection refused; retrying in") do
    logged = logged + 1
  end
  T.ok(logged > 1, "attempts logged: " .. logged .. "\n" .. err)
  local n = tonumber(out:match("%((%d+) attempts in "))
  T.eq(n, logged + 1, out)
end)

T.run()
