-- The examples in scripts/examples run against the embedded default, as README says.
local jet = require "jetlua"
local T = require "jetlua.testing"

local src = jet.process.getenv("JETLUA_SOURCE_DIR") or "."

local function run_example(name, dir)
  dir = dir or T.tmpdir()
  local p = T.jetlua({ "run", "--state-dir", dir .. "/state", src .. "/scripts/examples/" .. name },
    { stdout = dir .. "/out", stderr = dir .. "/err", env = { NATS_URL = false } })
  local status = p:wait(60)
  return status, T.read_file(dir .. "/out") or "", T.read_file(dir .. "/err") or ""
end

T.test("hello.lua", function()
  local st, out, err = run_example("hello.lua")
  T.eq(st, 0, err)
  T.ok(out:find("3 messages received", 1, true), out)
  T.ok(out:find("asked time.now, got: %d%d%d%d%-"), out)
end)

T.test("service.lua", function()
  local st, out, err = run_example("service.lua")
  T.eq(st, 0, err)
  T.ok(out:find("10 + 100 = 110", 1, true), out)
  T.ok(out:find("10 answers", 1, true), out)
end)

T.test("workers.lua", function()
  local st, out, err = run_example("workers.lua")
  T.eq(st, 0, err)
  local a, b, c = out:match("worker 1 did (%d+), worker 2 did (%d+), worker 3 did (%d+)")
  T.ok(a, out)
  T.eq(tonumber(a) + tonumber(b) + tonumber(c), 60)
end)

T.test("zero_loss_publisher.lua", function()
  local st, out, err = run_example("zero_loss_publisher.lua")
  T.eq(st, 0, err)
  T.ok(out:find("published 10000 orders in [%d.]+ s: 10000 acked, 0 failed, %d+ retried, 0 still pending"), out)
  T.ok(out:find("stream ORDERS holds 10000 messages", 1, true), out)
end)

T.test("batch_publisher.lua", function()
  local st, out, err = run_example("batch_publisher.lua")
  T.eq(st, 0, err)
  T.ok(out:find("first reading stored as seq 1", 1, true), out)
  T.ok(out:find("rejected: wrong_last_sequence", 1, true), out)
  T.ok(out:find("batch stored as sequences 1..100, 1 rejected", 1, true), out)
end)

T.test("reliable_consumer.lua: a second run resumes where the first stopped", function()
  local dir = T.tmpdir()
  local st, out, err = run_example("reliable_consumer.lua", dir)
  T.eq(st, 0, err)
  T.ok(out:find("billed 1000 orders (stream seq 1..1000), total 25500; redelivered 1; pending now 0, unacked 0", 1, true), out)
  T.ok(err:find("payment service busy", 1, true), "the handler error is logged: " .. err)
  st, out, err = run_example("reliable_consumer.lua", dir)
  T.eq(st, 0, err)
  T.ok(out:find("billed 1000 orders (stream seq 1001..2000)", 1, true), out)
end)

T.test("worker_pool.lua", function()
  local st, out, err = run_example("worker_pool.lua")
  T.eq(st, 0, err)
  T.ok(out:find("200 jobs done in [%d.]+ s, up to 8 at once; 0 left in the queue"), out)
end)

T.test("ordered_replay.lua", function()
  local st, out, err = run_example("ordered_replay.lua")
  T.eq(st, 0, err)
  T.ok(out:find("replayed 300 events in stream order: acct1=150 acct2=150 acct3=-150", 1, true), out)
end)

T.test("dlq_consumer.lua", function()
  local st, out, err = run_example("dlq_consumer.lua")
  T.eq(st, 0, err)
  T.ok(out:find("3 records stored; in the DLQ:", 1, true), out)
  T.ok(out:find("not json (stream seq 3, 1 deliveries): permanent failure: not JSON", 1, true), out)
  T.ok(out:find('{"price": -1} (stream seq 5, 3 deliveries): ', 1, true), out)
end)

T.test("idempotent_handler.lua", function()
  local st, out, err = run_example("idempotent_handler.lua")
  T.eq(st, 0, err)
  T.ok(out:find("100 messages, 50 charges, total 1275; 50 duplicates skipped", 1, true), out)
end)

T.test("custom_policy.lua", function()
  local st, out, err = run_example("custom_policy.lua")
  T.eq(st, 0, err)
  T.ok(out:find("busy#2 done after 3 attempt(s)\nok#1 done after 1 attempt(s)\nok#5 done after 1 attempt(s)\nfor review: invalid", 1, true), out)
end)

T.test("orders_pipeline.lua", function()
  local st, out, err = run_example("orders_pipeline.lua")
  T.eq(st, 0, err)
  T.ok(out:find("30 orders in, 3 test orders dropped, 27 enriched: orders.enriched.apac=9 orders.enriched.eu=9 orders.enriched.us=9", 1, true), out)
end)

T.test("dlq_reprocessor.lua", function()
  local st, out, err = run_example("dlq_reprocessor.lua")
  T.eq(st, 0, err)
  T.ok(out:find("work.resize: job 1 (retried)\nwork.email: job 2 (retried)\nwork.resize: job 3 (retried)", 1, true), out)
end)

T.test("json_transform.lua", function()
  local st, out, err = run_example("json_transform.lua")
  T.eq(st, 0, err)
  T.ok(out:find("readings.t1: t1 at 1 = 100.0 C\nreadings.t2: t2 at 2 = 0.0 C\ndropped 1 reading(s) without a value", 1, true), out)
end)

T.run()
