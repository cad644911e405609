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
  -- written before the ack, which follows when the handler returns
  f:write(("%d %d %d %d\n"):format(w.index, jet.process.pid(), md.stream_seq, md.num_delivered))
  f:flush()
  jet.sleep(0.002)
end, { max_messages = 20 }))
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

  -- one READY=1 for the group, once both workers are
  local notes = T.read_file(dir .. "/notify.log")
  T.eq(count(notes, "READY=1"), 1, notes)

  -- a scrape before the kill: the killed worker's counters as last seen are kept
  local code = curl(base .. "/metrics", dir .. "/m1")
  T.eq(code, 200)
  local fams = prom(dir .. "/m1")
  T.eq(sample(fams, "test_worker_starts", "test_worker_starts_total"), 2, "summed over the workers")

  local function handled()
    local t = {}
    for line in (T.read_file(dir .. "/handled") or ""):gmatch("[^\n]+") do t[#t + 1] = line end
    return t
  end
  T.wait_until(function() return #handled() >= N * 0.3 end, 60, "a third handled")
  local victim = ws[2]
  T.ok(#handled() < N, "the kill happens mid-stream")
  T.eq(T.run_command({ "kill", "-9", tostring(victim.pid) }), 0)
  T.wait_until(function()
    local at = err():find(("workers: worker 1 (pid %d) was killed by signal 9 (SIGKILL) after "):format(victim.pid), 1, true)
    return at and err():find("^[%d.]+s: restarting it in 0.1s\n", err():find("after ", at, true) + 6)
  end, 20, "the crash is logged")
  T.wait_until(function() return err():find("workers: worker 1 restarted (pid ", 1, true) end, 20, "restarted")
  T.wait_until(function() return #ready_lines(dir .. "/out") == 3 end, 30, "the new worker 1 is ready")
  local new1 = ready_lines(dir .. "/out")[3]
  T.eq({ new1.index, new1.count }, { 1, 2 })

  -- every message handled; a message handled twice was handled first by the killed worker
  -- (it wrote its line, the kill came before its ack) and then redelivered
  T.wait_until(function()
    local seen, n = {}, 0
    for _, l in ipairs(handled()) do
      local seq = l:match("^%d+ %d+ (%d+)")
      if not seen[seq] then seen[seq] = true; n = n + 1 end
    end
    return n == N
  end, 90, "every sequence handled")
  T.wait_until(function()
    local ci = js:consumer_info("WORK", "W")
    return ci and ci.num_ack_pending == 0 and ci.num_pending == 0
  end, 30, "everything acked")
  local first, dups = {}, 0
  for _, l in ipairs(handled()) do
    local idx, pid, seq, delivered = l:match("^(%d+) (%d+) (%d+) (%d+)$")
    T.ok(seq, l)
    if first[seq] then
      dups = dups + 1
      T.eq(tonumber(first[seq].pid), victim.pid, "seq " .. seq .. " handled twice, first by " .. first[seq].pid)
      T.ok(tonumber(delivered) > 1, "the second handling of seq " .. seq .. " is a redelivery")
    else
      first[seq] = { pid = pid, delivered = delivered }
    end
  end
  print("handled twice after the kill: " .. dups)
  T.ok(dups <= 20, "at most the killed worker's buffer is handled twice: " .. dups)

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
  local acked = sample(fams, "jetlua_consumer_acked", "jetlua_consumer_acked_total", { consumer = "W", stream = "WORK" })
  T.ok(acked and acked >= N / 2, "acks summed: " .. tostring(acked))
  T.ok(sample(fams, "process_cpu_seconds", "process_cpu_seconds_total") > 0)
  T.ok(sample(fams, "process_resident_memory_bytes", "process_resident_memory_bytes", { worker = "1" }) > 0)
  T.eq((curl(base .. "/readyz")), 200)
  T.eq((curl(base .. "/livez")), 200)

  -- SIGHUP reaches both workers (the new one included); the group reports one reload
  master:kill("HUP")
  T.wait_until(function()
    return err():find("[worker 0] reload #1 ok (SIGHUP)", 1, true) and err():find("[worker 1] reload #1 ok (SIGHUP)", 1, true)
  end, 30, "both workers reload: " .. err())
  T.wait_until(function() return count(T.read_file(dir .. "/notify.log"), "READY=1") == 2 end, 20)
  notes = T.read_file(dir .. "/notify.log")
  T.ok(notes:find("READY=1[^\n]*\nRELOADING=1[^\n]*\nREADY=1|STATUS=2 worker%(s%) running; reloaded\n"), notes)

  -- SIGTERM: every process ends, the master with 0, nothing left behind
  master:kill("TERM")
  T.eq(master:wait(60), 0, err())
  T.ok(err():find("workers: received SIGTERM: stopping 2 worker(s) gracefully", 1, true), err())
  for _, w in ipairs(ready_lines(dir .. "/out")) do
    T.ok(gone(w.pid), "worker pid " .. w.pid .. " is gone")
  end
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

  -- without --workers: index 0 of 1
  p = T.jetlua({ "run", dir .. "/once.lua" }, { stdout = dir .. "/out3", stderr = dir .. "/err3" })
  T.eq(p:wait(60), 0)
  T.eq(T.read_file(dir .. "/out3"), "ran 0 of 1\n")

  -- bad values: status 2, nothing started
  for _, v in ipairs{ "0", "-1", "x", "2x", "1000", "" } do
    p = T.jetlua({ "run", "--workers", v, dir .. "/once.lua" }, { stdout = dir .. "/o", stderr = dir .. "/e" })
    T.eq(p:wait(30), 2, "--workers " .. v)
    T.ok(T.read_file(dir .. "/e"):find("--workers: '" .. v .. "' is not a number of workers from 1 to 256, or auto", 1, true),
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
  local master = T.jetlua({ "run", "--workers", "2", "--server", srv.url, "--shutdown-timeout", "1", dir .. "/app.lua" },
    { stdout = dir .. "/out", stderr = dir .. "/err" })
  T.wait_until(function() return #ready_lines(dir .. "/out") == 2 end, 30, "ready")
  local ws = ready_lines(dir .. "/out")
  -- a worker that cannot act on SIGTERM (stopped): the master kills it after the bound
  T.eq(T.run_command({ "kill", "-STOP", tostring(ws[1].pid) }), 0)
  master:kill("TERM")
  T.eq(master:wait(60), 1, T.read_file(dir .. "/err"))
  T.ok(T.read_file(dir .. "/err"):find(("worker %d (pid %d) did not stop in time: killing it"):format(ws[1].index, ws[1].pid), 1, true),
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
  } do
    local argv = { "run", "--workers", "2" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    argv[#argv + 1] = dir .. "/app.lua"
    local out = dir .. "/out" .. #args
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
