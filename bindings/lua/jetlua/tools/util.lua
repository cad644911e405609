-- Shared by the jetlua command-line tools (jetlua stream|consumer|pub|sub|req|kv|micro):
-- argument parsing, readable tables, --json output, clear errors.
local jet = require "jetlua"

local U = {}

-- appended to every tool's --help
U.connection_help = [[

Connection (the `jetlua run` options, anywhere on the line): -s/--server URL (or NATS_URL);
credentials --user with --password-file FILE, --token-file FILE, --creds FILE, --nkey FILE
(or NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_CREDS, NATS_NKEY; --password and --token
work too but show in the process list); --tls-ca, --tls-cert, --tls-key. With no server:
the embedded server of --state-dir (default ./.jetlua), the one `jetlua run` uses there.
Exit status: 0 done, 1 the server (or a service) said no, 2 a command-line mistake.
]]

-- "30s", "5m", "1h", "1d", "500ms", "1h30m", "90" (seconds) -> seconds, or nil
local UNITS = { ms = 0.001, s = 1, m = 60, h = 3600, d = 86400 }
function U.parse_duration(s)
  if tonumber(s) then return tonumber(s) end
  if type(s) ~= "string" or s == "" then return nil end
  local total, rest = 0, s
  while rest ~= "" do
    local n, unit, tail = rest:match("^(%d+%.?%d*)(%a+)(.*)$")
    if not n or not UNITS[unit] then return nil end
    total, rest = total + tonumber(n) * UNITS[unit], tail
  end
  return total
end

-- "1024", "64K", "10MB", "1GiB", "-1" (unlimited) -> bytes (powers of 1024), or nil
local SIZES = { k = 2 ^ 10, m = 2 ^ 20, g = 2 ^ 30, t = 2 ^ 40 }
function U.parse_size(s)
  if tonumber(s) then return tonumber(s) end
  local n, unit = tostring(s):lower():match("^(%d+%.?%d*)%s*([kmgt])i?b?$")
  if not n then return nil end
  return math.floor(tonumber(n) * SIZES[unit])
end

-- Option kinds: "bool", "number", "string", "strings" (repeatable: a list), "list" (comma-separated,
-- repeatable: a list), "duration" (seconds), "durations" (comma-separated), "size" (bytes), or a
-- list of the allowed values.
local function convert(name, kind, val, fail)
  if kind == "number" then
    local n = tonumber(val)
    if not n then fail("--" .. name .. ": '" .. val .. "' is not a number") end
    return n
  elseif kind == "duration" then
    local d = U.parse_duration(val)
    if not d or d < 0 then fail("--" .. name .. ": '" .. val .. "' is not a duration (30s, 5m, 1h, 1d or seconds)") end
    return d
  elseif kind == "size" then
    local n = U.parse_size(val)
    if not n then fail("--" .. name .. ": '" .. val .. "' is not a size (bytes, or 64K, 10M, 1G)") end
    return n
  elseif type(kind) == "table" then
    for _, v in ipairs(kind) do if v == val then return val end end
    fail("--" .. name .. ": '" .. val .. "' is not one of " .. table.concat(kind, ", "))
  end
  return val
end

-- spec: { name = "stream", usage = "...", flags = { count = "number", force = "bool", ... },
--         short = { f = "force" },
--         commands = { "ls", "view --from --count --subject", "rm --force" } }
-- `commands` (optional) lists each subcommand with the options it takes (--json always): a
-- missing or unknown subcommand, or an option another subcommand takes, is a mistake.
-- Returns the positional list and the options table; on --help prints the usage and exits 0;
-- on a mistake says what was wrong and exits 2. An unknown option is never ignored.
function U.args(argv, spec)
  local pos, opt = {}, {}
  local tool = "jetlua " .. spec.name
  local function fail(msg) U.fail(msg .. " (see " .. tool .. " --help)") end
  local short = spec.short or {}
  spec.flags.json = spec.flags.json or "bool"
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--help" or a == "-h" then
      io.stdout:write(spec.usage, U.connection_help)
      jet.exit(0)
    elseif a == "--" then
      for k = i + 1, #argv do pos[#pos + 1] = argv[k] end
      break
    elseif a:sub(1, 1) == "-" and #a > 1 and not tonumber(a) then
      local name, val
      if a:sub(1, 2) == "--" then
        name, val = a:match("^%-%-([^=]+)=(.*)$")
        name = name or a:sub(3)
      else
        name = short[a:sub(2)]
        if a == "-s" then fail("-s needs a value (a server URL)") end
        if not name then fail("unknown option '" .. a .. "'") end
      end
      local kind = spec.flags[name]
      if not kind then fail("unknown option '--" .. name .. "'") end
      if kind == "bool" then
        if val then fail("--" .. name .. " takes no value") end
        opt[name] = true
      else
        if not val then i = i + 1; val = argv[i] end
        if val == nil then fail("--" .. name .. " needs a value") end
        if kind == "strings" then
          opt[name] = opt[name] or {}
          table.insert(opt[name], val)
        elseif kind == "list" or kind == "durations" then
          opt[name] = opt[name] or {}
          for item in val:gmatch("[^,]+") do
            table.insert(opt[name], kind == "durations" and convert(name, "duration", item, fail) or item)
          end
        else
          opt[name] = convert(name, kind, val, fail)
        end
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  if spec.commands then
    local names, takes = {}, {}
    for _, c in ipairs(spec.commands) do
      local cname = c:match("^%S+")
      names[#names + 1] = cname
      takes[cname] = { json = true }
      for f in c:gmatch("%-%-([%w%-]+)") do
        assert(spec.flags[f], f)
        takes[cname][f] = true
      end
    end
    local cmd = pos[1]
    local list = "(" .. table.concat(names, ", ") .. ")"
    if not cmd then U.fail(spec.name .. ": which command? " .. list, spec.usage) end
    if not takes[cmd] then U.fail(spec.name .. ": unknown command '" .. cmd .. "' " .. list, spec.usage) end
    local keys = {}
    for k in pairs(opt) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      if not takes[cmd][k] then fail("option '--" .. k .. "' does not apply to '" .. tool .. " " .. cmd .. "'") end
    end
  end
  return pos, opt
end

-- headers from repeated --header K:V options (nil when none)
function U.headers(list)
  if not list then return nil end
  local h = {}
  for _, kv in ipairs(list) do
    local k, v = kv:match("^%s*([^:%s][^:]-)%s*:%s*(.*)$")
    if not k then U.fail("--header wants K:V, got '" .. kv .. "'") end
    if h[k] == nil then h[k] = v
    elseif type(h[k]) == "table" then table.insert(h[k], v)
    else h[k] = { h[k], v } end
  end
  return h
end

-- Asks `question` with [y/N] on the terminal; an answer other than yes fails with `refused`
-- (exit 1). With `force` (-f) it does not ask. Without a terminal on stdin it does not wait
-- for an answer that cannot come: it fails with `refused` and says to pass -f (exit 2). The
-- wait polls stdin between short sleeps, so the event loop (and the connection) keep turning.
local ffi = require "ffi"
pcall(ffi.cdef, [[
  struct jetlua_pollfd { int fd; short events; short revents; };
  int poll(struct jetlua_pollfd *fds, unsigned long nfds, int timeout);
  int isatty(int fd);
]])
function U.confirm(question, force, refused)
  if force then return end
  if ffi.C.isatty(0) ~= 1 then
    U.fail(refused .. ": stdin is not a terminal to ask on; pass -f to do it without asking")
  end
  io.stderr:write(question .. " [y/N] ")
  io.stderr:flush()
  local p = ffi.new("struct jetlua_pollfd[1]")
  p[0].fd, p[0].events = 0, 1          -- POLLIN
  while ffi.C.poll(p, 1, 0) == 0 do jet.sleep(0.05) end
  local line = io.stdin:read("*l")
  if not (line and line:match("^%s*[yY]")) then U.fail(refused, nil, 1) end
end

-- print an error and leave with status 2 (a mistake on the command line) or 1
function U.fail(msg, usage, status)
  io.stderr:write("jetlua: " .. msg .. "\n")
  if usage then io.stderr:write(usage) end
  jet.exit(status or 2)           -- never returns: the coroutine waits for the exit
end

-- a failed call: nil, code, detail -> message, status 1
function U.check(v, code, detail)
  if v == nil then U.fail((detail or code or "failed") .. (code and detail and (" [" .. code .. "]") or ""), nil, 1) end
  return v
end

function U.json(v)
  print(jet.json.encode(v))
end

function U.bytes(n)
  n = tonumber(n) or 0
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local u = 1
  while n >= 1024 and u < #units do n = n / 1024; u = u + 1 end
  return u == 1 and ("%d %s"):format(n, units[u]) or ("%.1f %s"):format(n, units[u])
end

function U.seconds(s)
  s = tonumber(s) or 0
  if s == 0 then return "-" end
  if s < 1 then return ("%dms"):format(math.floor(s * 1000 + 0.5)) end
  if s < 120 then return ("%gs"):format(s) end
  if s < 7200 then return ("%gm"):format(math.floor(s / 6 + 0.5) / 10) end
  if s < 172800 then return ("%gh"):format(math.floor(s / 360 + 0.5) / 10) end
  return ("%gd"):format(math.floor(s / 8640 + 0.5) / 10)
end

-- rows: list of lists of strings; header: list of column names
function U.table(header, rows)
  local w = {}
  for c, h in ipairs(header) do w[c] = #h end
  for _, r in ipairs(rows) do
    for c, v in ipairs(r) do
      r[c] = tostring(v)
      if #r[c] > w[c] then w[c] = #r[c] end
    end
  end
  local function line(r)
    local parts = {}
    for c = 1, #header do parts[c] = (r[c] or ""):gsub("%s+$", "") .. string.rep(" ", w[c] - #(r[c] or "")) end
    print((table.concat(parts, "  "):gsub("%s+$", "")))
  end
  line(header)
  local dashes = {}
  for c = 1, #header do dashes[c] = string.rep("-", w[c]) end
  line(dashes)
  for _, r in ipairs(rows) do line(r) end
end

-- key/value pairs, aligned
function U.pairs_table(list)
  local w = 0
  for _, kv in ipairs(list) do if #kv[1] > w then w = #kv[1] end end
  for _, kv in ipairs(list) do
    print(("%s%s  %s"):format(kv[1], string.rep(" ", w - #kv[1]), tostring(kv[2])))
  end
end

-- the server of the command line (or the embedded one); the detail of a failure never holds a
-- secret (jet.connect redacts URLs)
function U.connect()
  local nc, code, detail = jet.connect{ name = "jetlua-tool" }
  if not nc then U.fail("cannot connect: " .. tostring(detail or code) .. " [" .. tostring(code) .. "]", nil, 1) end
  return nc, nc:jetstream()
end

function U.printable(s, max)
  max = max or 200
  local out = s:gsub("[%z\1-\8\11-\31\127]", ".")
  if #out > max then out = out:sub(1, max) .. ("... (%d bytes)"):format(#s) end
  return out
end

return U
