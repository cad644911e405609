-- Many consumers benchmark (issue 15, goal 5), the jetlua side: C durable pull consumers on one
-- stream, each under js:consume at its defaults (heartbeats on), then idle for IDLE seconds.
--   jetlua run --log-level warn many.lua URL C IDLE SERVER_PID
-- Measured from /proc (this process and the server): CPU over the idle window (% of one core),
-- and this process's RSS after setup (C = 0 gives the baseline: connected, nothing else).
-- Then one message is published to each consumer's subject and the run ends when every
-- consumer handled its own: all of them are alive after the idle window.
-- Prints: RESULT many consumers=C idle_s=S cpu_pct=P server_cpu_pct=Q rss_kb=K
--         hb_missed=H errors=E
local jet = require "jetlua"
local url, count, idle, server_pid = arg[1], tonumber(arg[2]), tonumber(arg[3]), arg[4]

local TCK = 100   -- USER_HZ: the unit of /proc/PID/stat's utime and stime on Linux

local function cpu_ticks(pid)   -- utime + stime of a process, in clock ticks
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  local rest = s:match("%) (.*)$")               -- after "(comm)", which may hold spaces
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  return tonumber(fields[12]) + tonumber(fields[13])   -- fields 14 and 15 of the whole line
end

local function rss_kb()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

local nc = assert(jet.connect{ servers = url })
local js = nc:jetstream()
local handles, got, errors = {}, {}, 0
local left = count
if count > 0 then
  js:delete_stream("MANY")                   -- "stream_not_found" the first time
  assert(js:stream{ name = "MANY", subjects = { "many.>" }, storage = "memory" })
  for i = 1, count do
    assert(js:consumer("MANY", { durable = "c" .. i, ack_policy = "explicit",
                                 filter_subject = "many." .. i }))
  end
  for i = 1, count do
    handles[i] = assert(js:consume("MANY", "c" .. i, function()
      if not got[i] then got[i] = true; left = left - 1 end
    end, { on_error = function(code, detail)
      errors = errors + 1
      io.stderr:write(("consumer c%d: %s (%s)\n"):format(i, code, detail))
    end }))
  end
end
jet.sleep(1)                                 -- the first pulls are out, slow start settled
collectgarbage()
collectgarbage()
local rss = rss_kb()
local c0, s0, t0 = cpu_ticks("self"), cpu_ticks(server_pid), jet.monotonic()
jet.sleep(idle)
local c1, s1, t1 = cpu_ticks("self"), cpu_ticks(server_pid), jet.monotonic()
local secs = t1 - t0
local hb_missed = 0
for _, h in ipairs(handles) do hb_missed = hb_missed + h:stats().heartbeats_missed end

-- every consumer still works: one message each
for i = 1, count do assert(js:publish_async("many." .. i, "x")) end
assert(js:publish_async_complete(60) == 0, "publishes still pending")
local deadline = jet.monotonic() + 60
while left > 0 and jet.monotonic() < deadline do jet.sleep(0.05) end
if left > 0 then
  print(("RESULT incomplete: %d of %d consumers got nothing"):format(left, count))
  jet.exit(1)
end
print(("RESULT many consumers=%d idle_s=%.1f cpu_pct=%.3f server_cpu_pct=%.3f rss_kb=%d hb_missed=%d errors=%d")
  :format(count, secs, (c1 - c0) / TCK / secs * 100, (s1 - s0) / TCK / secs * 100, rss, hb_missed, errors))
for _, h in ipairs(handles) do h:stop() end
nc:close()
