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
