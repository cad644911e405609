-- jetlua.reload: hot reload of a running script (SIGHUP, or `jetlua run --watch`).
--
-- The script is re-run; what it declares is reconciled with what the last
-- good run declared, by position: the k-th jet.connect with the same options
-- gets the same connection back (it is never dropped), the k-th subscription
-- on the same connection, subject, queue and options keeps its NATS
-- subscription and gets the new handler (messages already handed to the old
-- handler finish there), the k-th nc:service of a name on a connection keeps
-- its id, stats and subscriptions and gets its endpoints reconciled, a
-- declaration that is new is made, and one that is gone is drained. jet.every /
-- jet.timer started by the old run are stopped.
-- User modules (files next to the script that it required) are compiled
-- first and loaded fresh. A reload that fails anywhere -- a syntax error, an
-- error while the script runs -- changes nothing: the old code keeps running
-- and the log says "reload failed: file:line: message".
--
-- Only what the main chunk declares (in its own coroutine, including the
-- functions and modules it calls) is reconciled; subscriptions or timers made
-- later by handlers are left alone.
local jet = require "jetlua"

local R = {
  gen = 0,            -- generation of the last good run
  running = nil,      -- the run in progress: {co=, gen=, counts=, conns=, subs=, timers=, hooks=, ...}
  conns = {},         -- key -> list of {nc=}  (by ordinal)
  subs = {},          -- key -> list of {sub=, sig=}
  consumers = {},     -- key -> list of {h=}  (js:consume handles)
  services = {},      -- key -> list of {svc=}  (nc:service)
  timers = {},        -- timers of the last good run
  hooks = {},         -- jet.on_reload callbacks of the last good run
  modules = {},       -- module name -> file, user modules the last good run loaded
  again = nil,        -- a reload asked for while one runs
  reloads = 0, failures = 0,
}

local m_reloads, m_failures

local function log(level, ...)
  jet.log[level](...)
end

-- options table -> a stable string, to recognize "the same" declaration
local function sig(v, depth)
  depth = depth or 0
  local t = type(v)
  if t ~= "table" then return t == "string" and ("%q"):format(v) or tostring(v) end
  if depth > 4 then return "{...}" end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. sig(v[k], depth + 1) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function in_run()
  local run = R.running
  return run and coroutine.running() == run.co and run or nil
end

-- connections by identity (two may share a name)
local conn_ids, next_conn_id = setmetatable({}, { __mode = "k" }), 0
local function conn_id(nc)
  local id = conn_ids[nc]
  if not id then next_conn_id = next_conn_id + 1; id = next_conn_id; conn_ids[nc] = id end
  return id
end

local function take(run, key)
  run.counts[key] = (run.counts[key] or 0) + 1
  return run.counts[key]
end

-- ---- jet.connect ----
local real_connect = jet.connect
jet.connect = function(opts, ...)
  local run = in_run()
  if not run then return real_connect(opts, ...) end
  local key = "conn" .. sig(opts)
  local k = take(run, key)
  local prev = R.conns[key] and R.conns[key][k]
  if prev and prev.nc:status() ~= "closed" and run.gen > 1 then
    run.conns[key] = run.conns[key] or {}
    run.conns[key][k] = { nc = prev.nc }        -- kept: not new in this run
    return prev.nc
  end
  local nc, code, detail = real_connect(opts, ...)
  if nc then
    run.conns[key] = run.conns[key] or {}
    run.conns[key][k] = { nc = nc, new = true }
  end
  return nc, code, detail
end

-- ---- nc:subscribe ----
local conn_methods = debug.getregistry()["jetlua.conn"].__index
local real_subscribe = conn_methods.subscribe
conn_methods.subscribe = function(nc, subject, fn, opts)
  local run = in_run()
  if not run or type(nc) ~= "userdata" or type(subject) ~= "string" or type(fn) ~= "function" then
    return real_subscribe(nc, subject, fn, opts)    -- also: let it raise on bad arguments
  end
  local osig = sig(opts)
  local key = conn_id(nc) .. "|" .. tostring(subject) .. "|" .. osig
  local k = take(run, key)
  local prev = R.subs[key] and R.subs[key][k]
  if prev and run.gen > 1 and not prev.sub:stats().closed and type(fn) == "function" then
    run.subs[key] = run.subs[key] or {}
    run.subs[key][k] = { sub = prev.sub, fn = fn, swap = true }
    return prev.sub
  end
  local sub, code, detail = real_subscribe(nc, subject, fn, opts)
  if sub then
    run.subs[key] = run.subs[key] or {}
    run.subs[key][k] = { sub = sub, new = true }
  end
  return sub, code, detail
end

-- ---- js:consume ----
-- The k-th js:consume of the same connection, stream and consumer keeps its
-- engine (its buffer, its pulls, its server-side state) and gets the new
-- handler and options; messages already handed to the old handler finish
-- there. Ordered consumers create a fresh ephemeral consumer per run, so a
-- reload restarts them from their start policy.
local pull = require "jetlua.pull"
local real_consume = pull.consume
pull.consume = function(js, stream, consumer, handler, opts)
  local run = in_run()
  if not run or type(js) ~= "table" or type(stream) ~= "string" or type(consumer) ~= "string" then
    return real_consume(js, stream, consumer, handler, opts)
  end
  local key = conn_id(js.nc) .. "|js|" .. stream .. "|" .. consumer
  local k = take(run, key)
  local prev = R.consumers[key] and R.consumers[key][k]
  if prev and run.gen > 1 and not prev.h:closed() then
    local o, h, on_error = pull.prepare(js, stream, consumer, handler, opts)
    if not o then return nil, h, on_error end
    run.consumers[key] = run.consumers[key] or {}
    run.consumers[key][k] = { h = prev.h, swap = { o, h, on_error } }
    return prev.h
  end
  local h, code, detail = real_consume(js, stream, consumer, handler, opts)
  if h then
    run.consumers[key] = run.consumers[key] or {}
    run.consumers[key][k] = { h = h, new = true }
  end
  return h, code, detail
end

-- ---- nc:service ----
-- The k-th nc:service of the same name on the same connection is the same
-- service (same id, stats and subscriptions); its endpoints are reconciled
-- by name when the run succeeds (jetlua/service.lua: _stage, _commit). The
-- services' own subscriptions use the unwrapped nc:subscribe (R.subscribe).
R.subscribe = real_subscribe
local service = require "jetlua.service"
local real_service = service.service
service.service = function(nc, opts)
  local run = in_run()
  if not run or type(opts) ~= "table" or type(opts.name) ~= "string" then return real_service(nc, opts) end
  local key = conn_id(nc) .. "|svc|" .. opts.name
  local k = take(run, key)
  local prev = R.services[key] and R.services[key][k]
  run.services[key] = run.services[key] or {}
  if prev and run.gen > 1 and not prev.svc:stopped() then
    run.services[key][k] = { svc = prev.svc, swap = true }
    prev.svc:_stage(opts)
    return prev.svc
  end
  local svc, code, detail = real_service(nc, opts)
  if svc then run.services[key][k] = { svc = svc, new = true } end
  return svc, code, detail
end

-- ---- timers ----
for _, name in ipairs{ "every", "timer" } do
  local real = jet[name]
  jet[name] = function(...)
    local t = real(...)
    local run = in_run()
    if run then run.timers[#run.timers + 1] = t end
    return t
  end
end

-- jet.on_reload(fn): fn(info) after every successful reload, where info =
-- {generation=, reason=, swapped=, started=, stopped=}. Declared by the
-- script, so the latest code's hooks are the ones that run.
function jet.on_reload(fn)
  if type(fn) ~= "function" then
    require("jetlua.argcheck").argerr("jet.on_reload", "fn", "function expected, got " .. type(fn))
  end
  local run = in_run()
  if run then run.hooks[#run.hooks + 1] = fn else R.hooks[#R.hooks + 1] = fn end
end

-- ---- modules ----

local script_dir

-- user modules: loaded, found on package.path in the script's directory tree
local function user_modules()
  local out = {}
  for name in pairs(package.loaded) do
    if type(name) == "string" and not name:match("^jetlua") then
      local path = package.searchpath(name, package.path)
      if path and path:sub(1, #script_dir + 1) == script_dir .. "/" then out[name] = path end
    end
  end
  return out
end

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  return script_dir .. "/" .. path:gsub("^%./", "")
end

local function watch_list(script)
  local files = { script }
  for _, path in pairs(R.modules) do files[#files + 1] = absolute(path) end
  return files
end

-- ---- one run of the script ----

local function new_run(gen)
  return { co = coroutine.running(), gen = gen, counts = {}, conns = {}, subs = {}, consumers = {}, timers = {},
           hooks = {}, services = {} }
end

-- One kind of declaration (subscriptions under e.sub, consumers under e.h):
-- swap what this run kept, count what it started, drain what it dropped.
local function reconcile(now, before, field, swap, gen, n)
  for _, list in pairs(now) do
    for _, e in pairs(list) do
      if e.swap then swap(e); n.swapped = n.swapped + 1
      elseif e.new and gen > 1 then n.started = n.started + 1 end
    end
  end
  for key, list in pairs(before) do
    for k, e in pairs(list) do
      local cur = now[key] and now[key][k]
      if not cur or cur[field] ~= e[field] then
        local gone = e[field]
        n.stopped = n.stopped + 1
        jet.spawn(function() gone:drain() end)
      end
    end
  end
end

-- the run succeeded: make its declarations the live ones
local function commit(run, reason)
  local n = { swapped = 0, started = 0, stopped = 0 }
  reconcile(run.subs, R.subs, "sub", function(e) e.sub:_set_handler(e.fn) end, run.gen, n)
  reconcile(run.consumers, R.consumers, "h", function(e) e.h:_reconfigure(unpack(e.swap, 1, 3)) end, run.gen, n)
  -- services: counted by endpoint handler
  for _, list in pairs(run.services) do
    for _, e in pairs(list) do
      if e.swap then
        local sw, st, sp = e.svc:_commit()
        n.swapped, n.started, n.stopped = n.swapped + sw, n.started + st, n.stopped + sp
      elseif e.new and run.gen > 1 then
        n.started = n.started + e.svc:_endpoint_count()
      end
    end
  end
  for key, list in pairs(R.services) do
    for k, e in pairs(list) do
      local cur = run.services[key] and run.services[key][k]
      if not cur or cur.svc ~= e.svc then
        n.stopped = n.stopped + e.svc:_endpoint_count()
        e.svc:stop()
      end
    end
  end
  for key, list in pairs(R.conns) do
    for k, e in pairs(list) do
      local now = run.conns[key] and run.conns[key][k]
      if not now or now.nc ~= e.nc then jet.spawn(function() e.nc:drain() end) end
    end
  end
  if run.gen > 1 then
    for _, t in ipairs(R.timers) do t:stop() end
  end
  R.subs, R.conns, R.timers, R.hooks = run.subs, run.conns, run.timers, run.hooks
  R.consumers, R.services = run.consumers, run.services
  R.gen = run.gen
  R.modules = user_modules()
  return { generation = run.gen, reason = reason, swapped = n.swapped, started = n.started, stopped = n.stopped }
end

-- the run failed: undo what it started, keep the old declarations
local function rollback(run)
  for _, list in pairs(run.subs) do
    for _, e in pairs(list) do if e.new then e.sub:unsubscribe() end end
  end
  for _, list in pairs(run.consumers) do
    for _, e in pairs(list) do if e.new then e.h:stop() end end
  end
  for _, list in pairs(run.services) do
    for _, e in pairs(list) do
      if e.new then e.svc:_abort() elseif e.swap then e.svc:_unstage() end
    end
  end
  for _, list in pairs(run.conns) do
    for _, e in pairs(list) do if e.new then e.nc:close() end end
  end
  for _, t in ipairs(run.timers) do t:stop() end
end

local function where(err)
  return tostring(err):gsub("^%s+", "")
end

local script_path

local function reload(reason)
  if R.running then R.again = reason; return end
  local gen = R.gen + 1
  log("info", ("reload #%d (%s)"):format(gen - 1, reason))
  -- systemd (Type=notify): RELOADING=1 now, READY=1 when it ended either way;
  -- not before the first run's own READY=1 (main.c sends it when R.main returns)
  local notify = R.started
  if notify then jet._reload_notify("reloading") end
  -- compile everything first: a syntax error anywhere changes nothing
  local chunk, err = loadfile(script_path)
  if not chunk then return R.fail(err, gen, notify) end
  local mods = user_modules()
  for _, path in pairs(mods) do
    local ok, e = loadfile(path)
    if not ok then return R.fail(e, gen, notify) end
  end
  local saved = {}
  for name in pairs(mods) do saved[name] = package.loaded[name]; package.loaded[name] = nil end
  local run = new_run(gen)
  R.running = run
  local ok, e = xpcall(chunk, jet._onerror, unpack(R.args))
  R.running = nil
  if not ok then
    rollback(run)
    for name, v in pairs(saved) do package.loaded[name] = v end
    R.fail(e, gen, notify)
  else
    local info = commit(run, reason)
    R.reloads = R.reloads + 1
    m_reloads:inc()
    log("info", ("reload #%d ok (%s): %d handler(s) swapped, %d started, %d stopped"):format(
      gen - 1, reason, info.swapped, info.started, info.stopped))
    for _, h in ipairs(R.hooks) do jet.spawn(h, info) end
    if jet._reload_watching() then jet._reload_watch(watch_list(script_path)) end
    if notify then jet._reload_notify("ready", ("running; reload #%d ok"):format(gen - 1)) end
  end
  if R.again then
    local r = R.again
    R.again = nil
    reload(r)
  end
end

function R.fail(err, gen, notify)
  R.failures = R.failures + 1
  m_failures:inc()
  log("error", "reload failed: " .. where(err) .. " (the previous code keeps running)")
  if notify then
    jet._reload_notify("ready", ("running; reload #%d failed, the previous code keeps running"):format(gen - 1))
  end
end

-- main.c runs the script through this: reload.main(chunk, abs_path, args...)
function R.main(chunk, path, ...)
  script_path = path
  script_dir = path:match("^(.*)/[^/]*$") or "."
  R.args = { ... }
  m_reloads = jet.metrics.counter("jetlua_reloads_total", nil, "successful hot reloads")
  m_failures = jet.metrics.counter("jetlua_reload_failures_total", nil, "hot reloads that failed (old code kept)")
  jet._reload_on_request(function(reason) reload(reason) end)
  -- the first run: a raise propagates as it would without us (traceback, exit 1).
  -- A reload asked for before this run returned waits for it.
  local run = new_run(1)
  R.running = run
  chunk(...)
  R.running = nil
  commit(run, "start")
  if jet._reload_watching() then jet._reload_watch(watch_list(path)) end
  if R.again then
    local r = R.again
    R.again = nil
    reload(r)
  end
  R.started = true
end

R.reload = reload
return R
