-- The reload-pause benchmark (issue #6): a consumer under a steady flow of
-- RATE msgs/s is hot-reloaded RELOADS times; report the longest gap between
-- two handled messages before the reloads and while they happen.
--   jetlua run reload_pause.lua URL JETLUA_BIN RATE RELOADS
local jet = require "jetlua"
local url, bin, rate, reloads = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4])
local nc = assert(jet.connect{ servers = url })
local js = nc:jetstream{ max_pending = 4000 }
js:delete_stream("FLOW")
assert(js:stream{ name = "FLOW", subjects = { "flow.>" }, storage = "file" })
assert(js:consumer("FLOW", { durable = "W", ack_wait = 30 }))
local dir = jet.process.tmpdir("jetlua-rp")
local function write(path, s) local f = assert(io.open(path, "w")); f:write(s); f:close() end
local function handler(v)
  write(dir .. "/h.tmp", ([[
return function(nc, msg)            -- version %d
  local g = _G.gapstate
  local now = jet.monotonic()
  if g.last then
    local gap = now - g.last
    if gap > g.max then g.max = gap; nc:publish("gap", ("%%.6f"):format(gap)) end
  end
  g.last = now
  g.count = g.count + 1
end
]]):format(v))
  os.rename(dir .. "/h.tmp", dir .. "/handler.lua")
end
handler(1)
write(dir .. "/app.lua", [[
jet = require "jetlua"
_G.gapstate = _G.gapstate or { max = 0, count = 0 }
local handler = require "handler"
local nc = assert(jet.connect())
local js = nc:jetstream()
assert(js:consume("FLOW", "W", function(msg) handler(nc, msg) end))
jet.on_reload(function() nc:publish("reloaded", "") end)
print("ready")
]])
local child = assert(jet.process.spawn({ bin, "run", "--watch", "--log-level", "warn", "--server", url,
  dir .. "/app.lua" }, { stdout = dir .. "/out", stderr = dir .. "/err" }))
local maxgap, reloaded = 0, 0
nc:subscribe("gap", function(m) maxgap = math.max(maxgap, tonumber(m.data)) end)
nc:subscribe("reloaded", function() reloaded = reloaded + 1 end)
nc:flush()
local function ready()
  local f = io.open(dir .. "/out")
  local s = f and f:read("*a")
  if f then f:close() end
  return s and s:find("ready")
end
local t = jet.monotonic()
while not ready() do jet.sleep(0.05); assert(jet.monotonic() - t < 10, "child did not start") end
local flowing = true
jet.spawn(function()
  local sent, t0 = 0, jet.monotonic()
  while flowing do
    local due = math.floor((jet.monotonic() - t0) * rate)
    while sent < due do sent = sent + 1; js:publish_async("flow.x", "x") end
    jet.sleep(0.001)
  end
end)
jet.sleep(2)
local baseline = maxgap
for v = 2, reloads + 1 do
  handler(v)
  local want = v - 1
  local t1 = jet.monotonic()
  while reloaded < want and jet.monotonic() - t1 < 10 do jet.sleep(0.01) end
  jet.sleep(1)
end
flowing = false
jet.sleep(0.5)
print(("RESULT reload rate=%d reloads=%d done=%d baseline_max_gap_ms=%.1f max_gap_ms=%.1f"):format(rate, reloads,
  reloaded, baseline * 1000, maxgap * 1000))
child:kill("TERM")
child:wait(10)
js:publish_async_complete(5)
jet.process.rmtree(dir)
nc:close()
