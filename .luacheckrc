-- luacheck configuration (Debian: lua-check). Run by scripts/lint.sh over every .lua file
-- of the tree: bindings/lua, the Lua chunks embedded in the binary (runtime/embedded,
-- bindings/embedded), bindings/types, scripts (with the examples) and tests.
std = "luajit"          -- jetlua embeds LuaJIT 2.1 (OpenResty's branch): Lua 5.1 + bit, jit, ...
-- `arg` (the script's arguments, set by `jetlua run`) is part of the luajit std.

max_line_length = 120

-- Methods that ignore their implicit self are a normal part of an interface
-- (handle:stop() on a wrapper, ...): not worth a warning.
self = false

-- The argument-error tables keep one case (call, exact message) per line.
files["tests/lua/test_bad_input.lua"] = { max_line_length = false }
