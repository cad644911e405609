-- idempotent_handler.lua: a side effect done once per order, even when the
-- same order arrives twice.
--   jetlua run scripts/examples/idempotent_handler.lua
-- Publishers retry, networks duplicate: here every order is published twice
-- (outside the stream's dedupe window, as a late retry would be). The
-- handler is wrapped by jet.idempotent: the Order-Id header is the key, a
-- KV bucket remembers what was done, so each customer is charged once.
local jet = require "jetlua"

local nc = assert(jet.connect())
local js = nc:jetstream()
js:delete_stream("PAYMENTS"); js:delete_kv("payments_done")
assert(js:stream{ name = "PAYMENTS", subjects = { "payments.>" } })
assert(js:consumer("PAYMENTS", { durable = "charger" }))
for _ = 1, 2 do
  for i = 1, 50 do
    assert(js:publish("payments.charge", jet.json.encode{ amount = i }, { headers = { ["Order-Id"] = "order-" .. i } }))
  end
end

local charged, total = 0, 0
local once = jet.idempotent{ js = js, bucket = "payments_done", ttl = 3600,
                             key = function(msg) return msg:header("Order-Id") end }
local h = assert(js:consume("PAYMENTS", "charger", once(function(msg)
  charged = charged + 1                                   -- the side effect
  total = total + jet.json.decode(msg.data).amount
end), { concurrency = 8 }))
local deadline = jet.monotonic() + 60
local function settled()
  local ci = js:consumer_info("PAYMENTS", "charger")
  return ci.num_pending == 0 and ci.num_ack_pending == 0 and h:stats().in_flight == 0
end
while not settled() and jet.monotonic() < deadline do jet.sleep(0.05) end
h:drain()
local skipped = jet.metrics.counter("jetlua_idempotent_skipped_total"):value()
print(("100 messages, %d charges, total %d; %d duplicates skipped"):format(charged, total, skipped))
nc:close()
if charged ~= 50 or total ~= 1275 or skipped ~= 50 then jet.exit(1) end   -- it did not work
