-- The jetlua side of the core publish benchmark: publish N messages of SIZE bytes, then flush.
--   jetlua run core_pub.lua URL SUBJECT N SIZE
local jet = require "jetlua"
local url, subject, n, size = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4])
local nc = assert(jet.connect{ servers = url })
local data = string.rep("x", size)
local t0, c0 = jet.monotonic(), jet.process.cpu()
for _ = 1, n do
  local ok, err = nc:publish(subject, data)
  if not ok then error(err) end
end
assert(nc:flush(60))
local secs = jet.monotonic() - t0
print(("RESULT pub msgs=%d secs=%.4f rate=%.0f cpu_us_per_msg=%.3f"):format(n, secs, n / secs,
  (jet.process.cpu() - c0) * 1e6 / n))
nc:close()
