-- orders_pipeline.lua: seed-style order events -> enrich -> route, in a few lines.
--   jetlua run scripts/examples/orders_pipeline.lua
-- Orders arrive on orders.created; the pipeline drops test orders, adds the
-- customer's region and tier from a lookup, and routes each order to
-- orders.enriched.<region>. An order is acked upstream only once its
-- enriched copy is stored; the copy's Nats-Msg-Id is ORDERS:<seq>, so a
-- redelivered order never makes a second enriched copy.
local jet = require "jetlua"

local nc = assert(jet.connect())
local js = nc:jetstream()
js:delete_stream("ORDERS"); js:delete_stream("ENRICHED")
assert(js:stream{ name = "ORDERS", subjects = { "orders.created" }, storage = "file" })
assert(js:stream{ name = "ENRICHED", subjects = { "orders.enriched.>" }, storage = "file" })

local customers = {
  c1 = { region = "eu", tier = "gold" },
  c2 = { region = "us", tier = "basic" },
  c3 = { region = "apac", tier = "gold" },
}
for i = 1, 30 do
  local order = { id = i, customer = "c" .. (i % 3 + 1), amount = i * 10, test = (i % 10 == 0) }
  js:publish_async("orders.created", jet.json.encode(order))
end
assert(js:publish_async_complete(10) == 0)

local p = assert(jet.pipeline{
  js = js, name = "enrich", from = { stream = "ORDERS" }, codec = "json",
  steps = {
    { filter = function(o) return not o.test end },
    { map = function(o)
        local c = customers[o.customer]
        o.region, o.tier = c.region, c.tier
        o.discount = c.tier == "gold" and o.amount * 0.1 or 0
        return o
      end },
    { route = function(o) return "orders.enriched." .. o.region end },
  },
  retry = jet.retry.backoff{ max_deliver = 3, on_exhausted = "term" },
})

local deadline = jet.monotonic() + 60
local function settled()
  local ci = js:consumer_info("ORDERS", "enrich")
  return ci.num_ack_pending == 0 and ci.num_pending == 0
end
while not settled() and jet.monotonic() < deadline do jet.sleep(0.05) end
p:drain()
local counts, per = {}, {}
for seq = 1, js:stream_info("ENRICHED").state.last_seq do
  local m = js:get_msg("ENRICHED", seq)
  counts[m.subject] = (counts[m.subject] or 0) + 1
end
for subject, n in pairs(counts) do per[#per + 1] = subject .. "=" .. n end
table.sort(per)
local st = p:stats()
print(("%d orders in, %d test orders dropped, %d enriched: %s"):format(st["in"], st.filtered, st.out,
  table.concat(per, " ")))
nc:close()
local stored = 0
for _, n in pairs(counts) do stored = stored + n end
if st["in"] ~= 30 or st.filtered ~= 3 or stored ~= 27 then jet.exit(1) end   -- it did not work
