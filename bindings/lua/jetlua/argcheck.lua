-- jetlua.argcheck: argument errors for the Lua half of the API, worded like
-- the C bindings' ("fname: bad argument 'arg': ...", "fname: unknown option
-- 'x'") and pointing at the caller's line: the level is the first stack
-- frame outside jetlua's own Lua files, however deep the check ran.
local A = {}

local HERE = debug.getinfo(1, "S").source:match("^(@.*/)[^/]*$") or "@?"

-- the error level, for a function called by A's functions, of the first frame outside jetlua
local function user_level()
  local level = 3
  while true do
    local info = debug.getinfo(level, "S")
    if not info then return 1 end
    local src = info.source
    if src:sub(1, #HERE) ~= HERE and src:sub(1, 8) ~= "=jetlua." and info.what ~= "C" then return level - 1 end
    level = level + 1
  end
end

-- raise msg at the script's line (the first frame outside jetlua's own files)
function A.error(msg)
  error(msg, user_level())
end

function A.argerr(fname, arg, msg)
  error(("%s: bad argument '%s': %s"):format(fname, arg, msg), user_level())
end

function A.unknown(fname, key)
  error(("%s: unknown option '%s'"):format(fname, tostring(key)), user_level())
end

-- stream and consumer names: letters, digits, '-' and '_'
function A.check_name(fname, arg, name)
  if type(name) ~= "string" then A.argerr(fname, arg, "string expected, got " .. type(name)) end
  if name == "" or name:find("[^%w%-_]") then
    A.argerr(fname, arg, ("invalid name '%s' (letters, digits, '-' and '_' only)"):format(name))
  end
end

-- the self of a method: obj.method(...) instead of obj:method(...) is the usual slip
function A.check_self(fname, self, mt, what)
  if type(self) ~= "table" or getmetatable(self) ~= mt then
    A.argerr(fname, "self", ("%s expected, got %s (call it as %s)"):format(what, type(self), fname))
  end
end

-- opts: nil or a table whose keys are all in `allowed` (a set); returns opts or {}
function A.opts(fname, opts, allowed, arg)
  if opts == nil then return {} end
  if type(opts) ~= "table" then A.argerr(fname, arg or "opts", "table expected, got " .. type(opts)) end
  for k in pairs(opts) do
    if type(k) ~= "string" or not allowed[k] then A.unknown(fname, k) end
  end
  return opts
end

-- an optional field of a given Lua type
function A.check_type(fname, arg, v, want)
  if v ~= nil and type(v) ~= want then A.argerr(fname, arg, want .. " expected, got " .. type(v)) end
end

return A
