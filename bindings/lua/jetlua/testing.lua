-- jetlua.testing: the helper every integration test uses.
--
--   local T = require "jetlua.testing"
--   T.test("name", function() ... end)
--   T.run()        -- prints "ok N - name" lines, then "P passed, F failed"; exits 1 on failure
--
-- It starts real nats-server processes on free 127.0.0.1 ports with fresh
-- store dirs (T.server, T.cluster), and can stop, kill -9, pause and restart
-- them. Everything it started is killed and removed when T.run ends; what a
-- test paused or froze is resumed when that test ends (T.defer).
local jet = require "jetlua"
local proc = jet.process

local T = {}
local cases = {}
local cleanup = {}     -- functions run at the end, last first
local deferred         -- the running test's T.defer functions (nil between tests)
local shared = {}      -- servers started outside any test: later tests rely on them

local function fmt(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" then return tostring(v) end
  local parts = {}
  for k, x in pairs(v) do parts[#parts + 1] = tostring(k) .. "=" .. fmt(x) end
  table.sort(parts)
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function deep_eq(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do if not deep_eq(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- ---- assertions (each raises with a useful message) ----

function T.eq(actual, expected, msg)
  if not deep_eq(actual, expected) then
    error(("%sexpected %s, got %s"):format(msg and (msg .. ": ") or "", fmt(expected), fmt(actual)), 2)
  end
  return actual
end

function T.ok(v, msg)
  if not v then error(msg or "expected a true value", 2) end
  return v
end

function T.near(a, b, tol, msg)
  if type(a) ~= "number" or math.abs(a - b) > tol then
    error(("%sexpected %s ± %s, got %s"):format(msg and (msg .. ": ") or "", b, tol, tostring(a)), 2)
  end
  return a
end

-- fn must raise, with a message matching the Lua pattern; returns the message
function T.raises(fn, pattern, msg)
  local ok, err = pcall(fn)
  if ok then error((msg and (msg .. ": ") or "") .. "expected an error, none was raised", 2) end
  err = tostring(err)
  if pattern and not err:find(pattern) then
    error(("%serror %q does not match %q"):format(msg and (msg .. ": ") or "", err, pattern), 2)
  end
  return err
end

-- poll fn every 10 ms until it returns a true value; raise after timeout seconds, and never
-- before MIN_WAIT: what a test waits for is expected to happen, and a loaded CI machine (ASan,
-- other jobs) must not turn "took 6 s" into a failure. A test that asserts something does NOT
-- happen watches for it over a fixed time instead.
local MIN_WAIT = 30
function T.wait_until(fn, timeout, msg)
  timeout = math.max(timeout or MIN_WAIT, MIN_WAIT)
  local deadline = jet.monotonic() + timeout
  while true do
    local v = fn()
    if v then return v end
    if jet.monotonic() > deadline then
      error("timed out after " .. timeout .. "s waiting for " .. (msg or "a condition"), 2)
    end
    jet.sleep(0.01)
  end
end

-- T.defer(fn): run fn when the current test ends, passed or failed (last first), so a
-- fault a test injects is undone even when an assertion fails before the test undoes it.
-- Outside a test, fn runs when T.run ends.
function T.defer(fn)
  local list = deferred or cleanup
  list[#list + 1] = fn
end

-- ---- files ----

-- A fresh memory stream `name` on `<name in lower case>.>`, and a durable
-- consumer on it (ccfg: its config; durable "C" unless given; false: none).
function T.fresh_stream(js, name, ccfg)
  js:delete_stream(name)
  assert(js:stream{ name = name, subjects = { name:lower() .. ".>" }, storage = "memory" })
  if ccfg ~= false then
    ccfg = ccfg or {}
    ccfg.durable = ccfg.durable or "C"
    assert(js:consumer(name, ccfg))
  end
end

-- Publish n messages to subject (payloads "00001", "00002", ...) and wait
-- until every one is acked.
function T.publish_n(js, subject, n)
  for i = 1, n do js:publish_async(subject, ("%05d"):format(i)) end
  T.eq(js:publish_async_complete(60), 0, "every publish acked")
end

-- Live processes (not zombies) whose command line holds every needle:
-- pid -> command line (NULs as spaces).
function T.procs_with(...)
  local needles, found = { ... }, {}
  local pd = io.popen("ls /proc")
  for pid in pd:lines() do
    local cmd = pid:match("^%d+$") and T.read_file("/proc/" .. pid .. "/cmdline")
    if cmd then
      cmd = cmd:gsub("%z", " ")
      local state = (T.read_file("/proc/" .. pid .. "/stat") or ""):match("^%d+ %b() (%a)") or "?"
      local all = state ~= "Z" and #cmd > 0
      for _, n in ipairs(needles) do all = all and cmd:find(n, 1, true) ~= nil end
      if all then found[tonumber(pid)] = cmd end
    end
  end
  pd:close()
  return found
end

-- The pids (a list) of the live nats-server processes whose command line holds needle.
function T.servers_with(needle)
  local pids = {}
  for pid in pairs(T.procs_with("nats-server", needle)) do pids[#pids + 1] = pid end
  return pids
end

function T.tmpdir(prefix)
  local d = proc.tmpdir(prefix or "jetlua-test")
  cleanup[#cleanup + 1] = function() proc.rmtree(d) end
  return d
end

function T.write_file(path, content)
  local f = assert(io.open(path, "w"))
  f:write(content)
  f:close()
  return path
end

function T.read_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- ---- child processes ----

local function run(argv, opts)
  local p = assert(proc.spawn(argv, opts))
  local status, sig = p:wait(60)
  return status, sig
end
T.run_command = run

-- spawn the jetlua binary under test (env JETLUA_BIN)
function T.jetlua(args, opts)
  local argv = { proc.getenv("JETLUA_BIN") or "jetlua" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local p = assert(proc.spawn(argv, opts))
  cleanup[#cleanup + 1] = function() if p:running() then p:kill("KILL"); p:wait(5) end end
  return p
end

-- ---- nats-server ----

local Server = {}
Server.__index = Server

function Server:start()
  local argv = { "nats-server", "-a", "127.0.0.1", "-p", tostring(self.port) }
  if self.config then
    argv[#argv + 1] = "-c"; argv[#argv + 1] = self.config
  end
  if self.js then
    argv[#argv + 1] = "-js"; argv[#argv + 1] = "-sd"; argv[#argv + 1] = self.store
  end
  for _, a in ipairs(self.args) do argv[#argv + 1] = a end
  self.proc = assert(proc.spawn(argv, { stdout = self.log, stderr = self.log }))
  if not proc.wait_port("127.0.0.1", self.port, 10) then
    error("nats-server on port " .. self.port .. " did not start; log: " .. (T.read_file(self.log) or "?"))
  end
  return self
end

function Server:stop()
  if self.proc and self.proc:running() then
    self.proc:kill("TERM")
    if not self.proc:wait(10) then self.proc:kill("KILL"); self.proc:wait(5) end
  end
end

function Server:kill()
  if self.proc and self.proc:running() then
    self.proc:kill("KILL")
    self.proc:wait(5)
  end
end

function Server:restart()
  self:stop()
  return self:start()
end

-- SIGSTOP takes effect as each of the server's threads next enters the kernel: a message
-- written right after kill() could still be served (test_js_publish_async's paused-server
-- case got its PubAck about 1 run in 12). Return once every thread is stopped. Resumed by
-- :resume() or, at the latest, when the test ends.
function Server:pause()
  self.proc:kill("STOP")
  T.defer(function() self:resume() end)
  local pid = self.proc.pid
  T.wait_until(function()
    local ls = io.popen("ls /proc/" .. pid .. "/task 2>/dev/null")
    local all = true
    for tid in ls:lines() do
      local state = (T.read_file("/proc/" .. pid .. "/task/" .. tid .. "/stat") or ""):match("^%d+ %b() (%a)")
      if state and state ~= "T" and state ~= "t" then all = false end
    end
    ls:close()
    return all
  end, 10, "the paused server stops")
end
function Server:resume()
  if self.proc and self.proc:running() then self.proc:kill("CONT") end
end

-- opts: js (default true), port, user, password, token,
--       tls = {cert=, key=, ca=, verify=}, args = {...}, store, cluster = {...},
--       server_name, tags = {"ssd", ...} (server_tags, for stream placement)
--       config = "raw nats-server config text" (e.g. users with permissions)
function T.server(opts)
  opts = opts or {}
  local dir = opts.store or T.tmpdir("jetlua-nats")
  local s = setmetatable({
    port = opts.port or proc.free_port(),
    js = opts.js ~= false,
    store = dir,
    log = dir .. "/server.log",
    args = opts.args or {},
  }, Server)
  local conf = {}
  if opts.user then
    conf[#conf + 1] = ("authorization { user: %q, password: %q }"):format(opts.user, opts.password or "")
  elseif opts.token then
    conf[#conf + 1] = ("authorization { token: %q }"):format(opts.token)
  end
  if opts.tls then
    conf[#conf + 1] = ("tls { cert_file: %q, key_file: %q%s%s }"):format(opts.tls.cert, opts.tls.key,
      opts.tls.ca and (", ca_file: " .. ("%q"):format(opts.tls.ca)) or "",
      opts.tls.verify and ", verify: true" or "")
  end
  if opts.cluster then conf[#conf + 1] = opts.cluster end
  if opts.server_name then conf[#conf + 1] = ("server_name: %q"):format(opts.server_name) end
  if opts.tags then
    local q = {}
    for i, t in ipairs(opts.tags) do q[i] = ("%q"):format(t) end
    conf[#conf + 1] = "server_tags: [" .. table.concat(q, ", ") .. "]"
  end
  if opts.config then conf[#conf + 1] = opts.config end
  if #conf > 0 then
    s.config = T.write_file(dir .. "/server.conf", table.concat(conf, "\n") .. "\n")
  end
  s.url = "nats://127.0.0.1:" .. s.port
  s.tls_url = "tls://127.0.0.1:" .. s.port
  cleanup[#cleanup + 1] = function() s:kill() end
  if not deferred then shared[#shared + 1] = s end
  return s:start()
end

-- an n-node JetStream cluster on loopback (default 3), cluster "jetlua-test", servers n1..nN;
-- opts.tags = { [i] = {"tag", ...} }: server_tags of node i
function T.cluster(n, opts)
  opts = opts or {}
  n = n or 3
  local ports, routes = {}, {}
  for i = 1, n do
    ports[i] = { client = proc.free_port(), route = proc.free_port() }
    routes[i] = "nats-route://127.0.0.1:" .. ports[i].route
  end
  local c = { servers = {}, urls = {} }
  for i = 1, n do
    local cl = ("cluster { name: \"jetlua-test\", listen: \"127.0.0.1:%d\", routes: [%s] }")
      :format(ports[i].route, '"' .. table.concat(routes, '", "') .. '"')
    local s = T.server{ port = ports[i].client, cluster = cl, server_name = "n" .. i,
                        tags = opts.tags and opts.tags[i] }
    c.servers[i] = s
    c.urls[i] = s.url
  end
  return c
end

-- ---- a TCP proxy that can freeze, thaw and cut connections ----

local Proxy = {}
Proxy.__index = Proxy

-- nothing is read or forwarded until :thaw() (at the latest when the test ends): the
-- peers' writes stall
function Proxy:freeze()
  self.proc:kill("STOP")
  T.defer(function() self:thaw() end)
end
function Proxy:thaw()
  if self.proc:running() then self.proc:kill("CONT") end
end
-- close every connection through it (it keeps accepting new ones)
function Proxy:cut()    self.proc:kill("USR1") end
function Proxy:stop()
  if self.proc:running() then
    self.proc:kill("CONT")
    self.proc:kill("KILL")
    self.proc:wait(5)
  end
end

local function source_dir()
  local d = proc.getenv("JETLUA_SOURCE_DIR")
  if d then return d end
  -- bindings/lua/jetlua/testing.lua -> the source tree
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  return (src:gsub("/bindings/lua/jetlua/testing%.lua$", ""))
end

-- T.proxy{target = url}: a proxy (tests/tools/tcp_proxy.py) on a free
-- loopback port forwarding to target; connect to proxy.url
function T.proxy(opts)
  local host, port = tostring(opts.target):match("^%a*:?/*([^:/]+):(%d+)")
  if not host then error("T.proxy: target must be a URL with host and port, got " .. tostring(opts.target)) end
  local dir = T.tmpdir("jetlua-proxy")
  local p = setmetatable({ port = proc.free_port() }, Proxy)
  p.url = "nats://127.0.0.1:" .. p.port
  p.proc = assert(proc.spawn({ "/usr/bin/python3", source_dir() .. "/tests/tools/tcp_proxy.py",
    tostring(p.port), host, port }, { stdout = dir .. "/proxy.log", stderr = dir .. "/proxy.log" }))
  cleanup[#cleanup + 1] = function() p:stop() end
  if not proc.wait_port("127.0.0.1", p.port, 10) then
    error("the test proxy did not start: " .. (T.read_file(dir .. "/proxy.log") or "?"))
  end
  return p
end

-- a CA, a server certificate for 127.0.0.1/localhost and a client certificate
function T.certs()
  local d = T.tmpdir("jetlua-certs")
  local function ssl(args)
    local argv = { "openssl" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    local st = run(argv, { stdout = d .. "/openssl.log", stderr = d .. "/openssl.log" })
    if st ~= 0 then error("openssl " .. args[1] .. " failed: " .. (T.read_file(d .. "/openssl.log") or "")) end
  end
  T.write_file(d .. "/san.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
  ssl{ "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=jetlua test CA",
       "-keyout", d .. "/ca.key", "-out", d .. "/ca.pem" }
  for _, who in ipairs{ "server", "client" } do
    ssl{ "req", "-newkey", "rsa:2048", "-nodes",
         "-subj", "/CN=" .. (who == "server" and "localhost" or "jetlua client"),
         "-keyout", d .. "/" .. who .. ".key", "-out", d .. "/" .. who .. ".csr" }
    ssl{ "x509", "-req", "-in", d .. "/" .. who .. ".csr", "-CA", d .. "/ca.pem", "-CAkey", d .. "/ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", d .. "/san.ext", "-out", d .. "/" .. who .. ".pem" }
  end
  return { dir = d, ca = d .. "/ca.pem", server_cert = d .. "/server.pem", server_key = d .. "/server.key",
           client_cert = d .. "/client.pem", client_key = d .. "/client.key" }
end

-- ---- the harness ----

function T.test(name, fn)
  cases[#cases + 1] = { name = name, fn = fn }
end

function T.run()
  local passed, failed = 0, 0
  for i, c in ipairs(cases) do
    local t0 = jet.monotonic()
    deferred = {}
    local ok, err = xpcall(c.fn, function(e) return debug.traceback(tostring(e), 2) end)
    for k = #deferred, 1, -1 do
      local dok, derr = pcall(deferred[k])
      if not dok then print("# " .. c.name .. ": a T.defer function failed: " .. tostring(derr)) end
    end
    deferred = nil
    if not ok then
      -- a test that failed between killing a shared server and restarting it would fail
      -- every later test too: start it again
      for _, s in ipairs(shared) do
        if not (s.proc and s.proc:running()) then pcall(s.start, s) end
      end
    end
    if ok then
      passed = passed + 1
      print(("ok %d - %s (%.2fs)"):format(i, c.name, jet.monotonic() - t0))
    else
      failed = failed + 1
      print(("not ok %d - %s\n  %s"):format(i, c.name, tostring(err):gsub("\n", "\n  ")))
    end
  end
  for i = #cleanup, 1, -1 do pcall(cleanup[i]) end
  print(("%d passed, %d failed"):format(passed, failed))
  jet.exit(failed > 0 and 1 or 0)
end

return T
