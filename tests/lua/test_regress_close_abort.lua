-- Regression test (was a repro): SIGABRT in libuv when nc:close() runs before the loop has polled
-- a new connection's socket.
--
--   JETLUA_BIN=build/jetlua build/jetlua run tests/lua/test_regress_close_abort.lua
--
-- Observed: the child dies with SIGABRT and no message (status 134), every run. libuv's
--   uv__io_poll aborts because epoll_ctl(EPOLL_CTL_ADD, fd) fails with EBADF; strace shows
--   cnats' close(fd) inside natsConnection_Close, then that ADD of the same fd.
-- Expected: the child prints "survived" and exits 0.
--
-- Why (strace + gdb): jet.connect resumes the script inside the loop callback that finished the
-- handshake, so rt_natsuv's uv_poll_start for the new socket is still only queued in libuv's
-- watcher_queue. About 1 ms later cnats' flusher thread calls the adapter's write(ADD) for the
-- reply-inbox SUB, which gets queued for the uv_async (u->nops > 0). From then on the loop
-- thread's own calls (read/write REMOVE from _evStopPolling at close) queue too, instead of
-- stopping the poll, and cnats closes the fd at once. The next uv__io_poll registers a closed
-- fd and aborts. (The fd number can also be reused by then: libuv would watch someone else's
-- socket.) The busy wait below just lets the flusher thread win that race every time; without it
-- the same abort happens now and then (tests/lua/test_reconnect.lua case 2 aborts ~1 run in 10,
-- and under strace almost always).
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = false }
local dir = T.tmpdir()
T.write_file(dir .. "/child.lua", [[
  local jet = require "jetlua"
  for i = 1, 5 do
    local nc = assert(jet.connect{ servers = arg[1] })
    local t = jet.monotonic() + 0.005
    while jet.monotonic() < t do end   -- 5 ms of work before closing: cnats' flusher runs first
    nc:close()
  end
  print("survived")
]])

local p = T.jetlua({ "run", dir .. "/child.lua", srv.url }, { stdout = dir .. "/out", stderr = dir .. "/err" })
local status, sig = p:wait(60)
print(("child: status %s, signal %s, stdout %q")
  :format(tostring(status), tostring(sig), T.read_file(dir .. "/out") or ""))
if status == 0 and (sig or 0) == 0 then
  print("OK: no abort")
  jet.exit(0)
end
print("BUG: the child aborted instead of closing its connections")
jet.exit(1)
