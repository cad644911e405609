-- jetlua.idempotent: run a handler once per message key, even when copies
-- of a message run at the same time (concurrency > 1, or several processes
-- sharing a consumer).
--
--   local once = jet.idempotent{ js = js, bucket = "orders_done", ttl = 86400,
--                                key = function(msg) return msg:header("Order-Id") end }
--   js:consume("ORDERS", "billing", once(function(msg) ... end))
--
-- The key is claimed in a KV bucket before the handler runs, atomically
-- (a KV create: a publish that the server refuses when the key already has a
-- value). The key's value is "claimed <owner> <deadline>" while a handler
-- runs and "done" once it returned. What a message finds:
--   * nothing (or a deleted key): it claims the key and runs the handler;
--   * "done": it is acked without running the handler;
--   * a live claim of someone else: it is nak'd with a delay and comes back
--     (never skipped: the claimer may still fail);
--   * a stale claim (its deadline passed: the claimer crashed or hung): it
--     takes the claim over with a compare-and-set on the claim's revision
--     (of several takers exactly one wins) and runs the handler.
-- A running handler renews its claim every claim_ttl/3, so a long handler
-- keeps it. A handler that raises deletes its claim (again compare-and-set)
-- and re-raises: the retry policy decides, and a redelivery can run it.
-- claim_ttl defaults to the consumer's ack_wait: a crashed claimer's
-- message comes back after ack_wait, when its claim has just gone stale.
-- When the handler returns, "done" is written (compare-and-set on the claim)
-- without waiting, and the message is acked once it is stored
-- (publish_async{ack = msg}); if it is refused (the claim was taken over
-- while the handler ran), the message is nak'd and its redelivery finds the
-- other claimer's claim or "done".
--
-- Speed: every KV operation is a round trip, so the wrapper asks js:consume
-- for DEFAULT_CONCURRENCY handlers at once (unless the consume options say
-- otherwise): many claims and marks are in flight together. Messages then
-- run out of stream order. Writes go through the context's async publisher
-- (C, no JSON per write); reads are direct gets. Which comes first adapts:
-- while most keys are new it creates first (one write claims, a refusal
-- means "look"), while most are done it reads first (one read acks).
--
-- Guarantee: while a key's value lives (the bucket's ttl), its handler runs
-- to completion at most once -- except when a claimer crashes (or stalls
-- past claim_ttl) after the side effect and before "done" is stored: then
-- the next claimer runs it again. Make the side effect itself idempotent when
-- that matters. Deadlines are wall-clock times: processes on different
-- machines need clocks in sync to well under claim_ttl.
--
-- Why `js`: a process may hold several connections; the wrapper cannot
-- guess which one has the bucket.
local jet = require "jetlua"
local A = require "jetlua.argcheck"

local M = {}

-- handlers running at once when js:consume's options do not say (see "Speed")
M.DEFAULT_CONCURRENCY = 64

local KEYS = { js = "table", bucket = "string", key = "function", ttl = "number", history = "number",
               storage = "string", replicas = "number", claim_ttl = "number" }

-- KV keys allow letters, digits and - _ / = . ; anything else is hex-escaped
local function escape(c) return ("_%02X"):format(c:byte()) end
local function kv_key(k)
  k = tostring(k)
  if not k:find("[^%w%-_/=%.]") then return k end
  return (k:gsub("[^%w%-_/=%.]", escape))
end

-- the default key: the Nats-Msg-Id header, else "<stream>:<sequence>" (as a KV key)
local stream_keys = {}   -- stream name -> its escaped "<stream>:" (streams are few)
local function default_key(msg, stream, seq)
  local id = msg:header("Nats-Msg-Id")
  if id and id ~= "" then return kv_key(id) end
  local sk = stream_keys[stream]
  if not sk then
    sk = kv_key(stream .. ":")
    stream_keys[stream] = sk
  end
  return sk .. seq
end

local function claim_value(owner, ttl)
  return ("claimed %s %.3f"):format(owner, jet.now() + ttl)
end

-- Claim `key` for `owner`; look_first: read the key before trying to create it.
-- -> "claimed", revision, taken_over | "done" | "busy", seconds the claim has left
--    | nil, code, detail (an I/O failure)
local function claim(b, key, owner, ttl, look_first)
  for _ = 1, 5 do
    local rev, code, detail
    if not look_first then
      rev, code, detail = b:_send(key, claim_value(owner, ttl), 0)   -- no value yet
      if rev then return "claimed", rev, false end
      if code ~= "wrong_revision" then return nil, code, detail end
    end
    look_first = false
    local value, op
    value, code, detail = b:_peek(key)
    if value then
      rev, op = code, detail
      local taken_over = false
      if op == "PUT" then
        if value == "done" then return "done" end
        local who, deadline = value:match("^claimed (%S+) ([%d%.]+)$")
        if not who then return "done" end
        local left = tonumber(deadline) - jet.now()
        if left > 0 then return "busy", left end
        taken_over = true
      end
      -- a deleted key or a stale claim: ours if nobody wrote since we looked
      rev, code, detail = b:_send(key, claim_value(owner, ttl), rev)
      if rev then return "claimed", rev, taken_over end
      if code ~= "wrong_revision" then return nil, code, detail end
    elseif code ~= "key_not_found" then           -- (not found: create it, next turn)
      return nil, code, detail
    end
  end
  return "busy", 0   -- lost five races in a row: come back a little later
end

function M.idempotent(o)
  local fname = "jet.idempotent"
  if type(o) ~= "table" then A.argerr(fname, "opts", "table expected, got " .. type(o)) end
  for k, v in pairs(o) do
    if not KEYS[k] then A.unknown(fname, k) end
    if type(v) ~= KEYS[k] then A.argerr(fname, k, KEYS[k] .. " expected, got " .. type(v)) end
  end
  if not o.js then A.argerr(fname, "js", "the JetStream context holding the bucket is needed") end
  if not o.bucket then A.argerr(fname, "bucket", "a bucket name is needed") end
  if o.claim_ttl and o.claim_ttl <= 0 then A.argerr(fname, "claim_ttl", "must be > 0 seconds") end
  local keyf = o.key
  local hits = jet.metrics.counter("jetlua_idempotent_skipped_total", nil,
    "messages acked without running the handler (already done)")
  local busy = jet.metrics.counter("jetlua_idempotent_busy_total", nil,
    "messages nak'd because another handler held their key's claim")
  local takeovers = jet.metrics.counter("jetlua_idempotent_takeovers_total", nil,
    "stale claims (claimer crashed or stalled) taken over")

  local kv, opening
  local function bucket()
    while opening and not kv do jet.sleep(0.01) end     -- one opener; the others wait for it
    if kv then return kv end
    opening = true
    local b, code, detail = o.js:kv(o.bucket)
    if not b then
      b, code, detail = o.js:create_kv{ bucket = o.bucket, ttl = o.ttl, history = o.history or 1,
                                        storage = o.storage, replicas = o.replicas }
    end
    opening = false
    if not b then error(("%s: bucket %s: %s (%s)"):format(fname, o.bucket, tostring(code), tostring(detail)), 0) end
    kv = b
    return kv
  end

  -- claim_ttl: given, or the consumer's ack_wait (looked up once per consumer)
  local ack_waits = {}
  local function ttl_of(stream, consumer)
    if o.claim_ttl then return o.claim_ttl end
    local per = ack_waits[stream]
    if not per then per = {}; ack_waits[stream] = per end
    local t = per[consumer]
    while t == false do jet.sleep(0.01); t = per[consumer] end   -- another handler asks
    if t then return t end
    per[consumer] = false
    local ok, ci = pcall(o.js.consumer_info, o.js, stream, consumer)   -- the others wait: never raise
    t = ok and ci and ci.config.ack_wait or 30
    per[consumer] = t
    return t
  end

  -- Renewal: the claims of running handlers, renewed every ttl/3 by one
  -- sweeper (a timer that runs only while handlers run), each renewal in a
  -- coroutine of its own.
  local running, sweeper, period = {}, nil, math.huge
  local function renew(c)
    local r, code = c.b:_send(c.key, claim_value(c.owner, c.ttl), c.rev)
    c.renewing = false
    if r then
      c.rev, c.renew_at = r, jet.monotonic() + c.ttl / 3
    elseif code == "wrong_revision" then
      running[c] = nil                              -- taken over: the mark will say so
    else
      c.renew_at = jet.monotonic() + c.ttl / 6      -- try again soon
      jet.log.warn(("%s: could not renew the claim on %s (%s)"):format(fname, c.key, tostring(code)))
    end
  end
  local function sweep()
    local now, due = jet.monotonic(), nil
    for c in pairs(running) do
      if not c.renewing and now >= c.renew_at then
        due = due or {}
        due[#due + 1] = c
      end
    end
    if not due and not next(running) then         -- nothing runs: stop until the next claim
      sweeper:stop()
      sweeper = nil
      return
    end
    for _, c in ipairs(due or {}) do
      c.renewing = true
      jet.spawn(renew, c)
    end
  end
  local function watch(c)
    running[c] = true
    if not sweeper or c.ttl / 6 < period or not sweeper:active() then
      if sweeper then sweeper:stop() end
      period = math.min(period, c.ttl / 6)
      sweeper = jet.every(period, sweep)
    end
  end

  local owner_base, serial = jet._nuid(), 0
  -- a moving share of messages that found their key done: above one half, read first
  local hit_share = 0

  return function(handler)
    if type(handler) ~= "function" then A.argerr(fname, "handler", "function expected, got " .. type(handler)) end
    local function wrapped(msg)
      local b = kv or bucket()
      -- what metadata() says, without its table: stream, consumer, stream sequence, deliveries
      local stream, seq, consumer, delivered = msg:_ack_ids()
      if not stream then error(fname .. ": not a JetStream message (no $JS.ACK reply subject)", 0) end
      local key
      if keyf then
        local k = keyf(msg)
        if k == nil or k == "" then
          error(fname .. ": the key function gave no key for a message on " .. msg.subject, 0)
        end
        key = kv_key(k)
      else
        key = default_key(msg, stream, seq)
      end
      local ttl = ttl_of(stream, consumer)
      serial = serial + 1
      local owner = owner_base .. "." .. serial
      local state, rev, taken_over = claim(b, key, owner, ttl, hit_share > 0.5)
      hit_share = hit_share * 0.9375 + (state == "done" and 0.0625 or 0)
      if not state then
        error(("%s: could not claim %s (%s: %s)"):format(fname, key, tostring(rev), tostring(taken_over)), 0)
      elseif state == "done" then
        hits:inc()
        return msg:ack()
      elseif state == "busy" then
        -- someone else runs it: come back when it is likely done, or its claim stale
        busy:inc()
        local delay = math.min(0.1 * 2 ^ math.min(delivered - 1, 8), rev + 0.05, 30)
        return msg:nak(math.max(delay, 0.05))
      end
      if taken_over then
        takeovers:inc()
        jet.log.warn(("%s: took over the stale claim on %s (its claimer crashed or stalled)"):format(fname, key))
      end
      local c = { b = b, key = key, owner = owner, ttl = ttl, rev = rev, renew_at = jet.monotonic() + ttl / 3 }
      watch(c)
      local ok, err = pcall(handler, msg)
      running[c] = nil
      if sweeper and not next(running) then      -- no timer left behind while nothing runs
        sweeper:stop()
        sweeper = nil
      end
      while c.renewing do jet.sleep(0.005) end
      if not ok then
        -- give the key back, so that a redelivery can run it; then let the retry policy decide
        local r, code = b:_send(key, "", c.rev, "DEL")
        if not r and code ~= "wrong_revision" then
          jet.log.warn(("%s: could not release the claim on %s (%s); it expires in %g s")
            :format(fname, key, tostring(code), ttl))
        end
        error(err, 0)
      end
      -- "done", and the message acked once it is stored (nak'd when refused, see above)
      local r, code, detail = b:_send(key, "done", c.rev, nil, msg)
      if not r then
        -- not even sent (the connection is closed): the handler ran, so the message is acked
        -- (if it still can be); a copy redelivered after claim_ttl would run it again
        jet.log.warn(("%s: could not mark %s done (%s: %s)"):format(fname, key, tostring(code), tostring(detail)))
      end
    end
    require("jetlua.pull").handler_defaults[wrapped] = { concurrency = M.DEFAULT_CONCURRENCY }
    return wrapped
  end
end

return M
