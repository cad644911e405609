-- dlq_consumer.lua: the seeds' dead-letter example, as a policy.
--   jetlua run scripts/examples/dlq_consumer.lua
-- A datafeed handler that fails on bad records: each failure is nak'd with a
-- growing delay, and after 3 deliveries the record goes to neo.dlq.datafeed
-- (with its origin in headers); jetlua waits for the DLQ's PubAck and only
-- then terms the original. Good records are acked as usual.
local jet = require "jetlua"

local nc = assert(jet.connect())
local js = nc:jetstream()
js:delete_stream("NEO_EVENTS"); js:delete_stream("NEO_DLQ")
assert(js:stream{ name = "NEO_EVENTS", subjects = { "neo.datafeed.>" }, storage = "file" })
assert(js:stream{ name = "NEO_DLQ", subjects = { "neo.dlq.>" }, storage = "file" })
assert(js:consumer("NEO_EVENTS", { durable = "datafeed", ack_wait = 30 }))

local records = { '{"price": 10}', '{"price": 11}', 'not json', '{"price": 12}', '{"price": -1}' }
for _, r in ipairs(records) do assert(js:publish("neo.datafeed.quotes", r)) end

local function process(data)
  local ok, rec = pcall(jet.json.decode, data)
  if not ok then jet.fail.permanent("not JSON: " .. data) end   -- no point retrying
  if rec.price < 0 then error("negative price " .. rec.price) end  -- maybe transient: retried
  return rec
end

local stored = 0
local h = assert(js:consume("NEO_EVENTS", "datafeed", function(msg)
  process(msg.data)
  stored = stored + 1
end, { retry = jet.retry.backoff{ initial = 0.2, factor = 2, max_deliver = 3, dlq = "neo.dlq.datafeed" } }))

local deadline = jet.monotonic() + 60
while (stored < 3 or js:stream_info("NEO_DLQ").state.messages < 2) and jet.monotonic() < deadline do
  jet.sleep(0.1)
end
h:drain()
print(("%d records stored; in the DLQ:"):format(stored))
local dead = js:stream_info("NEO_DLQ").state.messages
for seq = 1, dead do
  local m = js:get_msg("NEO_DLQ", seq)
  print(("  %s (stream seq %s, %s deliveries): %s"):format(m.data, m.headers["Jetlua-Dlq-Sequence"],
    m.headers["Jetlua-Dlq-Delivered"], m.headers["Jetlua-Dlq-Error"]))
end
nc:close()
if stored ~= 3 or dead ~= 2 then jet.exit(1) end   -- an example that did not work says so
