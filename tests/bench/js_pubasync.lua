-- The jetlua side of the JetStream async publish benchmark: (re)create the
-- stream STREAM (subjects "STREAM.>", storage file|memory), publish N messages
-- of SIZE bytes to "STREAM.msg" with js:publish_async (window max_pending =
-- WINDOW), then js:publish_async_complete. Timed from the first publish to the last ack.
--   jetlua run --log-level warn js_pubasync.lua URL STREAM STORAGE N SIZE WINDOW
-- Prints: RESULT async storage=S msgs=N secs=S rate=R cpu_us_per_msg=C rss_kb=K
local jet = require "jetlua"
local url, stream, storage = arg[1], arg[2], arg[3]
local n, size, window = tonumber(arg[4]), tonumber(arg[5]), tonumber(arg[6])
assert(storage == "file" or storage == "memory", "storage must be file or memory")

-- peak resident set size of this process, kB (the same number as getrusage's ru_maxrss)
local function peak_rss_kb()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)"))
end

local nc = assert(jet.connect{ servers = url })
local js = nc:jetstream{ max_pending = window }
local _, err, detail = js:delete_stream(stream)          -- a fresh, empty stream
if err and err ~= "stream_not_found" then error("delete stream: " .. tostring(detail)) end
assert(js:stream{ name = stream, subjects = { stream .. ".>" }, storage = storage })

local failed = 0
js:on_publish_error(function(info)
  failed = failed + 1
  if failed == 1 then io.stderr:write(("publish failed: %s (%s)\n"):format(info.error, info.detail)) end
end)

local subject, data = stream .. ".msg", string.rep("x", size)
local t0, c0 = jet.monotonic(), jet.process.cpu()
for _ = 1, n do
  js:publish_async(subject, data)
end
local left = js:publish_async_complete(60)
local secs = jet.monotonic() - t0
local cpu = jet.process.cpu() - c0
local st = js:publish_async_stats()
if left ~= 0 or st.acked ~= n or st.failed ~= 0 then
  error(("left %d, acked %d, failed %d, of %d"):format(left, st.acked, st.failed, n))
end
local info = assert(js:stream_info(stream))
if info.state.messages ~= n then
  error(("stream %s holds %d messages, expected %d"):format(stream, info.state.messages, n))
end
print(("RESULT async storage=%s msgs=%d secs=%.4f rate=%.0f cpu_us_per_msg=%.3f rss_kb=%d"):format(storage, n, secs,
  n / secs, cpu * 1e6 / n, peak_rss_kb()))
nc:close()
