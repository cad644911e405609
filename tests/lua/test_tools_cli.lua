-- The command-line tools where users of the nats CLI reach for them: -s/--server, unknown
-- options are errors in every tool and subcommand, stream add|edit|rm, consumer add|rm (rm asks
-- on a terminal, refuses without one unless -f), req, kv del|history|watch; --json everywhere.
local jet = require "jetlua"
local T = require "jetlua.testing"

local bin = assert(jet.process.getenv("JETLUA_BIN"), "JETLUA_BIN")
local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url })
local js = nc:jetstream()
local dir = T.tmpdir()
local runs = 0
-- a tool that ignored -s would use (and start) the embedded server of its working directory
local ENV = { NATS_URL = false, JETLUA_STATE_DIR = false }

-- run jetlua with these arguments in `dir`; returns status, stdout, stderr
local function jetlua(args)
  runs = runs + 1
  local out, err = dir .. "/out" .. runs, dir .. "/err" .. runs
  local p = T.jetlua(args, { stdout = out, stderr = err, cwd = dir, env = ENV })
  return p:wait(60), T.read_file(out) or "", T.read_file(err) or ""
end

-- a tool against the test's server, given as -s URL
local function tool(args)
  local argv = {}
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv[#argv + 1] = "-s"; argv[#argv + 1] = srv.url
  return jetlua(argv)
end

local function json(text)
  local ok, v = pcall(jet.json.decode, text)
  T.ok(ok, "not JSON: " .. text)
  return v
end

-- the tool succeeds: its stdout
local function ok(args)
  local st, out, err = tool(args)
  T.eq(st, 0, table.concat(args, " ") .. ": " .. err)
  return out
end

-- the tool fails with this status and says `text` on stderr (printing nothing on stdout)
local function fails(args, status, text)
  local st, out, err = tool(args)
  local what = table.concat(args, " ")
  T.eq(st, status, what .. ": " .. out .. err)
  T.ok(err:find(text, 1, true), what .. ": " .. err)
  T.eq(out, "", what)
  return err
end

-- the tool on a terminal (script(1) gives it one), answering `answer` to its question
local has_script = T.run_command({ "sh", "-c", "command -v script >/dev/null" }) == 0
local function on_terminal(answer, args)
  runs = runs + 1
  local out = dir .. "/tty" .. runs
  local cmd = { bin }
  for _, a in ipairs(args) do cmd[#cmd + 1] = a end
  cmd[#cmd + 1] = "-s"; cmd[#cmd + 1] = srv.url
  local st = T.run_command({ "sh", "-c", 'printf "%s\\n" "$1" | script -qec "$2" /dev/null', "sh", answer,
    table.concat(cmd, " ") }, { stdout = out, stderr = out, cwd = dir, env = ENV })
  return st, T.read_file(out) or ""
end

T.test("-s URL is --server, for the tools and for jetlua run", function()
  assert(js:stream{ name = "SEEN", subjects = { "seen.>" } })
  local out = ok{ "stream", "ls" }
  T.ok(out:find("SEEN", 1, true), out)
  local st, err
  st, out, err = jetlua{ "stream", "ls", "--json", "--server", srv.url }
  T.eq(st, 0, err)
  T.eq(json(out)[1].config.name, "SEEN")
  T.write_file(dir .. "/where.lua", 'print(assert(require("jetlua").connect()):connected_url())')
  st, out, err = jetlua{ "run", "-s", srv.url, "where.lua" }
  T.eq(st, 0, err)
  T.eq(out, srv.url .. "\n")
  T.ok(not T.read_file(dir .. "/.jetlua/token"), "no embedded server was started")
  local st2, _, err2 = jetlua{ "stream", "ls", "-s" }
  T.eq(st2, 2); T.ok(err2:find("-s needs a value", 1, true), err2)
  assert(js:delete_stream("SEEN"))
end)

T.test("an unknown option is an error (exit 2) in every tool and subcommand, naming it", function()
  local lines = {
    { "stream", "ls" }, { "stream", "info", "S" }, { "stream", "add", "S" }, { "stream", "edit", "S" },
    { "stream", "view", "S" }, { "stream", "purge", "S" }, { "stream", "rm", "S" },
    { "consumer", "ls", "S" }, { "consumer", "info", "S", "C" }, { "consumer", "add", "S", "C" },
    { "consumer", "next", "S", "C" }, { "consumer", "rm", "S", "C" },
    { "pub", "a.b", "x" }, { "sub", "a.b" }, { "req", "a.b" },
    { "kv", "ls" }, { "kv", "get", "B", "K" }, { "kv", "put", "B", "K", "V" }, { "kv", "del", "B", "K" },
    { "kv", "history", "B", "K" }, { "kv", "watch", "B" },
    { "micro", "ls" }, { "micro", "info", "svc" }, { "micro", "stats", "svc" },
  }
  for _, line in ipairs(lines) do
    for _, bad in ipairs{ "--bogus", "-x" } do
      local args = { unpack(line) }
      args[#args + 1] = bad
      fails(args, 2, "unknown option '" .. bad .. "' (see jetlua " .. line[1] .. " --help)")
    end
  end
  -- an option of another subcommand is not silently ignored either
  for _, args in ipairs{ { "stream", "ls", "--keep", "3" }, { "consumer", "ls", "S", "--count", "2" },
                         { "kv", "put", "B", "K", "V", "--revision", "1" }, { "stream", "info", "S", "-f" } } do
    fails(args, 2, "does not apply to 'jetlua " .. args[1] .. " " .. args[2] .. "'")
  end
  -- and jetlua run
  T.write_file(dir .. "/ok.lua", "")
  for _, bad in ipairs{ "--bogus", "-x" } do
    local st, _, err = jetlua{ "run", bad, "ok.lua" }
    T.eq(st, 2); T.ok(err:find("unknown option '" .. bad .. "' (see jetlua --help)", 1, true), err)
  end
  local st, out = jetlua{ "run", "--help" }
  T.eq(st, 0); T.ok(out:find("Usage:", 1, true), out)
end)

T.test("stream add, edit (only what is given changes), mistakes", function()
  local out = ok{ "stream", "add", "ORDERS", "--subjects", "orders.new,orders.paid", "--storage", "memory",
    "--max-age", "1d", "--max-bytes", "10M", "--dupe-window", "30s", "--max-msgs-per-subject", "7", "--description",
    "all orders" }
  T.ok(out:find("created stream ORDERS", 1, true) and out:find("max age%s+24h"), out)
  local c = js:stream_info("ORDERS").config
  T.eq(c.subjects, { "orders.new", "orders.paid" }); T.eq(c.storage, "memory"); T.eq(c.max_age, 86400)
  T.eq(c.max_bytes, 10 * 1024 * 1024); T.eq(c.duplicate_window, 30); T.eq(c.max_msgs_per_subject, 7)
  T.eq(c.description, "all orders")
  fails({ "stream", "add", "ORDERS", "--subjects", "x.y" }, 1, "stream ORDERS already exists")
  T.eq(js:stream_info("ORDERS").config.subjects, { "orders.new", "orders.paid" })

  out = ok{ "stream", "edit", "ORDERS", "--max-age", "2h", "--subjects", "orders.>", "--json" }
  T.eq(json(out).config.max_age, 7200)
  c = js:stream_info("ORDERS").config
  T.eq(c.max_age, 7200); T.eq(c.subjects, { "orders.>" })
  -- what was not given is kept, not put back to the server's defaults
  T.eq(c.max_bytes, 10 * 1024 * 1024); T.eq(c.duplicate_window, 30); T.eq(c.max_msgs_per_subject, 7)
  T.eq(c.description, "all orders"); T.eq(c.storage, "memory")

  fails({ "stream", "edit", "ORDERS", "--storage", "file" }, 1, "immutable")
  fails({ "stream", "edit", "ORDERS" }, 2, "which settings")
  fails({ "stream", "edit", "NOPE", "--max-age", "1h" }, 1, "stream_not_found")
  fails({ "stream", "add", "BAD", "--storage", "disk" }, 2, "--storage: 'disk' is not one of file, memory")
  fails({ "stream", "add", "BAD", "--max-age", "soon" }, 2, "--max-age: 'soon' is not a duration")
  fails({ "stream", "add", "a.b" }, 2, "invalid stream name 'a.b'")
  T.eq(select(2, js:stream_info("BAD")), "stream_not_found")
end)

T.test("consumer add with settings; add again is an error", function()
  local out = ok{ "consumer", "add", "ORDERS", "billing", "--filter", "orders.paid", "--ack-wait", "90",
    "--max-deliver", "5", "--backoff", "1m,5m", "--deliver", "new", "--max-ack-pending", "50" }
  T.ok(out:find("created consumer billing on stream ORDERS", 1, true), out)
  local c = js:consumer_info("ORDERS", "billing").config
  T.eq(c.durable, "billing"); T.eq(c.filter_subject, "orders.paid"); T.eq(c.ack_policy, "explicit")
  T.eq(c.max_deliver, 5); T.eq(c.backoff, { 60, 300 })
  T.eq(c.ack_wait, 60)   -- the first backoff, as the server has it
  T.eq(c.deliver_policy, "new"); T.eq(c.max_ack_pending, 50)
  local info = json(ok{ "consumer", "add", "ORDERS", "audit", "--start-seq", "1", "--ack-wait", "5m", "--json" })
  T.eq(info.config.deliver_policy, "by_start_sequence"); T.eq(info.config.ack_wait, 300)
  fails({ "consumer", "add", "ORDERS", "billing" }, 1, "consumer billing already exists on stream ORDERS")
  fails({ "consumer", "add", "NOPE", "x" }, 1, "stream_not_found")
  fails({ "consumer", "add", "ORDERS", "x", "--ack", "sometimes" }, 2,
    "--ack: 'sometimes' is not one of explicit, all, none")
end)

T.test("rm asks on a terminal; without one it refuses unless -f, and deletes nothing", function()
  assert(js:stream{ name = "TRASH", subjects = { "trash.>" } })
  local err = fails({ "consumer", "rm", "ORDERS", "audit" }, 2,
    "consumer audit of stream ORDERS not deleted: stdin is not a terminal")
  T.ok(err:find("pass -f", 1, true), err)
  T.ok(js:consumer_info("ORDERS", "audit"), "still there")
  fails({ "stream", "rm", "TRASH" }, 2, "stream TRASH not deleted")
  T.ok(js:stream_info("TRASH"), "still there")

  if has_script then
    local st, out = on_terminal("n", { "stream", "rm", "TRASH" })
    T.eq(st, 1, out)
    T.ok(out:find("Really delete stream TRASH and its 0 message(s)? [y/N]", 1, true), out)
    T.ok(out:find("stream TRASH not deleted", 1, true), out)
    T.ok(js:stream_info("TRASH"), "still there after 'n'")
    st, out = on_terminal("y", { "consumer", "rm", "ORDERS", "audit" })
    T.eq(st, 0, out)
    T.ok(out:find("deleted consumer audit of stream ORDERS", 1, true), out)
    T.eq(select(2, js:consumer_info("ORDERS", "audit")), "consumer_not_found")
  else
    print("# no script(1): the terminal prompt is not tested")
    assert(js:delete_consumer("ORDERS", "audit"))
  end

  T.eq(json(ok{ "stream", "rm", "TRASH", "-f", "--json" }), { deleted = "TRASH" })
  T.eq(select(2, js:stream_info("TRASH")), "stream_not_found")
  local out = ok{ "consumer", "rm", "ORDERS", "billing", "--force" }
  T.ok(out:find("deleted consumer billing of stream ORDERS", 1, true), out)
  T.eq(select(2, js:consumer_info("ORDERS", "billing")), "consumer_not_found")
  fails({ "stream", "rm", "TRASH", "-f" }, 1, "stream_not_found")
  fails({ "consumer", "rm", "ORDERS", "nope", "-f" }, 1, "consumer_not_found")
end)

T.test("req prints the reply; timeout, no responders and service errors exit 1", function()
  nc:subscribe("echo", function(m)
    m:respond("got " .. m.data .. " x=" .. tostring(m:header("X")), { headers = { ["Reply-Header"] = "r1" } })
  end)
  nc:subscribe("silent", function() end)
  local svc = nc:service{ name = "calc", version = "1.0.0" }
  svc:endpoint("div", { subject = "calc.div" }, function(req) req:respond_error(400, "division by zero") end)
  nc:flush()
  T.eq(ok{ "req", "echo", "hello", "--header", "X:1" }, "got hello x=1\n")
  T.eq(ok{ "req", "echo", "hi", "--headers" }, "Reply-Header: r1\n\ngot hi x=nil\n")
  local r = json(ok{ "req", "echo", "--json" })
  T.eq(r.data, "got  x=nil"); T.eq(r.headers, { ["Reply-Header"] = "r1" })
  fails({ "req", "nobody.home", "x" }, 1, "no_responders")
  fails({ "req", "silent", "x", "--timeout", "0.3" }, 1, "timeout")
  fails({ "req", "calc.div", "{}" }, 1, "service error 400: division by zero")
  fails({ "req", "orders.*" }, 2, "invalid subject")
  fails({ "req", "echo", "--header", "nocolon" }, 2, "--header wants K:V")
  svc:stop()
end)

T.test("kv del, history, watch", function()
  local kv = assert(js:create_kv{ bucket = "cfg", history = 5 })
  assert(kv:put("color", "blue")); assert(kv:put("color", "red"))
  local out = ok{ "kv", "del", "cfg", "color" }
  T.ok(out:find("deleted cfg/color (revision 3)", 1, true), out)
  T.eq(select(2, kv:get("color")), "key_not_found")
  fails({ "kv", "del", "cfg", "color" }, 1, "key_not_found")
  out = ok{ "kv", "history", "cfg", "color" }
  T.ok(out:find("REVISION%s+OPERATION%s+CREATED%s+VALUE"), out)
  T.ok(out:find("\n1%s+PUT%s+%S+%s+blue\n2%s+PUT%s+%S+%s+red\n3%s+DEL"), out)
  local h = json(ok{ "kv", "history", "cfg", "color", "--json" })
  T.eq(#h, 3); T.eq(h[2].value, "red"); T.eq(h[3].operation, "DEL")
  fails({ "kv", "history", "cfg", "nope" }, 1, "key_not_found")

  -- watch: the latest value of each key first, then changes, until --count
  assert(kv:put("size", "L"))
  runs = runs + 1
  local wout, werr = dir .. "/out" .. runs, dir .. "/err" .. runs
  local p = T.jetlua({ "kv", "watch", "cfg", "-s", srv.url, "--count", "4" },
    { stdout = wout, stderr = werr, cwd = dir })
  T.wait_until(function() return (T.read_file(werr) or ""):find("watching cfg for 4 entries", 1, true) end, 20)
  T.wait_until(function() return (T.read_file(wout) or ""):find("PUT size = L", 1, true) end, 20)
  assert(kv:put("size", "XL")); assert(kv:put("shape", "round"))
  T.eq(p:wait(30), 0, T.read_file(werr))
  T.eq(T.read_file(wout), "[3] DEL color\n[4] PUT size = L\n[5] PUT size = XL\n[6] PUT shape = round\n")

  -- one key, --updates-only, --json lines
  runs = runs + 1
  wout, werr = dir .. "/out" .. runs, dir .. "/err" .. runs
  p = T.jetlua({ "kv", "watch", "cfg", "size", "-s", srv.url, "--count", "1", "--updates-only", "--json" },
    { stdout = wout, stderr = werr, cwd = dir })
  T.wait_until(function() return (T.read_file(werr) or ""):find("watching cfg size", 1, true) end, 20)
  assert(kv:put("shape", "square")); assert(kv:put("size", "S"))
  T.eq(p:wait(30), 0, T.read_file(werr))
  local e = json(T.read_file(wout))
  T.eq(e.key, "size"); T.eq(e.value, "S"); T.eq(e.revision, 8); T.eq(e.operation, "PUT")

  fails({ "kv", "watch", "nobucket" }, 1, "bucket_not_found")
end)

T.run()
