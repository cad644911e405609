-- jetlua.jsconfig: stream and consumer configs as code (js:stream, js:consumer).
--
-- The declaration is the desired state: a setting left out of it means the
-- server's default, so removing a line from the declaration puts the default
-- back on the next run. Settings jetlua does not know (set by other tools) are
-- kept as the server has them.
--
-- Field tables: lua name -> { wire name, kind, [allowed values | shape], since = "x.y" }.
-- `since`: the first nats-server version that knows the field. Older servers
-- ignore unknown JSON fields silently (2.9 does), so js.lua checks that such a
-- field came back in the server's answer (C.ignored) and undoes the change if not.
local json = require("jetlua").json
local A = require "jetlua.argcheck"
local argerr, check_type = A.argerr, A.check_type

local C = {}

local NS = 1e9

local function set(list) local s = {} for _, v in ipairs(list) do s[v] = true end return s end

C.STREAM = {
  name = { "name", "string" }, subjects = { "subjects", "list" }, description = { "description", "string" },
  storage = { "storage", "enum", set{ "file", "memory" } },
  retention = { "retention", "enum", set{ "limits", "workqueue", "interest" } },
  max_age = { "max_age", "duration" }, max_bytes = { "max_bytes", "number" }, max_msgs = { "max_msgs", "number" },
  max_msgs_per_subject = { "max_msgs_per_subject", "number" }, max_msg_size = { "max_msg_size", "number" },
  discard = { "discard", "enum", set{ "old", "new" } }, duplicate_window = { "duplicate_window", "duration" },
  replicas = { "num_replicas", "number" }, allow_rollup = { "allow_rollup_hdrs", "boolean" },
  deny_delete = { "deny_delete", "boolean" }, deny_purge = { "deny_purge", "boolean" },
  allow_direct = { "allow_direct", "boolean" },
  mirror = { "mirror", "shape", "source" }, sources = { "sources", "shapes", "source" },
  placement = { "placement", "shape", "placement" }, republish = { "republish", "shape", "republish" },
  subject_transform = { "subject_transform", "shape", "transform", since = "2.10" },
}

C.CONSUMER = {
  durable = { "durable_name", "string" }, name = { "name", "string" }, description = { "description", "string" },
  filter_subject = { "filter_subject", "string" },
  deliver_policy = { "deliver_policy", "enum",
    set{ "all", "last", "new", "by_start_sequence", "by_start_time", "last_per_subject" } },
  opt_start_seq = { "opt_start_seq", "number" }, opt_start_time = { "opt_start_time", "string" },
  ack_policy = { "ack_policy", "enum", set{ "explicit", "all", "none" } },
  ack_wait = { "ack_wait", "duration" }, max_deliver = { "max_deliver", "number" },
  backoff = { "backoff", "durations" }, max_ack_pending = { "max_ack_pending", "number" },
  -- the server's JSON names for the MaxRequest* limits are max_batch, max_expires, max_bytes
  max_waiting = { "max_waiting", "number" }, max_request_batch = { "max_batch", "number" },
  max_request_expires = { "max_expires", "duration" },
  max_request_max_bytes = { "max_bytes", "number" },
  inactive_threshold = { "inactive_threshold", "duration" }, headers_only = { "headers_only", "boolean" },
  replay = { "replay_policy", "enum", set{ "instant", "original" } }, sample_freq = { "sample_freq", "string" },
  replicas = { "num_replicas", "number" }, mem_storage = { "mem_storage", "boolean" },
  metadata = { "metadata", "map", since = "2.10" },
}

-- nested settings: field -> Lua type or the name of another shape; required fields
local SHAPES = {
  source = { fields = { name = "string", opt_start_seq = "number", opt_start_time = "string",
                        filter_subject = "string", external = "external" }, required = { "name" } },
  external = { fields = { api = "string", deliver = "string" }, required = { "api" } },
  placement = { fields = { cluster = "string", tags = "strings" } },
  republish = { fields = { src = "string", dest = "string", headers_only = "boolean" }, required = { "src", "dest" } },
  transform = { fields = { src = "string", dest = "string" }, required = { "src", "dest" } },
}

local function strings(fname, arg, v)
  if type(v) == "string" then v = { v } end
  if type(v) ~= "table" then argerr(fname, arg, "list of strings expected, got " .. type(v)) end
  local out = {}
  for i, s in ipairs(v) do
    if type(s) ~= "string" then argerr(fname, arg, "entry " .. i .. ": string expected, got " .. type(s)) end
    out[i] = s
  end
  return out
end

local function shape(fname, arg, v, name)
  local sh = SHAPES[name]
  if type(v) ~= "table" then argerr(fname, arg, "table expected, got " .. type(v)) end
  local out = {}
  for k, x in pairs(v) do
    local want = type(k) == "string" and sh.fields[k]
    if not want then A.unknown(fname, arg .. "." .. tostring(k)) end
    if SHAPES[want] then out[k] = shape(fname, arg .. "." .. k, x, want)
    elseif want == "strings" then out[k] = strings(fname, arg .. "." .. k, x)
    else
      if type(x) ~= want then argerr(fname, arg .. "." .. k, want .. " expected, got " .. type(x)) end
      out[k] = x
    end
  end
  for _, r in ipairs(sh.required or {}) do
    if v[r] == nil then argerr(fname, arg .. "." .. r, "is required") end
  end
  if name == "source" then A.check_name(fname, arg .. ".name", v.name) end
  return out
end

-- Lua config -> wire config (only what was declared)
function C.to_wire(fname, cfg, fields)
  local out = {}
  for k, v in pairs(cfg) do
    local f = type(k) == "string" and fields[k]
    if not f then A.unknown(fname, k) end
    local wire, kind, extra = f[1], f[2], f[3]
    if kind == "duration" then
      check_type(fname, k, v, "number"); out[wire] = math.floor(v * NS + 0.5)
    elseif kind == "durations" then
      if type(v) ~= "table" then argerr(fname, k, "list of seconds expected, got " .. type(v)) end
      local l = {}
      for i, d in ipairs(v) do
        if type(d) ~= "number" then argerr(fname, k, "entry " .. i .. ": number expected, got " .. type(d)) end
        l[i] = math.floor(d * NS + 0.5)
      end
      out[wire] = l
    elseif kind == "list" then
      out[wire] = strings(fname, k, v)
    elseif kind == "enum" then
      if type(v) ~= "string" or not extra[v] then
        local names = {}
        for a in pairs(extra) do names[#names + 1] = a end
        table.sort(names)
        argerr(fname, k, ("'%s' is not one of %s"):format(tostring(v), table.concat(names, ", ")))
      end
      out[wire] = v
    elseif kind == "shape" then
      out[wire] = shape(fname, k, v, extra)
    elseif kind == "shapes" then
      if type(v) ~= "table" then argerr(fname, k, "list of tables expected, got " .. type(v)) end
      local l = {}
      for i, s in ipairs(v) do l[i] = shape(fname, k .. "[" .. i .. "]", s, extra) end
      out[wire] = l
    elseif kind == "map" then
      if type(v) ~= "table" then argerr(fname, k, "table of strings expected, got " .. type(v)) end
      for mk, mv in pairs(v) do
        if type(mk) ~= "string" or type(mv) ~= "string" then
          argerr(fname, k, "string keys and string values expected, got a " .. type(mk) .. " key and a "
            .. type(mv) .. " value")
        end
      end
      out[wire] = v
    else
      check_type(fname, k, v, kind); out[wire] = v
    end
  end
  return out
end

-- wire config -> Lua config (durations back to seconds)
function C.from_wire(cfg, fields)
  local out = {}
  for k, f in pairs(fields) do
    local v = cfg[f[1]]
    if v ~= nil and v ~= json.null then
      if f[2] == "duration" then v = v / NS
      elseif f[2] == "durations" then local l = {} for i, d in ipairs(v) do l[i] = d / NS end v = l end
      out[k] = v
    end
  end
  return out
end

-- ---- defaults and comparison ----

-- The server's defaults for what the declaration leaves out (nats-server 2.9,
-- as its answers show them); nil: unset.
local function stream_defaults(wire)
  local d = { retention = "limits", storage = "file", max_age = 0, max_bytes = -1, max_msgs = -1,
              max_msgs_per_subject = -1, max_msg_size = -1, discard = "old", num_replicas = 1 }
  if not wire.mirror and not wire.sources then d.subjects = { wire.name } end
  if not wire.mirror then
    local age = wire.max_age or 0
    d.duplicate_window = (age > 0 and age < 120 * NS) and age or 120 * NS
  end
  return d
end

local function consumer_defaults(wire)
  local d = { deliver_policy = "all", max_deliver = -1, max_waiting = 512, replay_policy = "instant" }
  if wire.ack_policy ~= "none" then
    d.ack_wait = wire.backoff and wire.backoff[1] or 30 * NS
    d.max_ack_pending = 1000
  end
  if not wire.durable_name then d.inactive_threshold = 5 * NS end    -- ephemerals go after 5 s idle
  return d
end

local function empty(v)
  return v == nil or v == json.null or v == false or v == 0 or v == ""
    or (type(v) == "table" and next(v) == nil)
end

-- does the server's value `cur` say what `want` says? Tables: every declared
-- key matches, and what the server has beyond them is empty.
local function covers(cur, want)
  if want == nil then return empty(cur) end
  if type(want) ~= "table" then
    if cur == json.null then cur = nil end
    return cur == want or (empty(cur) and empty(want))
  end
  if type(cur) ~= "table" then return empty(want) end
  for k, v in pairs(want) do if not covers(cur[k], v) then return false end end
  for k, v in pairs(cur) do if want[k] == nil and not empty(v) then return false end end
  return true
end

-- The desired config: what the server has that jetlua does not manage, the
-- declared settings, and (implicitly: left out) the defaults of the rest.
-- Returns desired, changed (does the server's config differ from it?).
function C.desired(kind, wire, current)
  local fields = kind == "stream" and C.STREAM or C.CONSUMER
  local defaults = kind == "stream" and stream_defaults(wire) or consumer_defaults(wire)
  local managed = {}
  for _, f in pairs(fields) do managed[f[1]] = true end
  local desired, changed = {}, false
  for k, v in pairs(current or {}) do
    if not managed[k] then desired[k] = v end
  end
  for w in pairs(managed) do
    local want = wire[w]
    if want ~= nil then desired[w] = want else want = defaults[w] end
    if current and not covers(current[w], want) then changed = true end
  end
  return desired, changed
end

-- The first declared field that needs a newer server and that the server's
-- answer does not have (it ignored it), as "lua_name", "since"; or nil.
function C.ignored(cfg, fields, answered)
  for k, f in pairs(fields) do
    if f.since and cfg[k] ~= nil and not empty(cfg[k]) and empty((answered or {})[f[1]]) then
      return k, f.since
    end
  end
  return nil
end

return C
