-- jetlua.idempotent: run a handler at most once per message key.
--
--   local once = jet.idempotent{ js = js, bucket = "orders_done", ttl = 86400,
--                                key = function(msg) return msg:header("Order-Id") end }
--   js:consume("ORDERS", "billing", once(function(msg) ... end))
--
-- Before the handler runs, the key is looked up in a KV bucket: a key
-- already marked done is acked without running the handler. Otherwise the
-- handler runs and, when it returns, the key is marked (then the message is
-- acked as usual). Default key: the Nats-Msg-Id header, else
-- "<stream>:<stream sequence>". The bucket is created on first use, with
-- `ttl` (seconds) as its max age so marks do not pile up forever.
--
-- Why `js`: a process may hold several connections; the wrapper cannot
-- guess which one has the bucket.
--
-- Guarantee: a message whose handler returned is never handled again while
-- its mark lives. A crash between the handler's side effect and the mark
-- can still run it twice: make the side effect itself idempotent when that
-- matters (the mark narrows the window to one KV put).
local jet = require "jetlua"

local M = {}

local KEYS = { js = "table", bucket = "string", key = "function", ttl = "number", history = "number",
               storage = "string", replicas = "number" }

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

function M.idempotent(o)
  local fname = "jet.idempotent"
  if type(o) ~= "table" then error(fname .. ": bad argument 'opts': table expected, got " .. type(o), 2) end
  for k, v in pairs(o) do
    if not KEYS[k] then error(("%s: unknown option '%s'"):format(fname, tostring(k)), 2) end
    if type(v) ~= KEYS[k] then
      error(("%s: bad argument '%s': %s expected, got %s"):format(fname, k, KEYS[k], type(v)), 2)
    end
  end
  if not o.js then error(fname .. ": bad argument 'js': the JetStream context holding the bucket is needed", 2) end
  if not o.bucket then error(fname .. ": bad argument 'bucket': a bucket name is needed", 2) end
  local keyf = o.key or default_key
  local kv
  local hits = jet.metrics.counter("jetlua_idempotent_skipped_total", nil, "messages acked without running the handler (already done)")
  local function bucket()
    if kv then return kv end
    local b, code, detail = o.js:kv(o.bucket)
    if not b then
      b, code, detail = o.js:create_kv{ bucket = o.bucket, ttl = o.ttl, history = o.history or 1,
                                        storage = o.storage, replicas = o.replicas }
    end
    if not b then error(("%s: bucket %s: %s (%s)"):format(fname, o.bucket, tostring(code), tostring(detail)), 0) end
    kv = b
    return kv
  end
  return function(handler)
    if type(handler) ~= "function" then
      error(fname .. ": bad argument 'handler': function expected, got " .. type(handler), 2)
    end
    return function(msg)
      local key = kv_key(keyf(msg))
      local b = bucket()
      local done = b:get(key)
      if done then
        hits:inc()
        return msg:ack()
      end
      handler(msg)
      local ok, code, detail = b:put(key, "1")
      if not ok then
        -- the work is done but not marked: ack anyway (a redelivery would redo it only if this mark is missing)
        jet.log.warn(("%s: could not mark %s done (%s: %s)"):format(fname, key, tostring(code), tostring(detail)))
      end
    end
  end
end

return M
