-- Shared by the jetlua command-line tools (jetlua stream|consumer|pub|sub|kv):
-- argument parsing, readable tables, --json output, clear errors.
local jet = require "jetlua"

local U = {}

-- appended to every tool's --help
U.connection_help = [[

Connection (the `jetlua run` options, anywhere on the line): --server URL (or NATS_URL);
credentials --user with --password-file FILE, --token-file FILE, --creds FILE, --nkey FILE
(or NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_CREDS, NATS_NKEY; --password and --token
work too but show in the process list); --tls-ca, --tls-cert, --tls-key. With no server:
the embedded server of --state-dir (default ./.jetlua), the one `jetlua run` uses there.
]]

-- spec: { flags = { json = "bool", count = "number", ["msg-id"] = "string", ... }, usage = "..." }
-- returns positional list, options table; prints usage and exits on --help or a mistake.
function U.args(argv, spec)
  local pos, opt = {}, {}
  local i = 1
  spec.flags.json = spec.flags.json or "bool"
  while i <= #argv do
    local a = argv[i]
    if a == "--help" or a == "-h" then
      io.stdout:write(spec.usage, U.connection_help)
      jet.exit(0)
    elseif a == "--" then
      for k = i + 1, #argv do pos[#pos + 1] = argv[k] end
      break
    elseif a:sub(1, 2) == "--" then
      local name, val = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local kind = spec.flags[name]
      if not kind then U.fail("unknown option '--" .. name .. "'", spec.usage) end
      if kind == "bool" then
        opt[name] = true
      else
        if not val then i = i + 1; val = argv[i] end
        if val == nil then U.fail("--" .. name .. " needs a value", spec.usage) end
        if kind == "number" then
          local n = tonumber(val)
          if not n then U.fail("--" .. name .. ": '" .. val .. "' is not a number", spec.usage) end
          val = n
        end
        opt[name] = val
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return pos, opt
end

-- print an error and leave with status 2 (a mistake on the command line) or 1
function U.fail(msg, usage, status)
  io.stderr:write("jetlua: " .. msg .. "\n")
  if usage then io.stderr:write(usage) end
  jet.exit(status or 2)

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
