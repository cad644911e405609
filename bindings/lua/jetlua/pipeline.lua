-- jetlua.pipeline: consume -> steps -> publish, with effectively-once hand-off.
--
--   jet.pipeline{
--     js = js, name = "enrich",
--     from = { stream = "ORDERS", consumer = "enrich", subject = "orders.created" },
--     codec = "json",                         -- decode on the way in, encode on the way out
--     steps = {
--       { filter = function(o) return o.qty > 0 end },
--       { map = function(o) o.total = o.qty * o.price; return o end },
--       { flat_map = function(o) return o.items end },
--       { route = function(o) return "orders.enriched." .. o.region end },
--     },
--     to = "orders.enriched",                 -- or function(value, msg) -> subject
--     retry = jet.retry.backoff{ max_deliver = 5, dlq = "dlq.enrich" },
--   }
--
-- Each upstream message runs through the steps (a step may yield); every
-- output is published with publish_async and Nats-Msg-Id
-- "<upstream stream>:<sequence>[:<index>]", and the upstream message is
-- acked only once every output got its PubAck. A redelivered message
-- therefore never adds a second downstream message inside the downstream
-- stream's duplicate window. A step that raises goes to the retry policy
-- (default: nak at once); a failed publish naks the upstream message (1 s).
-- Publishing is pipelined: the next message is handled while earlier
-- outputs wait for their acks (bounded by the js context's max_pending).
local jet = require "jetlua"

local M = {}

local STEP_KINDS = { map = true, filter = true, flat_map = true, route = true, batch = true }
local KEYS = { js = "table", name = "string", from = "table", steps = "table", to = true, retry = true,
               codec = "string", concurrency = "number", max_messages = "number", on_error = "function" }

local A = require "jetlua.argcheck"

local function bad(arg, msg) A.argerr("jet.pipeline", arg, msg) end

local function check(cfg)
  if type(cfg) ~= "table" then bad("config", "table expected, got " .. type(cfg)) end
  for k, v in pairs(cfg) do
    local want = KEYS[k]
    if not want then A.unknown("jet.pipeline", k) end
    if want ~= true and type(v) ~= want then bad(k, want .. " expected, got " .. type(v)) end
  end
  if not cfg.js then bad("js", "the JetStream context is needed") end
  if not cfg.name or not cfg.name:match("^[%w%-_]+$") then
    bad("name", "a name (letters, digits, - and _) is needed")
  end
  if not cfg.from or type(cfg.from.stream) ~= "string" then
    bad("from", "{stream=, [consumer=], [subject=]} expected")
  end
  for k in pairs(cfg.from) do
    if k ~= "stream" and k ~= "consumer" and k ~= "subject" then A.unknown("jet.pipeline", "from." .. tostring(k)) end
  end
  if cfg.codec and cfg.codec ~= "json" and cfg.codec ~= "raw" then bad("codec", "'json' or 'raw' expected") end
  local steps = cfg.steps or {}
  for i, st in ipairs(steps) do
    if type(st) ~= "table" then bad("steps", "step " .. i .. ": table expected") end
    local kind, n = nil, 0
    for k in pairs(st) do
      n = n + 1
      if not STEP_KINDS[k] then
        bad("steps", ("step %d: unknown kind '%s' (map, filter, flat_map, route, batch)"):format(i, tostring(k)))
      end
      kind = k
    end
    if n ~= 1 then bad("steps", "step " .. i .. ": exactly one of map, filter, flat_map, route, batch") end
    if kind == "batch" then
      local b = st.batch
      if type(b) ~= "table" or type(b.size) ~= "number" or b.size < 1 then
        bad("steps", "step " .. i .. ": batch needs {size=, [timeout=]}")
      end
      if i ~= #steps then bad("steps", "batch must be the last step") end
    elseif type(st[kind]) ~= "function" then
      bad("steps", ("step %d: %s needs a function"):format(i, kind))
    end
  end
  local to = cfg.to
  local has_route = false
  for _, st in ipairs(steps) do if st.route then has_route = true end end
  if to == nil and not has_route then bad("to", "a subject or a function (value, msg) -> subject is needed") end
  if to ~= nil and type(to) ~= "string" and type(to) ~= "function" then bad("to", "subject or function expected") end
  if cfg.retry ~= nil and not require("jetlua.retry").callable(cfg.retry) then bad("retry", "a policy expected") end
  return steps
end

-- run the steps over one value: returns a list of {value=, subject=}
local function run_steps(steps, value, msg)
  local items = { { value = value } }
  for _, st in ipairs(steps) do
    local out = {}
    for _, it in ipairs(items) do
      if st.map then
        it.value = st.map(it.value, msg); out[#out + 1] = it
      elseif st.filter then
        if st.filter(it.value, msg) then out[#out + 1] = it end
      elseif st.flat_map then
        local list = st.flat_map(it.value, msg)
        if type(list) ~= "table" then error("flat_map must return a list, got " .. type(list), 0) end
        for _, v in ipairs(list) do out[#out + 1] = { value = v, subject = it.subject } end
      elseif st.route then
        it.subject = st.route(it.value, msg); out[#out + 1] = it
      end
    end
    items = out
  end
  return items
end

function M.pipeline(cfg)
  local steps = check(cfg)
  local from = cfg.from
  -- a context of its own: its publish window and stats are the pipeline's
  local js = cfg.js.nc:jetstream{ prefix = cfg.js.prefix, timeout = cfg.js.timeout,
    max_pending = cfg.js.max_pending, ack_timeout = cfg.js.ack_timeout, retry = cfg.js.retries }
  local json = cfg.codec == "json"
  local batch = #steps > 0 and steps[#steps].batch or nil
  if batch then steps = { unpack(steps, 1, #steps - 1) } end
  local consumer = from.consumer or cfg.name
  local stats = { filtered = 0 }
  local what = "pipeline " .. cfg.name

  -- the upstream consumer: made if it is missing
  if not js:consumer_info(from.stream, consumer) then
    local ok, code, detail = js:consumer(from.stream, { durable = consumer, ack_policy = "explicit",
      filter_subject = from.subject, ack_wait = 30 })
    if not ok then return nil, code, detail end
  end

  local function subject_of(it, msg)
    local s = it.subject
    if not s then s = type(cfg.to) == "function" and cfg.to(it.value, msg) or cfg.to end
    if type(s) ~= "string" then error(what .. ": no subject for an output (route/to gave " .. type(s) .. ")", 0) end
    return s
  end

  local function encode(v)
    if json then return jet.json.encode(v) end
    if type(v) ~= "string" then
      error(what .. ": an output must be a string without codec='json', got " .. type(v), 0)
    end
    return v
  end

  -- publish outputs; each message in `msgs` is acked by the publisher once
  -- every output linked to it got its PubAck (nak'd if one fails): one ack
  -- path in C, no Lua callback per message
  local function hand_off(outputs, msgs)
    if #outputs == 0 then
      for _, m in ipairs(msgs) do m:ack() end
      return
    end
    if #msgs == 1 then
      local m = msgs[1]
      for _, o in ipairs(outputs) do js:_publish_linked(o.subject, o.data, o.id, m) end
      return
    end
    -- a batch: one output for several messages; ack them all when it is stored
    local o = outputs[1]
    js:publish_async(o.subject, o.data, { msg_id = o.id }):on(function(ack)
      for _, m in ipairs(msgs) do if ack then m:ack() else m:nak(1) end end
    end)
  end

  local pending_batch, batch_timer = {}, nil
  local function flush_batch()
    if batch_timer then batch_timer:stop(); batch_timer = nil end
    if #pending_batch == 0 then return end
    local b = pending_batch
    pending_batch = {}
    local values, msgs = {}, {}
    for _, e in ipairs(b) do
      for _, it in ipairs(e.items) do values[#values + 1] = it.value end
      msgs[#msgs + 1] = e.msg
    end
    local first, last = b[1].md, b[#b].md
    local it = { value = values }
    local ok, err = pcall(function()
      hand_off({ { subject = subject_of(it, b[1].msg), data = encode(values),
                   id = ("%s:%d-%d"):format(first.stream, first.stream_seq, last.stream_seq) } }, msgs)
    end)
    if not ok then
      jet.log.error(what .. ": batch failed: " .. tostring(err))
      for _, m in ipairs(msgs) do m:nak(1) end
    end
  end

  -- only map and filter: no per-message tables
  local simple = true
  for _, st in ipairs(steps) do if st.flat_map or st.route then simple = false end end
  local static_to = type(cfg.to) == "string" and cfg.to

  local function handler(msg)
    local value = msg.data
    if json then value = jet.json.decode(value) end
    if simple and not batch then
      for _, st in ipairs(steps) do
        if st.map then value = st.map(value, msg)
        elseif not st.filter(value, msg) then
          stats.filtered = stats.filtered + 1
          return msg:ack()
        end
      end
      local stream, seq = msg:_ack_ids()
      local subject = static_to or subject_of({ value = value }, msg)
      js:_publish_linked(subject, encode(value), stream .. ":" .. seq, msg)
      return
    end
    local md = msg:metadata()
    local items = run_steps(steps, value, msg)
    if batch then
      pending_batch[#pending_batch + 1] = { items = items, msg = msg, md = md }
      if #pending_batch >= batch.size then flush_batch()
      elseif not batch_timer then batch_timer = jet.timer(batch.timeout or 1, flush_batch) end
      return
    end
    if #items == 0 then stats.filtered = stats.filtered + 1 end
    local outputs = {}
    local base = md.stream .. ":" .. string.format("%d", md.stream_seq)
    for i, it in ipairs(items) do
      outputs[i] = { subject = subject_of(it, msg), data = encode(it.value),
                     id = #items == 1 and base or (base .. ":" .. i) }
    end
    hand_off(outputs, { msg })
  end

  local h, code, detail = js:consume(from.stream, consumer, handler, {
    auto_ack = false, retry = cfg.retry or function() return "nak" end,
    concurrency = cfg.concurrency, max_messages = cfg.max_messages, on_error = cfg.on_error })
  if not h then return nil, code, detail end
  local p = { name = cfg.name }
  function p:stats()
    local s = h:stats()
    local ps = js:publish_async_stats()
    s["in"], s.out, s.publish_failed, s.filtered = s.delivered, ps.acked, ps.failed, stats.filtered
    return s
  end
  function p:stop() flush_batch(); return h:stop() end
  function p:drain()
    local r = h:drain()
    flush_batch()
    js:publish_async_complete(10)
    return r
  end
  function p:closed() return h:closed() end
  return p
end

return M
