-- Setup for the JetStream consume benchmark (not timed): (re)create stream BENCH on bench.>,
-- fill it with N messages of SIZE bytes, create fresh durable pull consumers (the same config
-- for the raw C and the Lua side), and optionally (re)create an empty KV bucket.
--   jetlua run js_fill.lua URL STORAGE N SIZE CONSUMER[,CONSUMER...] [KV_BUCKET]
local jet = require "jetlua"
local url, storage, n, size, consumers, bucket =
  arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), arg[5], arg[6]
local nc = assert(jet.connect{ servers = url })
local js = nc:jetstream{ max_pending = 8000 }
js:delete_stream("BENCH")                    -- "stream_not_found" the first time
assert(js:stream{ name = "BENCH", subjects = { "bench.>" }, storage = storage })
local data = string.rep("x", size)
for _ = 1, n do js:publish_async("bench.fill", data) end
assert(js:publish_async_complete(60) == 0, "fill: publishes still pending")
local info = assert(js:stream_info("BENCH"))
assert(info.state.messages == n, ("fill: stream has %s messages, want %d"):format(info.state.messages, n))
for name in consumers:gmatch("[^,]+") do
  assert(js:consumer("BENCH", { durable = name, ack_policy = "explicit", ack_wait = 60,
                                max_ack_pending = 100000 }))
end
if bucket then
  js:delete_kv(bucket)                       -- "bucket_not_found" the first time
  assert(js:create_kv{ bucket = bucket, storage = storage })
end
nc:close()
