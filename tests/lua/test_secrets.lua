-- Credentials: --creds with real operator/account/user JWTs, --nkey, the file and environment
-- forms, and no secret in any output: stdout, stderr, /metrics, nc:connected_url(), the
-- reconnected event, error messages, jetlua's own command line once parsed.
-- The JWTs, creds files and NKey seeds are test-only fixtures (tests/fixtures/auth, made by
-- tests/fixtures/auth/gen.sh).
local jet = require "jetlua"
local T = require "jetlua.testing"

local fixtures = (jet.process.getenv("JETLUA_SOURCE_DIR") or ".") .. "/tests/fixtures/auth"
local SECRET = "pw-Zq8rT3xY"          -- the password under test; must never be printed
local TOKEN = "tok-Kd93LmW2"

local function roundtrip(nc)
  local got
  local sub = nc:subscribe("sec.rt", function(m) got = m.data end)
  nc:flush()
  nc:publish("sec.rt", "ping")
  T.wait_until(function() return got end, 10, "roundtrip")
  sub:unsubscribe()
  T.eq(got, "ping")
end

-- run a script in a child jetlua; returns status, stdout, stderr
local function child(src, args, env, opts)
  local dir = T.tmpdir()
  T.write_file(dir .. "/app.lua", src)
  local argv = { "run" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = dir .. "/app.lua"
  env = env or {}
  for _, k in ipairs{ "NATS_URL", "NATS_USER", "NATS_PASSWORD", "NATS_TOKEN", "NATS_CREDS", "NATS_NKEY" } do
    if env[k] == nil then env[k] = false end
  end
  local p = T.jetlua(argv, { stdout = dir .. "/out", stderr = dir .. "/err", env = env, cwd = dir })
  if opts and opts.running then return p, dir end
  local st = p:wait(60)
  return st, T.read_file(dir .. "/out") or "", T.read_file(dir .. "/err") or ""
end

local connect_src = [[
  local jet = require "jetlua"
  local nc, code, detail = jet.connect()
  if not nc then print("failed", code, detail) return end
  local got
  nc:subscribe("sec.x", function(m) got = m.data end)
  nc:flush()
  nc:publish("sec.x", "hi")
  while not got do jet.sleep(0.01) end
  print("ok " .. got .. " " .. nc:connected_url())
  nc:close()
]]

T.test("--creds: operator, account and user JWTs (operator mode, MEMORY resolver)", function()
  local srv = T.server{ js = false, config = T.read_file(fixtures .. "/operator.conf") }
  local nc, code, detail = jet.connect{ servers = srv.url, creds = fixtures .. "/user.creds" }
  T.ok(nc, tostring(code) .. " " .. tostring(detail))
  roundtrip(nc)
  nc:close()
  -- a user signed by an account the operator never issued; no credentials at all
  nc, code, detail = jet.connect{ servers = srv.url, creds = fixtures .. "/stranger.creds" }
  T.eq(nc, nil); T.eq(code, "auth_failed", detail)
  nc, code = jet.connect{ servers = srv.url }
  T.eq(nc, nil); T.eq(code, "auth_failed")
  -- the command line and the environment
  local st, out, err = child(connect_src, { "--server", srv.url, "--creds", fixtures .. "/user.creds" })
  T.eq(st, 0, err); T.ok(out:find("^ok hi"), out .. err)
  st, out, err = child(connect_src, { "--server", srv.url }, { NATS_CREDS = fixtures .. "/user.creds" })
  T.eq(st, 0, err); T.ok(out:find("^ok hi"), out .. err)
  st, out, err = child(connect_src, { "--server", srv.url, "--creds", "/nonexistent/u.creds" })
  T.eq(st, 2); T.eq(out, "")
  T.ok(err:find("--creds: cannot read /nonexistent/u.creds: No such file or directory", 1, true), err)
  T.raises(function() jet.connect{ servers = srv.url, creds = "/nonexistent/u.creds" } end,
    "jet.connect: bad argument 'creds': cannot read /nonexistent/u.creds: No such file or directory")
end)

T.test("--nkey: an NKey user seed file", function()
  local srv = T.server{ js = false, config = T.read_file(fixtures .. "/nkey.conf") }
  local seed = fixtures .. "/nkey_user.seed"
  local nc, code, detail = jet.connect{ servers = srv.url, nkey = seed }
  T.ok(nc, tostring(code) .. " " .. tostring(detail))
  roundtrip(nc)
  nc:close()
  nc, code = jet.connect{ servers = srv.url }
  T.eq(nc, nil); T.eq(code, "auth_failed")
  T.raises(function() jet.connect{ servers = srv.url, nkey = fixtures .. "/nkey_user.pub" } end,
    "bad argument 'nkey': .*nkey_user.pub: the file does not hold an NKey user seed")
  T.raises(function() jet.connect{ servers = srv.url, nkey = fixtures .. "/user.creds" } end,
    "bad argument 'nkey': .*user.creds: the file does not hold an NKey user seed")
  T.raises(function() jet.connect{ servers = srv.url, nkey = seed, token = "x" } end, "give one kind of credentials")
  local st, out, err = child(connect_src, { "--server", srv.url, "--nkey", seed })
  T.eq(st, 0, err); T.ok(out:find("^ok hi"), out .. err)
  st, out, err = child(connect_src, { "--server", srv.url }, { NATS_NKEY = seed })
  T.eq(st, 0, err); T.ok(out:find("^ok hi"), out .. err)
  st, out, err = child(connect_src, { "--server", srv.url, "--nkey", fixtures .. "/nkey_user.pub" })
  T.eq(st, 2)
  T.ok(err:find("--nkey: " .. fixtures .. "/nkey_user.pub: the file does not hold an NKey user seed", 1, true), err)
  local seedtext = T.read_file(seed):gsub("%s+$", "")
  T.ok(not (out .. err):find(seedtext, 1, true), "the seed in the output")
end)

T.test("NKey and creds handshakes never fail by chance (cnats 3.4.1 drops a signature starting with 0)", function()
  -- cnats 3.4.1 base64-encodes the nonce signature with a function that takes an input whose
  -- first byte is 0 for an empty one: 1 handshake in 256 sent no signature and was refused.
  -- jet.connect signs a new nonce then. 1000 handshakes all pass only with that (without it,
  -- the chance that they all pass is (255/256)^1000, about 2 %).
  local nk = T.server{ js = false, config = T.read_file(fixtures .. "/nkey.conf") }
  local op = T.server{ js = false, config = T.read_file(fixtures .. "/operator.conf") }
  local failed = {}
  for i = 1, 1000 do
    local opts = i % 2 == 0 and { servers = nk.url, nkey = fixtures .. "/nkey_user.seed" }
                             or { servers = op.url, creds = fixtures .. "/user.creds" }
    opts.reconnect = { max = 0 }
    local nc, code, detail = jet.connect(opts)
    if nc then nc:close() else failed[#failed + 1] = i .. ": " .. tostring(code) .. " " .. tostring(detail) end
  end
  T.eq(failed, {})
  -- the server saw some refused ones (each then retried): the retry is what made them pass
  local refused = select(2, (T.read_file(nk.log) .. T.read_file(op.log)):gsub("authentication error", ""))
  print(("# %d of 1000 handshakes were refused once and signed a new nonce"):format(refused))
end)

-- A child that connects through whatever route the command line/environment gives, then:
-- prints connected_url(), reports reconnects, makes an auth failure and a connect to a dead
-- port whose URLs hold the secret (from its environment), and serves /metrics until TERM.
local leak_src = [[
  local jet = require "jetlua"
  local nc = assert(jet.connect{ reconnect = { wait = 0.1 } })   -- the server of the command line
  print("connected_url", nc:connected_url())
  nc:on("reconnected", function(_, url) print("reconnected", url) end)
  local getenv = jet.process.getenv
  local bad, code, detail = jet.connect{ servers = getenv("WRONG_URL"), reconnect = { max = 0 } }
  print("wrong", code, detail)
  bad, code, detail = jet.connect{ servers = getenv("DEAD_URL"), timeout = 0.3 }
  print("dead", code, detail)
  local ok, err = pcall(jet.connect, { servers = getenv("DEAD_URL"), tls = { ca = "/nonexistent/ca.pem" } })
  print("raise", err)
  jet.metrics.counter("app_total", { conn = nc:connected_url() }):inc()
  nc:subscribe("keepalive", function() end)
  nc:flush()
  print("ready")
]]

local function check_route(name, srv, args, env, secret, opts)
  opts = opts or {}
  local mport = jet.process.free_port()
  local dead = jet.process.free_port()
  local argv = { "--metrics", "127.0.0.1:" .. mport }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  env = env or {}
  env.WRONG_URL = "nats://mallory:" .. secret .. "@127.0.0.1:" .. srv.port
  env.DEAD_URL = "nats://alice:" .. secret .. "@127.0.0.1:" .. dead
  local p, dir = child(leak_src, argv, env, { running = true })
  local function out() return T.read_file(dir .. "/out") or "" end
  T.wait_until(function() return out():find("ready") or not p:running() end, 30, name .. ": ready")
  T.ok(p:running(), name .. ": " .. out() .. (T.read_file(dir .. "/err") or ""))
  local o = out()
  T.ok(o:find("connected_url\tnats://", 1, true), name .. ": " .. o)
  T.ok(o:find("wrong\tauth_failed\t", 1, true), name .. ": " .. o)
  T.ok(o:find("wrong\tauth_failed\t[^\n]*mallory:%*%*%*@"), name .. ": the URL is not shown redacted: " .. o)
  T.ok(o:find("dead\tconnect_failed\t[^\n]*alice:%*%*%*@"), name .. ": " .. o)
  -- its own command line, after parsing
  local f = io.open("/proc/" .. p.pid .. "/cmdline")
  local cmdline = f and f:read("*a"):gsub("%z", " ") or ""
  if f then f:close() end
  -- /metrics
  local st = T.run_command({ "curl", "-sS", "-o", dir .. "/metrics", "http://127.0.0.1:" .. mport .. "/metrics" })
  T.eq(st, 0, name .. ": curl")
  local metrics = T.read_file(dir .. "/metrics") or ""
  T.ok(metrics:find("app_total", 1, true), metrics)
  if opts.restart then
    srv:restart()
    T.wait_until(function() return out():find("reconnected") end, 30, name .. ": reconnected")
  end
  p:kill("TERM")
  T.eq(p:wait(30), 0, name .. ": " .. (T.read_file(dir .. "/err") or ""))
  local all = out() .. "\n" .. (T.read_file(dir .. "/err") or "")
  for what, text in pairs{ output = all, metrics = metrics, cmdline = cmdline } do
    T.ok(not text:find(secret, 1, true), name .. ": the secret is in the " .. what .. ":\n" .. text)
  end
  return all
end

T.test("no secret in any output, whichever route it came by", function()
  local srv = T.server{ js = false, user = "alice", password = SECRET }
  local dir = T.tmpdir()
  local pwfile = T.write_file(dir .. "/pw", SECRET .. "\n")
  local url = "nats://alice:" .. SECRET .. "@127.0.0.1:" .. srv.port
  local all = check_route("--server URL", srv, { "--server", url }, nil, SECRET, { restart = true })
  T.ok(all:find("reconnected\tnats://alice:***@127.0.0.1:", 1, true), all)
  T.ok(all:find("connected to nats://alice:***@127.0.0.1:", 1, true), all)
  check_route("NATS_URL", srv, {}, { NATS_URL = url }, SECRET)
  check_route("--password-file", srv, { "--server", srv.url, "--user", "alice", "--password-file", pwfile },
    nil, SECRET)
  check_route("NATS_PASSWORD", srv, { "--server", srv.url }, { NATS_USER = "alice", NATS_PASSWORD = SECRET }, SECRET)
  -- the unsafe form still works, and is blanked from the command line once parsed
  check_route("--password", srv, { "--server", srv.url, "--user", "alice", "--password", SECRET }, nil, SECRET)
  check_route("--password=", srv, { "--server", srv.url, "--user=alice", "--password=" .. SECRET }, nil, SECRET)

  local tsrv = T.server{ js = false, token = TOKEN }
  local tokfile = T.write_file(dir .. "/tok", TOKEN)
  check_route("token URL", tsrv, { "--server", "nats://" .. TOKEN .. "@127.0.0.1:" .. tsrv.port }, nil, TOKEN,
    { restart = true })
  check_route("--token-file", tsrv, { "--server", tsrv.url, "--token-file", tokfile }, nil, TOKEN)
  check_route("NATS_TOKEN", tsrv, { "--server", tsrv.url }, { NATS_TOKEN = TOKEN }, TOKEN)
  check_route("--token", tsrv, { "--server", tsrv.url, "--token", TOKEN }, nil, TOKEN)
end)

T.test("file forms in jet.connect, and mistakes", function()
  local srv = T.server{ js = false, user = "alice", password = SECRET }
  local dir = T.tmpdir()
  local pwfile = T.write_file(dir .. "/pw", SECRET .. "\n")
  local nc = assert(jet.connect{ servers = srv.url, user = "alice", password_file = pwfile })
  T.ok(not nc:connected_url():find(SECRET, 1, true))
  nc:close()
  nc = assert(jet.connect{ servers = "nats://alice:" .. SECRET .. "@127.0.0.1:" .. srv.port })
  T.eq(nc:connected_url(), "nats://alice:***@127.0.0.1:" .. srv.port)
  nc:close()
  local tsrv = T.server{ js = false, token = TOKEN }
  nc = assert(jet.connect{ servers = tsrv.url, token_file = T.write_file(dir .. "/tok", TOKEN .. "\n") })
  nc:close()
  nc = assert(jet.connect{ servers = "nats://" .. TOKEN .. "@127.0.0.1:" .. tsrv.port })
  T.eq(nc:connected_url(), "nats://***@127.0.0.1:" .. tsrv.port)
  nc:close()
  T.raises(function() jet.connect{ servers = srv.url, user = "alice", password = "x", password_file = pwfile } end,
    "jet.connect: bad argument 'password_file': give password or password_file, not both")
  T.raises(function() jet.connect{ servers = srv.url, user = "alice", password_file = dir .. "/none" } end,
    "bad argument 'password_file': cannot read .*/none: No such file or directory")
  T.raises(function() jet.connect{ servers = srv.url, password = "x" } end, "bad argument 'password': needs a user")
  local err = T.raises(function() jet.connect{ servers = srv.url, user = "a", password = SECRET, token = "t" } end,
    "give one kind of credentials")
  T.ok(not err:find(SECRET, 1, true), err)
  -- command line mistakes
  local st, _, e = child("print(1)", { "--server", srv.url, "--user", "alice", "--password", "x",
                                       "--password-file", pwfile })
  T.eq(st, 2); T.ok(e:find("--password and --password-file: give one of them", 1, true), e)
  st, _, e = child("print(1)", { "--server", srv.url, "--password-file", pwfile })
  T.eq(st, 2); T.ok(e:find("needs a user", 1, true), e)
  st, _, e = child("print(1)", { "--server", srv.url, "--token", "t" }, { NATS_CREDS = fixtures .. "/user.creds" })
  T.eq(st, 2); T.ok(e:find("give one kind of credentials, not a token and a creds file", 1, true), e)
  st, _, e = child("print(1)", { "--server", srv.url, "--token-file", dir .. "/none" })
  T.eq(st, 2); T.ok(e:find("--token-file: cannot read " .. dir .. "/none: No such file or directory", 1, true), e)
  -- --help names the safe forms
  local p = T.jetlua({ "--help" }, { stdout = dir .. "/help" })
  T.eq(p:wait(10), 0)
  local help = T.read_file(dir .. "/help")
  for _, w in ipairs{ "--password-file", "--token-file", "--nkey", "--creds", "NATS_PASSWORD", "NATS_TOKEN",
                      "NATS_CREDS", "NATS_NKEY", "NATS_USER", "safe forms are the files and the environment",
                      "jetlua server url" } do
    T.ok(help:find(w, 1, true), "help lacks " .. w)
  end
end)

T.run()
