-- jetlua.js: JetStream management (streams and consumers as code) and sync publish.
--
-- Everything here is JSON request/reply on the $JS.API subjects through
-- nc:request, so every call yields its coroutine and none blocks the loop.
-- Durations are seconds in Lua and nanoseconds on the wire.
local jet = require "jetlua"
local json = jet.json

local JS = {}
JS.__index = JS


-- ---- argument checking (same wording as the C bindings; errors point at the caller) ----

local A = require "jetlua.argcheck"
local argerr, check_name, check_type = A.argerr, A.check_name, A.check_type

local function check_keys(fname, t, allowed)
  for k in pairs(t) do
    if type(k) ~= "string" then A.error(fname .. ": option keys must be strings, got a " .. type(k) .. " key") end
    if not allowed[k] then A.unknown(fname, k) end
  end
end

-- js.stream(...) instead of js:stream(...)
local function me(fname, self) A.check_self(fname, self, JS, "a JetStream context (nc:jetstream())") end

local function set(list) local s = {} for _, v in ipairs(list) do s[v] = true end return s end

-- ---- stream and consumer configs (jetlua/jsconfig.lua) ----

local C = require "jetlua.jsconfig"
local STREAM_FIELDS, CONSUMER_FIELDS, from_wire = C.STREAM, C.CONSUMER, C.from_wire
JS._from_wire = from_wire

-- ---- API calls ----

local ERR_CODES = {
  [10071] = "wrong_last_sequence", [10070] = "wrong_last_msg_id", [10060] = "stream_mismatch",
  [10054] = "message_too_large", [10097] = "header_too_large", [10023] = "insufficient_resources",
  [10008] = "cluster_unavailable", [10109] = "stream_sealed", [10059] = "stream_not_found",
  [10014] = "consumer_not_found", [10037] = "no_message_found", [10058] = "stream_name_in_use",
  [10065] = "subjects_overlap", [10052] = "immutable", [10039] = "not_enabled",
}

local function api_error(e)
  local code = ERR_CODES[e.err_code] or ("api_error")
  if e.code == 404 and code == "api_error" then code = "not_found" end
  return nil, code, ("%s (err_code %s)"):format(tostring(e.description), tostring(e.err_code)), e.err_code
end

-- JSON for the API. cjson writes numbers with at most 14 significant digits, so 7 days in
-- nanoseconds went out as 6.048e+14, which nats-server's integer fields reject ("invalid
-- JSON"). Whole numbers from 1e14 up are written out in full instead.
local function api_json(body)
  local big = {}
  local function copy(t)
    local o = setmetatable({}, getmetatable(t))
    for k, v in pairs(t) do
      if type(v) == "table" then
        v = copy(v)
      elseif type(v) == "number" and v == math.floor(v) and math.abs(v) >= 1e14 and math.abs(v) < 2 ^ 63 then
        big[#big + 1] = ("%d"):format(v)
        v = "\1jetlua-int:" .. #big .. "\1"
      end
      o[k] = v
    end
    return o
  end
  local marked = copy(body)
  if #big == 0 then return json.encode(body) end
  return (json.encode(marked):gsub('"\\u0001jetlua%-int:(%d+)\\u0001"', function(i) return big[tonumber(i)] end))
end

-- one API request: returns the decoded response, or nil, code, detail, err_code
function JS:_api(subject, body)
  local msg, err = self.nc:request(self.prefix .. subject, body and api_json(body) or "",
    { timeout = self.timeout })
  if not msg then
    if err == "no_responders" then return nil, "not_enabled", "JetStream is not enabled or not reachable" end
    return nil, err, "JetStream API " .. subject .. ": " .. tostring(err)
  end
  local ok, resp = pcall(json.decode, msg.data)
  if not ok or type(resp) ~= "table" then return nil, "bad_response", "JetStream API: " .. tostring(msg.data) end
  if type(resp.error) == "table" then return api_error(resp.error) end
  return resp
end

-- nc:jetstream({domain=, prefix=, timeout=})
local function jetstream(nc, opts)
  opts = opts or {}
  if type(opts) ~= "table" then argerr("nc:jetstream", "opts", "table expected, got " .. type(opts)) end
  check_keys("nc:jetstream", opts, set{ "domain", "prefix", "timeout", "max_pending", "max_pending_bytes",
    "ack_timeout", "retry" })
  check_type("nc:jetstream", "timeout", opts.timeout, "number")
  check_type("nc:jetstream", "max_pending", opts.max_pending, "number")
  check_type("nc:jetstream", "max_pending_bytes", opts.max_pending_bytes, "number")
  if opts.max_pending_bytes and opts.max_pending_bytes < 1024 then
    argerr("nc:jetstream", "max_pending_bytes", "must be at least 1024, got " .. opts.max_pending_bytes)
  end
  check_type("nc:jetstream", "ack_timeout", opts.ack_timeout, "number")
  if opts.max_pending and (opts.max_pending < 1 or opts.max_pending > 1000000) then
    argerr("nc:jetstream", "max_pending", "must be between 1 and 1,000,000, got " .. opts.max_pending)
  end
  if opts.ack_timeout and opts.ack_timeout <= 0 then argerr("nc:jetstream", "ack_timeout", "must be > 0 seconds") end
  -- retry: false (default) | true (5 retries) | number of retries | {attempts=, delay=}
  local retries, delay = 0, 0.25
  local r = opts.retry
  if r == true then retries = 5
  elseif type(r) == "number" and r >= 0 then retries = math.floor(r)
  elseif type(r) == "table" then
    check_keys("nc:jetstream retry", r, set{ "attempts", "delay" })
    check_type("nc:jetstream", "retry.attempts", r.attempts, "number")
    check_type("nc:jetstream", "retry.delay", r.delay, "number")
    retries, delay = math.floor(r.attempts or 5), r.delay or 0.25
  elseif r ~= nil and r ~= false then
    argerr("nc:jetstream", "retry", "boolean, number or {attempts=, delay=} expected, got " .. type(r))
  end
  local prefix = "$JS.API."
  if opts.prefix then
    check_type("nc:jetstream", "prefix", opts.prefix, "string")
    prefix = opts.prefix:gsub("%.$", "") .. "."
  elseif opts.domain then
    check_name("nc:jetstream", "domain", opts.domain)
    prefix = "$JS." .. opts.domain .. ".API."
  end
  return setmetatable({ nc = nc, prefix = prefix, timeout = opts.timeout or 5, domain = opts.domain,
    max_pending = math.floor(opts.max_pending or 4000), ack_timeout = opts.ack_timeout or 5,
    max_pending_bytes = math.floor(opts.max_pending_bytes or 64 * 1024 * 1024),
    retries = retries, retry_delay = delay }, JS)
end

-- ---- streams ----

local function stream_info(resp)
  return { config = from_wire(resp.config or {}, STREAM_FIELDS), state = resp.state, created = resp.created,
           cluster = resp.cluster }
end

-- "the server ignored <field>": undo what was just done, say why
local function not_supported(what, field, since, undone)
  return nil, "not_supported", ("%s: this nats-server ignored '%s' (it needs nats-server %s or newer); %s")
    :format(what, field, since, undone)
end

-- js:stream{...}: the declaration is the desired state (a setting left out is the server's
-- default). Creates the stream, or updates it when it differs.
-- Returns info, changed ("created"|"updated"|nil)
function JS:stream(cfg)
  me("js:stream", self)
  if type(cfg) ~= "table" then argerr("js:stream", "config", "table expected, got " .. type(cfg)) end
  check_name("js:stream", "name", cfg.name)
  local wire = C.to_wire("js:stream", cfg, STREAM_FIELDS)
  local name = cfg.name
  local cur, code, detail, ec = self:_api("STREAM.INFO." .. name)
  if not cur and code == "stream_not_found" then
    local r, c2, d2, e2 = self:_api("STREAM.CREATE." .. name, wire)
    if not r then return nil, c2, d2, e2 end
    local field, since = C.ignored(cfg, STREAM_FIELDS, r.config)
    if field then
      self:_api("STREAM.DELETE." .. name)
      return not_supported("js:stream " .. name, field, since, "the stream was not created")
    end
    return stream_info(r), "created"
  elseif not cur then
    return nil, code, detail, ec
  end
  local desired, changed = C.desired("stream", wire, cur.config)
  if not changed then return stream_info(cur), nil end
  local r, c2, d2, e2 = self:_api("STREAM.UPDATE." .. name, desired)
  if not r then
    if c2 == "api_error" and tostring(d2):find("can not") then c2 = "immutable" end
    return nil, c2, d2, e2
  end
  local field, since = C.ignored(cfg, STREAM_FIELDS, r.config)
  if field then
    self:_api("STREAM.UPDATE." .. name, cur.config)
    return not_supported("js:stream " .. name, field, since, "the update was undone")
  end
  return stream_info(r), "updated"
end

function JS:stream_info(name)
  me("js:stream_info", self)
  check_name("js:stream_info", "name", name)
  local r, c, d, e = self:_api("STREAM.INFO." .. name)
  if not r then return nil, c, d, e end
  return stream_info(r)
end

function JS:delete_stream(name)
  me("js:delete_stream", self)
  check_name("js:delete_stream", "name", name)
  local r, c, d, e = self:_api("STREAM.DELETE." .. name)
  if not r then return nil, c, d, e end
  return r.success == true
end

-- js:purge(name, {subject=, seq=, keep=}) -> number purged
function JS:purge(name, opts)
  me("js:purge", self)
  check_name("js:purge", "name", name)
  opts = A.opts("js:purge", opts, set{ "subject", "seq", "keep" })
  check_type("js:purge", "subject", opts.subject, "string")
  check_type("js:purge", "seq", opts.seq, "number")
  check_type("js:purge", "keep", opts.keep, "number")
  local body = next(opts) and { filter = opts.subject, seq = opts.seq, keep = opts.keep } or nil
  local r, c, d, e = self:_api("STREAM.PURGE." .. name, body)
  if not r then return nil, c, d, e end
  return r.purged
end

-- base64 (the API returns stored messages base64-encoded)
local B64 = {}
do
  local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  for i = 1, 64 do B64[chars:byte(i)] = i - 1 end
end
local function unbase64(s)
  if not s or s == json.null then return "" end
  local out, bits, nbits = {}, 0, 0
  for i = 1, #s do
    local v = B64[s:byte(i)]
    if v then
      bits = bits * 64 + v
      nbits = nbits + 6
      if nbits >= 8 then
        nbits = nbits - 8
        local byte = math.floor(bits / 2 ^ nbits)
        out[#out + 1] = string.char(byte)
        bits = bits - byte * 2 ^ nbits
      end
    end
  end
  return table.concat(out)
end

-- "NATS/1.0\r\nA: 1\r\nA: 2\r\n\r\n" -> {A = {"1","2"}} shaped like msg.headers
local function parse_headers(block)
  local h = {}
  for line in block:gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then
      if h[k] == nil then h[k] = v
      elseif type(h[k]) == "table" then h[k][#h[k] + 1] = v
      else h[k] = { h[k], v } end
    end
  end
  return h
end

local function stored_msg(r)
  local m = r.message
  return { subject = m.subject, seq = m.seq, data = unbase64(m.data), headers = parse_headers(unbase64(m.hdrs)),
           time = m.time }
end

function JS:get_msg(name, seq)
  me("js:get_msg", self)
  check_name("js:get_msg", "name", name)
  if type(seq) ~= "number" then argerr("js:get_msg", "seq", "number expected, got " .. type(seq)) end
  local r, c, d, e = self:_api("STREAM.MSG.GET." .. name, { seq = seq })
  if not r then return nil, c, d, e end
  return stored_msg(r)
end

function JS:get_last_msg(name, subject)
  me("js:get_last_msg", self)
  check_name("js:get_last_msg", "name", name)
  if type(subject) ~= "string" then argerr("js:get_last_msg", "subject", "string expected, got " .. type(subject)) end
  local r, c, d, e = self:_api("STREAM.MSG.GET." .. name, { last_by_subj = subject })
  if not r then return nil, c, d, e end
  return stored_msg(r)
end

function JS:delete_msg(name, seq)
  me("js:delete_msg", self)
  check_name("js:delete_msg", "name", name)
  if type(seq) ~= "number" then argerr("js:delete_msg", "seq", "number expected, got " .. type(seq)) end
  local r, c, d, e = self:_api("STREAM.MSG.DELETE." .. name, { seq = seq })
  if not r then return nil, c, d, e end
  return r.success == true
end

-- every page of a paged list: key is "streams" or "consumers"
function JS:_all_pages(subject, key, map)
  local out, offset = {}, 0
  while true do
    local r, c, d, e = self:_api(subject, { offset = offset })
    if not r then return nil, c, d, e end
    local page = r[key]
    if page == nil or page == json.null or #page == 0 then break end
    for _, v in ipairs(page) do out[#out + 1] = map and map(v) or v end
    offset = offset + #page
    if offset >= (r.total or 0) then break end
  end
  return out
end

function JS:stream_names()
  me("js:stream_names", self)
  return self:_all_pages("STREAM.NAMES", "streams")
end

function JS:streams()
  me("js:streams", self)
  return self:_all_pages("STREAM.LIST", "streams", stream_info)
end

function JS:account_info()
  me("js:account_info", self)
  return self:_api("INFO")
end

-- ---- consumers ----

local function consumer_info(r)
  return { stream = r.stream_name, name = r.name, config = from_wire(r.config or {}, CONSUMER_FIELDS),
           delivered = r.delivered, ack_floor = r.ack_floor, num_pending = r.num_pending,
           num_ack_pending = r.num_ack_pending, num_redelivered = r.num_redelivered,
           num_waiting = r.num_waiting }
end

-- js:consumer(stream, {...}): the declaration is the desired state, as for js:stream
function JS:consumer(stream, cfg)
  me("js:consumer", self)
  check_name("js:consumer", "stream", stream)
  if type(cfg) ~= "table" then argerr("js:consumer", "config", "table expected, got " .. type(cfg)) end
  local name = cfg.durable or cfg.name
  if name == nil then argerr("js:consumer", "durable", "a durable or name is required") end
  check_name("js:consumer", cfg.durable and "durable" or "name", name)
  local wire = C.to_wire("js:consumer", cfg, CONSUMER_FIELDS)
  wire.ack_policy = wire.ack_policy or "explicit"
  local cur, code, detail, ec = self:_api("CONSUMER.INFO." .. stream .. "." .. name)
  if not cur and code ~= "consumer_not_found" then return nil, code, detail, ec end
  local subject = cfg.durable and ("CONSUMER.DURABLE.CREATE." .. stream .. "." .. name)
                  or ("CONSUMER.CREATE." .. stream .. "." .. name)
  local body = wire
  if cur then
    local desired, changed = C.desired("consumer", wire, cur.config)
    if not changed then return consumer_info(cur), nil end
    body = desired
  end
  local r, c, d, e = self:_api(subject, { stream_name = stream, config = body })
  if not r then return nil, c, d, e end
  local field, since = C.ignored(cfg, CONSUMER_FIELDS, r.config)
  if field then
    if cur then self:_api(subject, { stream_name = stream, config = cur.config })
    else self:_api("CONSUMER.DELETE." .. stream .. "." .. name) end
    return not_supported(("js:consumer %s/%s"):format(stream, name), field, since,
      cur and "the update was undone" or "the consumer was not created")
  end
  return consumer_info(r), cur and "updated" or "created"
end

function JS:consumer_info(stream, name)
  me("js:consumer_info", self)
  check_name("js:consumer_info", "stream", stream)
  check_name("js:consumer_info", "name", name)
  local r, c, d, e = self:_api("CONSUMER.INFO." .. stream .. "." .. name)
  if not r then return nil, c, d, e end
  return consumer_info(r)
end

function JS:delete_consumer(stream, name)
  me("js:delete_consumer", self)
  check_name("js:delete_consumer", "stream", stream)
  check_name("js:delete_consumer", "name", name)
  local r, c, d, e = self:_api("CONSUMER.DELETE." .. stream .. "." .. name)
  if not r then return nil, c, d, e end
  return r.success == true
end

function JS:consumers(stream)
  me("js:consumers", self)
  check_name("js:consumers", "stream", stream)
  return self:_all_pages("CONSUMER.LIST." .. stream, "consumers", consumer_info)
end

-- js:ensure_stream_for("orders.created", template) -> stream ORDERS with subjects orders.>
function JS:ensure_stream_for(subject, template)
  me("js:ensure_stream_for", self)
  if type(subject) ~= "string" or subject == "" then
    argerr("js:ensure_stream_for", "subject", "a subject expected, got " .. (subject == "" and "''" or type(subject)))
  end
  check_type("js:ensure_stream_for", "template", template, "table")
  local first = subject:match("^([^%.]+)")
  local name = first:upper():gsub("[^%w%-_]", "_")
  local cfg = {}
  for k, v in pairs(template or {}) do cfg[k] = v end
  cfg.name = name
  cfg.subjects = { first .. ".>" }
  return self:stream(cfg)
end

-- ---- publish ----

-- Headers for the publish options shared by js:publish and js:publish_async.
local function publish_headers(fname, opts)
  local headers = {}
  if opts.headers ~= nil then
    if type(opts.headers) ~= "table" then argerr(fname, "headers", "table expected, got " .. type(opts.headers)) end
    for k, v in pairs(opts.headers) do headers[k] = v end
  end
  if opts.msg_id ~= nil then
    if type(opts.msg_id) ~= "string" then argerr(fname, "msg_id", "string expected, got " .. type(opts.msg_id)) end
    if opts.msg_id == "" then argerr(fname, "msg_id", "must not be empty") end
    headers["Nats-Msg-Id"] = opts.msg_id
  end
  local ex = opts.expect
  if ex ~= nil then
    if type(ex) ~= "table" then argerr(fname, "expect", "table expected, got " .. type(ex)) end
    check_keys(fname .. " expect", ex, set{ "stream", "last_seq", "last_subject_seq", "last_msg_id" })
    if ex.stream then headers["Nats-Expected-Stream"] = ex.stream end
    if ex.last_seq then headers["Nats-Expected-Last-Sequence"] = ("%d"):format(ex.last_seq) end
    if ex.last_subject_seq then headers["Nats-Expected-Last-Subject-Sequence"] = ("%d"):format(ex.last_subject_seq) end
    if ex.last_msg_id then headers["Nats-Expected-Last-Msg-Id"] = ex.last_msg_id end
  end
  if opts.timeout ~= nil and (type(opts.timeout) ~= "number" or opts.timeout <= 0) then
    argerr(fname, "timeout", "number > 0 expected, got " .. tostring(opts.timeout))
  end
  return next(headers) and headers or nil
end

-- js:publish(subject, data, {msg_id=, headers=, timeout=, expect={stream=, last_seq=,
--            last_subject_seq=, last_msg_id=}}) -> {stream=, seq=, duplicate=, domain=}
function JS:publish(subject, data, opts)
  me("js:publish", self)
  if type(subject) ~= "string" then argerr("js:publish", "subject", "string expected, got " .. type(subject)) end
  check_type("js:publish", "data", data, "string")
  opts = opts or {}
  if type(opts) ~= "table" then argerr("js:publish", "opts", "table expected, got " .. type(opts)) end
  check_keys("js:publish", opts, set{ "msg_id", "headers", "timeout", "expect" })
  local headers = publish_headers("js:publish", opts)
  jet._check_publish("js:publish", subject, data, headers ~= nil)
  local timeout = opts.timeout or self.timeout
  -- no responders (no stream yet, or an election) is retried twice, 250 ms apart, like nats.go
  local msg, err, detail
  for attempt = 1, 3 do
    msg, err, detail = self.nc:request(subject, data, { headers = headers, timeout = timeout })
    if msg or err ~= "no_responders" or attempt == 3 then break end
    jet.sleep(0.25)
  end
  if not msg then
    -- nc:request's detail without its own "nc:request to <subject>: "
    local own = "nc:request to " .. subject .. ": "
    if type(detail) == "string" and detail:sub(1, #own) == own then detail = detail:sub(#own + 1) end
    return nil, err, "js:publish to " .. subject .. ": " .. tostring(detail or err)
  end
  local ok, ack = pcall(json.decode, msg.data)
  if not ok or type(ack) ~= "table" then return nil, "bad_response", "js:publish: " .. tostring(msg.data) end
  if type(ack.error) == "table" then return api_error(ack.error) end
  return { stream = ack.stream, seq = ack.seq, duplicate = ack.duplicate == true, domain = ack.domain }
end

-- ---- async publish (the engine is C: bindings/ljs_publish.c) ----

-- the context's async publisher, or nil, "closed", detail
function JS:_publisher()
  local p = self._pa
  if not p then
    local code, detail
    p, code, detail = jet._js_publisher(self.nc, self.max_pending, self.ack_timeout, self.retries,
      self.retry_delay, ERR_CODES, self.max_pending_bytes)
    if not p then return nil, code, detail end
    self._pa = p
    if self._on_error then p:on_error(self._on_error) end
  end
  return p
end

local ASYNC_KEYS = set{ "msg_id", "headers", "timeout", "expect", "retry", "ack" }

-- js:_publish_linked(subject, data, msg_id, msg): the pipeline's hot path (no option
-- table): publish_async{msg_id = msg_id, ack = msg}
function JS:_publish_linked(subject, data, id, up)
  local p = self._pa
  if not p then
    local code, detail
    p, code, detail = self:_publisher()
    if not p then return nil, code, detail end
  end
  local r, c2, d2 = p:publish(subject, data, nil, id, nil, nil, up)
  while r == false do
    p:wait_slot()
    r, c2, d2 = p:publish(subject, data, nil, id, nil, nil, up)
  end
  return r, c2, d2
end

-- js:publish_async(subject, data, {msg_id=, headers=, timeout=, expect=, retry=, ack=}) -> future
-- Yields the calling coroutine while max_pending publishes are unacked.
function JS:publish_async(subject, data, opts)
  me("js:publish_async", self)
  local headers, id, timeout, retry, up
  if opts ~= nil then
    if type(opts) ~= "table" then argerr("js:publish_async", "opts", "table expected, got " .. type(opts)) end
    check_keys("js:publish_async", opts, ASYNC_KEYS)
    timeout = opts.timeout
    up = opts.ack
    if up ~= nil and type(up) ~= "userdata" then
      argerr("js:publish_async", "ack", "a received JetStream message expected, got " .. type(up))
    end
    if opts.headers == nil and opts.expect == nil and type(opts.msg_id) == "string" and opts.msg_id ~= ""
       and (opts.timeout == nil or (type(opts.timeout) == "number" and opts.timeout > 0)) then
      id = opts.msg_id                 -- the common case: no headers table per message
    else
      headers = publish_headers("js:publish_async", opts)
    end
    if opts.retry ~= nil then
      local r = opts.retry
      if r == true then retry = self.retries > 0 and self.retries or 5
      elseif r == false then retry = 0
      elseif type(r) == "number" and r >= 0 then retry = math.floor(r)
      else argerr("js:publish_async", "retry", "boolean or number of retries expected, got " .. tostring(r)) end
    end
  end
  local p = self._pa
  if not p then
    local code, detail
    p, code, detail = self:_publisher()
    if not p then
      jet._check_publish("js:publish_async", subject, data, headers ~= nil)   -- misuse still raises
      return nil, code, detail
    end
  end
  local f, c2, d2 = p:publish(subject, data, headers, id, timeout, retry, up)
  while f == false do
    p:wait_slot()
    f, c2, d2 = p:publish(subject, data, headers, id, timeout, retry, up)
  end
  return f, c2, d2
end

-- number of async publishes not acked yet
function JS:publish_async_pending()
  me("js:publish_async_pending", self)
  return self._pa and self._pa:pending() or 0
end

-- yields until every async publish is acked or failed, or the timeout;
-- returns how many are still pending
function JS:publish_async_complete(timeout)
  me("js:publish_async_complete", self)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    argerr("js:publish_async_complete", "timeout", "number >= 0 expected, got " .. tostring(timeout))
  end
  if not self._pa then return 0 end
  return self._pa:complete(timeout)
end

-- fn(info) for every async publish that failed for good and whose future
-- nobody waited on: info = {subject=, data=, msg_id=, error=, detail=, err_code=}
function JS:on_publish_error(fn)
  me("js:on_publish_error", self)
  if fn ~= nil and type(fn) ~= "function" then
    argerr("js:on_publish_error", "fn", "function expected, got " .. type(fn))
  end
  self._on_error = fn
  if self._pa then self._pa:on_error(fn) end
end

-- {published=, acked=, failed=, retried=, pending=, max_pending=}
function JS:publish_async_stats()
  me("js:publish_async_stats", self)
  if not self._pa then
    return { published = 0, acked = 0, failed = 0, retried = 0, pending = 0, max_pending = self.max_pending,
             pending_bytes = 0, max_pending_bytes = self.max_pending_bytes, buffer_waits = 0,
             fast_acks = 0 }
  end
  return self._pa:stats()
end

-- ---- pull consumers (jetlua/pull.lua, engine in bindings/ljs_consume.c) ----

function JS:consume(stream, consumer, handler, opts)
  me("js:consume", self)
  return require("jetlua.pull").consume(self, stream, consumer, handler, opts)
end
function JS:messages(stream, consumer, opts)
  me("js:messages", self)
  return require("jetlua.pull").messages(self, stream, consumer, opts)
end
function JS:fetch(stream, consumer, n, opts)
  me("js:fetch", self)
  return require("jetlua.pull").fetch(self, stream, consumer, n, opts)
end
function JS:fetch_bytes(stream, consumer, max_bytes, opts)
  me("js:fetch_bytes", self)
  return require("jetlua.pull").fetch_bytes(self, stream, consumer, max_bytes, opts)
end

function JS:ordered(stream, cfg)
  me("js:ordered", self)
  return require("jetlua.ordered").ordered(self, stream, cfg)
end

-- ---- key-value buckets (jetlua/kv.lua) ----

JS._stored_msg = stored_msg
function JS:create_kv(cfg)
  me("js:create_kv", self)
  return require("jetlua.kv").create_kv(self, cfg)
end
function JS:kv(bucket)
  me("js:kv", self)
  return require("jetlua.kv").open_kv(self, bucket)
end
function JS:delete_kv(bucket)
  me("js:delete_kv", self)
  return require("jetlua.kv").delete_kv(self, bucket)
end

JS.jetstream = jetstream   -- nc:jetstream(opts) loads this module and calls it

return JS
