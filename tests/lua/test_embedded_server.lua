-- The embedded nats-server of a state dir: it requires the state dir's token (files 0600 in a
-- 0700 dir, the token never on a command line), `jetlua server url|status|stop`, the tools use
-- it with no flags, and it is shared: it outlives the jetlua that started it (graceful exit or
-- SIGKILL) while another one uses it, and stops, without orphans, when the last one is gone.
local jet = require "jetlua"
local T = require "jetlua.testing"


local procs_with = T.procs_with

local function count(t) local n = 0 for _ in pairs(t) do n = n + 1 end return n end

local function mode(path)
  local p = io.popen("stat -c %a " .. path .. " 2>&1")
  local m = p:read("*l")
  p:close()
  return m
end

-- a jetlua command (not a script): returns status, stdout, stderr
local function cli(args, env)
  local dir = T.tmpdir()
  local out, err = dir .. "/out", dir .. "/err"
  local p = T.jetlua(args, { stdout = out, stderr = err, env = env or { NATS_URL = false } })
  local st = p:wait(60)
  return st, T.read_file(out) or "", T.read_file(err) or ""
end

-- A jetlua using the embedded server of `state`: publishes to and consumes from a file
-- stream on request ("ctl.<id>" -> "ok <n>"), until TERM. Returns proc, its out/err files.
local worker_src = [[
  local jet = require "jetlua"
  local id = arg[1]
  local nc = assert(jet.connect())
  local js = nc:jetstream()
  assert(js:stream{ name = "SHARED", subjects = { "shared.>" }, storage = "file" })
  assert(js:consumer("SHARED", { durable = "W" .. id, filter_subject = "shared." .. id }))
  local rounds = 0
  nc:subscribe("ctl." .. id, function(m)
    rounds = rounds + 1
    for i = 1, 5 do assert(js:publish("shared." .. id, id .. " " .. rounds .. " " .. i)) end
    local got = 0
    for _ = 1, 20 do
      local batch = js:fetch("SHARED", "W" .. id, 5 - got, { expires = 1 }) or {}
      for _, msg in ipairs(batch) do
        if msg.data:find("^" .. id .. " " .. rounds .. " ") then got = got + 1 end
        msg:ack()
      end
      if got >= 5 then break end
    end
    m:respond("ok " .. got)
  end)
  nc:flush()                     -- the subscription is known to the server
  print("ready " .. nc:connected_url())
]]

local function worker(state, id, dir)
  local script = dir .. "/worker.lua"
  T.write_file(script, worker_src)
  local out, err = dir .. "/" .. id .. ".out", dir .. "/" .. id .. ".err"
  local p = T.jetlua({ "run", "--state-dir", state, script, id },
    { stdout = out, stderr = err, env = { NATS_URL = false } })
  T.wait_until(function() return (T.read_file(out) or ""):find("ready") or not p:running() end, 30, id .. " ready")
  T.ok(p:running(), id .. " died: " .. (T.read_file(err) or ""))
  return p, out, err
end

-- connect the way another program of the owner would: NATS_URL=$(jetlua server url)
local function owner_conn(state)
  local st, url, err = cli{ "server", "url", "--state-dir", state }
  T.eq(st, 0, err)
  url = url:gsub("%s+$", "")
  T.ok(url:find("^nats://%x+@127%.0%.0%.1:%d+$"), "url: " .. url)
  return assert(jet.connect{ servers = url, reconnect = { max = 0 } }), url
end

local function round(nc, id)
  local r, code, detail = nc:request("ctl." .. id, "go", { timeout = 20 })
  T.ok(r, "worker " .. id .. ": " .. tostring(code) .. " " .. tostring(detail))
  T.eq(r.data, "ok 5")
end

T.test("the embedded server requires the state dir's token; the files are private", function()
  local dir = T.tmpdir()
  local state = dir .. "/state"
  local a, aout, aerr = worker(state, "a", dir)
  local port = T.read_file(state .. "/server.url"):match(":(%d+)")
  T.ok(port, "no port in server.url")
  local plain = "nats://127.0.0.1:" .. port
  -- no credentials, a wrong token, a user: Authorization Violation, not retried
  for _, opts in ipairs{ { servers = plain }, { servers = plain, token = string.rep("0", 48) },
                         { servers = plain, user = "jetlua", password = "x" } } do
    local nc, code, detail = jet.connect(opts)
    T.eq(nc, nil)
    T.eq(code, "auth_failed", detail)
    T.ok(detail:find("Authorization Violation", 1, true), detail)
  end
  -- the owner's other programs: with `jetlua server url`
  local nc, url = owner_conn(state)
  round(nc, "a")
  local token = url:match("//(%x+)@")
  T.eq(#token, 48)
  T.eq(T.read_file(state .. "/token"), token .. "\n")
  T.eq(mode(state), "700")
  for _, f in ipairs{ "token", "server.conf", "server.url", "users.lock", "server.lock", "nats-server.log" } do
    T.eq(mode(state .. "/" .. f), "600", f)
  end
  T.ok(T.read_file(state .. "/server.conf"):find(token, 1, true), "the config passes the token")
  -- never on a command line: the server's, the guard's, jetlua's own
  local server = procs_with("nats-server", state)
  T.eq(count(server), 1, "the embedded server is not running (or twice)")
  for _, cmd in pairs(server) do
    T.ok(cmd:find("-c " .. state .. "/server.conf", 1, true), cmd)
    T.ok(not cmd:find(token, 1, true), "token on the server's command line")
  end
  local guard = procs_with("server guard", state)
  T.eq(count(guard), 1, "no guard")
  for _, cmd in pairs(guard) do T.ok(not cmd:find(token, 1, true), "token on the guard's command line") end
  T.eq(count(procs_with(token)), 0, "a command line holds the token")
  -- nor in jetlua's output
  nc:close()
  a:kill("TERM")
  T.eq(a:wait(30), 0, T.read_file(aerr))
  local out = (T.read_file(aout) or "") .. (T.read_file(aerr) or "")
  T.ok(out:find("embedded nats-server started at nats://127.0.0.1:" .. port, 1, true), out)
  T.ok(not out:find(token, 1, true), "the token in jetlua's output")
  -- a state dir made by someone else with loose permissions is made private
  local loose = dir .. "/loose"
  os.execute("mkdir -m 755 " .. loose)
  T.write_file(dir .. "/once.lua", "local jet = require 'jetlua'; assert(jet.connect()):close()")
  local st, _, err = cli{ "run", "--state-dir", loose, dir .. "/once.lua" }
  T.eq(st, 0, err)
  T.eq(mode(loose), "700", err)
  -- someone's other directory, open to others: an error, its mode unchanged
  local other = dir .. "/other"
  os.execute("mkdir -m 755 " .. other .. " && touch " .. other .. "/notes.txt")
  st, _, err = cli{ "run", "--state-dir", other, dir .. "/once.lua" }
  T.eq(st, 1, err)
  T.ok(err:find("is open to other users (mode 755) and does not look like a jetlua state dir", 1, true), err)
  T.eq(mode(other), "755")
end)

T.test("credentials or TLS options without a server are an error, not ignored", function()
  local dir = T.tmpdir()
  T.write_file(dir .. "/app.lua", "print('ran')")
  for _, args in ipairs{ { "--user", "u", "--password", "p" }, { "--token", "t" }, { "--creds", "/etc/hostname" },
                         { "--password-file", "/etc/hostname", "--user", "u" }, { "--tls-ca", "/etc/hostname" } } do
    local argv = { "run", "--state-dir", dir .. "/state" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    argv[#argv + 1] = dir .. "/app.lua"
    local st, out, err = cli(argv)
    T.eq(st, 2, args[1] .. ": " .. err)
    T.ok(err:find("appl[iy]e?s? to %-%-server or NATS_URL only"), err)
    T.eq(out, "")
  end
  -- from the environment: a warning, and the embedded server is used
  local st, out, err = cli({ "run", "--state-dir", dir .. "/state", dir .. "/app.lua" },
    { NATS_URL = false, NATS_TOKEN = "envtoken123" })
  T.eq(st, 0, err); T.eq(out, "ran\n")
  T.ok(err:find("NATS_TOKEN is set but no server is given", 1, true), err)
  T.ok(not err:find("envtoken123", 1, true), err)
  -- in a script: jet.connect{user=...} without servers raises
  T.write_file(dir .. "/app2.lua", [[
    local jet = require "jetlua"
    print(pcall(jet.connect, { user = "u", password = "p" }))]])
  st, out, err = cli({ "run", "--state-dir", dir .. "/state", dir .. "/app2.lua" })
  T.eq(st, 0, err)
  T.ok(out:find("jet.connect: bad argument 'user': applies to a server given by servers=", 1, true), out)
end)

T.test("jetlua server status / url / stop, and the tools with no flags", function()
  local dir = T.tmpdir()
  local state = dir .. "/state"
  local st, out, err = cli{ "server", "status", "--state-dir", state }
  T.eq(st, 1, err); T.ok(out:find("not running", 1, true), out)
  st, out, err = cli{ "server", "url", "--state-dir", state }
  T.eq(st, 1); T.eq(out, ""); T.ok(err:find("no embedded nats-server runs", 1, true), err)
  local a = worker(state, "a", dir)
  st, out, err = cli{ "server", "status", "--state-dir", state }
  T.eq(st, 0, err)
  T.ok(out:find("running at nats://127%.0%.0%.1:%d+"), out)
  T.ok(out:find("used by 1 jetlua process:", 1, true), out)
  T.ok(out:find("pid " .. a.pid .. " ", 1, true) and out:find("worker.lua", 1, true), out)
  T.ok(not out:find(T.read_file(state .. "/token"):sub(1, 48), 1, true), "status prints the token")
  -- the tools: the same server, no flags (JETLUA_STATE_DIR or --state-dir)
  st, out, err = cli({ "stream", "ls" }, { NATS_URL = false, JETLUA_STATE_DIR = state })
  T.eq(st, 0, err); T.ok(out:find("SHARED", 1, true), out)
  st, out, err = cli{ "pub", "shared.tool", "hi", "--state-dir", state }
  T.eq(st, 0, err); T.ok(out:find("stream SHARED", 1, true), out)
  -- stop: the server goes, the worker is left reconnecting until it is told to exit
  st, out, err = cli{ "server", "stop", "--state-dir", state }
  T.eq(st, 0, err); T.ok(out:find("stopped the embedded nats-server", 1, true), out)
  T.wait_until(function() return count(procs_with("nats-server", state)) == 0 end, 10, "server gone")
  st, out = cli{ "server", "status", "--state-dir", state }
  T.eq(st, 1); T.ok(out:find("not running", 1, true), out)
  st, out = cli{ "server", "stop", "--state-dir", state }
  T.eq(st, 0); T.ok(out:find("no embedded nats-server runs", 1, true), out)
  a:kill("TERM")
  T.ok(a:wait(30), "the worker did not exit")
  st, out, err = cli{ "server", "frob" }
  T.eq(st, 2); T.eq(out, ""); T.ok(err:find("unknown command 'frob'", 1, true), err)
  st, out = cli{ "server", "--help" }
  T.eq(st, 0); T.ok(out:find("jetlua server url", 1, true), out)
end)

T.test("a shared server outlives the jetlua that started it (exit, SIGKILL) and stops after the last", function()
  for _, how in ipairs{ "TERM", "KILL" } do
    local dir = T.tmpdir()
    local state = dir .. "/state"
    local a = worker(state, "a", dir)                      -- starts the server
    local b, _, berr = worker(state, "b", dir)             -- shares it
    T.ok(T.read_file(berr):find("started by another jetlua", 1, true), T.read_file(berr))
    local server = procs_with("nats-server", state)
    T.eq(count(server), 1)
    local nc = owner_conn(state)
    round(nc, "a"); round(nc, "b")
    a:kill(how)
    a:wait(30)
    T.ok(not a:running())
    -- b keeps working, on the same server process
    round(nc, "b"); round(nc, "b")
    T.eq(procs_with("nats-server", state), server, how .. ": the server was replaced or is gone")
    -- a third one joins and leaves; b still works
    local c = worker(state, "c", dir)
    round(nc, "c")
    c:kill("KILL"); c:wait(30)
    round(nc, "b")
    nc:close()
    -- the last one exits: the server and its guard stop, nothing is left behind
    b:kill("TERM")
    T.eq(b:wait(30), 0, T.read_file(berr))
    -- the last user waited for the server to stop (a service manager kills what is left)
    T.eq(count(procs_with("nats-server", state)), 0, how .. ": the server outlived its last user")
    T.wait_until(function() return count(procs_with("server guard", state)) == 0 end, 15, how .. ": guard gone")
    T.ok((T.read_file(state .. "/nats-server.log") or ""):find("no jetlua uses the server any more", 1, true))
    T.eq(T.read_file(state .. "/server.url"), nil)
    T.ok(not (T.read_file(berr) or ""):find("disconnected", 1, true), T.read_file(berr))
  end
end)

T.test("every jetlua of the state dir SIGKILLed: no orphan server", function()
  local dir = T.tmpdir()
  local state = dir .. "/state"
  local a = worker(state, "a", dir)
  local b = worker(state, "b", dir)
  T.eq(count(procs_with("nats-server", state)), 1)
  a:kill("KILL"); b:kill("KILL")
  a:wait(30); b:wait(30)
  T.wait_until(function() return count(procs_with("nats-server", state)) == 0 end, 15, "server stopped")
  T.wait_until(function() return count(procs_with("server guard", state)) == 0 end, 15, "guard gone")
  -- and the next jetlua starts it again, on the same store
  local c = worker(state, "c", dir)
  local nc = owner_conn(state)
  local js = nc:jetstream()
  T.ok(js:stream_info("SHARED"), "the stream of the first server is gone")
  nc:close()
  c:kill("TERM"); c:wait(30)
  T.wait_until(function() return count(procs_with("nats-server", state)) == 0 end, 15, "server stopped")
end)

T.run()
