-- The trampoline every pooled coroutine runs (runtime/rt_sched.c; embedded in
-- the binary at build time as trampoline_src, chunk name "=jetlua.scheduler").
-- Called once with (IDLE sentinel, job_traceback C function); returns the
-- coroutine body, the message handler (jet._onerror) and its capturing variant
-- ({value=, traceback=}, jet._capture_error).
--
-- `step` yields IDLE with the previous job's outcome and receives the next job;
-- both calls are tail calls, so the coroutine's stack does not grow from job to
-- job. xpcall with extra arguments and yielding across it are LuaJIT features.
--
-- The message handler is a coroutine.wrap function whose body runs on its own
-- stack and reads the failed job's stack from there (job_traceback): after a
-- stack overflow in JIT-compiled code, LuaJIT can still resume it where it
-- cannot enter any Lua or C handler (see runtime/rt_traceback.c).
local IDLE, job_traceback = ...
local yield, xpcall, pcall, wrap, type = coroutine.yield, xpcall, pcall, coroutine.wrap, type
local function handler(capture)
  return wrap(function(e)
    while true do
      local ok, tb = pcall(job_traceback, e)
      if not ok then tb = type(e) == 'string' and e or '(an error value that cannot be shown)' end
      if capture then tb = { value = e, traceback = tb } end
      e = yield(tb)
    end
  end)
end
local onerror = handler(false)
local step
local function run(fn, ...) return step(xpcall(fn, onerror, ...)) end
step = function(ok, err) return run(yield(IDLE, ok, err)) end
return function() return step(true, nil) end, onerror, handler(true)
