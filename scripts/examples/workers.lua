-- workers.lua: a pool of workers sharing jobs through a queue group.
--   jetlua run scripts/examples/workers.lua
-- Each job goes to exactly one worker; each worker handles up to 4 jobs at once.
local jet = require "jetlua"
local nc = assert(jet.connect())

local done, per_worker = 0, {}
for w = 1, 3 do
  per_worker[w] = 0
  nc:subscribe("resize.jobs", function()
    jet.sleep(0.02 * math.random())          -- pretend to work, without blocking anyone
    per_worker[w] = per_worker[w] + 1
    done = done + 1
  end, { queue = "resizers", concurrency = 4 })
end

for i = 1, 60 do
  nc:publish("resize.jobs", jet.json.encode{ image = ("img-%03d.png"):format(i) })
end

local check
local deadline = jet.monotonic() + 30
check = jet.every(0.1, function()
  if done == 60 or jet.monotonic() > deadline then
    check:stop()
    print(("%d jobs done: worker 1 did %d, worker 2 did %d, worker 3 did %d")
      :format(done, per_worker[1], per_worker[2], per_worker[3]))
    nc:drain()
    if done ~= 60 then jet.exit(1) end   -- an example that did not work says so
  end
end)
