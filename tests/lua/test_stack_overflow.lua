-- Infinite recursion is reported as "stack overflow" with the script's file:line and a
-- traceback, like any other error, wherever it happens: the main chunk, a subscription
-- handler, a consume handler (with and without a retry policy), a timer, jet.spawn, a reload.
-- It used to be "error in error handling", with no position at all: the traceback handler
-- itself overflowed, and after an overflow in JIT-compiled code LuaJIT cannot even enter one.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }

-- run src in a child jetlua; returns status, stdout, stderr
local function child(src, args, until_fn)
  local dir = T.tmpdir()
  T.write_file(dir .. "/app.lua", src)
  local argv = { "run", "--server", srv.url }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = dir .. "/app.lua"
  local p = T.jetlua(argv, { stdout = dir .. "/out", stderr = dir .. "/err" })
  if until_fn then until_fn(p, dir) end
  local st = p:wait(60)
  return st, T.read_file(dir .. "/out") or "", T.read_file(dir .. "/err") or ""
end

-- every "<what>" error line says stack overflow at app.lua:<line>, with a traceback; the same
-- error again within 10 s is a count ("... (repeated N times in the last 1 s)"): counted as N
local function overflow_reports(err, what)
  local n = 0
  for line, rest in err:gmatch("ERROR ([^\n]*" .. what:gsub("%p", "%%%0") .. "[^\n]*)\n([^\n]*)") do
    local rep = line:match("app%.lua:%d+: stack overflow %(repeated (%d+) times? in the last %d+ s%)$")
    if rep then
      n = n + tonumber(rep)
    else
      T.ok(line:find("app%.lua:%d+: stack overflow$"), "no file:line or not a stack overflow: " .. line)
      T.eq(rest, "stack traceback:", line)
      n = n + 1
    end
  end
  return n
end

local recursion = [[
  local jet = require "jetlua"
  local function deep(n) return 1 + deep(n + 1) end
]]

T.test("main chunk: stack overflow at file:line, exit status 1", function()
  for _, nojit in ipairs{ false, true } do
    -- a few overflows under pcall first: then the recursion is JIT-compiled (unless jit.off)
    local st, _, err = child(recursion .. (nojit and "jit.off()\n" or "")
      .. "for i = 1, 3 do pcall(deep, 1) end\ndeep(1)\n")
    T.eq(st, 1, err)
    T.ok(not err:find("error in error handling", 1, true), err)
    T.eq(overflow_reports(err, "main chunk failed"), 1, err)
    T.ok(err:find("app.lua:2: in function 'deep'", 1, true), err)
  end
end)

T.test("handlers, timers, jet.spawn, consume: stack overflow at file:line, the process goes on", function()
  local js = assert(jet.connect{ servers = srv.url }):jetstream()
  assert(js:stream{ name = "SO", subjects = { "so.>" }, storage = "memory" })
  for i = 1, 3 do assert(js:publish("so.a", tostring(i))) end
  for i = 1, 3 do assert(js:publish("so.b", tostring(i))) end
  for _, nojit in ipairs{ false, true } do
    local sfx = nojit and "_nojit" or ""
    assert(js:consumer("SO", { durable = "plain" .. sfx, filter_subject = "so.a", max_deliver = 1 }))
    assert(js:consumer("SO", { durable = "policy" .. sfx, filter_subject = "so.b", max_deliver = 1 }))
    local st, out, err = child(recursion .. (nojit and "jit.off()\n" or "") .. "local sfx = '" .. sfx .. "'\n" .. [[
      local nc = assert(jet.connect())
      local js = nc:jetstream()
      local n = { sub = 0, plain = 0, policy = 0 }
      nc:subscribe("so.core", function() n.sub = n.sub + 1; deep(1) end)
      local c1 = js:consume("SO", "plain" .. sfx, function() n.plain = n.plain + 1; deep(1) end, { auto_ack = true })
      local c2 = js:consume("SO", "policy" .. sfx, function() n.policy = n.policy + 1; deep(1) end,
        { retry = function() return "term" end })
      for i = 1, 3 do
        jet.spawn(function() deep(1) end)
        jet.timer(0.01 * i, function() deep(1) end)
        nc:publish("so.core", "x")
      end
      jet.timer(20, function() print("stuck", n.sub, n.plain, n.policy, k); jet.exit(3) end)
      local k = 0
      local t; t = jet.every(0.01, function() k = k + 1; if k <= 3 then deep(1) else t:stop() end end)
      while n.sub < 3 or n.plain < 3 or n.policy < 3 or k < 4 do jet.sleep(0.01) end
      -- and the coroutines that overflowed are back in the pool, working
      local ok = 0
      for i = 1, 20 do jet.spawn(function() jet.sleep(0.001); ok = ok + 1 end) end
      while ok < 20 do jet.sleep(0.01) end
      print("all done", n.sub, n.plain, n.policy, k, ok)
      jet.exit(0)
    ]])
    local mode = nojit and "jit off" or "jit on"
    T.eq(st, 0, mode .. "\n" .. err)
    T.eq(out, "all done\t3\t3\t3\t4\t20\n", mode .. "\n" .. err)
    T.ok(not err:find("error in error handling", 1, true), mode .. "\n" .. err)
    T.eq(overflow_reports(err, "jet.spawn coroutine failed"), 3, mode .. "\n" .. err)
    T.eq(overflow_reports(err, "jet.timer callback failed"), 3, mode .. "\n" .. err)
    T.eq(overflow_reports(err, "jet.every callback failed"), 3, mode .. "\n" .. err)
    T.eq(overflow_reports(err, "handler for 'so.core' failed"), 3, mode .. "\n" .. err)
    T.eq(overflow_reports(err, "handler failed on SO/plain" .. sfx), 3, mode .. "\n" .. err)
    -- the retry policy got the error value; its action is logged with the traceback
    T.ok(err:find("ERROR handler failed on SO/policy" .. sfx .. " seq %d+ %(delivery 1%) %-> term: [^\n]*app%.lua:%d+: "
      .. "stack overflow\nstack traceback:"), mode .. "\n" .. err)
    T.eq(overflow_reports(err, "handler failed on SO/policy" .. sfx), 3, mode .. "\n" .. err)
    -- the traceback names the recursion and ends at the job's own function
    T.ok(err:find("app.lua:2: in function 'deep'\n\t...\n", 1, true), err)
  end
end)

T.test("a reload that overflows is reported with file:line; the old code keeps running", function()
  local st, _, err = child(recursion .. [[
    RUNS = (RUNS or 0) + 1
    if RUNS == 2 then for i = 1, 3 do pcall(deep, 1) end; deep(1) end
    local nc = assert(jet.connect())
    nc:subscribe("so.keep", function() end)
    print("run " .. RUNS)
    if RUNS == 1 then jet.timer(5, function() jet.exit(0) end) end
  ]], {}, function(p, dir)
    T.wait_until(function() return (T.read_file(dir .. "/out") or ""):find("run 1") end, 10, "first run")
    p:kill("HUP")
    T.wait_until(function() return (T.read_file(dir .. "/err") or ""):find("reload failed") end, 10, "reload report")
    p:kill("TERM")
  end)
  T.eq(st, 0, err)
  T.ok(err:find("reload failed: [^\n]*app%.lua:2: stack overflow\n"), err)
  T.ok(not err:find("error in error handling", 1, true), err)
end)

T.test("recursion through C functions (gsub, sort): an error at file:line, never a segfault", function()
  -- LuaJIT runs Lua on the thread's C stack and bounds only its Lua stack: string.gsub with a
  -- function used ~72 MiB of C stack before "stack overflow" came, a segfault under the usual
  -- 8 MiB limit (jetlua raises the soft limit to 128 MiB at start, runtime/main.c)
  local st, out, err = child([[
    local jet = require "jetlua"
    local function gs() return (("x"):gsub("x", function() return gs() end)) end
    local function srt() table.sort({ 3, 2, 1 }, function(a, b) srt(); return a < b end) end
    local nc = assert(jet.connect())
    local errs = {}
    for _, f in ipairs{ gs, srt } do
      local ok, e = pcall(f)
      errs[#errs + 1] = ok and "no error" or tostring(e):match("stack overflow") or tostring(e)
    end
    local n = 0
    nc:subscribe("so.c", function() n = n + 1; gs() end)
    for _ = 1, 3 do nc:publish("so.c", "x") end
    while n < 3 do jet.sleep(0.01) end
    print("errors " .. table.concat(errs, ",") .. "; handlers " .. n)
    gs()
  ]])
  T.eq(st, 1, err)
  T.eq(out, "errors stack overflow,stack overflow; handlers 3\n", err)
  T.eq(overflow_reports(err, "handler for 'so.c' failed"), 3, err)
  T.eq(overflow_reports(err, "main chunk failed"), 1, err)
end)

T.run()
