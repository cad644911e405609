-- Every method of every consumer-side handle, in every end state (issue #11
-- item 2): js:consume handles, js:messages iterators, ordered handles and
-- iterators, kv:watch watchers and the messages js:fetch returns, after
-- stop, drain, a terminal error (consumer or stream deleted), nc:close() and
-- nc:drain(). Each call must come back - a value, nil + code, or a clear
-- error naming the function - and never crash (h:fetch() on a stopped
-- consume handle was a SIGSEGV in uv_timer_start). Runs under ASan in CI.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }

local calls = 0

-- Call fn in its own coroutine; it must return (or raise a clear error)
-- within a bounded time.
local function poke(label, fn)
  local res
  jet.spawn(function()
    local r = { pcall(fn) }
    res = r
  end)
  T.wait_until(function() return res end, 15, label .. " to return")
  calls = calls + 1
  if not res[1] then
    local err = tostring(res[2])
    T.ok(err:find("[%w_]+[:.][%w_]+") and not err:find("attempt to") and not err:find("bad self"),
      label .. ": not a clear error: " .. err)
  end
  return res
end

local CONSUME_METHODS = {
  next = function(h) return h:next(0.2) end,
  fetch = function(h) return h:fetch() end,
  stop = function(h) return h:stop() end,
  drain = function(h) return h:drain() end,
  closed = function(h) return h:closed() end,
  stats = function(h) return h:stats() end,
  call = function(h) return h(nil, nil) end,
  _reconfigure = function(h) return h:_reconfigure({ max_messages = 10 }, function() end) end,
  _take = function(h) return h:_take(1) end,
  _done = function(h) return h:_done(1, nil, true) end,
  _step = function(h) return h:_step(1, nil, true) end,
}

local MSG_METHODS = {
  ack = function(m) return m:ack() end,
  ack_sync = function(m) return m:ack_sync(0.5) end,
  nak = function(m) return m:nak() end,
  nak_delay = function(m) return m:nak(1) end,
  in_progress = function(m) return m:in_progress() end,
  term = function(m) return m:term() end,
  metadata = function(m) return m:metadata() end,
  header = function(m) return m:header("X") end,
  header_values = function(m) return m:header_values("X") end,
  respond = function(m) return m:respond("x") end,
  fields = function(m) return m.subject, m.data, m.headers, m.reply, tostring(m) end,
}

local function poke_all(label, obj, methods, order)
  for _, name in ipairs(order) do
    if methods[name] then poke(label .. " " .. name, function() return methods[name](obj) end) end
  end
end

local CONSUME_ORDER = { "closed", "stats", "next", "fetch", "call", "_take", "_done", "_step", "_reconfigure",
                        "stop",
                        "drain", "closed", "stats", "fetch", "next" }
local MSG_ORDER = { "metadata", "header", "header_values", "fields", "in_progress", "ack_sync", "nak_delay", "nak",
                    "term", "ack", "respond", "metadata" }

-- A fresh connection, stream, durable and some messages for each case.
local serial = 0
local function setup()
  serial = serial + 1
  local name = "HS" .. serial
  local nc = assert(jet.connect{ servers = srv.url, reconnect = { wait = 0.1 } })
  local js = nc:jetstream()
  assert(js:stream{ name = name, subjects = { name:lower() .. ".>" }, storage = "memory" })
  assert(js:consumer(name, { durable = "C", ack_wait = 30 }))
  for i = 1, 20 do js:publish_async(name:lower() .. ".x", tostring(i)) end
  T.eq(js:publish_async_complete(10), 0)
  return { nc = nc, js = js, name = name }
end

-- How each end state is reached; `wait` says when the handle got there.
local ENDS = {
  { "stop", function(_, h) h:stop() end },
  { "drain", function(_, h) h:drain() end },
  { "terminal", function(env, h)
      env.js:delete_stream(env.name)
      T.wait_until(function() return h:closed() end, 30, "a terminal close")
    end },
  { "nc:close", function(env) env.nc:close() end },
  { "nc:drain", function(env) env.nc:drain(5) end },
}

T.test("js:consume handles: every method in every end state", function()
  for _, e in ipairs(ENDS) do
    local env = setup()
    local h = assert(env.js:consume(env.name, "C", function() jet.sleep(0.01) end,
      { max_messages = 10, heartbeat = 0.5, expires = 2 }))
    jet.sleep(0.05)
    poke_all("consume (active)", h, CONSUME_METHODS, { "closed", "stats", "next", "fetch", "call", "_take", "_done",
                                                          "_step" })
    e[2](env, h)
    poke_all("consume after " .. e[1], h, CONSUME_METHODS, CONSUME_ORDER)
    env.nc:close()
  end
end)

T.test("js:messages iterators: every method in every end state", function()
  for _, e in ipairs(ENDS) do
    local env = setup()
    local it = assert(env.js:messages(env.name, "C", { max_messages = 10, heartbeat = 0.5, expires = 2 }))
    assert(it:next(5)):ack()
    poke_all("messages (active)", it, CONSUME_METHODS, { "closed", "stats", "fetch", "_take", "_done", "_step",
                                                           "_reconfigure" })
    e[2](env, it)
    poke_all("messages after " .. e[1], it, CONSUME_METHODS, CONSUME_ORDER)
    -- a for loop over it ends
    poke("messages after " .. e[1] .. " for-loop", function() for m in it do m:ack() end end)
    env.nc:close()
  end
end)

T.test("ordered handles and iterators: every method in every end state", function()
  local OH = {
    stop = function(h) return h:stop() end, drain = function(h) return h:drain() end,
    closed = function(h) return h:closed() end, stats = function(h) return h:stats() end,
  }
  local OI = {
    next = function(it) return it:next(0.3) end, call = function(it) return it() end,
    stop = function(it) return it:stop() end, drain = function(it) return it:drain() end,
    stats = function(it) return it:stats() end,
  }
  for _, e in ipairs(ENDS) do
    local env = setup()
    local h = assert(env.js:ordered(env.name):consume(function() end, { expires = 2 }))
    local it = assert(env.js:ordered(env.name):messages{ expires = 2 })
    assert(it:next(5))
    local reach = e[2]
    if e[1] == "terminal" then
      reach = function()
        env.js:delete_stream(env.name)
        T.wait_until(function() return h:closed() end, 40, "the ordered handle ended")
        local _, err = it:next(30)
        T.eq(err, "stream_not_found")
      end
      reach(env)
    else
      reach(env, h)
      if e[1] == "stop" or e[1] == "drain" then reach(env, it) end
    end
    poke_all("ordered consume after " .. e[1], h, OH, { "closed", "stats", "stop", "drain", "closed", "stats" })
    poke_all("ordered messages after " .. e[1], it, OI, { "stats", "next", "call", "stop", "drain", "stats", "next" })
    local oc = env.js:ordered(env.name)
    poke("ordered fetch after " .. e[1], function() return oc:fetch(1, { expires = 0.3 }) end)
    env.nc:close()
  end
end)

T.test("kv:watch watchers: every method after stop, terminal, nc:close and nc:drain", function()
  local W = {
    next = function(w) return w:next(0.3) end, call = function(w) return w() end,
    stop = function(w) return w:stop() end, caught_up = function(w) return w:caught_up() end,
  }
  for _, e in ipairs(ENDS) do
    if e[1] ~= "drain" then
      local env = setup()
      local kv = assert(env.js:create_kv{ bucket = "hs" .. serial })
      assert(kv:put("a", "1"))
      local seen = 0
      local w1 = assert(kv:watch(function() seen = seen + 1 end))
      local w2 = assert(kv:watch())
      T.wait_until(function() return seen > 0 end, 5)
      assert(w2:next(5))
      if e[1] == "terminal" then
        env.js:delete_kv("hs" .. serial)
        T.wait_until(function() return w1.h:closed() end, 40, "the watcher ended")
        local _, err = w2:next(30)
        T.eq(err, "stream_not_found")
      elseif e[1] == "stop" then
        w1:stop(); w2:stop()
      else
        e[2](env)
      end
      poke_all("watch(fn) after " .. e[1], w1, W, { "caught_up", "stop", "caught_up" })
      poke_all("watch() after " .. e[1], w2, W, { "caught_up", "next", "call", "stop", "next" })
      env.nc:close()
    end
  end
end)

T.test("messages from js:fetch: every method after ack, nc:drain, nc:close and a deleted stream", function()
  for _, state in ipairs{ "acked", "nc:drain", "nc:close", "terminal" } do
    local env = setup()
    local list = assert(env.js:fetch(env.name, "C", 3, { expires = 2 }))
    T.eq(#list, 3)
    if state == "acked" then for _, m in ipairs(list) do m:ack() end
    elseif state == "nc:drain" then env.nc:drain(5)
    elseif state == "nc:close" then env.nc:close()
    else env.js:delete_stream(env.name) end
    for i, m in ipairs(list) do poke_all(("fetched msg %d after %s"):format(i, state), m, MSG_METHODS, MSG_ORDER) end
    env.nc:close()
  end
end)

T.test("every call above came back", function()
  T.ok(calls > 300, "calls made: " .. calls)
end)

T.run()
