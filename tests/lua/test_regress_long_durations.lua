-- Regression: durations of more than ~27.8 hours (1e14 ns) and numbers from 1e14 up were sent to
-- the JetStream API in exponent form (cjson writes 14 significant digits: 7 days = 6.048e+14),
-- and nats-server rejected the request as "invalid JSON" (err_code 10025). The seed's stream
-- keeps events 7 days; KV buckets and jet.idempotent marks take such TTLs too.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url })
local js = nc:jetstream()
local WEEK = 7 * 24 * 3600

T.test("a stream keeping 7 days / 10 GiB, a consumer, a KV bucket with a week's TTL", function()
  local info, how = js:stream{ name = "neo-events", subjects = { "neo.datafeed.*" }, storage = "file",
                               max_age = WEEK, max_bytes = 10 * 1024 ^ 3, duplicate_window = 120 }
  T.ok(info, how)
  T.eq(how, "created")
  T.eq(info.config.max_age, WEEK)
  T.eq(info.config.max_bytes, 10 * 1024 ^ 3)
  -- the same declaration again is a no-op, a longer age an update
  T.eq(select(2, assert(js:stream{ name = "neo-events", subjects = { "neo.datafeed.*" }, storage = "file",
                                   max_age = WEEK, max_bytes = 10 * 1024 ^ 3, duplicate_window = 120 })), nil)
  info = assert(js:stream{ name = "neo-events", subjects = { "neo.datafeed.*" }, max_age = 365 * 24 * 3600 })
  T.eq(info.config.max_age, 365 * 24 * 3600)
  local ci, err = js:consumer("neo-events", { durable = "c", inactive_threshold = 2 * 24 * 3600, ack_wait = 30 })
  T.ok(ci, err)
  T.eq(ci.config.inactive_threshold, 2 * 24 * 3600)
  local kv = assert(js:create_kv{ bucket = "done", ttl = WEEK })
  T.eq(kv:status().ttl, WEEK)
  -- numbers below 1e14 and non-integers are unchanged
  info = assert(js:stream{ name = "small", subjects = { "small" }, storage = "memory", max_age = 1.5, max_msgs = 10 })
  T.eq(info.config.max_age, 1.5)
  T.eq(info.config.max_msgs, 10)
end)

T.run()
