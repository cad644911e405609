-- batch_publisher.lua: publish a batch with futures, then look at each result.
--   jetlua run scripts/examples/batch_publisher.lua
local jet = require "jetlua"

local nc = assert(jet.connect())
local js = nc:jetstream()
assert(js:stream{ name = "READINGS", subjects = { "readings.>" }, storage = "memory" })

-- publish_async returns a future at once; nothing waits yet
local futures = {}
for i = 1, 100 do
  local sensor = "s" .. (i % 4)
  futures[i] = js:publish_async("readings." .. sensor, tostring(20 + i % 5))
end

-- one message that must fail: the stream's last sequence is not 1
futures[#futures + 1] = js:publish_async("readings.s0", "x", { expect = { last_seq = 1 } })

-- a callback instead of a wait
futures[1]:on(function(ack) print(("first reading stored as seq %d"):format(ack.seq)) end)

local first, last, errors = nil, nil, 0
for _, f in ipairs(futures) do
  local ack, code, detail = f:wait()
  if ack then
    first = first or ack.seq
    last = ack.seq
  else
    errors = errors + 1
    print("rejected: " .. code .. " (" .. detail .. ")")
  end
end
print(("batch stored as sequences %d..%d, %d rejected"):format(first, last, errors))
