-- The examples in scripts/examples run against the embedded default, as README says: all of
-- them, in the README's order, in ONE directory (so they share ./.jetlua: its server and
-- store), and then all of them again. Each must exit 0, print what it promises, and log no
-- more handler tracebacks than the failures it stages.
local jet = require "jetlua"
local T = require "jetlua.testing"

local src = jet.process.getenv("JETLUA_SOURCE_DIR") or "."

-- What each example prints (plain substrings), and how many handler tracebacks it logs.
-- pass: 1 or 2 (the second run in the same directory).
local expect = {
  ["hello.lua"] = { out = { "3 messages received" }, pattern = "asked time.now, got: %d%d%d%d%-" },
  ["service.lua"] = { out = { "10 + 100 = 110", "10 answers" } },
  ["workers.lua"] = { out = { "60 jobs done: worker 1 did" } },
  ["zero_loss_publisher.lua"] = { out = { "stream CHECKOUT holds 10000 messages" },
    pattern = "published 10000 orders in [%d.]+ s: 10000 acked, 0 failed, %d+ retried, 0 still pending" },
  ["batch_publisher.lua"] = { out = { "first reading stored as seq 1", "rejected: wrong_last_sequence",
    "batch stored as sequences 1..100, 1 rejected" } },
  ["reliable_consumer.lua"] = { tracebacks = 1, err = { "payment service busy" }, out = function(pass)
    return { ("billed 1000 orders (stream seq %d..%d), total 25500; redelivered 1; pending now 0, unacked 0")
      :format(pass * 1000 - 999, pass * 1000) }
  end },
  ["worker_pool.lua"] = { pattern = "200 jobs done in [%d.]+ s, up to 8 at once; 0 left in the queue" },
  -- the same error again within 10 s is a count, not another traceback
  ["dlq_consumer.lua"] = { tracebacks = 2, err = { "negative price -1 (repeated 2 times in the last" },
    out = { "3 records stored; in the DLQ:",
    "not json (stream seq 3, 1 deliveries): permanent failure: not JSON",
    '{"price": -1} (stream seq 5, 3 deliveries): ' } },
  ["idempotent_handler.lua"] = { out = { "100 messages, 50 charges, total 1275; 50 duplicates skipped" } },
  ["custom_policy.lua"] = { tracebacks = 3, err = { "busy, try later (repeated 1 time in the last" },
    out = { "busy#2 done after 3 attempt(s)\nok#1 done after 1 attempt(s)\n"
    .. "ok#5 done after 1 attempt(s)\nfor review: invalid" } },
  ["orders_pipeline.lua"] = { out = { "30 orders in, 3 test orders dropped, 27 enriched: "
    .. "orders.enriched.apac=9 orders.enriched.eu=9 orders.enriched.us=9" } },
  ["dlq_reprocessor.lua"] = { out = { "work.resize: job 1 (retried)\nwork.email: job 2 (retried)\n"
    .. "work.resize: job 3 (retried)" } },
  ["json_transform.lua"] = { out = { "readings.t1: t1 at 1 = 100.0 C\nreadings.t2: t2 at 2 = 0.0 C\n"
    .. "dropped 1 reading(s) without a value" } },
  ["ordered_replay.lua"] = { out = { "replayed 300 events in stream order: acct1=150 acct2=150 acct3=-150" } },
}

-- the examples in the order of the README's table
local function readme_order()
  local readme = assert(T.read_file(src .. "/README.md"), "README.md")
  local list = {}
  for name in readme:gmatch("\n| `jetlua run scripts/examples/([%w_]+%.lua)") do list[#list + 1] = name end
  return list
end

local function count(s, plain)
  local n, at = 0, 1
  while true do
    local i = s:find(plain, at, true)
    if not i then return n end
    n, at = n + 1, i + #plain
  end
end

local dir = T.tmpdir()

local function run_example(name, pass)
  local out, err = ("%s/%s.%d.out"):format(dir, name, pass), ("%s/%s.%d.err"):format(dir, name, pass)
  local p = T.jetlua({ "run", src .. "/scripts/examples/" .. name },
    { cwd = dir, stdout = out, stderr = err, env = { NATS_URL = false } })
  local status = p:wait(90)
  return status, T.read_file(out) or "", T.read_file(err) or ""
end

T.test("the README lists every example once, and this test knows each", function()
  local list = readme_order()
  T.ok(#list >= 14, "examples in README: " .. #list)
  local seen = {}
  for _, name in ipairs(list) do
    T.ok(not seen[name], name .. " listed twice")
    seen[name] = true
    T.ok(expect[name], name .. " has no expectations here")
  end
  for name in pairs(expect) do T.ok(seen[name], name .. " is not in the README's table") end
end)

for pass = 1, 2 do
  for _, name in ipairs(readme_order()) do
    T.test(("run %d: %s"):format(pass, name), function()
      local e = expect[name]
      local st, out, err = run_example(name, pass)
      T.eq(st, 0, "exit status; stderr: " .. err:sub(1, 3000))
      local want = type(e.out) == "function" and e.out(pass) or e.out or {}
      for _, s in ipairs(want) do T.ok(out:find(s, 1, true), ("%q not in:\n%s"):format(s, out)) end
      if e.pattern then T.ok(out:find(e.pattern), ("%q not in:\n%s"):format(e.pattern, out)) end
      for _, s in ipairs(e.err or {}) do T.ok(err:find(s, 1, true), ("%q not logged:\n%s"):format(s, err)) end
      T.eq(count(err, "stack traceback:"), e.tracebacks or 0, "handler tracebacks logged:\n" .. err:sub(1, 3000))
    end)
  end
end

T.test("a losing example exits non-zero: reliable_consumer.lua with foreign messages on its stream", function()
  -- a message that is not an order fails every delivery until max_deliver drops it: lost
  local d = T.tmpdir()
  local seed = T.write_file(d .. "/seed.lua", [[
    local jet = require "jetlua"
    local js = assert(jet.connect()):jetstream()
    assert(js:stream{ name = "BILLING", subjects = { "billing.orders.>" }, storage = "file" })
    assert(js:publish("billing.orders.created", "not an order"))
  ]])
  local p = T.jetlua({ "run", seed }, { cwd = d, stdout = d .. "/seed.out", stderr = d .. "/seed.err",
                                       env = { NATS_URL = false } })
  T.eq(p:wait(60), 0, T.read_file(d .. "/seed.err"))
  p = T.jetlua({ "run", src .. "/scripts/examples/reliable_consumer.lua", "10" },
    { cwd = d, stdout = d .. "/out", stderr = d .. "/err", env = { NATS_URL = false } })
  T.eq(p:wait(90), 1, T.read_file(d .. "/err"))
  T.ok(T.read_file(d .. "/err"):find("handler failure", 1, true))
end)

T.run()
