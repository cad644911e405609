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
--
-- Guarantee: while a key's value lives (the bucket's ttl), its handler runs
-- to completion at most once -- except when a claimer crashes (or stalls
-- past claim_ttl) after the side effect and before writing "done": then the
-- next claimer runs it again. Make the side effect itself idempotent when
-- that matters. Deadlines are wall-clock times: processes on different
-- machines need clocks in sync to well under claim_ttl.
--
-- Why `js`: a process may hold several connections; the wrapper cannot
-- guess which one has the bucket.
local jet = require "jetlua"
local A = require "jetlua.argcheck"

local M = {}

local KEYS = { js = "table", bucket = "string", key = "function", ttl = "number", history = "number",
               storage = "string", replicas = "number", claim_ttl = "number" }

local function default_key(msg)
  local id = msg:header("Nats-Msg-Id")
  if id and id ~= "" then return id end
  local md = msg:metadata()
  return md.stream .. ":" .. string.format("%d", md.stream_seq)
end

-- KV keys allow letters, digits and - _ / = . ; anything else is hex-escaped
local function kv_key(k)
  return (tostring(k):gsub("[^%w%-_/=%.]", function(c) return ("_%02X"):format(c:byte()) end))
end

local function claim_value(owner, ttl)
  return ("claimed %s %.3f"):format(owner, jet.now() + ttl)
end

-- Claim `key` for `owner`. -> "claimed", revision, taken_over | "done" |
-- "busy", seconds the claim has left | nil, code, detail (an I/O failure)
local function claim(b, key, owner, ttl)
  for _ = 1, 5 do
    local rev, code, detail = b:_write(key, claim_value(owner, ttl), 0)   -- no value yet
    if rev then return "claimed", rev, false end
    if code ~= "wrong_revision" then return nil, code, detail end
    local e
    e, code, detail = b:_last(key)
    if e then
      local taken_over = false
      if e.operation == "PUT" then
        local who, deadline = e.value:match("^claimed (%S+) ([%d%.]+)$")
        if not who then return "done" end
        local left = tonumber(deadline) - jet.now()
        if left > 0 then return "busy", left end
        taken_over = true
      end
      -- a deleted key or a stale claim: ours if nobody wrote since we looked
      rev, code, detail = b:_write(key, claim_value(owner, ttl), e.revision)
      if rev then return "claimed", rev, taken_over end
      if code ~= "wrong_revision" then return nil, code, detail end
    elseif code ~= "key_not_found" then           -- (purged meanwhile: try again)
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
  local keyf = o.key or default_key
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
  local function ttl_of(md)
    if o.claim_ttl then return o.claim_ttl end
    local k = md.stream .. "\0" .. md.consumer
    if not ack_waits[k] then
      local ci = o.js:consumer_info(md.stream, md.consumer)
      ack_waits[k] = ci and ci.config.ack_wait or 30
    end
    return ack_waits[k]
  end

  local owner_base, serial = jet._nuid(), 0

  return function(handler)
    if type(handler) ~= "function" then A.argerr(fname, "handler", "function expected, got " .. type(handler)) end
    return function(msg)
      local b = bucket()
      local k = keyf(msg)
      if k == nil or k == "" then
        error(fname .. ": the key function gave no key for a message on " .. msg.subject, 0)
      end
      local key = kv_key(k)
      local md = msg:metadata()
      local ttl = ttl_of(md)
      serial = serial + 1
      local owner = owner_base .. "." .. serial
      local state, rev, taken_over = claim(b, key, owner, ttl)
      if not state then
        error(("%s: could not claim %s (%s: %s)"):format(fname, key, tostring(rev), tostring(taken_over)), 0)
      elseif state == "done" then
        hits:inc()
        return msg:ack()
      elseif state == "busy" then
        -- someone else runs it: come back when it is likely done, or its claim stale
        busy:inc()
        local delay = math.min(0.1 * 2 ^ math.min(md.num_delivered - 1, 8), rev + 0.05, 30)
        return msg:nak(math.max(delay, 0.05))
      end
      if taken_over then
        takeovers:inc()
        jet.log.warn(("%s: took over the stale claim on %s (its claimer crashed or stalled)"):format(fname, key))
      end
      -- renew the claim while the handler runs
      local cur = { rev = rev }
      local timer
      local function renew()
        if cur.over then return end
        cur.renewing = true
        local r, code = b:_write(key, claim_value(owner, ttl), cur.rev)
        cur.renewing = false
        if r then cur.rev = r
        elseif code == "wrong_revision" then cur.lost = true
        else jet.log.warn(("%s: could not renew the claim on %s (%s)"):format(fname, key, tostring(code))) end
        if not cur.over and not cur.lost then timer = jet.timer(ttl / 3, renew) end
      end
      timer = jet.timer(ttl / 3, renew)
      local ok, err = pcall(handler, msg)
      cur.over = true
      timer:stop()
      while cur.renewing do jet.sleep(0.005) end
      if not ok then
        -- give the key back, so that a redelivery can run it; then let the retry policy decide
        local r, code = b:_write(key, "", cur.rev, { ["KV-Operation"] = "DEL" })
        if not r and code ~= "wrong_revision" then
          jet.log.warn(("%s: could not release the claim on %s (%s); it expires in %g s")
            :format(fname, key, tostring(code), ttl))
        end
        error(err, 0)
      end
      local r, code, detail = b:_write(key, "done", cur.rev)
      if not r and code == "wrong_revision" then
        jet.log.warn(("%s: the claim on %s was taken over while its handler ran (it ran longer than "
          .. "claim_ttl %g s without renewing): it may have run twice"):format(fname, key, ttl))
        r, code, detail = b:put(key, "done")
      end
      if not r then
        -- done but not marked: the message is acked anyway; a redelivery of a copy could redo it
        jet.log.warn(("%s: could not mark %s done (%s: %s)"):format(fname, key, tostring(code), tostring(detail)))
      end
    end
  end
end

return M
