-- reliable_consumer.lua: the seeds' zero-loss consumer.
--   jetlua run scripts/examples/reliable_consumer.lua [new_orders]
-- File storage, a durable consumer with explicit acks: an order is acked only
-- after its handler returned; a handler that raises naks it (redelivered after 1 s); a
-- crash loses nothing (unacked orders come back after ack_wait). Run it twice:
-- the second run goes on where the first stopped, because the durable
-- remembers what was acked. It checks its own outcome: the exit status is 1
-- when an order of this run was not billed exactly once.
local jet = require "jetlua"

local new = tonumber(arg[1]) or 1000
local nc = assert(jet.connect())
local js = nc:jetstream()
local info = assert(js:stream{ name = "BILLING", subjects = { "billing.orders.>" }, storage = "file" })
assert(js:consumer("BILLING", { durable = "invoicer", ack_policy = "explicit", ack_wait = 30, max_deliver = 5 }))

-- some new orders to work on (a real system gets them from its publishers)
local base = info.state.last_seq                  -- order ids go on from the last run's
for i = 1, new do
  js:publish_async("billing.orders.created", jet.json.encode{ id = base + i, amount = i % 50 + 1 })
end
assert(js:publish_async_complete(30) == 0, "every order stored")

local billed, total, first, last, failures = 0, 0, nil, nil, 0
local times_billed = {}
local failed_once = false
local h = assert(js:consume("BILLING", "invoicer", function(msg)
  local ok, order = pcall(jet.json.decode, msg.data)
  if not ok or type(order) ~= "table" or type(order.id) ~= "number" or type(order.amount) ~= "number" then
    failures = failures + 1
    error("not an order: " .. msg.data)
  end
  local md = msg:metadata()
  if order.id == base + 7 and not failed_once then   -- a transient failure: nak'd, redelivered
    failed_once = true
    failures = failures + 1
    error("payment service busy, try again")
  end
  times_billed[order.id] = (times_billed[order.id] or 0) + 1
  billed, total = billed + 1, total + order.amount
  first, last = math.min(first or md.stream_seq, md.stream_seq), math.max(last or 0, md.stream_seq)
end, {
  max_messages = 500,
  on_error = function(code, detail) jet.log.warn("consumer:", code, detail) end,
}))

-- this demo stops once the backlog is done (or after a minute); a service would just keep consuming
local deadline = jet.monotonic() + 60
local function settled()
  local ci = js:consumer_info("BILLING", "invoicer")
  return ci.num_pending == 0 and ci.num_ack_pending == 0 and h:stats().in_flight == 0
end
while not settled() and jet.monotonic() < deadline do jet.sleep(0.05) end
h:drain()
local ci = js:consumer_info("BILLING", "invoicer")
print(("billed %d orders (stream seq %s..%s), total %d; redelivered %d; pending now %d, unacked %d")
  :format(billed, first, last, total, h:stats().redelivered, ci.num_pending, ci.num_ack_pending))

-- every order of this run billed exactly once, nothing failing but the one planned failure
local missing = 0
for id = base + 1, base + new do
  if times_billed[id] ~= 1 then missing = missing + 1 end
end
if missing > 0 or failures > 1 or ci.num_pending + ci.num_ack_pending > 0 then
  jet.log.error(("%d order(s) of this run not billed exactly once, %d handler failure(s)"):format(missing, failures))
  jet.exit(1)
end
nc:close()
