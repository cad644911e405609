-- batch_publisher.lua: publish a batch with futures, then look at each result.
--   jetlua run scripts/examples/batch_publisher.lua
local jet = require "jetlua"

local nc = assert(jet.connect())
local js = nc:jetstream()
js:delete_stream("SENSORS")                    -- this demo starts from an empty stream
assert(js:stream{ name = "SENSORS", subjects = { "sensors.>" }, storage = "memory" })

-- publish_async returns a future at once; nothing waits yet
local futures = {}
for i = 1, 100 do
  local sensor = "s" .. (i % 4)
  futures[i] = js:publish_async("sensors." .. sensor, tostring(20 + i % 5))
end

-- one message that must fail: the stream's last sequence is not 1
futures[#futures + 1] = js:publish_async("sensors.s0", "x", { expect = { last_seq = 1 } })

-- a callback instead of a wait
local first_seq
futures[1]:on(function(ack)
  first_seq = ack.seq
  print(("first reading stored as seq %d"):format(ack.seq))
end)

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
if not (first_seq == 1 and first == 1 and last == 100 and errors == 1) then jet.exit(1) end  -- it did not work
