-- jetlua.pull: js:consume, js:messages, js:fetch, js:fetch_bytes.
--
-- The engine is C (bindings/ljs_consume.c, see bindings/ljs_pull.h); this
-- file checks arguments, checks the consumer once (it must exist and be a
-- pull consumer), and picks the defaults. See README "Consuming" for what
-- each option means.
local jet = require "jetlua"

local M = {}

-- Options a handler brings along, used where js:consume's options leave them
-- out: jet.idempotent's wrapper asks for a concurrency that keeps its KV
-- operations in flight. handler -> {concurrency=}; weak keys.
M.handler_defaults = setmetatable({}, { __mode = "k" })

local A = require "jetlua.argcheck"
local argerr, check_name = A.argerr, A.check_name

local function keys_ok(fname, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then argerr(fname, "opts", "table expected, got " .. type(opts)) end
  for k in pairs(opts) do
    if type(k) ~= "string" or not allowed[k] then
      A.unknown(fname, k)
    end
  end
  return opts
end

local function num(fname, opts, key, min, int)
  local v = opts[key]
  if v == nil then return nil end
  if type(v) ~= "number" then argerr(fname, key, "number expected, got " .. type(v)) end
  if v < min then argerr(fname, key, ("must be >= %s, got %s"):format(min, v)) end
  if int and v ~= math.floor(v) then argerr(fname, key, "integer expected, got " .. v) end
  return v
end

local function set(list) local s = {} for _, v in ipairs(list) do s[v] = true end return s end

local PULL_KEYS = { "max_messages", "max_bytes", "threshold_messages", "threshold_bytes", "expires",
                    "heartbeat", "on_error" }
local CONSUME_KEYS = set{ "concurrency", "auto_ack", "in_progress", "retry", unpack(PULL_KEYS) }
local MESSAGES_KEYS = set(PULL_KEYS)
local FETCH_KEYS = set{ "expires", "heartbeat", "no_wait", "max_bytes" }

-- The shared options of consume and messages -> the table the engine reads.
local function pull_opts(fname, opts)
  local o = {}
  o.max_bytes = num(fname, opts, "max_bytes", 1, true)
  o.max_messages = num(fname, opts, "max_messages", 1, true) or (o.max_bytes and 1000000 or 4000)
  o.threshold_messages = num(fname, opts, "threshold_messages", 0, true) or math.floor(o.max_messages / 2)
  if o.threshold_messages >= o.max_messages then
    argerr(fname, "threshold_messages", "must be < max_messages (" .. o.max_messages .. ")")
  end
  if o.max_bytes then
    o.threshold_bytes = num(fname, opts, "threshold_bytes", 0, true) or math.floor(o.max_bytes / 2)
  elseif opts.threshold_bytes ~= nil then
    argerr(fname, "threshold_bytes", "needs max_bytes")
  end
  o.expires = num(fname, opts, "expires", 0.1) or 30
  local hb = opts.heartbeat
  if hb == false then hb = 0
  elseif hb == nil then hb = math.min(o.expires / 2, 15)
  else
    hb = num(fname, opts, "heartbeat", 0)
    if hb > 0 and 2 * hb > o.expires then
      argerr(fname, "heartbeat", ("must be at most expires/2 (%g s), got %g"):format(o.expires / 2, hb))
    end
  end
  o.heartbeat = hb
  if opts.on_error ~= nil and type(opts.on_error) ~= "function" then
    argerr(fname, "on_error", "function expected, got " .. type(opts.on_error))
  end
  return o
end

-- The consumer as the server has it (wire config, info), or nil, code,
-- detail. A push consumer is refused here: pulling from it gets "409
-- Consumer is push based".
local function pull_consumer(js, fname, stream, consumer)
  local r, code, detail = js:_api("CONSUMER.INFO." .. stream .. "." .. consumer)
  if not r then return nil, code, detail end
  if r.config and type(r.config.deliver_subject) == "string" and r.config.deliver_subject ~= "" then
    return nil, "push_consumer", ("%s: consumer %s/%s is a push consumer (it has a deliver_subject)")
      :format(fname, stream, consumer)
  end
  return r.config or {}, r
end

local function next_subject(js, stream, consumer)
  return js.prefix .. "CONSUMER.MSG.NEXT." .. stream .. "." .. consumer
end

-- What the engine needs to watch the consumer: where to ask for its info
-- (when heartbeats stop, and every 10 s), its max-deliveries advisories,
-- and the request limits it has (pulls are sized within them).
local function watch_opts(o, js, stream, consumer, cfg, info)
  o.info_subject = js.prefix .. "CONSUMER.INFO." .. stream .. "." .. consumer
  o.advisory_subject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." .. stream .. "." .. consumer
  local function pos(v) return type(v) == "number" and v > 0 and v or nil end
  o.max_request_batch = pos(cfg.max_batch)
  o.max_request_max_bytes = pos(cfg.max_bytes)
  o.max_request_expires = pos(cfg.max_expires) and cfg.max_expires / 1e9
  o.num_pending = info and info.num_pending
  o.num_ack_pending = info and info.num_ack_pending
  return o
end

-- Check everything and work out what the engine gets:
-- -> engine options, handler, on_error, what | nil, code, detail
function M.prepare(js, stream, consumer, handler, opts)
  local fname = "js:consume"
  check_name(fname, "stream", stream)
  check_name(fname, "consumer", consumer)
  if type(handler) ~= "function" then argerr(fname, "handler", "function expected, got " .. type(handler)) end
  opts = keys_ok(fname, opts, CONSUME_KEYS)
  local o = pull_opts(fname, opts)
  local hd = M.handler_defaults[handler]
  o.concurrency = num(fname, opts, "concurrency", 1, true) or (hd and hd.concurrency) or 1
  if opts.auto_ack ~= nil and type(opts.auto_ack) ~= "boolean" then
    argerr(fname, "auto_ack", "boolean expected, got " .. type(opts.auto_ack))
  end
  local ip = opts.in_progress
  if ip ~= nil and ip ~= false and ip ~= true then ip = num(fname, opts, "in_progress", 0.05) end
  local retry = require "jetlua.retry"
  if opts.retry ~= nil and not retry.callable(opts.retry) then
    argerr(fname, "retry", "a policy function expected (see jet.retry), got " .. type(opts.retry))
  end
  local cfg, info, detail = pull_consumer(js, fname, stream, consumer)
  if not cfg then return nil, info, detail end
  watch_opts(o, js, stream, consumer, cfg, info)
  o.auto_ack = opts.auto_ack
  if o.auto_ack == nil then o.auto_ack = cfg.ack_policy ~= "none" end
  if ip == true then ip = (cfg.ack_wait or 30e9) / 1e9 / 2 end
  -- buffered messages' ack_wait clocks run: the engine keeps the window within what the
  -- handlers get through in half of it (in_progress only covers running handlers)
  if cfg.ack_policy ~= "none" then o.ack_wait = (cfg.ack_wait or 30e9) / 1e9 end
  o.in_progress = ip or 0
  local what = ("consumer %s/%s"):format(stream, consumer)
  if opts.retry then
    local pmd = type(opts.retry) == "table" and opts.retry.max_deliver
    if pmd and cfg.max_deliver and cfg.max_deliver > 0 and cfg.max_deliver < pmd then
      jet.log.warn(("%s: its max_deliver (%d) is below the retry policy's (%d): the server stops "
        .. "redelivering before the policy gives up"):format(what, cfg.max_deliver, pmd))
    end
    handler = retry.wrap(js, handler, opts.retry, "handler of " .. what)
  end
  return o, handler, opts.on_error, what
end

-- js:consume(stream, consumer, handler, opts) -> handle | nil, code, detail
function M.consume(js, stream, consumer, handler, opts)
  local o, h, on_error, what = M.prepare(js, stream, consumer, handler, opts)
  if not o then return nil, h, on_error end
  return jet._js_pull(js.nc, next_subject(js, stream, consumer), "consume", o, h, on_error, what)
end

-- js:messages(stream, consumer, opts) -> iterator | nil, code, detail
function M.messages(js, stream, consumer, opts)
  local fname = "js:messages"
  check_name(fname, "stream", stream)
  check_name(fname, "consumer", consumer)
  opts = keys_ok(fname, opts, MESSAGES_KEYS)
  local o = pull_opts(fname, opts)
  local cfg, info, detail = pull_consumer(js, fname, stream, consumer)
  if not cfg then return nil, info, detail end
  watch_opts(o, js, stream, consumer, cfg, info)
  return jet._js_pull(js.nc, next_subject(js, stream, consumer), "messages", o, nil, opts.on_error,
    ("consumer %s/%s"):format(stream, consumer))
end

local function fetch(js, fname, stream, consumer, n, bytes, opts)
  check_name(fname, "stream", stream)
  check_name(fname, "consumer", consumer)
  opts = keys_ok(fname, opts, FETCH_KEYS)
  local o = {}
  if opts.no_wait ~= nil and type(opts.no_wait) ~= "boolean" then
    argerr(fname, "no_wait", "boolean expected, got " .. type(opts.no_wait))
  end
  o.batch, o.max_bytes = n, bytes or num(fname, opts, "max_bytes", 1, true)
  if opts.no_wait then
    if opts.expires ~= nil or opts.heartbeat ~= nil then
      argerr(fname, "no_wait", "cannot be combined with expires or heartbeat")
    end
    o.no_wait, o.expires, o.heartbeat = true, 0, 0
  else
    o.expires = num(fname, opts, "expires", 0.1) or 5
    local hb = opts.heartbeat
    if hb == nil then hb = o.expires >= 10 and 5 or 0
    elseif hb == false then hb = 0
    else
      hb = num(fname, opts, "heartbeat", 0)
      if 2 * hb > o.expires then argerr(fname, "heartbeat", "must be at most expires/2") end
    end
    o.heartbeat = hb
  end
  if js.nc:status() == "closed" then return nil, "closed", fname .. ": the connection is closed" end
  local f, code, detail = jet._js_pull(js.nc, next_subject(js, stream, consumer), "fetch", o, nil, nil,
    ("fetch from %s/%s"):format(stream, consumer))
  if not f then return nil, code, detail end
  local list, err, d = f:fetch()
  if #list == 0 and (err == nil or err == "no_responders") then
    -- nothing came: say so when the consumer is missing (a pull to a missing
    -- consumer gets no answer at all from nats-server 2.9)
    local _, c2, d2 = js:_api("CONSUMER.INFO." .. stream .. "." .. consumer)
    if c2 then err, d = c2, d2 end
  end
  -- an error with nothing to show for it is nil, code, detail; messages that
  -- came before an error are still handed over (with the error)
  if err and #list == 0 then return nil, err, d end
  return list, err, d
end

-- js:fetch(stream, consumer, n, {expires=, no_wait=, heartbeat=, max_bytes=}) -> list, err, detail
function M.fetch(js, stream, consumer, n, opts)
  if type(n) ~= "number" or n < 1 or n ~= math.floor(n) then
    argerr("js:fetch", "n", "positive integer expected, got " .. tostring(n))
  end
  return fetch(js, "js:fetch", stream, consumer, n, nil, opts)
end

-- js:fetch_bytes(stream, consumer, max_bytes, opts) -> list, err, detail
function M.fetch_bytes(js, stream, consumer, max_bytes, opts)
  if type(max_bytes) ~= "number" or max_bytes < 1 or max_bytes ~= math.floor(max_bytes) then
    argerr("js:fetch_bytes", "max_bytes", "positive integer expected, got " .. tostring(max_bytes))
  end
  if type(opts) == "table" and opts.max_bytes then A.unknown("js:fetch_bytes", "max_bytes") end
  return fetch(js, "js:fetch_bytes", stream, consumer, 1000000, max_bytes, opts)
end

return M
