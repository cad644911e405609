-- jetlua.kv: JetStream key-value buckets in Lua, on the JetStream API
-- (ADR-8: a bucket is the stream KV_<bucket> on subjects $KV.<bucket>.<key>).
-- Every call yields its coroutine; none blocks the loop.
--
--   local kv = assert(js:create_kv{ bucket = "config", history = 5 })
--   local rev = kv:put("color", "blue")
--   local e = kv:get("color")            -- {key=, value=, revision=, created=, operation="PUT"}
--   kv:update("color", "red", rev)       -- fails with "wrong_revision" if someone wrote since
local A = require "jetlua.argcheck"
local argerr = A.argerr

local KV = {}
KV.__index = KV

-- kv.get("k") instead of kv:get("k")
local function me(fname, self) A.check_self(fname, self, KV, "a bucket (from js:kv or js:create_kv)") end

local function check_bucket(fname, b)
  if type(b) ~= "string" then argerr(fname, "bucket", "string expected, got " .. type(b)) end
  if b == "" or b:find("[^%w%-_]") then
    argerr(fname, "bucket", ("invalid bucket name '%s' (letters, digits, '-' and '_' only)"):format(b))
  end
end

local function check_key(fname, key)
  if type(key) ~= "string" then argerr(fname, "key", "string expected, got " .. type(key)) end
  if key == "" or key:find("[^%w%-/_=%.]") or key:sub(1, 1) == "." or key:sub(-1) == "." or key:find("%.%.") then
    argerr(fname, "key", ("invalid key '%s' (letters, digits and - / _ = . only, no leading, trailing or double '.')")
      :format(key))
  end
end

local function check_value(fname, v)
  if type(v) ~= "string" then argerr(fname, "value", "string expected, got " .. type(v)) end
end

local CREATE_KEYS = { bucket = true, history = true, ttl = true, max_bytes = true, storage = true,
  replicas = true, description = true, max_value_size = true }

local function new_kv(js, bucket, info)
  local stream = "KV_" .. bucket
  return setmetatable({ js = js, bucket = bucket, stream = stream, prefix = "$KV." .. bucket .. ".",
    direct = info.config.allow_direct == true,
    direct_prefix = js.prefix .. "DIRECT.GET." .. stream .. ".$KV." .. bucket .. "." }, KV)
end

-- js:create_kv{bucket=, history=1, ttl=, max_bytes=, storage="file", replicas=1, description=,
--              max_value_size=} -> kv (creates the bucket, or updates its settings)
local function create_kv(js, cfg)
  if type(cfg) ~= "table" then argerr("js:create_kv", "config", "table expected, got " .. type(cfg)) end
  for k in pairs(cfg) do
    if not CREATE_KEYS[k] then A.unknown("js:create_kv", k) end
  end
  check_bucket("js:create_kv", cfg.bucket)
  local history = cfg.history or 1
  if type(history) ~= "number" or history < 1 or history > 64 then
    argerr("js:create_kv", "history", "a number from 1 to 64 expected, got " .. tostring(history))
  end
  local ttl = cfg.ttl
  if ttl ~= nil and (type(ttl) ~= "number" or ttl < 0) then
    argerr("js:create_kv", "ttl", "seconds (number >= 0) expected, got " .. tostring(ttl))
  end
  local scfg = {
    name = "KV_" .. cfg.bucket, subjects = { "$KV." .. cfg.bucket .. ".>" },
    max_msgs_per_subject = history, discard = "new", allow_rollup = true, deny_delete = true,
    storage = cfg.storage or "file", replicas = cfg.replicas or 1, description = cfg.description,
    max_bytes = cfg.max_bytes, max_msg_size = cfg.max_value_size,
    allow_direct = true,                 -- as nats.go makes buckets; kv:_peek reads with direct gets
  }
  if ttl and ttl > 0 then
    scfg.max_age = ttl
    scfg.duplicate_window = math.min(ttl, 120)
  end
  local info, code, detail = js:stream(scfg)
  if not info then return nil, code, detail end
  return new_kv(js, cfg.bucket, info)
end

-- js:kv(bucket) -> kv | nil, "bucket_not_found"
local function open_kv(js, bucket)
  check_bucket("js:kv", bucket)
  local info, code, detail = js:stream_info("KV_" .. bucket)
  if not info then
    if code == "stream_not_found" then return nil, "bucket_not_found", "no key-value bucket '" .. bucket .. "'" end
    return nil, code, detail
  end
  return new_kv(js, bucket, info)
end

local function entry(kv, m)
  local op = m.headers and m.headers["KV-Operation"] or "PUT"
  return { key = m.subject:sub(#kv.prefix + 1), value = m.data, revision = m.seq, created = m.time,
           operation = op, bucket = kv.bucket }
end

-- kv:get(key, [revision]) -> entry | nil, "key_not_found"
function KV:get(key, revision)
  me("kv:get", self)
  check_key("kv:get", key)
  local m, code, detail
  if revision ~= nil then
    if type(revision) ~= "number" then argerr("kv:get", "revision", "number expected, got " .. type(revision)) end
    m, code, detail = self.js:get_msg(self.stream, revision)
    if m and m.subject ~= self.prefix .. key then m, code, detail = nil, "no_message_found", "" end
  else
    m, code, detail = self.js:get_last_msg(self.stream, self.prefix .. key)
  end
  if not m then
    if code == "no_message_found" then return nil, "key_not_found", "no key '" .. key .. "' in " .. self.bucket end
    return nil, code, detail
  end
  local e = entry(self, m)
  if e.operation ~= "PUT" then return nil, "key_not_found", "key '" .. key .. "' was deleted" end
  return e
end

local function revision_of(ack, code, detail)
  if not ack then
    if code == "wrong_last_sequence" then return nil, "wrong_revision", detail end
    return nil, code, detail
  end
  return ack.seq
end

-- kv:_write(key, value, [last_revision], [headers]) -> revision | nil, "wrong_revision"|code, detail
-- last_revision 0: only while the key has no message at all (not even a delete marker)
function KV:_write(key, value, last, headers)
  return revision_of(self.js:publish(self.prefix .. key, value,
    { headers = headers, expect = last and { last_subject_seq = last } or nil }))
end

-- kv:_send(key, value, [last_revision], [op], [msg]) -> revision | nil, "wrong_revision"|code, detail
-- _write through the context's async publisher (C): no JSON or request timer per write, and
-- many writes in flight at once. op: nil (a value) or "DEL". With msg (a consumed message),
-- it returns true at once and msg is acked when the write is stored, nak'd when it fails.
-- No retries: a retry needs a msg id, and a msg id per write would fill the server's dedupe
-- table.
local EXPECT = "Nats-Expected-Last-Subject-Sequence"
local send_hdrs = {}                   -- reused: p:publish copies it before it yields
local ZERO = { [EXPECT] = "0" }
function KV:_send(key, value, last, op, msg)
  local p, code, detail = self.js:_publisher()
  if not p then return nil, code, detail end
  if self._fast_pa ~= p then
    -- the bucket's stream listens on every key: PubAcks read on the loop from the first
    -- write of a key on (else each new key's ack would cross cnats' delivery thread)
    p:_fast_prefix(self.prefix)
    self._fast_pa = p
  end
  local subject = self.prefix .. key
  while true do
    local h
    if op then h = { [EXPECT] = last and ("%d"):format(last) or nil, ["KV-Operation"] = op }
    elseif last == 0 then h = ZERO
    elseif last then send_hdrs[EXPECT] = ("%d"):format(last); h = send_hdrs end
    local f, c2, d2 = p:publish(subject, value, h, nil, nil, 0, msg)
    if f == nil then return nil, c2, d2 end
    if f ~= false then
      if msg then return true end
      return revision_of(f:wait())
    end
    p:wait_slot()                      -- the window is full: yields
  end
end

-- kv:_last(key) -> the key's latest entry, delete and purge markers included | nil, "key_not_found"|code
function KV:_last(key)
  local m, code, detail = self.js:get_last_msg(self.stream, self.prefix .. key)
  if not m then
    if code == "no_message_found" then return nil, "key_not_found", "no key '" .. key .. "' in " .. self.bucket end
    return nil, code, detail
  end
  return entry(self, m)
end

-- kv:_peek(key) -> value, revision, operation ("PUT", "DEL", "PURGE") | nil, "key_not_found"|code, detail
-- (revision 0 for the value "done": jet.idempotent never writes after it, so it is not read)
-- The key's latest message, delete and purge markers included, for jet.idempotent. A bucket
-- that allows direct gets (every bucket create_kv made since) is read with one: the stored
-- message itself comes back (no JSON, no base64). In a cluster any replica may answer, so
-- the answer may be a little old: use it only before a compare-and-set write.
local DIRECT_OPTS = {}
function KV:_peek(key)
  if not self.direct then
    local e, code, detail = self:_last(key)
    if not e then return nil, code, detail end
    return e.value, e.revision, e.operation
  end
  if not self._fast_direct then
    -- the bucket's stream answers every key: replies read on the loop (no thread hop)
    self.js.nc:_fast_replies(self.direct_prefix)
    self._fast_direct = true
  end
  DIRECT_OPTS.timeout = self.js.timeout
  local m, code, detail = self.js.nc:request(self.direct_prefix .. key, "", DIRECT_OPTS)
  if not m then return nil, code, detail end
  local data = m.data
  if data == "done" then return data, 0, "PUT" end   -- jet.idempotent's mark: nothing else to read
  local status = m:header("Status")
  if status then
    if status == "404" then return nil, "key_not_found", "no key '" .. key .. "' in " .. self.bucket end
    return nil, "api_error",
      ("direct get from %s: %s %s"):format(self.stream, status, tostring(m:header("Description")))
  end
  return data, tonumber(m:header("Nats-Sequence")), m:header("KV-Operation") or "PUT"
end

local function check_revision(fname, revision, optional)
  if optional and revision == nil then return end
  if type(revision) ~= "number" then argerr(fname, "revision", "number expected, got " .. type(revision)) end
end

-- kv:put(key, value) -> revision
function KV:put(key, value)
  me("kv:put", self)
  check_key("kv:put", key); check_value("kv:put", value)
  return self:_write(key, value)
end

-- kv:update(key, value, revision) -> new revision | nil, "wrong_revision"
function KV:update(key, value, revision)
  me("kv:update", self)
  check_key("kv:update", key); check_value("kv:update", value)
  check_revision("kv:update", revision)
  return self:_write(key, value, revision)
end

-- kv:create(key, value) -> revision | nil, "key_exists"  (a deleted key can be created again)
function KV:create(key, value)
  me("kv:create", self)
  check_key("kv:create", key); check_value("kv:create", value)
  local rev, code, detail = self:_write(key, value, 0)
  if rev then return rev end
  if code ~= "wrong_revision" then return nil, code, detail end
  local last = self:_last(key)
  if last and last.operation ~= "PUT" then return self:_write(key, value, last.revision) end
  return nil, "key_exists", "key '" .. key .. "' already exists in " .. self.bucket
end

-- kv:delete(key, [revision]): a delete marker (history is kept); with a
-- revision, only while that is still the key's latest (else "wrong_revision")
function KV:delete(key, revision)
  me("kv:delete", self)
  check_key("kv:delete", key)
  check_revision("kv:delete", revision, true)
  return self:_write(key, "", revision, { ["KV-Operation"] = "DEL" })
end

-- kv:purge(key): a purge marker that also removes the key's history
function KV:purge(key)
  me("kv:purge", self)
  check_key("kv:purge", key)
  return self:_write(key, "", nil, { ["KV-Operation"] = "PURGE", ["Nats-Rollup"] = "sub" })
end

-- kv:keys() -> sorted list of live keys
function KV:keys()
  me("kv:keys", self)
  local r, code, detail = self.js:_api("STREAM.INFO." .. self.stream, { subjects_filter = self.prefix .. ">" })
  if not r then return nil, code, detail end
  local keys = {}
  for subject in pairs(r.state and r.state.subjects or {}) do
    local key = subject:sub(#self.prefix + 1)
    local last = self.js:get_last_msg(self.stream, subject)
    if last and entry(self, last).operation == "PUT" then keys[#keys + 1] = key end
  end
  table.sort(keys)
  return keys
end

-- kv:history(key) -> list of entries, oldest first (deletes included, operation says which)
function KV:history(key)
  me("kv:history", self)
  check_key("kv:history", key)
  local out, seq = {}, 1
  while true do
    local r, code, detail = self.js:_api("STREAM.MSG.GET." .. self.stream,
      { seq = seq, next_by_subj = self.prefix .. key })
    if not r then
      if code == "no_message_found" then break end
      return nil, code, detail
    end
    local m = r.message
    local e = entry(self, self.js._stored_msg(r))
    out[#out + 1] = e
    seq = m.seq + 1
  end
  if #out == 0 then return nil, "key_not_found", "no key '" .. key .. "' in " .. self.bucket end
  return out
end

-- kv:status() -> {bucket=, values=, history=, ttl=, bytes=, storage=, replicas=}
function KV:status()
  me("kv:status", self)
  local info, code, detail = self.js:stream_info(self.stream)
  if not info then return nil, code, detail end
  local c, st = info.config, info.state
  return { bucket = self.bucket, values = st.messages, bytes = st.bytes, history = c.max_msgs_per_subject,
           ttl = c.max_age or 0, storage = c.storage, replicas = c.replicas }
end

-- kv:watch([keys], fn, [{include_history=, updates_only=, ignore_deletes=}]) -> watcher
-- fn(entry) for every value (latest per key first, then each change), and
-- fn(nil) once when the initial values have all been seen. Without fn: an
-- iterator (for e in w do ... end; w:next([timeout]); w:caught_up()).
-- w:stop(). Built on the ordered consumer: in revision order, no gap.
local WATCH_KEYS = { include_history = true, updates_only = true, ignore_deletes = true }
function KV:watch(keys, fn, opts)
  me("kv:watch", self)
  if type(keys) == "function" or (keys == nil and fn == nil) then keys, fn, opts = nil, keys, fn end
  keys = keys or ">"
  if type(keys) ~= "string" or keys == "" then argerr("kv:watch", "keys", "a key or pattern expected") end
  if fn ~= nil and type(fn) ~= "function" then argerr("kv:watch", "fn", "function expected, got " .. type(fn)) end
  opts = opts or {}
  if type(opts) ~= "table" then argerr("kv:watch", "opts", "table expected, got " .. type(opts)) end
  for k, v in pairs(opts) do
    if not WATCH_KEYS[k] then A.unknown("kv:watch", k) end
    if type(v) ~= "boolean" then argerr("kv:watch", k, "boolean expected, got " .. type(v)) end
  end
  local policy = opts.updates_only and "new" or (opts.include_history and "all" or "last_per_subject")
  local oc = self.js:ordered(self.stream, { filter_subject = self.prefix .. keys, deliver_policy = policy })
  local kv, w = self, { done = false }
  local function to_entry(msg)
    local md = msg:metadata()
    local op = msg.headers and msg.headers["KV-Operation"] or "PUT"
    if type(op) == "table" then op = op[1] end
    return { key = msg.subject:sub(#kv.prefix + 1), value = msg.data, revision = md.stream_seq,
             created = md.timestamp, operation = op, bucket = kv.bucket, delta = md.num_pending }, md.num_pending
  end
  local function caught(pending)
    if not w.done and pending == 0 then
      w.done = true
      if fn then fn(nil) end
    end
  end
  if fn then
    local h, code, detail = oc:consume(function(msg)
      local e, pending = to_entry(msg)
      if not (opts.ignore_deletes and e.operation ~= "PUT") then fn(e) end
      caught(pending)
    end, { heartbeat = 2, expires = 5 })
    if not h then return nil, code, detail end
    if policy == "new" or oc.created_pending == 0 then caught(0) end
    w.h = h
    function w:stop() return h:stop() end
    function w:caught_up() return w.done end
    return w
  end
  local it, code, detail = oc:messages{ heartbeat = 2, expires = 5 }
  if not it then return nil, code, detail end
  if policy == "new" or oc.created_pending == 0 then w.done = true end
  function w:next(timeout)
    if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
      argerr("w:next", "timeout",
        "number >= 0 expected, got " .. (type(timeout) == "number" and timeout or type(timeout)))
    end
    while true do
      local msg, err = it:next(timeout)
      if not msg then return nil, err end
      local e, pending = to_entry(msg)
      caught(pending)
      if not (opts.ignore_deletes and e.operation ~= "PUT") then return e end
    end
  end
  function w:stop() return it:stop() end
  function w:caught_up() return w.done end
  return setmetatable(w, { __call = function(watcher) return watcher:next() end })
end

-- js:delete_kv(bucket)
local function delete_kv(js, bucket)
  check_bucket("js:delete_kv", bucket)
  return js:delete_stream("KV_" .. bucket)
end

return { create_kv = create_kv, open_kv = open_kv, delete_kv = delete_kv, KV = KV }
