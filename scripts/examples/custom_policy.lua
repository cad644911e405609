-- custom_policy.lua: a retry policy is a plain Lua function.
--   jetlua run scripts/examples/custom_policy.lua
-- policy(msg, err, meta) -> "nak", delay | "term" | "ack" | "dlq", subject.
-- This one retries "busy" errors quickly (up to 5 times), parks "invalid"
-- messages in a review subject at once, and drops "stale" ones.
local jet = require "jetlua"

local nc = assert(jet.connect())
local js = nc:jetstream()
js:delete_stream("TASKS"); js:delete_stream("REVIEW")
assert(js:stream{ name = "TASKS", subjects = { "tasks.>" } })
assert(js:stream{ name = "REVIEW", subjects = { "review.>" } })
assert(js:consumer("TASKS", { durable = "runner" }))
for _, t in ipairs{ "ok", "busy", "invalid", "stale", "ok" } do assert(js:publish("tasks.run", t)) end

local function policy(_msg, err, meta)
  local e = tostring(err)
  if e:find("busy") and meta.num_delivered < 5 then return "nak", 0.1 * meta.num_delivered end
  if e:find("stale") then return "ack" end
  return "dlq", "review.tasks"
end

local log = {}
local attempts = {}
local h = assert(js:consume("TASKS", "runner", function(msg)
  local seq = msg:metadata().stream_seq
  attempts[seq] = (attempts[seq] or 0) + 1
  if msg.data == "busy" and attempts[seq] < 3 then error("busy, try later") end
  if msg.data == "invalid" or msg.data == "stale" then error(msg.data .. " task") end
  log[#log + 1] = msg.data .. "#" .. seq .. " done after " .. attempts[seq] .. " attempt(s)"
end, { retry = policy }))
local deadline = jet.monotonic() + 60
while (#log < 3 or js:stream_info("REVIEW").state.messages < 1) and jet.monotonic() < deadline do
  jet.sleep(0.05)
end
h:drain()
table.sort(log)
for _, l in ipairs(log) do print(l) end
local review = js:get_msg("REVIEW", 1)
print(("for review: %s"):format(review and review.data or "nothing"))
nc:close()
if #log ~= 3 or not review or review.data ~= "invalid" then jet.exit(1) end   -- it did not work
