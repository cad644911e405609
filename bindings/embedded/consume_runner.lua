-- The runner of a js:consume handler slot (bindings/ljs_consume.c; embedded in the
-- binary at build time as RUNNER, chunk name "=jetlua.consume"). Spawned as a
-- coroutine with (engine, slot index): it takes the slot's next message and
-- its handler (fetched per message, so a hot reload's new handler takes the
-- next one), runs it under xpcall and reports the outcome, until there is no
-- more work for this slot. One C call per message: _step reports the last
-- outcome (what _done does) and takes the next message (what _take does).
local engine, idx = ...
local step, traceback = engine._step, require('jetlua')._onerror
local msg, handler = step(engine, idx)
while msg do
  local ok, err, tb, note = xpcall(handler, traceback, msg)
  msg, handler = step(engine, idx, msg, ok, err, tb, note)
end
