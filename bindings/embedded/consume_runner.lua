-- The runner of a js:consume handler slot (bindings/ljs_consume.c; embedded in the
-- binary at build time as RUNNER, chunk name "=jetlua.consume"). Spawned as a
-- coroutine with (engine, slot index): it takes the slot's next message and
-- its handler (fetched per message, so a hot reload's new handler takes the
-- next one), runs it under xpcall and reports the outcome, until _take says
-- there is no more work for this slot.
local engine, idx = ...
local take, done, traceback = engine._take, engine._done, require('jetlua')._onerror
while true do
  local msg, handler = take(engine, idx)
  if not msg then return end
  local ok, err, tb, note = xpcall(handler, traceback, msg)
  done(engine, idx, msg, ok, err, tb, note)
end
