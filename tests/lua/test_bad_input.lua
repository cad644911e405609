-- Misuse raises errors that name the function and the argument; bad scripts exit non-zero with file:line.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = false }
local nc = assert(jet.connect{ servers = srv.url })
local fn = function() end

T.test("wrong argument types name the function and the argument", function()
  local cases = {
    { function() nc:publish(nil, "x") end,            "nc:publish: bad argument 'subject': string expected, got nil" },
    { function() nc:publish("a", 42) end,             "nc:publish: bad argument 'data': string expected, got number" },
    { function() nc:publish("a", "x", 5) end,         "nc:publish: bad argument 'opts': table expected, got number" },
    { function() nc:publish("a", "x", { headers = 1 }) end, "nc:publish: bad argument 'headers': table expected, got number" },
    { function() nc:publish("a", "x", { headers = { A = 1 } }) end, "nc:publish: bad argument 'headers': value of 'A'" },
    { function() nc:publish("a", "x", { reply = "a b" }) end, "nc:publish: bad argument 'reply': invalid reply subject" },
    { function() nc:subscribe("a") end,               "nc:subscribe: bad argument 'handler': function expected, got nil" },
    { function() nc:subscribe("a", fn, { queue = 3 }) end, "nc:subscribe: bad argument 'queue': string expected, got number" },
    { function() nc:subscribe("a", fn, { queue = "a b" }) end, "nc:subscribe: bad argument 'queue': invalid queue group name" },
    { function() nc:subscribe("a", fn, { concurrency = 0 }) end, "nc:subscribe: bad argument 'concurrency': must be >= 1" },
    { function() nc:request("a", "x", { timeout = "1" }) end, "nc:request: bad argument 'timeout': number expected, got string" },
    { function() nc:request("a", "x", { timeout = -1 }) end, "nc:request: bad argument 'timeout': must be > 0" },
    { function() nc:flush("x") end,                   "nc:flush: bad argument 'timeout': number expected, got string" },
    { function() nc.publish("a", "b") end,            "nc:publish: bad argument 'self': connection expected, got string" },
    { function() nc:on("nope", fn) end,               "nc:on: bad argument 'event': unknown event 'nope'" },
    { function() jet.sleep() end,                     "jet.sleep: bad argument 'seconds': number expected, got nil" },
    { function() jet.sleep(-1) end,                   "jet.sleep: bad argument 'seconds': seconds must be >= 0" },
    { function() jet.timer(1) end,                    "jet.timer: bad argument 'fn': function expected, got nil" },
    { function() jet.every(0, fn) end,                "jet.every: bad argument 'seconds': an interval must be > 0" },
    { function() jet.spawn(1) end,                    "jet.spawn: bad argument 'fn': function expected, got number" },
    { function() jet.exit("x") end,                   "jet.exit: bad argument 'code': number or boolean expected" },
    { function() jet.connect(1) end,                  "jet.connect: bad argument 'opts': table expected, got number" },
    { function() jet.connect{ servers = 1 } end,      "jet.connect: bad argument 'servers': string or list of strings expected" },
    { function() jet.connect{ name = 1 } end,         "jet.connect: bad argument 'name': string expected, got number" },
    { function() jet.connect{ reconnect = { wait = -1 } } end, "jet.connect: bad argument 'reconnect.wait'" },
  }
  for i, c in ipairs(cases) do
    local err = T.raises(c[1], nil, "case " .. i)
    T.ok(err:find(c[2], 1, true), ("case %d: %q does not contain %q"):format(i, err, c[2]))
  end
end)

T.test("unknown option keys are never ignored", function()
  T.raises(function() nc:subscribe("a", fn, { queu = "x" }) end, "nc:subscribe: unknown option 'queu'")
  T.raises(function() nc:publish("a", "x", { header = {} }) end, "nc:publish: unknown option 'header'")
  T.raises(function() nc:request("a", "x", { timout = 1 }) end, "nc:request: unknown option 'timout'")
  T.raises(function() jet.connect{ server = "x" } end, "jet.connect: unknown option 'server'")
  T.raises(function() jet.connect{ reconnect = { maxx = 1 } } end, "unknown option 'maxx'")
end)

T.test("invalid subjects are rejected with the reason", function()
  local pub_bad = { [""] = "empty subject", ["a b"] = "whitespace", ["a..b"] = "empty token",
                    [".a"] = "empty token", ["a."] = "empty token", ["a.*"] = "wildcards are not allowed",
                    ["a.>"] = "wildcards are not allowed", ["a\tb"] = "whitespace" }
  for s, why in pairs(pub_bad) do
    T.raises(function() nc:publish(s, "x") end, "nc:publish: bad argument 'subject': invalid subject", s)
    local err = T.raises(function() nc:publish(s, "x") end)
    T.ok(err:find(why, 1, true), err)
    T.raises(function() nc:request(s, "x") end, "nc:request: bad argument 'subject'")
  end
  local sub_bad = { ["a.>.b"] = "'>' must be the last token", ["a.b*"] = "a wildcard must be a whole token",
                    ["a..>"] = "empty token", ["a >"] = "whitespace" }
  for s, why in pairs(sub_bad) do
    local err = T.raises(function() nc:subscribe(s, fn) end, "nc:subscribe: bad argument 'subject'")
    T.ok(err:find(why, 1, true), err)
  end
end)

T.test("waiting outside a jetlua coroutine raises a clear error", function()
  local co = coroutine.create(function() jet.sleep(0.01) end)
  local ok, err = coroutine.resume(co)
  T.eq(ok, false)
  T.ok(tostring(err):find("jet.sleep: must be called from a jetlua coroutine", 1, true), err)
  co = coroutine.create(function() return nc:request("a", "b") end)
  ok, err = coroutine.resume(co)
  T.ok(tostring(err):find("nc:request: must be called from a jetlua coroutine", 1, true), err)
end)

local function run_script(src, name)
  local dir = T.tmpdir()
  local path = dir .. "/" .. name
  T.write_file(path, src)
  local p = T.jetlua({ "run", path }, { stderr = dir .. "/stderr", stdout = dir .. "/stdout" })
  local status = p:wait(30)
  return status, T.read_file(dir .. "/stderr") or ""
end

T.test("a script that does not parse exits non-zero with file:line", function()
  local status, err = run_script("local x = = 1\n", "bad.lua")
  T.ok(status ~= 0, "exit status " .. tostring(status))
  T.ok(err:find("bad.lua:1:", 1, true), err)
end)

T.test("a main chunk that raises exits 1 with file:line", function()
  local status, err = run_script("local a = 1\nerror('boom here')\n", "raise.lua")
  T.eq(status, 1)
  T.ok(err:find("raise.lua:2: boom here", 1, true), err)
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
end)

T.run()
