-- Misuse raises errors that name the function and the argument; bad scripts exit non-zero with file:line.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = false }
local nc = assert(jet.connect{ servers = srv.url })
local fn = function() end
local sub = nc:subscribe("bad.input.sub", fn)
local msg
nc:subscribe("bad.input.msg", function(m) msg = m end)
nc:publish("bad.input.msg", "x")
T.wait_until(function() return msg end, 5, "a message to misuse")

-- each case: { function, exact message (plain substring; the error also carries no traceback) }
local function check_cases(cases)
  for i, c in ipairs(cases) do
    local err = T.raises(c[1], nil, "case " .. i .. " (" .. c[2] .. ")")
    T.ok(err:find(c[2], 1, true), ("case %d: %q does not contain %q"):format(i, err, c[2]))
  end
end

T.test("jet.connect: wrong types for each option", function()
  check_cases{
    { function() jet.connect(1) end,                         "jet.connect: bad argument 'opts': table expected, got number" },
    { function() jet.connect("nats://127.0.0.1:4222") end,   "jet.connect: bad argument 'opts': table expected, got string" },
    { function() jet.connect{ servers = 1 } end,             "jet.connect: bad argument 'servers': string or list of strings expected, got number" },
    { function() jet.connect{ servers = {} } end,            "jet.connect: bad argument 'servers': the list is empty" },
    { function() jet.connect{ servers = { srv.url, 2 } } end, "jet.connect: bad argument 'servers': entry 2: string expected, got number" },
    { function() jet.connect{ name = 1 } end,                "jet.connect: bad argument 'name': string expected, got number" },
    { function() jet.connect{ user = true } end,             "jet.connect: bad argument 'user': string expected, got boolean" },
    { function() jet.connect{ password = {} } end,           "jet.connect: bad argument 'password': string expected, got table" },
    { function() jet.connect{ token = 5 } end,               "jet.connect: bad argument 'token': string expected, got number" },
    { function() jet.connect{ creds = 5 } end,               "jet.connect: bad argument 'creds': string expected, got number" },
    { function() jet.connect{ timeout = "1" } end,           "jet.connect: bad argument 'timeout': number expected, got string" },
    { function() jet.connect{ tls = "x" } end,               "jet.connect: bad argument 'tls': table expected, got string" },
    { function() jet.connect{ reconnect = 5 } end,           "jet.connect: bad argument 'reconnect': table expected, got number" },
    { function() jet.connect{ reconnect = { wait = -1 } } end, "jet.connect: bad argument 'reconnect.wait': must be >= 0 seconds" },
    { function() jet.connect{ timeout = -1 } end,            "jet.connect: bad argument 'timeout': must be > 0 seconds, got -1" },
    { function() jet.connect{ timeout = 0 } end,             "jet.connect: bad argument 'timeout': must be > 0 seconds, got 0" },
    -- nested options are named by their path
    { function() jet.connect{ reconnect = { max = "x" } } end, "jet.connect: bad argument 'reconnect.max': number expected, got string" },
    { function() jet.connect{ reconnect = { wait = "x" } } end, "jet.connect: bad argument 'reconnect.wait': number expected, got string" },
    { function() jet.connect{ tls = { ca = 1 } } end,        "jet.connect: bad argument 'tls.ca': string expected, got number" },
    { function() jet.connect{ tls = { cert = 1 } } end,      "jet.connect: bad argument 'tls.cert': string expected, got number" },
    { function() jet.connect{ tls = { key = {} } } end,      "jet.connect: bad argument 'tls.key': string expected, got table" },
  }
end)

T.test("publish, subscribe, request, flush, drain, on: wrong types for each argument", function()
  check_cases{
    { function() nc:publish(nil, "x") end,            "nc:publish: bad argument 'subject': string expected, got nil" },
    { function() nc:publish(1, "x") end,              "nc:publish: bad argument 'subject': string expected, got number" },
    { function() nc:publish("a", 42) end,             "nc:publish: bad argument 'data': string expected, got number" },
    { function() nc:publish("a", true) end,           "nc:publish: bad argument 'data': string expected, got boolean" },
    { function() nc:publish("a", "x", 5) end,         "nc:publish: bad argument 'opts': table expected, got number" },
    { function() nc:publish("a", "x", { reply = 1 }) end, "nc:publish: bad argument 'reply': string expected, got number" },
    { function() nc:publish("a", "x", { reply = "a b" }) end, "nc:publish: bad argument 'reply': invalid reply subject 'a b'" },
    { function() nc:publish("a", "x", { reply = "r.*" }) end, "nc:publish: bad argument 'reply': invalid reply subject 'r.*'" },
    { function() nc:publish("a", "x", { headers = 1 }) end, "nc:publish: bad argument 'headers': table expected, got number" },
    { function() nc:publish("a", "x", { headers = { A = 1 } }) end,
      "nc:publish: bad argument 'headers': value of 'A' must be a string or a list of strings, got number" },
    { function() nc:publish("a", "x", { headers = { A = { "1", 2 } } }) end,
      "nc:publish: bad argument 'headers': value of 'A' must be a string or a list of strings, got number" },
    { function() nc:publish("a", "x", { headers = { "v" } }) end, "nc:publish: bad argument 'headers': header names must be strings" },
    { function() nc:publish("a", "x", { headers = { ["a b"] = "1" } }) end, "nc:publish: bad argument 'headers': invalid header name 'a b'" },
    { function() nc:publish("a", "x", { headers = { ["a:b"] = "1" } }) end, "nc:publish: bad argument 'headers': invalid header name 'a:b'" },
    { function() nc:publish("a", "x", { headers = { [""] = "1" } }) end, "nc:publish: bad argument 'headers': invalid header name ''" },
    { function() nc.publish("a", "b") end,            "nc:publish: bad argument 'self': connection expected, got string" },
    { function() nc.publish() end,                    "nc:publish: bad argument 'self': connection expected, got nil" },

    { function() nc:subscribe(nil, fn) end,           "nc:subscribe: bad argument 'subject': string expected, got nil" },
    { function() nc:subscribe(5, fn) end,             "nc:subscribe: bad argument 'subject': string expected, got number" },
    { function() nc:subscribe("a") end,               "nc:subscribe: bad argument 'handler': function expected, got nil" },
    { function() nc:subscribe("a", "x") end,          "nc:subscribe: bad argument 'handler': function expected, got string" },
    { function() nc:subscribe("a", fn, 3) end,        "nc:subscribe: bad argument 'opts': table expected, got number" },
    { function() nc:subscribe("a", fn, { queue = 3 }) end, "nc:subscribe: bad argument 'queue': string expected, got number" },
    { function() nc:subscribe("a", fn, { concurrency = "2" }) end, "nc:subscribe: bad argument 'concurrency': number expected, got string" },
    { function() nc:subscribe("a", fn, { concurrency = 0 }) end, "nc:subscribe: bad argument 'concurrency': must be >= 1, got 0" },
    { function() nc:subscribe("a", fn, { concurrency = -3 }) end, "nc:subscribe: bad argument 'concurrency': must be >= 1, got -3" },
    { function() nc:subscribe("a", fn, { pending_limit = "2" }) end, "nc:subscribe: bad argument 'pending_limit': number expected, got string" },
    { function() nc.subscribe(nil, "a", fn) end,      "nc:subscribe: bad argument 'self': connection expected, got nil (call it as nc:subscribe)" },

    { function() nc:request(nil) end,                 "nc:request: bad argument 'subject': string expected, got nil" },
    { function() nc:request("a", 1) end,              "nc:request: bad argument 'data': string expected, got number" },
    { function() nc:request("a", "x", "y") end,       "nc:request: bad argument 'opts': table expected, got string" },
    { function() nc:request("a", "x", { timeout = "1" }) end, "nc:request: bad argument 'timeout': number expected, got string" },
    { function() nc:request("a", "x", { timeout = 0 }) end, "nc:request: bad argument 'timeout': must be > 0" },
    { function() nc:request("a", "x", { timeout = -1 }) end, "nc:request: bad argument 'timeout': must be > 0" },
    { function() nc:request("a", "x", { headers = 1 }) end, "nc:request: bad argument 'headers': table expected, got number" },

    { function() nc:flush("x") end,                   "nc:flush: bad argument 'timeout': number expected, got string" },
    { function() nc:flush(0) end,                     "nc:flush: bad argument 'timeout': must be > 0 seconds" },
    { function() nc:flush(-1) end,                    "nc:flush: bad argument 'timeout': must be > 0 seconds" },
    { function() nc:drain("x") end,                   "nc:drain: bad argument 'timeout': number expected, got string" },
    { function() nc:drain(0) end,                     "nc:drain: bad argument 'timeout': must be > 0 seconds" },
    { function() nc:on("nope", fn) end,               "nc:on: bad argument 'event': unknown event 'nope'" },
    { function() nc:on(1, fn) end,                    "nc:on: bad argument 'event': string expected, got number" },
    { function() nc:on("closed", "x") end,            "nc:on: bad argument 'fn': function expected, got string" },
    { function() nc.status("x") end,                  "nc:status: bad argument 'self': connection expected, got string" },
    { function() nc.close({}) end,                    "nc:close: bad argument 'self': connection expected, got table" },
  }
end)

T.test("subscriptions and messages: wrong self and argument types", function()
  check_cases{
    { function() sub.unsubscribe("x") end,            "sub:unsubscribe: bad argument 'self': subscription expected, got string" },
    { function() sub.stats(nc) end,                   "sub:stats: bad argument 'self': subscription expected, got userdata" },
    { function() sub.drain(1) end,                    "sub:drain: bad argument 'self': subscription expected, got number" },
    { function() sub.stats() end,                     "sub:stats: bad argument 'self': subscription expected, got nil" },
    { function() msg.respond() end,                   "msg:respond: bad argument 'self': message expected, got nil" },
    { function() msg:header(1) end,                   "msg:header: bad argument 'name': string expected, got number" },
    { function() msg:header_values() end,             "msg:header_values: bad argument 'name': string expected, got nil" },
    { function() msg.header("Name") end,              "msg:header: bad argument 'self': message expected, got string (use msg:header, not msg.header)" },
    { function() msg:respond(1) end,                  "msg:respond: bad argument 'data': string expected, got number" },
    { function() msg:respond("x", 1) end,             "msg:respond: bad argument 'opts': table expected, got number" },
    { function() msg:respond("x", { header = {} }) end, "msg:respond: unknown option 'header'" },
    { function() msg:respond("x") end,                "msg:respond: the message has no reply subject" },
  }
  T.eq(msg.no_such_field, nil)
end)

T.test("sleep, timer, every, spawn, exit: wrong types and ranges", function()
  check_cases{
    { function() jet.sleep() end,                     "jet.sleep: bad argument 'seconds': number expected, got nil" },
    { function() jet.sleep("1") end,                  "jet.sleep: bad argument 'seconds': number expected, got string" },
    { function() jet.sleep(-1) end,                   "jet.sleep: bad argument 'seconds': seconds must be >= 0 and <= 1e9, got -1" },
    { function() jet.sleep(0 / 0) end,                "jet.sleep: bad argument 'seconds': seconds must be >= 0 and <= 1e9" },
    { function() jet.sleep(1e10) end,                 "jet.sleep: bad argument 'seconds': seconds must be >= 0 and <= 1e9, got 1e+10" },
    { function() jet.timer() end,                     "jet.timer: bad argument 'seconds': number expected, got nil" },
    { function() jet.timer("1", fn) end,              "jet.timer: bad argument 'seconds': number expected, got string" },
    { function() jet.timer(-1, fn) end,               "jet.timer: bad argument 'seconds': seconds must be >= 0 and <= 1e9, got -1" },
    { function() jet.timer(1) end,                    "jet.timer: bad argument 'fn': function expected, got nil" },
    { function() jet.timer(1, "x") end,               "jet.timer: bad argument 'fn': function expected, got string" },
    { function() jet.every("1", fn) end,              "jet.every: bad argument 'seconds': number expected, got string" },
    { function() jet.every(-1, fn) end,               "jet.every: bad argument 'seconds': seconds must be >= 0 and <= 1e9, got -1" },
    { function() jet.every(0, fn) end,                "jet.every: bad argument 'seconds': an interval must be > 0" },
    { function() jet.every(1) end,                    "jet.every: bad argument 'fn': function expected, got nil" },
    { function() jet.every(1, {}) end,                "jet.every: bad argument 'fn': function expected, got table" },
    { function() jet.spawn() end,                     "jet.spawn: bad argument 'fn': function expected, got nil" },
    { function() jet.spawn(1) end,                    "jet.spawn: bad argument 'fn': function expected, got number" },
    { function() jet.spawn("print(1)") end,           "jet.spawn: bad argument 'fn': function expected, got string" },
    { function() jet.exit("x") end,                   "jet.exit: bad argument 'code': number or boolean expected, got string" },
    { function() jet.exit({}) end,                    "jet.exit: bad argument 'code': number or boolean expected, got table" },
  }
end)

T.test("unknown option keys are never ignored", function()
  check_cases{
    { function() nc:subscribe("a", fn, { queu = "x" }) end,   "nc:subscribe: unknown option 'queu'" },
    { function() nc:subscribe("a", fn, { Queue = "x" }) end,  "nc:subscribe: unknown option 'Queue'" },
    { function() nc:publish("a", "x", { header = {} }) end,   "nc:publish: unknown option 'header'" },
    { function() nc:publish("a", "x", { 1 }) end,             "nc:publish: option keys must be strings, got a number key" },
    { function() nc:request("a", "x", { timout = 1 }) end,    "nc:request: unknown option 'timout'" },
    { function() nc:request("a", "x", { reply = "r" }) end,   "nc:request: unknown option 'reply'" },
    { function() msg:respond("x", { reply = "r" }) end,       "msg:respond: unknown option 'reply'" },
    { function() jet.connect{ server = "x" } end,             "jet.connect: unknown option 'server'" },
    { function() jet.connect{ 1 } end,                        "jet.connect: option keys must be strings, got a number key" },
    { function() jet.connect{ reconnect = { maxx = 1 } } end, "jet.connect reconnect: unknown option 'maxx'" },
    { function() jet.connect{ tls = { cafile = "x" } } end,   "jet.connect tls: unknown option 'cafile'" },
    { function() jet.process.spawn({ "true" }, { enviro = {} }) end, "jet.process.spawn: unknown option 'enviro'" },
  }
end)

T.test("invalid subjects are rejected with the reason", function()
  local pub_bad = {
    [""] = "empty subject", ["a b"] = "whitespace", ["a\tb"] = "whitespace", ["a\nb"] = "whitespace",
    [" a"] = "whitespace", ["a "] = "whitespace",
    ["a..b"] = "empty token", [".a"] = "empty token", ["a."] = "empty token", ["."] = "empty token",
    ["a.*"] = "wildcards are not allowed here", ["*"] = "wildcards are not allowed here",
    ["a.>"] = "wildcards are not allowed here", [">"] = "wildcards are not allowed here",
    ["a*"] = "a wildcard must be a whole token", ["a.b>"] = "a wildcard must be a whole token",
    ["*a.b"] = "a wildcard must be a whole token",
  }
  for s, why in pairs(pub_bad) do
    local want = ("bad argument 'subject': invalid subject '%s' (%s"):format(s, why)
    for _, f in ipairs{ "publish", "request" } do
      local err = T.raises(function() nc[f](nc, s, "x") end, nil, f .. " " .. ("%q"):format(s))
      T.ok(err:find("nc:" .. f .. ": " .. want, 1, true), ("%q does not contain %q"):format(err, want))
    end
  end
  local sub_bad = {
    [""] = "empty subject", ["a b"] = "whitespace", ["a >"] = "whitespace",
    ["a..b"] = "empty token", [".a"] = "empty token", ["a."] = "empty token", ["a..>"] = "empty token",
    ["a.>.b"] = "'>' must be the last token", [">.a"] = "'>' must be the last token",
    ["a*"] = "a wildcard must be a whole token", ["a.b*"] = "a wildcard must be a whole token",
    ["a.*b.c"] = "a wildcard must be a whole token", ["a.>>"] = "a wildcard must be a whole token",
  }
  for s, why in pairs(sub_bad) do
    local want = ("nc:subscribe: bad argument 'subject': invalid subject '%s' (%s"):format(s, why)
    local err = T.raises(function() nc:subscribe(s, fn) end)
    T.ok(err:find(want, 1, true), ("%q does not contain %q"):format(err, want))
  end
  -- and the valid wildcard forms are accepted
  for _, s in ipairs{ "*", ">", "a.*", "a.>", "*.b.>", "a.*.c" } do
    nc:subscribe(s, fn):unsubscribe()
  end
end)

T.test("invalid queue group names are rejected", function()
  for _, q in ipairs{ "", "a b", "a\tb", "*", ">", "a*", "a..b", ".a" } do
    local want = ("nc:subscribe: bad argument 'queue': invalid queue group name '%s'"):format(q)
    local err = T.raises(function() nc:subscribe("a", fn, { queue = q }) end)
    T.ok(err:find(want, 1, true), ("%q does not contain %q"):format(err, want))
  end
  nc:subscribe("a", fn, { queue = "workers.v1-b_c" }):unsubscribe()
end)

T.test("a rejected call has no side effect", function()
  local before = sub:stats()
  T.raises(function() nc:subscribe("bad.input.sub", fn, { queu = 1 }) end)
  T.raises(function() nc:publish("bad.input.sub", "x", { headers = { A = 1 } }) end)
  nc:flush()
  jet.sleep(0.05)
  T.eq(sub:stats().delivered, before.delivered, "a rejected publish was sent")
  T.eq(nc:status(), "connected")
  -- a request rejected for its headers must not leave a waiter behind: its timeout would fire
  -- later, in whatever coroutine reuses the pooled one (test_regress_request_bad_headers.lua)
  local rejected
  jet.spawn(function()
    rejected = select(2, pcall(nc.request, nc, "bad.input.nobody", "x", { timeout = 0.1, headers = { A = 1 } }))
  end)
  T.ok(tostring(rejected):find("nc:request: bad argument 'headers'", 1, true), rejected)
  local slept
  jet.spawn(function()
    local t0 = jet.monotonic()
    jet.sleep(0.4)
    slept = jet.monotonic() - t0
  end)
  T.wait_until(function() return slept end, 5, "the sleep")
  T.ok(slept >= 0.38, ("a 0.4 s jet.sleep in another coroutine ended after %.2f s"):format(slept))
end)

T.test("waiting outside a jetlua coroutine raises a clear error", function()
  local waits = {
    { "jet.sleep", function() jet.sleep(0.01) end },
    { "nc:request", function() return nc:request("a", "b") end },
    { "nc:flush", function() return nc:flush() end },
    { "nc:drain", function() return nc:drain() end },
    { "sub:drain", function() return sub:drain() end },
    { "jet.connect", function() return jet.connect{ servers = srv.url } end },
  }
  for _, w in ipairs(waits) do
    local co = coroutine.create(w[2])
    local ok, err = coroutine.resume(co)
    T.eq(ok, false, w[1] .. " worked from a plain coroutine")
    T.ok(tostring(err):find(w[1] .. ": must be called from a jetlua coroutine", 1, true), err)
  end
  -- nothing was started by those calls: the connection and subscription are untouched
  T.eq(nc:status(), "connected")
  T.eq(sub:stats().closed, false)
end)

local function run_script(src, name)
  local dir = T.tmpdir()
  local path = dir .. "/" .. name
  T.write_file(path, src)
  local p = T.jetlua({ "run", path }, { stderr = dir .. "/stderr", stdout = dir .. "/stdout", env = { NATS_URL = false } })
  local status, sig = p:wait(30)
  if sig and sig ~= 0 then status = "signal " .. sig end
  return status, T.read_file(dir .. "/stderr") or "", T.read_file(dir .. "/stdout") or ""
end

T.test("a script that does not parse exits non-zero with file:line", function()
  local status, err = run_script("local x = 1\nprint('never')\nlocal y = = 2\n", "bad.lua")
  T.ok(type(status) == "number" and status ~= 0, "exit status " .. tostring(status))
  T.ok(err:find("bad.lua:3:", 1, true), err)
  local _, _, out = run_script("print('never')\nif then\n", "bad2.lua")
  T.eq(out, "", "a script that does not parse ran")
end)

T.test("a main chunk that raises exits 1 with file:line", function()
  local status, err, out = run_script("print('before')\nlocal a = 1\nerror('boom here')\nprint('after')\n", "raise.lua")
  T.eq(status, 1)
  T.ok(err:find("raise.lua:3: boom here", 1, true), err)
  T.ok(out:find("before", 1, true) and not out:find("after", 1, true), out)
  -- a runtime error (not error()) in a function called from the main chunk
  status, err = run_script("local function f(t) return t.x.y end\n\nf({})\n", "index.lua")
  T.eq(status, 1)
  T.ok(err:find("index.lua:1:", 1, true), err)
  -- a bad argument to the API in the main chunk
  status, err = run_script("local jet = require 'jetlua'\njet.sleep('x')\n", "api.lua")
  T.eq(status, 1)
  T.ok(err:find("api.lua:2: jet.sleep: bad argument 'seconds': number expected, got string", 1, true), err)
end)

T.test("a missing script and bad options are command-line errors", function()
  local status, err = run_script("", "empty.lua")
  T.eq(status, 0, err)
  local dir = T.tmpdir()
  local p = T.jetlua({ "run", dir .. "/nope.lua" }, { stderr = dir .. "/e" })
  T.eq(p:wait(10), 1)
  T.ok((T.read_file(dir .. "/e") or ""):find("nope.lua", 1, true))
  p = T.jetlua({ "run", "--bogus", "x.lua" }, { stderr = dir .. "/e2" })
  T.eq(p:wait(10), 2)
  T.ok((T.read_file(dir .. "/e2") or ""):find("unknown option '--bogus'", 1, true))
  p = T.jetlua({ "run" }, { stderr = dir .. "/e3" })
  T.eq(p:wait(10), 2)
  T.ok((T.read_file(dir .. "/e3") or ""):find("run needs a SCRIPT", 1, true))
  p = T.jetlua({ "run", "--shutdown-timeout", "-1", "x.lua" }, { stderr = dir .. "/e4" })
  T.eq(p:wait(10), 2)
  T.ok((T.read_file(dir .. "/e4") or ""):find("--shutdown-timeout", 1, true))
  p = T.jetlua({ "run", "--log-level", "loud", "x.lua" }, { stderr = dir .. "/e5" })
  T.eq(p:wait(10), 2)
  T.ok((T.read_file(dir .. "/e5") or ""):find("unknown level 'loud'", 1, true))
  p = T.jetlua({ "run", "--server" }, { stderr = dir .. "/e6" })
  T.eq(p:wait(10), 2)
  T.ok((T.read_file(dir .. "/e6") or ""):find("--server needs a value", 1, true))
end)

T.run()
