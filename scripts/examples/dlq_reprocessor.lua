-- dlq_reprocessor.lua: send dead letters back where they came from.
--   jetlua run scripts/examples/dlq_reprocessor.lua
-- Once the bug that sent messages to the DLQ is fixed, this pipeline reads
-- the DLQ stream and republishes each message to its original subject (the
-- Jetlua-Dlq-Subject header jetlua's retry policies add); a DLQ entry is
-- acked only after the original stream stored the copy.
local jet = require "jetlua"

local nc = assert(jet.connect())
local js = nc:jetstream()
js:delete_stream("WORK"); js:delete_stream("WORK_DLQ")
assert(js:stream{ name = "WORK", subjects = { "work.>" } })
assert(js:stream{ name = "WORK_DLQ", subjects = { "dlq.work" } })
-- three dead letters, as jet.retry.backoff{dlq = "dlq.work"} would have left them
for i, subject in ipairs{ "work.resize", "work.email", "work.resize" } do
  assert(js:publish("dlq.work", "job " .. i, { headers = {
    ["Jetlua-Dlq-Subject"] = subject, ["Jetlua-Dlq-Error"] = "bug #42" } }))
end

local p = assert(jet.pipeline{
  js = js, name = "reprocess", from = { stream = "WORK_DLQ" },
  steps = { { map = function(data) return data .. " (retried)" end } },
  to = function(_, msg) return msg:header("Jetlua-Dlq-Subject") end,
})
local deadline = jet.monotonic() + 60
while js:stream_info("WORK").state.messages < 3 and jet.monotonic() < deadline do jet.sleep(0.05) end
p:drain()
local back = js:stream_info("WORK").state.messages
for seq = 1, back do
  local m = js:get_msg("WORK", seq)
  print(("%s: %s"):format(m.subject, m.data))
end
nc:close()
if back ~= 3 then jet.exit(1) end   -- an example that did not work says so
