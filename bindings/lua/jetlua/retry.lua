-- jetlua.retry: what happens to a message whose handler failed.
--
-- A policy is a function (msg, err, meta) -> action[, arg], called on the
-- loop after the handler raised (err: the error value, meta: msg:metadata()):
--   "nak", delay      redeliver after delay seconds (0: at once; nil: the
--                     default back-off, 1 s, 5 s, 15 s, then 30 s by delivery)
--   "term"            never redeliver
--   "ack"             drop it as done
--   "dlq", subject    publish it to subject (waiting for the PubAck), then term it
-- Anything else (or nil) naks with the default back-off. jet.retry.backoff
-- builds the usual one. jet.fail.permanent(err) raises an error that skips
-- the retries.
--
-- js:consume(stream, consumer, handler, {retry = policy}) wraps the handler
-- with M.wrap: the handler runs under xpcall and the policy's action is
-- carried out before the handler's coroutine ends (so the engine never
-- sends a second ack); the engine then counts the error and logs it with
-- its traceback and the action (repeated errors once per 10 s).
local jet = require "jetlua"
local A = require "jetlua.argcheck"

local M = {}

-- ---- permanent failures ----

local Permanent = {}
Permanent.__index = Permanent
Permanent.__tostring = function(e) return "permanent failure: " .. tostring(e.err) end

local fail = {}
-- raise an error that no retry policy retries
function fail.permanent(err, level)
  if err == nil then A.argerr("jet.fail.permanent", "err", "an error value expected, got nil") end
  if level ~= nil and (type(level) ~= "number" or level < 0) then
    A.argerr("jet.fail.permanent", "level", "number >= 0 expected, got " .. type(level))
  end
  error(setmetatable({ err = err, permanent = true }, Permanent), level == 0 and 0 or (level or 1) + 1)
end
function fail.is_permanent(err)
  return getmetatable(err) == Permanent
end
M.fail = fail

-- ---- the backoff policy ----

local BACKOFF_KEYS = { initial = "number", max = "number", factor = "number", jitter = "number",
                       max_deliver = "number", dlq = "string", on_exhausted = "string" }

-- jet.retry.backoff{initial=1, max=30, factor=2, jitter=0.1, max_deliver=5, dlq=subject,
--                   on_exhausted="dlq"|"term"|"ack"} -> policy
function M.backoff(o)
  o = o or {}
  local fname = "jet.retry.backoff"
  if type(o) ~= "table" then A.argerr(fname, "opts", "table expected, got " .. type(o)) end
  for k, v in pairs(o) do
    if not BACKOFF_KEYS[k] then A.unknown(fname, k) end
    if type(v) ~= BACKOFF_KEYS[k] then A.argerr(fname, k, BACKOFF_KEYS[k] .. " expected, got " .. type(v)) end
  end
  local initial, maxd, factor = o.initial or 1, o.max or 30, o.factor or 2
  local jitter, max_deliver = o.jitter or 0.1, o.max_deliver or 5
  local exhausted = o.on_exhausted or (o.dlq and "dlq" or "term")
  if exhausted ~= "dlq" and exhausted ~= "term" and exhausted ~= "ack" then
    A.argerr(fname, "on_exhausted", "'dlq', 'term' or 'ack' expected, got '" .. exhausted .. "'")
  end
  if exhausted == "dlq" and not o.dlq then
    A.argerr(fname, "dlq", "a subject is needed when on_exhausted is 'dlq'")
  end
  if initial < 0 then A.argerr(fname, "initial", "must be >= 0, got " .. initial) end
  if maxd < initial then A.argerr(fname, "max", ("must be >= initial (%g), got %g"):format(initial, maxd)) end
  if factor < 1 then A.argerr(fname, "factor", "must be >= 1, got " .. factor) end
  if jitter < 0 or jitter >= 1 then A.argerr(fname, "jitter", "must be >= 0 and < 1, got " .. jitter) end
  if max_deliver < 1 then A.argerr(fname, "max_deliver", "must be >= 1, got " .. max_deliver) end
  local policy = { max_deliver = max_deliver, dlq = o.dlq }
  -- the delay before delivery n + 1, after n failed deliveries
  function policy.delay(n)
    local d = math.min(maxd, initial * factor ^ (n - 1))
    if jitter > 0 then d = d * (1 - jitter + 2 * jitter * math.random()) end
    return d
  end
  return setmetatable(policy, { __call = function(_, _msg, err, meta)
    local n = meta and meta.num_delivered or 1
    if fail.is_permanent(err) or n >= max_deliver then
      if exhausted == "dlq" then return "dlq", o.dlq end
      return exhausted
    end
    return "nak", policy.delay(n)
  end })
end

-- ---- the dead-letter publish ----

local function dlq_publish(js, msg, subject, meta, err)
  local headers = {
    ["Jetlua-Dlq-Subject"] = msg.subject,
    ["Jetlua-Dlq-Stream"] = meta.stream,
    ["Jetlua-Dlq-Sequence"] = string.format("%d", meta.stream_seq),
    ["Jetlua-Dlq-Delivered"] = string.format("%d", meta.num_delivered),
    ["Jetlua-Dlq-Error"] = tostring(err):gsub("[\r\n].*", ""):sub(1, 512),
    ["Jetlua-Dlq-Time"] = os.date("!%Y-%m-%dT%H:%M:%SZ"),
  }
  for k, v in pairs(msg.headers or {}) do
    if headers[k] == nil and k ~= "Nats-Msg-Id" then headers[k] = v end
  end
  -- Nats-Msg-Id = stream:sequence: a retried DLQ publish never makes a second copy
  return js:publish(subject, msg.data, { msg_id = meta.stream .. ":" .. string.format("%d", meta.stream_seq),
                                         headers = headers })
end

local m_dlq

local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and type(mt.__call) == "function"
end
M.callable = callable

-- The handler the engine runs when opts.retry is a policy. On a failure
-- it returns (jet._handler_failed, traceback, what it did) for the engine
-- (bindings/ljs_consume.c) to count and log.
function M.wrap(js, handler, policy, what)
  m_dlq = m_dlq or jet.metrics.counter("jetlua_js_dlq_total", nil, "messages moved to a dead-letter subject")
  local FAILED = jet._handler_failed
  return function(msg)
    local ok, rec = xpcall(handler, jet._capture_error, msg)   -- {value=, traceback=}
    if ok then return end
    local err = rec.value
    local meta = msg:metadata()
    local action, arg = policy(msg, err, meta)
    if action == "term" then
      msg:term()
      return FAILED, rec.traceback, "term"
    elseif action == "ack" then
      msg:ack()
      return FAILED, rec.traceback, "ack"
    elseif action == "dlq" then
      local ack, code, detail = dlq_publish(js, msg, arg, meta, err)
      if ack then
        m_dlq:inc()
        msg:term()
        return FAILED, rec.traceback, "dlq " .. tostring(arg)
      end
      -- the DLQ did not take it: keep the original, it comes back later
      jet.log.error(("%s: dead-letter publish to %s failed (%s: %s); the message stays and comes back")
        :format(what, arg, tostring(code), tostring(detail)))
      msg:nak(5)
      return FAILED, rec.traceback, "dlq " .. tostring(arg) .. " failed, nak 5 s"
    end
    local delay = action == "nak" and type(arg) == "number" and arg >= 0 and arg
      or jet._redelivery_delay(meta.num_delivered or 1)
    if delay > 0 then msg:nak(delay) else msg:nak() end
    return FAILED, rec.traceback, ("nak, redelivery in %.3g s"):format(delay)
  end
end

return M
