-- jetlua.micro (jet.micro): find and watch NATS services, written with any
-- client (jetlua's nc:service, nats.go, nats.js, nats.c ...).
--
--   jet.micro.ping(nc, [name, [id]], [{timeout=1, max=}])  -> list of PING answers
--   jet.micro.info(nc, [name, [id]], [opts])               -> list of INFO answers
--   jet.micro.stats(nc, [name, [id]], [opts])              -> list of STATS answers
--
-- One request on $SRV.<VERB>[.name[.id]] with a private reply subject; every
-- answer that arrives within `timeout` seconds is kept (or until `max`
-- answers, 1 when an id is given), sorted by name and id. Answers of the
-- first protocol (nats.go 1.22: one endpoint per service, its subject and
-- counters at the top level) get the `endpoints` list of the current one.
local jet = require "jetlua"
local A = require "jetlua.argcheck"
local service = require "jetlua.service"

local M = {}

local function null(v) if v == jet.json.null then return nil end return v end

local function normalize(verb, v)
  v.metadata = null(v.metadata) or {}
  if verb == "INFO" then
    if null(v.endpoints) == nil then
      v.endpoints = {}
      if type(v.subject) == "string" and v.subject ~= "" then
        v.endpoints[1] = { name = "default", subject = v.subject, queue_group = "q", metadata = {} }
      end
    end
    for _, e in ipairs(v.endpoints) do e.metadata = null(e.metadata) or {} end
  elseif verb == "STATS" then
    if null(v.endpoints) == nil then
      v.endpoints = {}
      if v.num_requests then
        v.endpoints[1] = { name = "default", subject = "", queue_group = "q", num_requests = v.num_requests,
          num_errors = v.num_errors or 0, last_error = null(v.last_error) or "",
          processing_time = v.processing_time or 0, average_processing_time = v.average_processing_time or 0 }
      end
    end
    for _, e in ipairs(v.endpoints) do
      e.last_error = null(e.last_error) or ""
      e.data = null(e.data)
    end
  end
  return v
end

local OPTS = { timeout = true, max = true }

local conn_mt = debug.getregistry()["jetlua.conn"]

local function gather(verb, fname, nc, a1, a2, a3)
  if getmetatable(nc) ~= conn_mt then
    A.argerr(fname, "nc", "connection expected, got " .. type(nc) .. " (call it as " .. fname .. "(nc, ...))")
  end
  local name, id, opts
  if type(a1) == "table" then opts = a1
  elseif type(a2) == "table" then name, opts = a1, a2
  else name, id, opts = a1, a2, a3 end
  if opts ~= nil and type(opts) ~= "table" then A.argerr(fname, "opts", "table expected, got " .. type(opts)) end
  opts = opts or {}
  for k in pairs(opts) do if not OPTS[k] then A.unknown(fname, k) end end
  if name ~= nil and (type(name) ~= "string" or name == "" or name:find("[^%w%-_]")) then
    A.argerr(fname, "name",
      "a service name expected, got " .. (type(name) == "string" and ("'" .. name .. "'") or type(name)))
  end
  if id ~= nil and (type(id) ~= "string" or id == "" or service.subject_problem(id, false)
                    or id:find(".", 1, true)) then
    A.argerr(fname, "id", "a service id expected, got " .. (type(id) == "string" and ("'" .. id .. "'") or type(id)))
  end
  local timeout, max = opts.timeout or 1, opts.max
  if type(timeout) ~= "number" or timeout <= 0 then A.argerr(fname, "timeout", "positive number expected") end
  if max ~= nil and (type(max) ~= "number" or max < 1) then A.argerr(fname, "max", "number >= 1 expected") end
  if id then max = max or 1 end
  local subject = "$SRV." .. verb .. (name and ("." .. name) or "") .. (id and ("." .. id) or "")
  local inbox = "_INBOX." .. jet._nuid()
  local out = {}
  local sub = service.subscribe(nc, inbox, function(msg)
    local ok, v = pcall(jet.json.decode, msg.data)
    if ok and type(v) == "table" then out[#out + 1] = normalize(verb, v) end
  end)
  local ok, code, detail = nc:publish(subject, "", { reply = inbox })
  if not ok then
    sub:unsubscribe()
    return nil, code, detail
  end
  local deadline = jet.monotonic() + timeout
  while jet.monotonic() < deadline and not (max and #out >= max) do jet.sleep(0.01) end
  sub:unsubscribe()
  table.sort(out, function(a, b)
    if a.name ~= b.name then return tostring(a.name) < tostring(b.name) end
    return tostring(a.id) < tostring(b.id)
  end)
  return out
end

function M.ping(nc, ...) return gather("PING", "jet.micro.ping", nc, ...) end
function M.info(nc, ...) return gather("INFO", "jet.micro.info", nc, ...) end
function M.stats(nc, ...) return gather("STATS", "jet.micro.stats", nc, ...) end

return M
