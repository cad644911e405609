-- Poison messages (issue #11 item 7): a handler that always raises once
-- gave 135,777 handler runs and 41 MB of stderr in 5 s for 10 messages. A
-- failed message is now nak'd with a growing delay (1 s, 5 s, 15 s, 30 s by
-- delivery), a repeated error is logged once with a count, and
-- stats().handler_errors counts errors also when a retry policy is set.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url })
local js = nc:jetstream()

local function fresh(name, ccfg) T.fresh_stream(js, name, ccfg) end

local function publish_n(subject, n) T.publish_n(js, subject, n) end

local dir = T.tmpdir("jetlua-poison")

-- Default settings: a consumer whose handler always raises, and a core
-- subscription whose handler always raises. Each run is written down.
local CHILD = T.write_file(dir .. "/child.lua", [[
local jet = require "jetlua"
local url, out = arg[1], arg[2]
local nc = assert(jet.connect{ servers = url })
local js = nc:jetstream()
local f = assert(io.open(out, "w"))
assert(js:consume("POISON", "C", function(msg)
  local md = msg:metadata()
  f:write(md.stream_seq, " ", md.num_delivered, "\n"); f:flush()
  error("poisoned record")
end))
nc:subscribe("core.poison", function() error("core handler trouble") end)
nc:flush()
for i = 1, 1000 do nc:publish("core.poison", tostring(i)) end
f:write("ready\n"); f:flush()
]])

T.test("10 poison messages, default settings: bounded runs, small stderr, a count line", function()
  fresh("POISON")
  publish_n("poison.x", 10)
  local out, errf = dir .. "/runs.txt", dir .. "/stderr.txt"
  local p = T.jetlua({ "run", CHILD, srv.url, out }, { stderr = errf })
  T.wait_until(function() return (T.read_file(out) or ""):find("ready") end, 20, "the child started")
  jet.sleep(4)                  -- without a back-off this was ~100,000 runs
  p:kill("TERM")
  T.ok(p:wait(20), "the child exited")
  local runs, maxnd, seqs = 0, {}, 0
  for s, nd in (T.read_file(out) or ""):gmatch("(%d+) (%d+)\n") do
    s, nd = tonumber(s), tonumber(nd)
    runs = runs + 1
    if not maxnd[s] then seqs = seqs + 1 end
    maxnd[s] = math.max(maxnd[s] or 0, nd)
  end
  T.eq(seqs, 10, "every message was tried")
  local deliveries = 0
  for _, nd in pairs(maxnd) do
    deliveries = deliveries + nd
    T.ok(nd <= 3, "at most 3 deliveries each in ~4 s (1 s, then 5 s back-off): " .. nd)
  end
  T.eq(runs, deliveries, "one run per delivery")
  T.ok(runs <= 30, "bounded runs: " .. runs)
  local err = T.read_file(errf) or ""
  T.ok(#err < 20000, "stderr stays small: " .. #err .. " bytes")
  -- the consumer's line names stream, consumer, seq and delivery, and what happens next
  T.ok(err:find("ERROR handler failed on POISON/C seq %d+ %(delivery 1%) %-> nak, redelivery in 1 s: "
    .. "[^\n]*poisoned record\nstack traceback:"), err)
  local _, full = err:gsub("poisoned record\nstack traceback:", "")
  T.eq(full, 1, "the consumer's error in full once")
  local n = err:match("handler failed on POISON/C: [^\n]*poisoned record %(repeated (%d+) times in the last %d+ s%)")
  T.ok(n and tonumber(n) == runs - 1,
    "a count line for the repeats (" .. tostring(n) .. ", runs " .. runs .. "):\n" .. err)
  -- the core subscription: one traceback, then a count
  local _, core = err:gsub("core handler trouble\nstack traceback:", "")
  T.eq(core, 1, "the subscription's error in full once")
  T.ok(err:find("handler for 'core.poison' failed: [^\n]*core handler trouble "
    .. "%(repeated 999 times in the last %d+ s%)"), err)
end)

T.test("handler_errors counts errors a retry policy handled; a policy's bare nak backs off", function()
  fresh("PRETRY")
  publish_n("pretry.x", 1)
  local runs = 0
  local h = assert(js:consume("PRETRY", "C", function() runs = runs + 1; error("always") end,
    { retry = jet.retry.backoff{ initial = 0.1, max_deliver = 2, on_exhausted = "term" } }))
  T.wait_until(function() return h:stats().termed == 1 end, 10, "termed after 2 deliveries")
  local st = h:stats()
  T.eq(runs, 2); T.eq(st.handler_errors, 2); T.eq(st.naked, 1)
  h:stop()
  -- a policy that says "nak" without a delay gets the default back-off, not a hot loop
  fresh("PNAK")
  publish_n("pnak.x", 3)
  runs = 0
  h = assert(js:consume("PNAK", "C", function() runs = runs + 1; error("again") end,
    { retry = function() return "nak" end }))
  T.wait_until(function() return runs >= 3 end, 10)
  jet.sleep(2.5)
  T.ok(runs <= 9, "at most 3 deliveries each in 2.5 s: " .. runs)
  T.eq(h:stats().handler_errors, runs)
  h:stop()
end)

T.run()
