-- jetlua.ordered: js:ordered(stream, opts) -- strictly in stream order, never
-- a gap or a repeat (PROTOCOL.md §5, the pull flavour of nats.go's ordered
-- consumer).
--
-- An ordered consumer is a series of ephemeral pull consumers (AckNone, R1,
-- memory, named "<base>_<serial>"). Every message must carry the next
-- consumer sequence; on a gap, a missed heartbeat, a deleted consumer, no
-- responders or a reconnect, the current one is dropped and a new one is
-- created from the last stream sequence + 1 (retrying 1 s doubling to 10 s).
-- Messages of an old serial are never handed out. When the stream itself is
-- gone (3 creates in a row say stream_not_found), or the connection is
-- closed, it ends: on_error(code, detail, true), and an iterator returns
-- nil, code, detail.
local jet = require "jetlua"

local M = {}
local OC = {}
OC.__index = OC

local RESET_ON = { no_heartbeat = true, consumer_deleted = true, no_responders = true, reconnected = true,
                   closed = true, stream_not_found = true }
local GONE_TRIES = 3     -- creates in a row that find no stream before giving up

local A = require "jetlua.argcheck"
local argerr = A.argerr

local function me(fname, self) A.check_self(fname, self, OC, "an ordered consumer (js:ordered())") end
local function opt_table(fname, opts)
  if opts ~= nil and type(opts) ~= "table" then argerr(fname, "opts", "table expected, got " .. type(opts)) end
end
local function check_timeout(fname, timeout)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    argerr(fname, "timeout", "number >= 0 expected, got " .. (type(timeout) == "number" and timeout or type(timeout)))
  end
end

local KEYS = { filter_subject = "string", deliver_policy = "string", opt_start_seq = "number",
               opt_start_time = "string", headers_only = "boolean", replay = "string",
               inactive_threshold = "number" }
local POLICIES = { all = true, last = true, new = true, by_start_sequence = true, by_start_time = true,
                   last_per_subject = true }

-- js:ordered(stream, {filter_subject=, deliver_policy=, opt_start_seq=, opt_start_time=,
--                     headers_only=, replay=, inactive_threshold=})
function M.ordered(js, stream, cfg)
  local fname = "js:ordered"
  if type(stream) ~= "string" or stream == "" or stream:find("[^%w%-_]") then
    argerr(fname, "stream", "a stream name expected, got " .. tostring(stream))
  end
  cfg = cfg or {}
  if type(cfg) ~= "table" then argerr(fname, "opts", "table expected, got " .. type(cfg)) end
  for k, v in pairs(cfg) do
    if not KEYS[k] then A.unknown(fname, k) end
    if type(v) ~= KEYS[k] then argerr(fname, k, KEYS[k] .. " expected, got " .. type(v)) end
  end
  if cfg.deliver_policy and not POLICIES[cfg.deliver_policy] then
    argerr(fname, "deliver_policy", "unknown policy '" .. cfg.deliver_policy .. "'")
  end
  return setmetatable({ js = js, stream = stream, cfg = cfg, serial = 0, base = "jl_ord_" .. jet._nuid(),
                        last_sseq = 0, expected = 1, name = nil }, OC)
end

-- Create the next consumer from last_sseq + 1 (or the user's start).
function OC:_create()
  if self.js.nc:status() == "closed" then return nil, "closed", "the connection is closed" end
  local old = self.name
  self.serial = self.serial + 1
  self.name = self.base .. "_" .. self.serial
  self.expected = 1
  local c = { name = self.name, ack_policy = "none", max_deliver = 1, mem_storage = true, num_replicas = 1,
              inactive_threshold = math.floor((self.cfg.inactive_threshold or 300) * 1e9),
              filter_subject = self.cfg.filter_subject, headers_only = self.cfg.headers_only,
              replay_policy = self.cfg.replay }
  if self.last_sseq > 0 then
    c.deliver_policy, c.opt_start_seq = "by_start_sequence", self.last_sseq + 1
  else
    c.deliver_policy = self.cfg.deliver_policy or "all"
    c.opt_start_seq = self.cfg.opt_start_seq
    c.opt_start_time = self.cfg.opt_start_time
  end
  if old then
    local js, stream = self.js, self.stream
    jet.spawn(function() js:delete_consumer(stream, old) end)   -- best effort; it also expires
  end
  local r, code, detail = self.js:_api("CONSUMER.CREATE." .. self.stream .. "." .. self.name,
    { stream_name = self.stream, config = c })
  if r then self.created_pending = r.num_pending end
  return r, code, detail
end

-- Create, retrying 1 s doubling to 10 s until it works or `alive()` says
-- stop -> true | false, code, detail. Gives up when the stream is gone
-- (GONE_TRIES times in a row) or the connection is closed.
function OC:_create_retry(alive, report)
  local delay, gone = 1, 0
  while alive() do
    local ok, code, detail = self:_create()
    if ok then return true end
    gone = code == "stream_not_found" and gone + 1 or 0
    if code == "closed" or gone >= GONE_TRIES then return false, code, detail end
    if report then report(code, detail, false) end
    jet.sleep(delay)
    delay = math.min(delay * 2, 10)
  end
  return false, "closed", "the ordered consumer was stopped"
end

-- Is msg the next one? Advances the cursor when it is.
function OC:_accept(msg)
  local md = msg:metadata()
  if md.consumer ~= self.name or md.consumer_seq ~= self.expected then return false end
  self.expected = self.expected + 1
  self.last_sseq = md.stream_seq
  return true
end

local function copy(t) local o = {} for k, v in pairs(t or {}) do o[k] = v end return o end

-- oc:consume(handler, opts): opts as js:consume (concurrency is always 1)
function OC:consume(handler, opts)
  me("oc:consume", self)
  if type(handler) ~= "function" then argerr("oc:consume", "handler", "function expected, got " .. type(handler)) end
  opt_table("oc:consume", opts)
  opts = copy(opts)
  if opts.concurrency and opts.concurrency ~= 1 then
    argerr("oc:consume", "concurrency", "an ordered consumer runs one at a time")
  end
  local user_err = opts.on_error
  local oc, js = self, self.js
  local ctl = { stopped = false, resets = 0 }
  local reset
  local function give_up(code, detail)
    ctl.stopped, ctl.error = true, code
    if user_err then user_err(code, detail, true)
    else jet.log.error(("ordered consumer on %s: %s (%s); it stopped"):format(oc.stream, code, tostring(detail))) end
  end
  local eopts = opts
  eopts.auto_ack = false
  eopts.heartbeat = eopts.heartbeat or math.min((eopts.expires or 30) / 2, 5)
  local function start()
    local h, code, detail = js:consume(oc.stream, oc.name, function(msg)
      if ctl.stopped then return end
      if not oc:_accept(msg) then return reset("sequence gap") end
      return handler(msg)
    end, eopts)
    if not h then return nil, code, detail end
    ctl.h = h
    return h
  end
  eopts.on_error = function(code, detail, terminal)
    if ctl.stopped then return end
    -- a consumer gone is ours to re-create: the user hears of it only if that fails
    if RESET_ON[code] then
      if user_err then user_err(code, detail, false) end
      return reset(code)
    end
    if user_err then user_err(code, detail, terminal) end
    if terminal then ctl.stopped, ctl.error = true, code end
  end
  reset = function(why)
    if ctl.stopped or ctl.resetting then return end
    ctl.resetting = true
    ctl.resets = ctl.resets + 1
    if ctl.h then ctl.h:stop() end
    jet.spawn(function()
      while not ctl.stopped do
        local ok, code, detail = oc:_create_retry(function() return not ctl.stopped end, user_err)
        if not ok then
          if not ctl.stopped then give_up(code, detail) end
          break
        end
        if start() then break end
        jet.sleep(1)
      end
      ctl.resetting = false
    end)
    jet.log.debug(("ordered consumer on %s: reset (%s)"):format(oc.stream, why))
  end
  local ok, code, detail = oc:_create()
  if not ok then return nil, code, detail end
  local h
  h, code, detail = start()
  if not h then return nil, code, detail end
  local handle = {}
  function handle:stop() ctl.stopped = true; return ctl.h:stop() end
  function handle:drain() ctl.stopped = true; return ctl.h:drain() end
  function handle:closed() return ctl.stopped and ctl.h:closed() end
  function handle:stats()
    local st = ctl.h:stats()
    st.resets, st.last_stream_seq, st.error = ctl.resets, oc.last_sseq, ctl.error or st.error
    return st
  end
  return handle
end

-- oc:messages(opts) -> iterator with next([timeout]), stop(), drain(); for msg in it do ... end
function OC:messages(opts)
  me("oc:messages", self)
  opt_table("oc:messages", opts)
  opts = copy(opts)
  local user_err = opts.on_error
  local oc, js = self, self.js
  local it = { stopped = false, need_reset = false, resets = 0 }
  opts.heartbeat = opts.heartbeat or math.min((opts.expires or 30) / 2, 5)
  opts.on_error = function(code, detail, terminal)
    if it.stopped then return end
    if user_err then user_err(code, detail, terminal and not RESET_ON[code]) end
    if RESET_ON[code] then it.need_reset = true end
  end
  local function open()
    local e, code, detail = js:messages(oc.stream, oc.name, opts)
    if e then it.e = e end
    return e, code, detail
  end
  local ok, code, detail = oc:_create()
  if not ok then return nil, code, detail end
  local e
  e, code, detail = open()
  if not e then return nil, code, detail end
  local function reset()
    it.need_reset = false
    it.resets = it.resets + 1
    it.e:stop()
    local created, why, what = oc:_create_retry(function() return not it.stopped end, user_err)
    if not created then
      if not it.stopped then
        it.stopped, it.error, it.detail = true, why, what
        if user_err then user_err(why, what, true) end
      end
      return false
    end
    return open()
  end
  function it:next(timeout)
    check_timeout("it:next", timeout)
    local deadline = timeout and (jet.monotonic() + timeout)
    while not it.stopped do
      if it.need_reset and not reset() then break end
      local left = deadline and math.max(0, deadline - jet.monotonic())
      -- wake up now and then to notice a needed reset
      local m, err = it.e:next(left and math.min(left, 1) or 1)
      if m then
        if oc:_accept(m) then return m end
        it.need_reset = true
      elseif err ~= "timeout" then
        -- "closed", or a terminal error (consumer_deleted, ...): this engine is over. Reset now
        -- (its next() would answer at once, and a loop over it would never yield)
        if it.stopped then break end
        it.need_reset = true
      elseif deadline and jet.monotonic() >= deadline then
        return nil, "timeout"
      end
    end
    if it.error then return nil, it.error, it.detail end
    return nil, "closed"
  end
  function it:stop() it.stopped = true; return it.e:stop() end
  function it:drain() it.stopped = true; return it.e:drain() end
  function it:stats()
    local st = it.e:stats()
    st.resets, st.last_stream_seq, st.error = it.resets, oc.last_sseq, it.error or st.error
    return st
  end
  return setmetatable(it, { __call = function(iter) return iter:next() end })
end

-- oc:fetch(n, opts) -> list (in order, no gap), err, detail | nil, code, detail
function OC:fetch(n, opts)
  me("oc:fetch", self)
  if type(n) ~= "number" or n < 1 or n ~= math.floor(n) then
    argerr("oc:fetch", "n", "positive integer expected, got " .. (type(n) == "number" and n or type(n)))
  end
  opt_table("oc:fetch", opts)
  if not self.name then
    local ok, code, detail = self:_create()
    if not ok then return nil, code, detail end
  end
  local list, err, detail = self.js:fetch(self.stream, self.name, n, opts)
  local out = {}
  for _, m in ipairs(list or {}) do
    if not self:_accept(m) then
      self:_create()            -- a gap: start again after the last one handed out
      break
    end
    out[#out + 1] = m
  end
  if #out == 0 and (err == "consumer_not_found" or err == "no_heartbeat" or err == "no_responders") then
    local ok, c2, d2 = self:_create()
    if not ok then return nil, c2, d2 end
    list, err, detail = self.js:fetch(self.stream, self.name, n, opts)
    for _, m in ipairs(list or {}) do
      if not self:_accept(m) then break end
      out[#out + 1] = m
    end
  end
  if #out == 0 and err then return nil, err, detail end
  return out, err, detail
end

return M
