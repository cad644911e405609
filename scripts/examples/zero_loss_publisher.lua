-- zero_loss_publisher.lua: publish fast without losing anything.
--   jetlua run scripts/examples/zero_loss_publisher.lua [count]
-- File storage, a Nats-Msg-Id per message (a retry never stores a second
-- copy), async publish with jetlua's in-flight window, automatic retry of
-- retryable failures, every final failure handled, and a complete() at the
-- end that says whether everything was acknowledged. Exit status 0 only when
-- every order was stored exactly once.
local jet = require "jetlua"

local count = tonumber(arg[1]) or 10000
local nc = assert(jet.connect())
local js = nc:jetstream{
  max_pending = 2000,                          -- at most 2000 unacked at once: the loop below yields
  ack_timeout = 5,                             -- seconds per attempt
  retry = { attempts = 5, delay = 0.25 },      -- timeouts, no responders and disconnects are retried
}
js:delete_stream("CHECKOUT")                   -- this demo starts from an empty stream
assert(js:stream{ name = "CHECKOUT", subjects = { "checkout.>" }, storage = "file", duplicate_window = 120 })

local failed = {}
js:on_publish_error(function(info)             -- a publish that failed for good
  failed[#failed + 1] = info
  jet.log.error("not stored:", info.subject, info.msg_id, info.error, info.detail)
end)

local t0 = jet.monotonic()
for i = 1, count do
  local order = { id = i, item = "widget", qty = i % 7 + 1 }
  js:publish_async("checkout.orders", jet.json.encode(order), { msg_id = "order-" .. i })
end
local left = js:publish_async_complete(30)     -- yields until every ack (or failure) is in
local st = js:publish_async_stats()
print(("published %d orders in %.2f s: %d acked, %d failed, %d retried, %d still pending")
  :format(count, jet.monotonic() - t0, st.acked, st.failed, st.retried, left))
local stored = js:stream_info("CHECKOUT").state.messages
print(("stream CHECKOUT holds %d messages"):format(stored))
jet.exit((left == 0 and #failed == 0 and stored == count) and 0 or 1)
