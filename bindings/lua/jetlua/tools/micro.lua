-- jetlua micro ls|info|stats: find and watch NATS services (nc:service, nats.go
-- micro, nats.js, ...) through their $SRV.INFO and $SRV.STATS subjects.
local jet = require "jetlua"
local U = require "jetlua.tools.util"

local usage = [[
Usage:
  jetlua micro ls [NAME]            services that answer: name, version, id, endpoints, description
  jetlua micro info NAME [ID]       description, metadata and endpoints of each instance
  jetlua micro stats NAME [ID]      requests, errors and processing time of each endpoint
Options: --timeout S (how long to wait for answers, default 1), --json (machine-readable
output), and the `jetlua run` connection options (--server URL, --user, --password,
--token, --creds, --tls-*). With no server, jetlua uses the embedded one of ./.jetlua.
]]

local pos, opt = U.args({ ... }, { name = "micro", usage = usage, flags = { timeout = "duration" },
  commands = { "ls --timeout", "info --timeout", "stats --timeout" } })
local cmd, name, id = pos[1], pos[2], pos[3]
if #pos > (cmd == "ls" and 2 or 3) then U.fail("micro " .. cmd .. ": unexpected argument '" .. pos[#pos] .. "'") end
if cmd ~= "ls" and not name then
  U.fail("micro " .. cmd .. ": which service? (jetlua micro " .. cmd .. " NAME [ID])", usage)
end
if opt.timeout and opt.timeout <= 0 then U.fail("--timeout must be > 0", usage) end
local function valid(s) return s and s ~= "" and not s:find("[^%w%-_]") end
if name and not valid(name) then U.fail("micro: invalid service name '" .. name .. "'", usage) end
if id and not valid(id) then U.fail("micro: invalid service id '" .. id .. "'", usage) end

local nc = U.connect()
local query = { timeout = opt.timeout or 1 }

-- 1234567 ns -> "1.23ms"
local function duration(ns)
  ns = tonumber(ns) or 0
  if ns == 0 then return "0" end
  if ns < 1e3 then return ("%dns"):format(ns) end
  if ns < 1e6 then return ("%.3gus"):format(ns / 1e3) end
  if ns < 1e9 then return ("%.3gms"):format(ns / 1e6) end
  return ("%.3fs"):format(ns / 1e9)
end

local function metadata(m)
  local keys = {}
  for k in pairs(m or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = k .. "=" .. tostring(m[k]) end
  return #parts > 0 and table.concat(parts, ", ") or "-"
end

local function none()
  if name then
    U.fail(("no service named '%s'%s answered within %gs"):format(name, id and (" with id " .. id) or "",
      query.timeout), nil, 1)
  end
end

if cmd == "ls" then
  local list = U.check(jet.micro.info(nc, name, query))
  if #list == 0 then none() end
  if opt.json then
    U.json(list)
  elseif #list == 0 then
    print("no services")
  else
    local rows = {}
    for _, s in ipairs(list) do
      rows[#rows + 1] = { s.name, s.version, s.id, #s.endpoints, s.description ~= "" and s.description or "-" }
    end
    U.table({ "NAME", "VERSION", "ID", "ENDPOINTS", "DESCRIPTION" }, rows)
  end
elseif cmd == "info" then
  local list = U.check(jet.micro.info(nc, name, id, query))
  if #list == 0 then none() end
  if opt.json then U.json(list) else
    for i, s in ipairs(list) do
      if i > 1 then print() end
      U.pairs_table{
        { "name", s.name }, { "id", s.id }, { "version", s.version },
        { "description", (s.description or "") ~= "" and s.description or "-" }, { "metadata", metadata(s.metadata) },
      }
      print()
      local rows = {}
      for _, e in ipairs(s.endpoints) do
        rows[#rows + 1] = { e.name, e.subject, (e.queue_group or "") ~= "" and e.queue_group or "-",
          metadata(e.metadata) }
      end
      U.table({ "ENDPOINT", "SUBJECT", "QUEUE", "METADATA" }, rows)
    end
  end
else
  local list = U.check(jet.micro.stats(nc, name, id, query))
  if #list == 0 then none() end
  if opt.json then U.json(list) else
    local rows = {}
    for _, s in ipairs(list) do
      for _, e in ipairs(s.endpoints) do
        rows[#rows + 1] = { s.name, s.id, e.name, e.num_requests, e.num_errors, duration(e.processing_time),
          duration(e.average_processing_time), e.last_error ~= "" and e.last_error or "-" }
      end
    end
    U.table({ "NAME", "ID", "ENDPOINT", "REQUESTS", "ERRORS", "PROCESSING", "AVERAGE", "LAST ERROR" }, rows)
  end
end
nc:close()
