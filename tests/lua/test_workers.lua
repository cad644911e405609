-- jetlua run --workers N: a master and N worker processes running the same script. A worker
-- kill -9'd mid-stream is restarted and no message is lost or handled twice (beyond what was
-- in flight in the killed one); SIGHUP reaches every worker; SIGTERM ends them all, bounded,
-- leaving no process behind; one /metrics sums the workers (valid text format); the embedded
-- server is shared by workers that start at once; secrets stay off the workers' command lines.
local jet = require "jetlua"
local T = require "jetlua.testing"
local proc = jet.process

local SRC = proc.getenv("JETLUA_SOURCE_DIR") or "."
local CHECKER = SRC .. "/tests/lua/prom_check.py"
local srv = T.server{}

local function curl(url, file)
  local dir = T.tmpdir()
  file = file or dir .. "/body"
  local p = assert(proc.spawn({ "curl", "-s", "--max-time", "20", "-o", file, "-w", "%{http_code}", url },
    { stdout = dir .. "/code" }))
  p:wait(30)
  return tonumber(T.read_file(dir .. "/code")), T.read_file(file) or ""
end

-- prom_check.py's verdict: the families, or an error
local function prom(file)
  local out = file .. ".json"
  T.eq(T.run_command({ "/usr/bin/python3", CHECKER, file }, { stdout = out }), 0)
  local r = jet.json.decode(T.read_file(out))
  T.eq(r.error, nil, "the text format: " .. tostring(r.error))
  return r.families
end

local function sample(fams, fam, name, labels)
  for _, s in ipairs((fams[fam] or {}).samples or {}) do
    local same = s[1] == name
    for k, v in pairs(labels or {}) do same = same and s[2][k] == v end
    for k in pairs(s[2]) do same = same and (labels or {})[k] ~= nil end
    if same then return tonumber(s[3]) end
  end
end

local function count(text, plain)
  local n, at = 0, 1
  while true do
    local i = text:find(plain, at, true)
    if not i then return n end
    n, at = n + 1, i + 1
  end
end

-- a process that is gone (or a zombie nobody has reaped yet)
local function gone(pid)
  local st = T.read_file("/proc/" .. pid .. "/stat")
  return not st or st:match("^%d+ %b() (%a)") == "Z"
end

local function ready_lines(file)
  local t = {}
  for idx, cnt, pid in (T.read_file(file) or ""):gmatch("ready (%d+) (%d+) (%d+)") do
    t[#t + 1] = { index = tonumber(idx), count = tonumber(cnt), pid = tonumber(pid) }
  end
  return t
end

-- the listener of test_sd_notify.lua: one line per datagram ("|" for newlines)
local LISTENER = [[
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    f.write("listening\n"); f.flush()
    while True:
        f.write(s.recv(65536).decode().replace("\n", "|") + "\n"); f.flush()
]]

local APP = [[
local jet = require "jetlua"
local dir = ...
local w = jet.worker()
local nc = assert(jet.connect())
local js = nc:jetstream()
local f = assert(io.open(dir .. "/handled", "a"))
jet.metrics.counter("test_worker_starts_total", nil, "worker processes started"):inc()
jet.metrics.gauge("test_worker_index"):set(w.index)
assert(js:consume("WORK", "W", function(msg)
  local md = msg:metadata()
  -- "h": handled, written before the ack; "a": the server confirmed the ack (ack_sync), so
  -- this delivery can never come back; "f": the ack failed, the message will come back
  f:write(("h %d %d %d %d\n"):format(w.index, jet.process.pid(), md.stream_seq, md.num_delivered))
  f:flush()
  jet.sleep(0.002)
  local ok, code = msg:ack_sync(10)
  f:write(("%s %d %d %d %d\n"):format(ok and "a" or "f", w.index, jet.process.pid(), md.stream_seq,
    md.num_delivered))
  f:flush()
end, { max_messages = 20, auto_ack = false }))
print(("ready %d %d %d"):format(w.index, w.count, jet.process.pid()))
]]

T.test("--workers 2: kill -9 one mid-stream, SIGHUP both, one /metrics, SIGTERM ends all", function()
  local N = 5000
  local nc = assert(jet.connect{ servers = srv.url })
  local js = nc:jetstream()
  assert(js:stream{ name = "WORK", subjects = { "work.>" }, storage = "file" })
  assert(js:consumer("WORK", { durable = "W", ack_wait = 4 }))
  for i = 1, N do js:publish_async("work.x", tostring(i)) end
  T.eq(js:publish_async_complete(30), 0)

  local dir = T.tmpdir()
  T.write_file(dir .. "/app.lua", APP)
  T.write_file(dir .. "/listener.py", LISTENER)
  local notify = dir .. "/notify.sock"
  local listener = assert(proc.spawn({ "/usr/bin/python3", dir .. "/listener.py", notify, dir .. "/notify.log" },
    { stdout = dir .. "/listener.out", stderr = dir .. "/listener.out" }))
  T.wait_until(function() return (T.read_file(dir .. "/notify.log") or ""):find("listening") end, 20)
  local port = proc.free_port()
  local base = "http://127.0.0.1:" .. port
  local master = T.jetlua({ "run", "--workers", "2", "--server", srv.url, "--metrics", "127.0.0.1:" .. port,
    "--shutdown-timeout", "5", dir .. "/app.lua", dir },
    { stdout = dir .. "/out", stderr = dir .. "/err", env = { NOTIFY_SOCKET = notify } })
  local function err() return T.read_file(dir .. "/err") or "" end
  T.wait_until(function() return #ready_lines(dir .. "/out") == 2 end, 30, "both workers ready: " .. dir)
  T.wait_until(function() return err():find("workers: all 2 ready", 1, true) end, 30, "the master saw READY=1")

  -- jet.worker(): index 0 and 1, count 2, two processes, children of the master
  local ws = ready_lines(dir .. "/out")
  table.sort(ws, function(a, b) return a.index < b.index end)
  T.eq({ ws[1].index, ws[2].index, ws[1].count, ws[2].count }, { 0, 1, 2, 2 })
  T.ok(ws[1].pid ~= ws[2].pid and ws[1].pid ~= master.pid)
  for _, w in ipairs(ws) do
    T.ok(T.read_file("/proc/" .. w.pid .. "/stat"):match("^%d+ %b() %a (%d+)") == tostring(master.pid),
      "worker " .. w.index .. "'s parent is the master")
  end

  -- one READY=1 for the group, once both workers are (the listener writes it down a moment
  -- after the master logs it)
  T.wait_until(function() return count(T.read_file(dir .. "/notify.log"), "READY=1") >= 1 end, 20, "READY=1 sent")
  local notes = T.read_file(dir .. "/notify.log")
  T.eq(count(notes, "READY=1"), 1, notes)

  -- a scrape before the kill: the killed worker's counters as last seen are kept
  local code = curl(base .. "/metrics", dir .. "/m1")
  T.eq(code, 200)
  local fams = prom(dir .. "/m1")
  T.eq(sample(fams, "test_worker_starts", "test_worker_starts_total"), 2, "summed over the workers")

  -- the journal of every worker: {op = "h"|"a"|"f", index, pid, seq, delivered}
  local function journal()
    local t = {}
    for op, idx, pid, seq, dl in (T.read_file(dir .. "/handled") or ""):gmatch("(%a) (%d+) (%d+) (%d+) (%d+)\n") do
      t[#t + 1] = { op = op, index = tonumber(idx), pid = tonumber(pid), seq = tonumber(seq), delivered = tonumber(dl) }
    end
    return t
  end
  local function acked()
    local n = 0
    for _, e in ipairs(journal()) do n = n + (e.op == "a" and 1 or 0) end
    return n
  end
  T.wait_until(function() return acked() >= N * 0.3 end, 60, "a third handled")
  local victim = ws[2]
  T.ok(acked() < N, "the kill happens mid-stream")
  local before = { [0] = 0, [1] = 0 }
  for _, e in ipairs(journal()) do
    if e.op == "a" then before[e.index] = before[e.index] + 1 end
  end
  T.ok(before[0] > 0 and before[1] > 0,
    ("both workers share the durable: %d and %d acked"):format(before[0], before[1]))
  T.eq(T.run_command({ "kill", "-9", tostring(victim.pid) }), 0)
  T.wait_until(function()
    local at = err():find(("workers: worker 1 (pid %d) was killed by signal 9 (SIGKILL) after "):format(victim.pid),
      1, true)
    return at and err():find("^[%d.]+s: restarting it in 0.1s\n", err():find("after ", at, true) + 6)
  end, 20, "the crash is logged")
  T.wait_until(function() return err():find("workers: worker 1 restarted (pid ", 1, true) end, 20, "restarted")
  T.wait_until(function() return #ready_lines(dir .. "/out") == 3 end, 30, "the new worker 1 is ready")
  local new1 = ready_lines(dir .. "/out")[3]
  T.eq({ new1.index, new1.count }, { 1, 2 })

  -- the server's word: everything delivered and acked (the killed worker's unacked messages
  -- came back after ack_wait)
  T.wait_until(function()
    local ci = js:consumer_info("WORK", "W")
    return ci and ci.num_ack_pending == 0 and ci.num_pending == 0 and ci.delivered.stream_seq >= N
  end, 90, "everything delivered and acked")
  -- and every handling of the live workers has written down its ack's outcome (ack_sync
  -- returns a moment after the server counted the ack)
  T.wait_until(function()
    local open = 0
    for _, e in ipairs(journal()) do
      if e.pid ~= victim.pid then open = open + (e.op == "h" and 1 or -1) end
    end
    return open == 0
  end, 30, "the live workers' journal is complete")
  -- the journal's word, per sequence: none lost, none handled twice. A sequence may be handled
  -- more than once only as a redelivery of a handling whose ack never was confirmed (the
  -- killed worker's in-flight messages, or an ack that failed); exactly one confirmed ack,
  -- except for the killed worker's last handlings, whose ack may have reached the server just
  -- before the kill, before it could write "a" down (then the server never redelivers it)
  local per = {}
  for _, e in ipairs(journal()) do
    per[e.seq] = per[e.seq] or {}
    table.insert(per[e.seq], e)
  end
  local redelivered, unconfirmed = 0, 0
  for seq = 1, N do
    local es = per[seq]
    T.ok(es, "seq " .. seq .. " was never handled")
    local hs, as, fails = {}, 0, {}
    for _, e in ipairs(es) do
      if e.op == "h" then hs[#hs + 1] = e
      elseif e.op == "a" then as = as + 1
      else fails[e.delivered] = true end
    end
    T.ok(as <= 1, "seq " .. seq .. " acked twice")
    for k = 2, #hs do
      local prev = hs[k - 1]
      T.ok(prev.pid == victim.pid or fails[prev.delivered],
        ("seq %d handled again, but handling #%d (pid %d) was not lost"):format(seq, k - 1, prev.pid))
      T.ok(hs[k].delivered > prev.delivered, ("seq %d: handling #%d is a redelivery"):format(seq, k))
      redelivered = redelivered + 1
    end
    if as == 0 then
      T.eq(hs[#hs].pid, victim.pid, "seq " .. seq .. " never acked")
      unconfirmed = unconfirmed + 1
    end
  end
  print(("after the kill: %d redelivered and handled again, %d acked unseen"):format(redelivered, unconfirmed))
  T.ok(redelivered + unconfirmed <= 20, "at most the killed worker's max_messages: " .. redelivered + unconfirmed)

  -- the merged /metrics: valid, counters summed (the killed worker's last answer kept),
  -- gauges per worker, the master's own series
  code = curl(base .. "/metrics", dir .. "/m2")
  T.eq(code, 200)
  fams = prom(dir .. "/m2")
  T.eq(sample(fams, "test_worker_starts", "test_worker_starts_total"), 3, "2 + the restarted one: never back")
  T.eq(sample(fams, "test_worker_index", "test_worker_index", { worker = "0" }), 0)
  T.eq(sample(fams, "test_worker_index", "test_worker_index", { worker = "1" }), 1)
  T.eq(sample(fams, "test_worker_index", "test_worker_index"), nil, "no unlabelled gauge")
  T.eq(sample(fams, "jetlua_workers", "jetlua_workers"), 2)
  T.eq(sample(fams, "jetlua_worker_up", "jetlua_worker_up", { worker = "1" }), 1)
  T.eq(sample(fams, "jetlua_worker_restarts", "jetlua_worker_restarts_total", { worker = "0" }), 0)
  T.eq(sample(fams, "jetlua_worker_restarts", "jetlua_worker_restarts_total", { worker = "1" }), 1)
  -- acks summed over the live workers (and the killed one's last scrape): at least what the
  -- live workers confirmed
  local live = 0
  for _, e in ipairs(journal()) do live = live + ((e.op == "a" and e.pid ~= victim.pid) and 1 or 0) end
  local acked_sum = sample(fams, "jetlua_consumer_acked", "jetlua_consumer_acked_total",
    { consumer = "W", stream = "WORK" })
  T.ok(acked_sum and acked_sum >= live and live > N / 2,
    ("acks summed: %s, live workers' %d"):format(tostring(acked_sum), live))
  T.ok(sample(fams, "process_cpu_seconds", "process_cpu_seconds_total") > 0)
  T.ok(sample(fams, "process_resident_memory_bytes", "process_resident_memory_bytes", { worker = "1" }) > 0)
  T.eq((curl(base .. "/readyz")), 200)
  T.eq((curl(base .. "/livez")), 200)

  -- SIGHUP reaches both workers (the new one included); the group reports one reload
  master:kill("HUP")
  T.wait_until(function()
    return err():find("[worker 0] reload #1 ok (SIGHUP)", 1, true)
      and err():find("[worker 1] reload #1 ok (SIGHUP)", 1, true)
  end, 30, "both workers reload: " .. err())
  T.wait_until(function() return count(T.read_file(dir .. "/notify.log"), "READY=1") == 2 end, 20)
  notes = T.read_file(dir .. "/notify.log")
  T.ok(notes:find("READY=1[^\n]*\nRELOADING=1[^\n]*\nREADY=1|STATUS=2 worker%(s%) running; reloaded\n"), notes)

  -- SIGTERM: every process ends, the master with 0, nothing left behind
  local n = 0
  for _ in pairs(T.procs_with("--worker-index", dir .. "/app.lua")) do n = n + 1 end
  T.eq(n, 2, "two workers run before the SIGTERM")
  master:kill("TERM")
  T.eq(master:wait(60), 0, err())
  T.ok(err():find("workers: received SIGTERM: stopping 2 worker(s) gracefully", 1, true), err())
  for _, w in ipairs(ready_lines(dir .. "/out")) do
    T.ok(gone(w.pid), "worker pid " .. w.pid .. " is gone")
  end
  T.eq(next(T.procs_with("--worker-index", dir .. "/app.lua")), nil, "no worker of this group is left")
  T.ok(T.read_file(dir .. "/notify.log"):find("STOPPING=1"), "STOPPING=1 for the group")
  listener:kill("KILL")
  nc:close()
end)

T.test("embedded server: 4 workers starting at once share one nats-server", function()
  local dir = T.tmpdir()
  local sd = dir .. "/state"
  T.write_file(dir .. "/app.lua", [[
    local jet = require "jetlua"
    local dir = ...
    local nc = assert(jet.connect())
    local js = nc:jetstream()
    assert(js:stream{ name = "EMB", subjects = { "emb.>" }, storage = "file" })
    assert(js:consumer("EMB", { durable = "E" }))
    local f = assert(io.open(dir .. "/handled", "a"))
    assert(js:consume("EMB", "E", function(msg) f:write(msg.data, "\n"); f:flush() end))
    print(("ready %d %d %d"):format(jet.worker().index, jet.worker().count, jet.process.pid()))
  ]])
  local master = T.jetlua({ "run", "--workers", "4", "--state-dir", sd, dir .. "/app.lua", dir },
    { stdout = dir .. "/out", stderr = dir .. "/err" })
  local function err() return T.read_file(dir .. "/err") or "" end
  T.wait_until(function() return #ready_lines(dir .. "/out") == 4 end, 60, "4 workers ready: " .. err())
  T.eq(count(err(), "embedded nats-server started"), 1, err())
  T.eq(count(err(), "started by another jetlua"), 3, err())
  T.eq(T.run_command({ proc.getenv("JETLUA_BIN") or "jetlua", "server", "url", "--state-dir", sd },
    { stdout = dir .. "/url" }), 0)
  local nc = assert(jet.connect{ servers = (T.read_file(dir .. "/url"):gsub("%s+$", "")) })
  local js = nc:jetstream()
  for i = 1, 200 do js:publish_async("emb.x", tostring(i)) end
  T.eq(js:publish_async_complete(20), 0)
  T.wait_until(function() return count(T.read_file(dir .. "/handled") or "", "\n") >= 200 end, 30, "all handled")
  local seen = {}
  for l in T.read_file(dir .. "/handled"):gmatch("[^\n]+") do
    T.eq(seen[l], nil, "handled twice: " .. l)
    seen[l] = true
  end
  nc:close()
  master:kill("TERM")
  T.eq(master:wait(60), 0, err())
  -- the last worker to leave stopped the server
  T.wait_until(function()
    return T.run_command({ proc.getenv("JETLUA_BIN") or "jetlua", "server", "status", "--state-dir", sd },
      { stdout = dir .. "/status", stderr = dir .. "/status" }) == 1
  end, 30, "the embedded server stops with its last user")
end)

T.test("a worker that fails at its first start stops the group; finished workers are not restarted", function()
  local dir = T.tmpdir()
  T.write_file(dir .. "/bad.lua", "local jet = require 'jetlua'\nerror('boom at start')\n")
  local p = T.jetlua({ "run", "--workers", "2", "--server", srv.url, dir .. "/bad.lua" },
    { stdout = dir .. "/out", stderr = dir .. "/err" })
  T.eq(p:wait(60), 1, T.read_file(dir .. "/err"))
  local e = T.read_file(dir .. "/err")
  T.ok(e:find("on its first start, before it was ready: stopping the others", 1, true), e)
  T.eq(count(e, "restarted"), 0, e)

  -- a script that ends: each worker runs it once, exit 0; auto = one per CPU
  T.write_file(dir .. "/once.lua", [[
    local jet = require "jetlua"
    print(("ran %d of %d"):format(jet.worker().index, jet.worker().count))
  ]])
  T.eq(T.run_command({ "nproc" }, { stdout = dir .. "/nproc" }), 0)
  local ncpu = tonumber(T.read_file(dir .. "/nproc"):match("%d+"))
  p = T.jetlua({ "run", "--workers", "auto", dir .. "/once.lua" }, { stdout = dir .. "/out2", stderr = dir .. "/err2" })
  T.eq(p:wait(60), 0, T.read_file(dir .. "/err2"))
  local out = T.read_file(dir .. "/out2")
  for i = 0, ncpu - 1 do T.ok(out:find(("ran %d of %d"):format(i, ncpu), 1, true), out) end
  T.eq(count(out, "ran "), ncpu, out)
  T.eq(count(T.read_file(dir .. "/err2"), "it is not restarted"), ncpu)
  -- auto counts the CPUs this process may run on (a cpuset, taskset), as nproc does
  p = proc.spawn({ "taskset", "-c", "0", proc.getenv("JETLUA_BIN") or "jetlua", "run", "--workers", "auto",
    dir .. "/once.lua" }, { stdout = dir .. "/out4", stderr = dir .. "/err4" })
  T.eq(p:wait(60), 0, T.read_file(dir .. "/err4"))
  T.eq(T.read_file(dir .. "/out4"), "ran 0 of 1\n")

  -- without --workers: index 0 of 1
  p = T.jetlua({ "run", dir .. "/once.lua" }, { stdout = dir .. "/out3", stderr = dir .. "/err3" })
  T.eq(p:wait(60), 0)
  T.eq(T.read_file(dir .. "/out3"), "ran 0 of 1\n")

  -- bad values: status 2, nothing started
  for _, v in ipairs{ "0", "-1", "x", "2x", "1000", "" } do
    p = T.jetlua({ "run", "--workers", v, dir .. "/once.lua" }, { stdout = dir .. "/o", stderr = dir .. "/e" })
    T.eq(p:wait(30), 2, "--workers " .. v)
    T.ok(T.read_file(dir .. "/e"):find(
      "--workers: '" .. v .. "' is not a number of workers from 1 to 256, or auto", 1, true),
      T.read_file(dir .. "/e"))
  end
  p = T.jetlua({ "run", "--worker-index", "0", dir .. "/once.lua" }, { stdout = dir .. "/o", stderr = dir .. "/e" })
  T.eq(p:wait(30), 2)
end)

T.test("shutdown is bounded: a stopped worker is killed; kill -9 of the master takes the workers along", function()
  local dir = T.tmpdir()
  T.write_file(dir .. "/app.lua", [[
    local jet = require "jetlua"
    local nc = assert(jet.connect())
    nc:subscribe("x", function() end)
    print(("ready %d %d %d"):format(jet.worker().index, jet.worker().count, jet.process.pid()))
  ]])
  local port = proc.free_port()
  local base = "http://127.0.0.1:" .. port
  local master = T.jetlua({ "run", "--workers", "2", "--server", srv.url, "--shutdown-timeout", "1",
    "--metrics", "127.0.0.1:" .. port, dir .. "/app.lua" }, { stdout = dir .. "/out", stderr = dir .. "/err" })
  T.wait_until(function() return #ready_lines(dir .. "/out") == 2 end, 30, "ready")
  local ws = ready_lines(dir .. "/out")
  T.wait_until(function() return curl(base .. "/readyz") == 200 end, 30, "/readyz: both ready")
  T.eq((curl(base .. "/livez")), 200)
  -- a worker that cannot act (stopped): the master's /livez and /readyz say so, naming it;
  -- and on SIGTERM the master kills it after the bound
  T.eq(T.run_command({ "kill", "-STOP", tostring(ws[1].pid) }), 0)
  local probes = {}
  for _, path in ipairs{ "/livez", "/readyz" } do   -- at once: each waits for the stopped worker
    local f = T.tmpdir() .. "/probe"
    probes[path] = { file = f, code = f .. ".code", p = assert(proc.spawn({ "curl", "-s", "--max-time", "30", "-o", f,
      "-w", "%{http_code}", base .. path }, { stdout = f .. ".code" })) }
  end
  for path, pr in pairs(probes) do
    pr.p:wait(40)
    T.eq(tonumber(T.read_file(pr.code)), 503, path)
    T.ok(T.read_file(pr.file):find("worker " .. ws[1].index, 1, true), path .. ": " .. T.read_file(pr.file))
  end
  master:kill("TERM")
  T.eq(master:wait(60), 1, T.read_file(dir .. "/err"))
  T.ok(T.read_file(dir .. "/err"):find(
    ("worker %d (pid %d) did not stop in time: killing it"):format(ws[1].index, ws[1].pid), 1, true),
    T.read_file(dir .. "/err"))
  for _, w in ipairs(ws) do T.wait_until(function() return gone(w.pid) end, 10, "pid " .. w.pid .. " gone") end

  -- the master SIGKILLed: its workers get SIGTERM from the kernel (parent-death signal)
  master = T.jetlua({ "run", "--workers", "2", "--server", srv.url, dir .. "/app.lua" },
    { stdout = dir .. "/out2", stderr = dir .. "/err2" })
  T.wait_until(function() return #ready_lines(dir .. "/out2") == 2 end, 30, "ready")
  master:kill("KILL")
  master:wait(10)
  for _, w in ipairs(ready_lines(dir .. "/out2")) do
    T.wait_until(function() return gone(w.pid) end, 30, "worker pid " .. w.pid .. " exits with the master")
  end
  T.eq(next(T.procs_with("--worker-index", dir .. "/app.lua")), nil, "no worker is left")
  T.ok(T.read_file(dir .. "/err2"):find("received SIGTERM: shutting down gracefully"), T.read_file(dir .. "/err2"))
end)

T.test("secrets stay off the workers' command lines", function()
  local s = T.server{ user = "u", password = "s3cret-pw" }
  local dir = T.tmpdir()
  T.write_file(dir .. "/app.lua", [[
    local jet = require "jetlua"
    local nc = assert(jet.connect())
    nc:subscribe("x", function() end)
    print(("ready %d %d %d %s"):format(jet.worker().index, jet.worker().count, jet.process.pid(),
      tostring(os.getenv("JETLUA_MASTER_PID"))))
  ]])
  for _, args in ipairs{
    { "--server", s.url, "--user", "u", "--password", "s3cret-pw" },
    { "--server", "nats://u:s3cret-pw@127.0.0.1:" .. s.port },
    { "-s", "nats://u:s3cret-pw@127.0.0.1:" .. s.port },
  } do
    local argv = { "run", "--workers", "2" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    argv[#argv + 1] = dir .. "/app.lua"
    local out = dir .. "/out" .. #args .. args[1]
    local master = T.jetlua(argv, { stdout = out, stderr = dir .. "/err" })
    T.wait_until(function() return #ready_lines(out) == 2 end, 30, "connected: " .. (T.read_file(dir .. "/err") or ""))
    T.ok(T.read_file(out):find("ready %d+ 2 %d+ nil"), "the master's variables are hidden from the script")
    for _, w in ipairs(ready_lines(out)) do
      local cmd = T.read_file("/proc/" .. w.pid .. "/cmdline"):gsub("%z", " ")
      T.ok(not cmd:find("s3cret", 1, true), cmd)
      T.ok(cmd:find("--worker-index " .. w.index, 1, true), cmd)
    end
    T.ok(not T.read_file("/proc/" .. master.pid .. "/cmdline"):find("s3cret", 1, true))
    master:kill("TERM")
    T.eq(master:wait(30), 0, T.read_file(dir .. "/err"))
  end
end)

T.run()
