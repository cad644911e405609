-- The jetlua side of the JetStream consume benchmark: js:consume a filled stream through a
-- fresh durable (auto-ack), timed from the consume call until the Nth message's ack is flushed.
--   jetlua run js_consume.lua URL STREAM CONSUMER N MODE [BATCH]
-- MODE: max (max_messages = BATCH), default (no options), retry (jet.retry.backoff, never
-- fails), idem (jet.idempotent: CONSUMER is "FIRST,SECOND"; the first pass over an empty
-- bucket is the miss path, the second, on another fresh consumer, the hit path).
-- Prints one RESULT line per pass; disconnects= counts connection losses during the pass
-- (in-flight messages then come back only after ack_wait, which shows as a stall).
local jet = require "jetlua"
local url, stream, consumer, n, mode, batch =
  arg[1], arg[2], arg[3], tonumber(arg[4]), arg[5], tonumber(arg[6])
local nc = assert(jet.connect{ servers = url })
local js = nc:jetstream()
local disconnects = 0
nc:on("disconnected", function() disconnects = disconnects + 1 end)

local passes = {}
if mode == "max" then
  passes[1] = { name = "max" .. batch, consumer = consumer, opts = { max_messages = batch } }
elseif mode == "default" then
  passes[1] = { name = "default", consumer = consumer }
elseif mode == "retry" then
  passes[1] = { name = "retry", consumer = consumer,
                opts = { retry = jet.retry.backoff{ max_deliver = 5, dlq = "dlq.bench" } } }
elseif mode == "idem" then
  local first, second = consumer:match("^([^,]+),([^,]+)$")
  local once = jet.idempotent{ js = js, bucket = "bench_done" }
  passes[1] = { name = "idem_miss", consumer = first, wrap = once }
  passes[2] = { name = "idem_hit", consumer = second, wrap = once }
else
  error("unknown mode " .. tostring(mode))
end

local guard = jet.timer(300, function()
  print("RESULT incomplete: gave up after 300 s")
  jet.exit(1)
end)

-- Each pass counts in the outermost handler (after any wrapper's KV get/put); when the Nth
-- returns, auto-ack sends its +ACK, and a timer on the next loop turn flushes, so the flush
-- round trip follows the last ack. Then the next pass starts from that timer's coroutine.
-- An idempotent pass hands its handler to js:consume as it is (so that the wrapper's own
-- default concurrency applies) and acks after the KV write: it ends when the consumer's
-- stats say N were acked (looked at every 2 ms), then flushes.
local function run(i)
  local p = passes[i]
  if not p then
    guard:stop()
    nc:close()
    return
  end
  local count, h = 0, nil
  disconnects = 0
  local t0, c0 = jet.monotonic(), jet.process.cpu()
  local function finish()
    assert(nc:flush(60))
    local secs = jet.monotonic() - t0
    print(("RESULT %s msgs=%d secs=%.4f rate=%.0f cpu_us_per_msg=%.3f disconnects=%d"):format(p.name,
      n, secs, n / secs, (jet.process.cpu() - c0) * 1e6 / n, disconnects))
    h:stop()
    run(i + 1)
  end
  local err
  if p.wrap then
    h, err = js:consume(stream, p.consumer, p.wrap(function() end), p.opts)
    assert(h, err)
    jet.timer(0, function()
      while h:stats().acked < n do jet.sleep(0.002) end
      finish()
    end)
    return
  end
  h, err = js:consume(stream, p.consumer, function()
    count = count + 1
    if count == n then jet.timer(0, finish) end
  end, p.opts)
  assert(h, err)
end
run(1)
