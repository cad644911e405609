-- jetlua.service: NATS services (the "micro" Service API, ADR-32) written in Lua.
--
--   local svc = nc:service{ name = "calc", version = "1.2.3", description = "adds numbers" }
--   svc:endpoint("add", { subject = "calc.add" }, function(req) req:respond(...) end)
--
-- A service answers $SRV.PING|INFO|STATS, $SRV.<verb>.<name> and
-- $SRV.<verb>.<name>.<id> with the io.nats.micro.v1 JSON documents, so
-- `nats micro ls|info|stats`, nats.go, nats.js and nats.c see it like one of
-- theirs. Each endpoint is a subscription in a queue group ("q" unless told
-- otherwise), so every process running the service shares the load. Request
-- counts, errors and processing times are kept per endpoint.
--
-- Built on nc:subscribe. The subscriptions are made with the unwrapped
-- nc:subscribe (jetlua.reload's own is for what scripts declare): hot reload
-- reconciles services as a whole (see svc:_stage / _commit below and reload.lua).
local jet = require "jetlua"
local A = require "jetlua.argcheck"

local argerr = A.argerr
local floor, monotonic = math.floor, jet.monotonic

local S = {}

local TYPE = {
  PING = "io.nats.micro.v1.ping_response",
  INFO = "io.nats.micro.v1.info_response",
  STATS = "io.nats.micro.v1.stats_response",
}
S.TYPE = TYPE
local DEFAULT_QUEUE = "q"

local m_errors

-- ---- checks ----

local function set(list) local s = {} for _, v in ipairs(list) do s[v] = true end return s end

local keys_ok = A.opts

-- the NATS subject rules of bindings/jl_check.c, for a message worded for this API
function S.subject_problem(s, wildcards_ok)
  if s == "" then return "empty subject" end
  if s:find("[%z\1-\32\127]") then return "whitespace or control character" end
  local toks = {}
  for tok in (s .. "."):gmatch("([^.]*)%.") do toks[#toks + 1] = tok end
  for i, tok in ipairs(toks) do
    if tok == "" then return "empty token" end
    if tok == "*" or tok == ">" then
      if not wildcards_ok then return "wildcards are not allowed here" end
      if tok == ">" and i < #toks then return "'>' must be the last token" end
    elseif tok:find("[*>]") then
      return "a wildcard must be a whole token"
    end
  end
end

-- semver.org: MAJOR.MINOR.PATCH[-pre.release][+build.meta], numbers without leading zeros
local function numeric_ok(n) return n == "0" or n:match("^[1-9]%d*$") ~= nil end
function S.semver_ok(v)
  local major, minor, patch, rest = v:match("^(%d+)%.(%d+)%.(%d+)(.*)$")
  if not (major and numeric_ok(major) and numeric_ok(minor) and numeric_ok(patch)) then return false end
  local pre, build = rest:match("^%-([^+]*)(.*)$")
  if pre then rest = build else pre = nil end
  if rest ~= "" then
    build = rest:match("^%+(.*)$")
    if not build then return false end
  else
    build = nil
  end
  local function idents(s, check)
    for id in (s .. "."):gmatch("([^.]*)%.") do
      if id == "" or id:find("[^%w%-]") or not check(id) then return false end
    end
    return true
  end
  if pre and not idents(pre, function(id) return not id:match("^%d+$") or numeric_ok(id) end) then
    return false
  end
  if build and not idents(build, function() return true end) then return false end
  return true
end

local function check_name(fname, arg, v)
  if type(v) ~= "string" then argerr(fname, arg, "string expected, got " .. type(v)) end
  if v == "" or v:find("[^%w%-_]") then
    argerr(fname, arg, ("invalid name '%s' (letters, digits, '-' and '_' only)"):format(v))
  end
  return v
end

local function check_metadata(fname, v)
  if v == nil then return {} end
  if type(v) ~= "table" then argerr(fname, "metadata", "table expected, got " .. type(v)) end
  local out = {}
  for k, x in pairs(v) do
    if type(k) ~= "string" or type(x) ~= "string" then
      argerr(fname, "metadata", ("string keys and values expected, got %s = %s"):format(type(k), type(x)))
    end
    out[k] = x
  end
  return out
end

-- queue: a name, false (no queue group), or nil (inherit)
local function check_queue(fname, v)
  if v == nil or v == false then return v end
  if type(v) ~= "string" then argerr(fname, "queue", "string or false expected, got " .. type(v)) end
  local why = S.subject_problem(v, false)
  if why then argerr(fname, "queue", ("invalid queue group name '%s' (%s)"):format(v, why)) end
  return v
end

local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and type(mt.__call) == "function"
end

local SERVICE_KEYS = set{ "name", "version", "description", "metadata", "queue", "stats_handler" }

local function check_config(opts)
  local fname = "nc:service"
  if type(opts) ~= "table" then argerr(fname, "opts", "table expected, got " .. type(opts)) end
  keys_ok(fname, opts, SERVICE_KEYS)
  local cfg = { name = check_name(fname, "name", opts.name) }
  if type(opts.version) ~= "string" then argerr(fname, "version", "string expected, got " .. type(opts.version)) end
  if not S.semver_ok(opts.version) then
    argerr(fname, "version", ("'%s' is not a semantic version (like 1.2.3, 2.0.0-rc.1)"):format(opts.version))
  end
  cfg.version = opts.version
  if opts.description ~= nil and type(opts.description) ~= "string" then
    argerr(fname, "description", "string expected, got " .. type(opts.description))
  end
  cfg.description = opts.description or ""
  cfg.metadata = check_metadata(fname, opts.metadata)
  cfg.queue = check_queue(fname, opts.queue)
  if cfg.queue == nil then cfg.queue = DEFAULT_QUEUE end
  if opts.stats_handler ~= nil and not callable(opts.stats_handler) then
    argerr(fname, "stats_handler", "function expected, got " .. type(opts.stats_handler))
  end
  cfg.stats_handler = opts.stats_handler
  return cfg
end

local ENDPOINT_KEYS = set{ "subject", "queue", "metadata", "concurrency", "pending_limit" }

-- (name, [opts], handler) -> a declaration {name, subject, queue, metadata, concurrency, pending_limit, fn}
local function check_endpoint(fname, prefix, default_queue, name, opts, fn)
  if fn == nil and callable(opts) then opts, fn = nil, opts end
  check_name(fname, "name", name)
  keys_ok(fname, opts, ENDPOINT_KEYS)
  opts = opts or {}
  if not callable(fn) then argerr(fname, "handler", "function expected, got " .. type(fn)) end
  local subject = opts.subject
  if subject == nil then subject = name
  elseif type(subject) ~= "string" then argerr(fname, "subject", "string expected, got " .. type(subject)) end
  if prefix ~= "" then subject = prefix .. "." .. subject end
  local why = S.subject_problem(subject, true)
  if why then argerr(fname, "subject", ("invalid subject '%s' (%s)"):format(subject, why)) end
  local queue = check_queue(fname, opts.queue)
  if queue == nil then queue = default_queue end
  for _, k in ipairs{ "concurrency", "pending_limit" } do
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or v ~= floor(v)) then
      argerr(fname, k, "integer expected, got " .. tostring(v))
    end
  end
  if opts.concurrency and opts.concurrency < 1 then
    argerr(fname, "concurrency", "must be >= 1, got " .. opts.concurrency)
  end
  return { name = name, subject = subject, queue = queue, metadata = check_metadata(fname, opts.metadata),
           concurrency = opts.concurrency or 1, pending_limit = opts.pending_limit, fn = fn }
end

-- ---- subscriptions ----

-- nc:subscribe without jetlua.reload's wrapper (services reconcile themselves)
function S.subscribe(nc, subject, fn, opts)
  local R = package.loaded["jetlua.reload"]
  local sub = type(R) == "table" and R.subscribe or nc.subscribe
  return sub(nc, subject, fn, opts)
end

local function drain_later(sub)
  if sub then jet.spawn(function() pcall(sub.drain, sub) end) end
end

-- ---- JSON: fields in the protocol's order, integers as integers ----
-- (cjson writes numbers with 14 significant digits: 1.2e+14 ns would not
-- decode into a Go time.Duration)

local json_str

local function enc_map(t)
  local keys = {}
  for k in pairs(t or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = json_str(k) .. ":" .. json_str(t[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local ORDER = {
  PING = { "type", "name", "id", "version", "metadata" },
  INFO = { "type", "name", "id", "version", "metadata", "description", "endpoints", "subject" },
  STATS = { "type", "name", "id", "version", "metadata", "started", "endpoints",
            "num_requests", "num_errors", "last_error", "processing_time", "average_processing_time" },
  INFO_EP = { "name", "subject", "queue_group", "metadata" },
  STATS_EP = { "name", "subject", "queue_group", "num_requests", "num_errors", "last_error",
               "processing_time", "average_processing_time", "data" },
}

local function enc_obj(t, order)
  local parts = {}
  for _, k in ipairs(order) do
    local v = t[k]
    if v ~= nil then
      local s
      if k == "metadata" then s = enc_map(v)
      elseif k == "data" then s = jet.json.encode(v)
      elseif k == "endpoints" then
        local eps = {}
        for i, e in ipairs(v) do eps[i] = enc_obj(e, order == ORDER.INFO and ORDER.INFO_EP or ORDER.STATS_EP) end
        s = "[" .. table.concat(eps, ",") .. "]"
      elseif type(v) == "number" then s = ("%d"):format(v)
      else s = json_str(v) end
      parts[#parts + 1] = json_str(k) .. ":" .. s
    end
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- ---- requests ----

local Req = {}
local ReqMT = {
  __index = function(r, k)
    local m = Req[k]
    if m ~= nil then return m end
    return r.msg[k]           -- data, subject, reply, headers, size
  end,
  __tostring = function(r) return "jetlua.service.request(" .. tostring(r.msg.subject) .. ")" end,
}

local RESPOND_KEYS = set{ "headers" }

function Req.header(r, name) return r.msg:header(name) end
function Req.header_values(r, name) return r.msg:header_values(name) end

local function respond(r, data, opts, fname)
  if getmetatable(r) ~= ReqMT then argerr(fname, "self", "request expected, got " .. type(r)) end
  if data ~= nil and type(data) ~= "string" then argerr(fname, "data", "string expected, got " .. type(data)) end
  keys_ok(fname, opts, RESPOND_KEYS)
  if opts and opts.headers ~= nil and type(opts.headers) ~= "table" then
    argerr(fname, "headers", "table expected, got " .. type(opts.headers))
  end
  if not r.msg.reply then return nil, "no_reply", fname .. ": the request has no reply subject" end
  local ok, code, detail = r.msg:respond(data, opts)
  if ok then rawset(r, "_responded", true) end
  return ok, code, detail
end

-- req:respond(data, [{headers=}]) -> true, or nil, code, detail
function Req.respond(r, data, opts) return respond(r, data, opts, "req:respond") end

-- req:respond_json(value, [{headers=}])
function Req.respond_json(r, v, opts)
  local ok, s = pcall(jet.json.encode, v)
  if not ok then
    local why = tostring(s):gsub("^.-:%d+: ", ""):gsub("^jet%.json%.encode: bad argument 'value': ", "")
    argerr("req:respond_json", "value", why)
  end
  return respond(r, s, opts, "req:respond_json")
end

local function header_text(s)
  s = tostring(s):gsub("[\r\n]+", " ")
  if #s > 1024 then s = s:sub(1, 1024) end
  return s
end

-- req:respond_error(code, description, [data], [{headers=}]): the service
-- error headers; counted in the endpoint's num_errors and last_error
function Req.respond_error(r, code, description, data, opts)
  local fname = "req:respond_error"
  if type(code) == "number" then
    if code ~= floor(code) then argerr(fname, "code", "integer expected, got " .. code) end
    code = ("%d"):format(code)
  elseif type(code) ~= "string" or code == "" then
    argerr(fname, "code", "number or non-empty string expected, got " .. (code == "" and "''" or type(code)))
  end
  if type(description) ~= "string" or description == "" then
    argerr(fname, "description", "non-empty string expected, got " .. (description == "" and "''" or type(description)))
  end
  keys_ok(fname, opts, RESPOND_KEYS)
  local headers = {}
  if opts and opts.headers ~= nil then
    if type(opts.headers) ~= "table" then argerr(fname, "headers", "table expected, got " .. type(opts.headers)) end
    for k, v in pairs(opts.headers) do headers[k] = v end
  end
  code, description = header_text(code), header_text(description)
  headers["Nats-Service-Error"] = description
  headers["Nats-Service-Error-Code"] = code
  rawset(r, "_err", code .. ":" .. description)
  return respond(r, data, { headers = headers }, fname)
end

-- ---- the service ----

local Service = {}
Service.__index = Service
S.Service = Service

local Group = {}
Group.__index = Group

local function new_stats()
  return { num_requests = 0, num_errors = 0, last_error = "", processing_time = 0 }
end

local function handle(svc, ep, msg)
  local req = setmetatable({ msg = msg }, ReqMT)
  local t0 = monotonic()
  local ok, rec = xpcall(ep.fn, jet._capture_error, req)      -- {value=, traceback=}
  local st = ep.stats
  st.num_requests = st.num_requests + 1
  st.processing_time = st.processing_time + floor((monotonic() - t0) * 1e9)
  if not ok then
    m_errors = m_errors or jet.metrics.counter("jetlua_handler_errors_total")
    m_errors:inc()
    jet.log.error(("service '%s' endpoint '%s' (%s) failed: %s"):format(svc.name, ep.name, ep.subject,
      rec.traceback))
    local text = tostring(rec.value):match("^[^\n]*")
    if not rawget(req, "_responded") and msg.reply then
      pcall(Req.respond_error, req, 500, text ~= "" and text or "handler error")
    end
    rawset(req, "_err", "500:" .. header_text(text))
  end
  local err = rawget(req, "_err")
  if err then
    st.num_errors = st.num_errors + 1
    st.last_error = err
    svc._last_error = err
  end
end

local function subscribe_endpoint(svc, ep)
  local sub, code, detail = S.subscribe(svc.nc, ep.subject, function(msg) return handle(svc, ep, msg) end,
    { queue = ep.queue or nil, concurrency = ep.concurrency, pending_limit = ep.pending_limit })
  ep.sub = sub
  return sub, code, detail
end

-- the verbs' subscriptions: $SRV.<VERB>, $SRV.<VERB>.<name>, $SRV.<VERB>.<name>.<id>
local function subscribe_verbs(svc)
  for _, verb in ipairs{ "PING", "INFO", "STATS" } do
    local function answer(msg)
      if msg.reply then msg:respond(svc:_json(verb)) end
    end
    for _, subject in ipairs{ "$SRV." .. verb, "$SRV." .. verb .. "." .. svc.name,
                              "$SRV." .. verb .. "." .. svc.name .. "." .. svc.id } do
      local sub, code, detail = S.subscribe(svc.nc, subject, answer)
      if not sub then return nil, code, detail end
      svc._verb_subs[#svc._verb_subs + 1] = sub
    end
  end
  return true
end

-- nc:service(opts) -> svc
function S.service(nc, opts)
  local cfg = check_config(opts)
  if nc:status() == "closed" then A.error("nc:service: the connection is closed") end
  local svc = setmetatable({
    nc = nc, name = cfg.name, id = jet._nuid(),
    _cfg = cfg, _started = jet.now(), _endpoints = {}, _verb_subs = {}, _stopped = false, _last_error = "",
  }, Service)
  local ok, code, detail = subscribe_verbs(svc)
  if not ok then
    svc:_abort()
    return nil, code, detail
  end
  return svc
end

function Service:__tostring()
  return ("jetlua.service(%s %s, id %s)"):format(self.name, self._cfg.version, self.id)
end

local function check_self(svc, fname)
  A.check_self(fname, svc, Service, "service")
end

-- the configuration endpoints declared now get their defaults from
-- (during a reload run: the one the new code gave)
function Service:_config()
  return self._staged and self._staged.cfg or self._cfg
end

local function add_endpoint(svc, fname, prefix, default_queue, name, opts, fn)
  check_self(svc, fname)
  if svc._stopped then A.error(fname .. ": the service is stopped") end
  if svc.nc:status() == "closed" then A.error(fname .. ": the connection is closed") end
  local d = check_endpoint(fname, prefix, default_queue or svc:_config().queue, name, opts, fn)
  if svc._staged then                 -- a reload run: applied by _commit when it succeeds
    svc._staged.eps[#svc._staged.eps + 1] = d
    return true
  end
  d.stats = new_stats()
  local sub, code, detail = subscribe_endpoint(svc, d)
  if not sub then return nil, code, detail end
  svc._endpoints[#svc._endpoints + 1] = d
  return true
end

-- svc:endpoint(name, [opts], handler) -> true, or nil, code, detail
function Service:endpoint(name, opts, fn)
  return add_endpoint(self, "svc:endpoint", "", nil, name, opts, fn)
end

local GROUP_KEYS = set{ "queue" }

local function new_group(svc, fname, prefix, parent_queue, name, opts)
  check_self(svc, fname)
  if type(name) ~= "string" then argerr(fname, "name", "string expected, got " .. type(name)) end
  keys_ok(fname, opts, GROUP_KEYS)
  local full = prefix == "" and name or (name == "" and prefix or prefix .. "." .. name)
  local why = full ~= "" and S.subject_problem(full, true)
  if why or full:find(">", 1, true) then
    argerr(fname, "name", ("invalid group name '%s' (%s)"):format(name, why or "'>' cannot be a prefix"))
  end
  local queue = check_queue(fname, opts and opts.queue)
  if queue == nil then queue = parent_queue end
  return setmetatable({ svc = svc, prefix = full, queue = queue }, Group)
end

-- svc:group(name, [{queue=}]) -> group; its endpoints listen on "<name>.<subject>"
function Service:group(name, opts)
  return new_group(self, "svc:group", "", nil, name, opts)
end

function Group:endpoint(name, opts, fn)
  A.check_self("group:endpoint", self, Group, "group")
  local svc = self.svc
  local queue = self.queue
  if queue == nil then queue = svc:_config().queue end
  return add_endpoint(svc, "group:endpoint", self.prefix, queue, name, opts, fn)
end

function Group:group(name, opts)
  A.check_self("group:group", self, Group, "group")
  return new_group(self.svc, "group:group", self.prefix, self.queue, name, opts)
end

function Service:stopped()
  check_self(self, "svc:stopped")
  return self._stopped or self.nc:status() == "closed"
end

-- svc:stop(): no more monitoring answers; endpoints are drained (requests
-- already received are handled and answered). Returns false if already stopped.
function Service:stop()
  check_self(self, "svc:stop")
  if self._stopped then return false end
  self._stopped = true
  for _, sub in ipairs(self._verb_subs) do pcall(sub.unsubscribe, sub) end
  for _, ep in ipairs(self._endpoints) do drain_later(ep.sub) end
  return true
end

-- a service made by a reload run that failed: gone at once
function Service:_abort()
  self._stopped = true
  for _, sub in ipairs(self._verb_subs) do pcall(sub.unsubscribe, sub) end
  for _, ep in ipairs(self._endpoints) do if ep.sub then pcall(ep.sub.unsubscribe, ep.sub) end end
end

function Service:reset()
  check_self(self, "svc:reset")
  for _, ep in ipairs(self._endpoints) do
    local st = ep.stats
    st.num_requests, st.num_errors, st.last_error, st.processing_time = 0, 0, "", 0
  end
  self._started, self._last_error = jet.now(), ""
end

local function rfc3339(t)
  local s = floor(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. (".%09dZ"):format(floor((t - s) * 1e9))
end

local function identity(svc, verb)
  local cfg = svc._cfg
  return { type = TYPE[verb], name = svc.name, id = svc.id, version = cfg.version, metadata = cfg.metadata }
end

-- svc:info() -> the INFO document as a table
function Service:info()
  check_self(self, "svc:info")
  local t = identity(self, "INFO")
  t.description = self._cfg.description
  t.endpoints = {}
  for i, ep in ipairs(self._endpoints) do
    t.endpoints[i] = { name = ep.name, subject = ep.subject, queue_group = ep.queue or "", metadata = ep.metadata }
  end
  t.subject = self._endpoints[1] and self._endpoints[1].subject   -- nats.go 1.22 (one endpoint per service)
  return t
end

-- svc:stats() -> the STATS document as a table (times in nanoseconds)
function Service:stats()
  check_self(self, "svc:stats")
  local t = identity(self, "STATS")
  t.started = rfc3339(self._started)
  t.endpoints = {}
  -- the totals are what nats.go 1.22 (one endpoint per service) reads
  local n, errs, pt = 0, 0, 0
  for i, ep in ipairs(self._endpoints) do
    local st = ep.stats
    local e = { name = ep.name, subject = ep.subject, queue_group = ep.queue or "",
                num_requests = st.num_requests, num_errors = st.num_errors, last_error = st.last_error,
                processing_time = st.processing_time,
                average_processing_time = st.num_requests > 0 and floor(st.processing_time / st.num_requests) or 0 }
    local h = self._cfg.stats_handler
    if h then
      local ok, v = pcall(h, { name = ep.name, subject = ep.subject, queue_group = ep.queue or "",
                               metadata = ep.metadata })
      if ok then e.data = v
      else jet.log.error(("service '%s': stats_handler failed: %s"):format(self.name, tostring(v))) end
    end
    t.endpoints[i] = e
    n, errs, pt = n + st.num_requests, errs + st.num_errors, pt + st.processing_time
  end
  t.num_requests, t.num_errors, t.last_error, t.processing_time = n, errs, self._last_error, pt
  t.average_processing_time = n > 0 and floor(pt / n) or 0
  return t
end

function Service:_json(verb)
  json_str = json_str or jet.json.encode
  local t = verb == "PING" and identity(self, "PING") or verb == "INFO" and self:info() or self:stats()
  return enc_obj(t, ORDER[verb])
end

-- ---- hot reload (called by jetlua.reload) ----
-- The k-th nc:service of a name on a connection is the same service in the
-- next run: same id, same stats. While the new code runs, its config and
-- endpoints are only collected (_stage); when the run succeeds _commit
-- reconciles them by endpoint name (same: handler swapped in place; new:
-- subscribed; gone: drained); when it fails, _unstage forgets them.

function Service:_stage(opts)
  self._staged = { cfg = false, eps = {} }
  self._staged.cfg = check_config(opts)
end

function Service:_unstage()
  self._staged = nil
end

-- -> swapped, started, stopped
function Service:_commit()
  local staged = self._staged
  self._staged = nil
  if not staged or self._stopped then return 0, 0, 0 end
  self._cfg = staged.cfg
  local old, count = {}, {}
  for _, ep in ipairs(self._endpoints) do
    count[ep.name] = (count[ep.name] or 0) + 1
    old[ep.name .. "#" .. count[ep.name]] = ep
  end
  local list, kept, swapped, started, stopped = {}, {}, 0, 0, 0
  count = {}
  for _, d in ipairs(staged.eps) do
    count[d.name] = (count[d.name] or 0) + 1
    local key = d.name .. "#" .. count[d.name]
    local ep = old[key]
    if ep then
      kept[key] = true
      ep.fn, ep.metadata = d.fn, d.metadata
      if ep.subject ~= d.subject or ep.queue ~= d.queue or ep.concurrency ~= d.concurrency
          or ep.pending_limit ~= d.pending_limit then
        local before = ep.sub
        ep.subject, ep.queue, ep.concurrency, ep.pending_limit = d.subject, d.queue, d.concurrency, d.pending_limit
        local sub, code, detail = subscribe_endpoint(self, ep)
        if not sub then
          jet.log.error(("service '%s' endpoint '%s': subscribe to %s failed: %s"):format(self.name, ep.name,
            ep.subject, tostring(detail or code)))
        end
        drain_later(before)
      end
      swapped = swapped + 1
    else
      ep = d
      ep.stats = new_stats()
      local sub, code, detail = subscribe_endpoint(self, ep)
      if not sub then
        jet.log.error(("service '%s' endpoint '%s': subscribe to %s failed: %s"):format(self.name, ep.name,
          ep.subject, tostring(detail or code)))
      end
      started = started + 1
    end
    list[#list + 1] = ep
  end
  for key, ep in pairs(old) do
    if not kept[key] then
      drain_later(ep.sub)
      stopped = stopped + 1
    end
  end
  self._endpoints = list
  return swapped, started, stopped
end

function Service:_endpoint_count() return #self._endpoints end

return S
