-- The jetlua side of the core subscribe benchmark: count N messages.
--   jetlua run core_sub.lua URL SUBJECT N READY_FILE
local jet = require "jetlua"
local url, subject, n, ready = arg[1], arg[2], tonumber(arg[3]), arg[4]
local nc = assert(jet.connect{ servers = url })
local count, t0, c0 = 0, nil, nil
local sub, guard
sub = nc:subscribe(subject, function()
  if count == 0 then t0, c0 = jet.monotonic(), jet.process.cpu() end
  count = count + 1
  if count == n then
    local secs = jet.monotonic() - t0
    print(("RESULT sub msgs=%d secs=%.4f rate=%.0f cpu_us_per_msg=%.3f"):format(n, secs, n / secs,
      (jet.process.cpu() - c0) * 1e6 / n))
    sub:unsubscribe()
    guard:stop()
    nc:close()
  end
end, { pending_limit = -1 })
nc:flush()
io.open(ready, "w"):close()
guard = jet.timer(120, function()
  print(("RESULT sub msgs=%d secs=0 rate=0 incomplete"):format(count))
  jet.exit(1)
end)
