-- --log-format json: one JSON object per line; text stays the default.
local jet = require "jetlua"
local T = require "jetlua.testing"

local dir = T.tmpdir()
T.write_file(dir .. "/child.lua", [[
  local jet = require "jetlua"
  jet.log.info('a "quoted"\tword', 42)
  jet.log.warn("line one\nline two")
  jet.log.debug("hidden at info")
]])

local runs = 0
local function run(args)
  runs = runs + 1
  local err = dir .. "/err" .. runs
  local argv = { "run" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv[#argv + 1] = dir .. "/child.lua"
  local p = T.jetlua(argv, { stdout = dir .. "/out", stderr = err })
  return p:wait(20), T.read_file(err) or ""
end

T.test("json: one object per line with time, level and msg", function()
  local st, err = run{ "--log-format", "json" }
  T.eq(st, 0, err)
  local lines = {}
  for line in err:gmatch("[^\n]+") do lines[#lines + 1] = jet.json.decode(line) end
  T.eq(#lines, 2, err)
  T.eq(lines[1].level, "info"); T.eq(lines[1].msg, 'a "quoted"\tword 42')
  T.ok(lines[1].time:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"), lines[1].time)
  T.eq(lines[2].level, "warn"); T.eq(lines[2].msg, "line one\nline two")
end)

-- Every line of a run that logs hostile bytes must parse as JSON (Python's strict parser: it
-- rejects invalid UTF-8 and raw control characters), and nothing may be silently cut.
local checker = dir .. "/check.py"
T.write_file(checker, [[
import json, sys
out = []
with open(sys.argv[1], "rb") as f:
    data = f.read()
for raw in data.split(b"\n")[:-1]:
    try:
        obj = json.loads(raw.decode("utf-8", errors="strict"))
        ok = isinstance(obj, dict) and all(isinstance(obj.get(k), str) for k in ("time", "level", "msg"))
        out.append({"ok": ok, "obj": obj})
    except Exception as e:
        out.append({"ok": False, "error": repr(e), "raw": repr(raw[:200])})
print(json.dumps({"lines": out, "ends_with_newline": data.endswith(b"\n")}))
]])

local function check_json(path)
  local res = path .. ".check"          -- spawn appends to its stdout file: one per log
  local st = T.run_command({ "/usr/bin/python3", checker, path }, { stdout = res })
  T.eq(st, 0, "the checker failed")
  local r = jet.json.decode(T.read_file(res))
  T.ok(r.ends_with_newline, "the last line has no newline")
  for i, l in ipairs(r.lines) do
    T.ok(l.ok, ("line %d is not a JSON object: %s %s"):format(i, tostring(l.error), tostring(l.raw)))
  end
  local objs = {}
  for _, l in ipairs(r.lines) do objs[#objs + 1] = l.obj end
  return objs
end

local hostile_src = [[
  local jet = require "jetlua"
  jet.log.warn("utf8 \xff\xfe|\xc3|\xed\xa0\x80|\xc0\x80|\xf4\x90\x80\x80| end")
  jet.log.warn("ctl \1\2\27[31m|\127|nul:\0:after")
  jet.log.warn('quotes "x" and \\ backslash \\"')
  jet.log.warn(string.rep("\xc3\xa9", 9000))           -- 18000 bytes of 2-byte characters
  jet.log.warn("x" .. string.rep("\xe2\x82\xac", 6000))  -- 3-byte characters, shifted by one
  jet.log.warn(string.rep("\0\"\n", 4000))              -- escapes longer than a line
  jet.spawn(function() error("spawned \xff boom\1") end)
  jet.timer(0.01, function() error(setmetatable({}, { __tostring = function() return "obj \xfe" end })) end)
  jet.timer(0.02, function() error("from main chunk end") end)
]]

T.test("json: every line of hostile output is valid JSON; cuts are marked; tracebacks in a field", function()
  T.write_file(dir .. "/hostile.lua", hostile_src)
  local errf = dir .. "/hostile.err"
  local p = T.jetlua({ "run", "--log-format", "json", dir .. "/hostile.lua" },
    { stdout = dir .. "/out", stderr = errf })
  T.eq(p:wait(20), 0, T.read_file(errf))
  local objs = check_json(errf)
  T.eq(#objs, 9, T.read_file(errf))
  T.eq(objs[1].msg, "utf8 \u{FFFD}\u{FFFD}|\u{FFFD}|\u{FFFD}\u{FFFD}\u{FFFD}|\u{FFFD}\u{FFFD}|"
                    .. "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}| end")
  T.eq(objs[2].msg, "ctl \1\2\27[31m|\127|nul:\0:after")
  T.eq(objs[3].msg, 'quotes "x" and \\ backslash \\"')
  for i = 4, 6 do
    T.eq(objs[i].truncated, true, "line " .. i .. " was cut without saying so")
    T.ok(#objs[i].msg > 1000, "line " .. i .. " kept too little")
  end
  T.ok(objs[4].msg:match("^[\xc3\xa9]+$") and #objs[4].msg % 2 == 0, "a character was cut in half")
  T.ok(objs[5].msg:match("^x[\xe2\x82\xac]+$") and (#objs[5].msg - 1) % 3 == 0, "a character was cut in half")
  T.ok(objs[6].msg:match("^[%z\"\n]+$"), "an escape was cut in half")
  for i = 7, 9 do
    T.eq(objs[i].level, "error")
    T.ok(objs[i].traceback and objs[i].traceback:find("hostile.lua:%d+:"),
      "no traceback field: " .. jet.json.encode(objs[i]))
    T.ok(not objs[i].msg:find("stack traceback", 1, true), objs[i].msg)
  end
  T.ok(objs[7].msg:find("jet.spawn coroutine failed: .*hostile.lua:8: spawned \u{FFFD} boom\1$"), objs[7].msg)
  T.ok(objs[8].msg:find("obj \u{FFFD}", 1, true), objs[8].msg)
end)

T.test("json: main chunk errors, syntax errors and a long text line", function()
  T.write_file(dir .. "/syntax.lua", "local x = = 1\n")
  local errf = dir .. "/syntax.err"
  local p = T.jetlua({ "run", "--log-format", "json", dir .. "/syntax.lua" }, { stdout = dir .. "/out", stderr = errf })
  T.eq(p:wait(20), 1, T.read_file(errf))
  local objs = check_json(errf)
  T.eq(#objs, 1, T.read_file(errf))
  T.ok(objs[1].msg:find("syntax.lua:1: unexpected symbol near '='", 1, true), objs[1].msg)

  T.write_file(dir .. "/raise.lua", "local function f() error('main \\255') end\nf()\n")
  errf = dir .. "/raise.err"
  p = T.jetlua({ "run", "--log-format", "json", dir .. "/raise.lua" }, { stdout = dir .. "/out", stderr = errf })
  T.eq(p:wait(20), 1, T.read_file(errf))
  objs = check_json(errf)
  T.eq(#objs, 1, T.read_file(errf))
  T.ok(objs[1].msg:find("main chunk failed: .*raise.lua:1: main \u{FFFD}$"), objs[1].msg)
  T.ok(objs[1].traceback:find("raise.lua:2:", 1, true), objs[1].traceback)

  -- text: a message longer than a line says it was cut
  T.write_file(dir .. "/long.lua", "require('jetlua').log.info(string.rep('y', 20000))\n")
  errf = dir .. "/long.err"
  p = T.jetlua({ "run", dir .. "/long.lua" }, { stdout = dir .. "/out", stderr = errf })
  T.eq(p:wait(20), 0, T.read_file(errf))
  local text = T.read_file(errf)
  T.ok(text:find("^%S+ INFO  y+ %[truncated: %d+ more bytes%]\n$"), text:sub(1, 100) .. "..." .. text:sub(-100))
end)

T.test("text is the default", function()
  local st, err = run{}
  T.eq(st, 0, err)
  T.ok(err:find("^%d%d%d%d%-%d%d%-%d%dT[%d:.]+Z INFO  a \"quoted\"\tword 42\n"), err)
end)

T.test("an unknown format is a command-line error", function()
  local st, err = run{ "--log-format", "xml" }
  T.eq(st, 2)
  T.ok(err:find("--log-format: unknown format 'xml' (text or json)", 1, true), err)
end)

T.run()
