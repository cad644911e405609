-- reliable_consumer.lua: the seeds' zero-loss consumer.
--   jetlua run scripts/examples/reliable_consumer.lua [new_orders]
-- File storage, a durable consumer with explicit acks: an order is acked only
-- after its handler returned; a handler that raises naks it (redelivered after 1 s); a
-- crash loses nothing (unacked orders come back after ack_wait). Run it twice:
-- the second run goes on where the first stopped, because the durable
-- remembers what was acked.
local jet = require "jetlua"

local new = tonumber(arg[1]) or 1000
local nc = assert(jet.connect())
local js = nc:jetstream()
assert(js:stream{ name = "ORDERS", subjects = { "orders.>" }, storage = "file" })
assert(js:consumer("ORDERS", { durable = "billing", ack_policy = "explicit", ack_wait = 30, max_deliver = 5 }))

-- some new orders to work on (a real system gets them from its publishers)
for i = 1, new do js:publish_async("orders.created", jet.json.encode{ id = i, amount = i % 50 + 1 }) end
assert(js:publish_async_complete(30) == 0, "every order stored")

local billed, total, first, last = 0, 0, nil, nil
local failed_once = false
local h = assert(js:consume("ORDERS", "billing", function(msg)
  local order = jet.json.decode(msg.data)
  local md = msg:metadata()
  if order.id == 7 and not failed_once then       -- a transient failure: nak'd, redelivered
    failed_once = true
    error("payment service busy, try again")
  end
  billed, total = billed + 1, total + order.amount
  first, last = math.min(first or md.stream_seq, md.stream_seq), math.max(last or 0, md.stream_seq)
end, {
  max_messages = 500,
  on_error = function(code, detail) jet.log.warn("consumer:", code, detail) end,
}))

-- this demo stops once the backlog is done (nothing pending, nothing waiting for an ack: the
-- failed order comes back after a 1 s delay); a service would just keep consuming
local function busy()
  local ci = js:consumer_info("ORDERS", "billing")
  return ci.num_pending > 0 or ci.num_ack_pending > 0 or h:stats().in_flight > 0
end
while busy() do jet.sleep(0.05) end
h:drain()
local ci = js:consumer_info("ORDERS", "billing")
print(("billed %d orders (stream seq %s..%s), total %d; redelivered %d; pending now %d, unacked %d")
  :format(billed, first, last, total, h:stats().redelivered, ci.num_pending, ci.num_ack_pending))
nc:close()
