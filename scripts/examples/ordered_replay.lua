-- ordered_replay.lua: replay a stream's history, strictly in order.
--   jetlua run scripts/examples/ordered_replay.lua
-- An ordered consumer needs no durable and no acks: jetlua creates ephemeral
-- consumers as needed and guarantees stream order with no gap or repeat, even
-- across reconnects. Here: rebuild account balances from their event history.
local jet = require "jetlua"

local nc = assert(jet.connect())
local js = nc:jetstream()
js:delete_stream("LEDGER")
assert(js:stream{ name = "LEDGER", subjects = { "ledger.>" }, storage = "file" })
for i = 1, 300 do
  local acct = "acct" .. (i % 3 + 1)
  js:publish_async("ledger." .. acct, jet.json.encode{ amount = (i % 2 == 0) and i or -i })
end
assert(js:publish_async_complete(30) == 0, "every event stored")

local balances, last, events = {}, 0, 0
local oc = js:ordered("LEDGER", { filter_subject = "ledger.>" })
local it = assert(oc:messages())
while true do
  local msg = it:next(10)                    -- nil: nothing came for 10 s
  if not msg then break end
  local md = msg:metadata()
  assert(md.stream_seq == last + 1, "in order")
  last = md.stream_seq
  local acct = msg.subject:match("ledger%.(.+)")
  balances[acct] = (balances[acct] or 0) + jet.json.decode(msg.data).amount
  events = events + 1
  if md.num_pending == 0 then break end      -- caught up with the stream
end
it:stop()
print(("replayed %d events in stream order: acct1=%d acct2=%d acct3=%d")
  :format(events, balances.acct1, balances.acct2, balances.acct3))
nc:close()
if events ~= 300 then jet.exit(1) end   -- an example that did not work says so
