-- `cmake --install` and what an installed jetlua needs: the prefix can be moved as a whole (the
-- Lua library is found relative to the binary), examples run from any directory, a missing or
-- broken library is a clear error (never a LuaJIT PANIC), JETLUA_LUA_DIR wins, and the man page
-- describes every option `jetlua --help` lists.
local jet = require "jetlua"
local T = require "jetlua.testing"
local proc = jet.process

local bin = assert(proc.getenv("JETLUA_BIN"), "JETLUA_BIN")
local build = bin:match("^(.*)/[^/]+$")
local src = proc.getenv("JETLUA_SOURCE_DIR") or "."

local runs = 0
local function run(argv, dir, env, name)
  runs = runs + 1
  name = (name or "run") .. runs                     -- spawn appends to an existing file
  local st = T.run_command(argv, { cwd = dir, stdout = dir .. "/" .. name .. ".out",
                                   stderr = dir .. "/" .. name .. ".err", env = env })
  return st, T.read_file(dir .. "/" .. name .. ".out") or "", T.read_file(dir .. "/" .. name .. ".err") or ""
end

local NO_ENV = { JETLUA_LUA_DIR = false, NATS_URL = false }

local PROBE = [[print(package.searchpath("jetlua.reload", package.path))]]

local dir = T.tmpdir()
local prefix = dir .. "/moved"

T.test("cmake --install, then the prefix moved elsewhere: the binary finds its library", function()
  local st, out, err = run({ "cmake", "--install", build, "--prefix", dir .. "/prefix" }, dir, nil, "install")
  T.eq(st, 0, out .. err)
  for _, f in ipairs{ "bin/jetlua", "share/jetlua/lua/jetlua/reload.lua", "share/jetlua/lua/jetlua/tools/stream.lua",
                      "share/jetlua/examples/hello.lua", "share/man/man1/jetlua.1", "share/jetlua/types/jetlua.lua",
                      "lib/systemd/system/jetlua@.service", "share/doc/jetlua/README.md" } do
    T.ok(T.read_file(dir .. "/prefix/" .. f), "installed: " .. f)
  end
  T.eq(T.run_command({ "mv", dir .. "/prefix", prefix }), 0)
  T.write_file(dir .. "/probe.lua", PROBE)
  st, out, err = run({ prefix .. "/bin/jetlua", "run", "probe.lua" }, dir, NO_ENV)
  T.eq(st, 0, err)
  T.eq(out, prefix .. "/share/jetlua/lua/jetlua/reload.lua\n", "the moved prefix's library, not the source tree's")
end)

T.test("an installed example runs from a directory outside the tree; a tool finds its script", function()
  local work = T.tmpdir()
  local st, out, err = run({ prefix .. "/bin/jetlua", "run", prefix .. "/share/jetlua/examples/hello.lua" },
    work, NO_ENV)
  T.eq(st, 0, err)
  T.ok(out:find("3 messages received", 1, true), out)
  st, out, err = run({ prefix .. "/bin/jetlua", "stream", "--help" }, work, NO_ENV)
  T.eq(st, 0, err)
  T.ok(out:find("stream", 1, true), out)
end)

T.test("JETLUA_LUA_DIR wins; a wrong one is an error that names it", function()
  T.write_file(dir .. "/probe.lua", PROBE)
  local st, out, err = run({ prefix .. "/bin/jetlua", "run", "probe.lua" }, dir,
    { JETLUA_LUA_DIR = src .. "/bindings/lua" })
  T.eq(st, 0, err)
  T.eq(out, src .. "/bindings/lua/jetlua/reload.lua\n")
  st, out, err = run({ prefix .. "/bin/jetlua", "run", "probe.lua" }, dir, { JETLUA_LUA_DIR = dir .. "/nowhere" })
  T.eq(st, 1, err)
  T.eq(out, "")
  T.eq(err, "jetlua: JETLUA_LUA_DIR=" .. dir
    .. "/nowhere does not hold jetlua's Lua library (no jetlua/reload.lua there)\n")
  -- a library that does not load: its error, not a PANIC
  T.eq(T.run_command({ "mkdir", "-p", dir .. "/broken/jetlua" }), 0)
  T.write_file(dir .. "/broken/jetlua/reload.lua", "this is not lua\n")
  st, out, err = run({ prefix .. "/bin/jetlua", "run", "probe.lua" }, dir, { JETLUA_LUA_DIR = dir .. "/broken" })
  T.eq(st, 1, err)
  T.ok(err:find("jetlua: cannot load jetlua's Lua library from " .. dir .. "/broken: ", 1, true), err)
  T.ok(not err:find("PANIC", 1, true), err)
  T.eq(out, "")
end)

T.test("no library anywhere: a clear error for run and the tools, never a PANIC", function()
  T.eq(T.run_command({ "rm", "-rf", prefix .. "/share/jetlua/lua" }), 0)
  T.write_file(dir .. "/probe.lua", PROBE)
  local want = "jetlua: cannot find jetlua's Lua library: looked in " .. prefix .. "/bin/../share/jetlua/lua"
  for _, args in ipairs{ { "run", "probe.lua" }, { "stream", "ls" } } do
    local argv = { prefix .. "/bin/jetlua" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    local st, out, err = run(argv, dir, NO_ENV)
    T.eq(st, 1, args[1] .. ": " .. out .. err)
    T.eq(err:sub(1, #want), want, args[1])
    T.ok(err:find("set JETLUA_LUA_DIR", 1, true), err)
    T.eq(out, "")
  end
  -- `version` needs no library
  local st, out = run({ prefix .. "/bin/jetlua", "version" }, dir, NO_ENV)
  T.eq(st, 0)
  T.ok(out:find("^jetlua "), out)
end)

T.test("the man page describes every option of --help, and renders without warnings", function()
  local st, help = run({ bin, "--help" }, dir, nil, "help")
  T.eq(st, 0)
  local man = assert(T.read_file(src .. "/contrib/man/jetlua.1"))
  local missing = {}
  for opt in help:gmatch("%-%-([%w][%w%-]*)") do
    local roff = "\\-\\-" .. (opt:gsub("%-", "\\-"))      -- --tls-ca is \-\-tls\-ca in roff
    if not man:find(roff, 1, true) then
      missing[#missing + 1] = "--" .. opt
    end
  end
  T.eq(missing, {}, "options of jetlua --help missing from contrib/man/jetlua.1")
  local commands = man:match("%.SH COMMANDS(.-)%.SH ")
  for cmd in help:gmatch("\n  jetlua (%l+)") do
    if cmd ~= "run" and not commands:find('%.B[RI]? "?' .. cmd .. "[ \"\n]") then missing[#missing + 1] = cmd end
  end
  T.eq(missing, {}, "commands of jetlua --help missing from COMMANDS in contrib/man/jetlua.1")
  if T.run_command({ "sh", "-c", "command -v man >/dev/null" }) == 0 then
    local out, err
    st, out, err = run({ "man", "--warnings", "-l", src .. "/contrib/man/jetlua.1" }, dir,
      { MANWIDTH = "80", MANPAGER = "cat", PAGER = "cat", LC_ALL = "C.UTF-8" }, "man")
    T.eq(st, 0, err)
    T.eq(err, "", "man --warnings")
    T.ok(out:find("JETLUA_LUA_DIR", 1, true), out)
  end
end)

T.run()
