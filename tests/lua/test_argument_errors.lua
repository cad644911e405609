-- Every public function of jetlua's Lua half (bindings/lua/jetlua/*.lua), and the C functions
-- it wraps, called with arguments of the wrong type: the error names the function and the
-- argument, and points at the line of this file that made the call -- never at jetlua's
-- own files, and never "bad argument #1 to 'pairs'".
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url })
local js = nc:jetstream()
assert(js:stream{ name = "ARGS", subjects = { "args.>" }, storage = "memory" })
assert(js:consumer("ARGS", { durable = "C" }))
assert(js:publish("args.x", "1"))
local kv = assert(js:create_kv{ bucket = "args" })
local oc = js:ordered("ARGS")
local it = assert(js:ordered("ARGS"):messages())
local w = assert(kv:watch())
local once = jet.idempotent{ js = js, bucket = "args_done" }
local fn = function() end
local svc = nc:service{ name = "args", version = "1.0.0" }
local grp = svc:group("g")

local SAMPLES = { { "nil", nil }, { "number", 42 }, { "string", "x" }, { "table", {} }, { "function", fn },
                  { "boolean", true } }

-- { fname, call, {arg, accepted types ("string|nil"), a valid value}, ... }
-- Each call makes ONE call, not a tail call, on the line where it is defined: that line is
-- where the error must point.
local CASES = {
  { "nc:jetstream", function(...) nc:jetstream(...) end, { "opts", "nil|table" } },
  { "js:stream", function(...) js:stream(...) end, { "config", "table" } },
  { "js:stream_info", function(...) js:stream_info(...) end, { "name", "string" } },
  { "js:delete_stream", function(...) js:delete_stream(...) end, { "name", "string" } },
  { "js:purge", function(...) js:purge(...) end, { "name", "string", "ARGS" }, { "opts", "nil|table" } },
  { "js:get_msg", function(...) js:get_msg(...) end, { "name", "string", "ARGS" }, { "seq", "number" } },
  { "js:get_last_msg", function(...) js:get_last_msg(...) end, { "name", "string", "ARGS" },
    { "subject", "string" } },
  { "js:delete_msg", function(...) js:delete_msg(...) end, { "name", "string", "ARGS" }, { "seq", "number" } },
  { "js:consumer", function(...) js:consumer(...) end, { "stream", "string", "ARGS" }, { "config", "table" } },
  { "js:consumer_info", function(...) js:consumer_info(...) end, { "stream", "string", "ARGS" },
    { "name", "string", "C" } },
  { "js:delete_consumer", function(...) js:delete_consumer(...) end, { "stream", "string", "ARGS" },
    { "name", "string", "C" } },
  { "js:consumers", function(...) js:consumers(...) end, { "stream", "string" } },
  { "js:ensure_stream_for", function(...) js:ensure_stream_for(...) end, { "subject", "string", "args.x" },
    { "template", "nil|table" } },
  { "js:publish", function(...) js:publish(...) end, { "subject", "string", "args.x" },
    { "data", "nil|string", "d" }, { "opts", "nil|table" } },
  { "js:publish_async", function(...) js:publish_async(...) end, { "subject", "string", "args.x" },
    { "data", "nil|string", "d" }, { "opts", "nil|table" } },
  { "js:publish_async_complete", function(...) js:publish_async_complete(...) end, { "timeout", "nil|number" } },
  { "js:on_publish_error", function(...) js:on_publish_error(...) end, { "fn", "nil|function" } },
  { "js:consume", function(...) js:consume(...) end, { "stream", "string", "ARGS" }, { "consumer", "string", "C" },
    { "handler", "function", fn }, { "opts", "nil|table" } },
  { "js:messages", function(...) js:messages(...) end, { "stream", "string", "ARGS" },
    { "consumer", "string", "C" }, { "opts", "nil|table" } },
  { "js:fetch", function(...) js:fetch(...) end, { "stream", "string", "ARGS" }, { "consumer", "string", "C" },
    { "n", "number", 1 }, { "opts", "nil|table" } },
  { "js:fetch_bytes", function(...) js:fetch_bytes(...) end, { "stream", "string", "ARGS" },
    { "consumer", "string", "C" }, { "max_bytes", "number", 100 }, { "opts", "nil|table" } },
  { "js:ordered", function(...) js:ordered(...) end, { "stream", "string", "ARGS" }, { "opts", "nil|table" } },
  { "js:create_kv", function(...) js:create_kv(...) end, { "config", "table" } },
  { "js:kv", function(...) js:kv(...) end, { "bucket", "string" } },
  { "js:delete_kv", function(...) js:delete_kv(...) end, { "bucket", "string" } },

  { "kv:get", function(...) kv:get(...) end, { "key", "string", "k" }, { "revision", "nil|number" } },
  { "kv:put", function(...) kv:put(...) end, { "key", "string", "k" }, { "value", "string", "v" } },
  { "kv:update", function(...) kv:update(...) end, { "key", "string", "k" }, { "value", "string", "v" },
    { "revision", "number" } },
  { "kv:create", function(...) kv:create(...) end, { "key", "string", "k" }, { "value", "string", "v" } },
  { "kv:delete", function(...) kv:delete(...) end, { "key", "string", "k" }, { "revision", "nil|number" } },
  { "kv:purge", function(...) kv:purge(...) end, { "key", "string" } },
  { "kv:history", function(...) kv:history(...) end, { "key", "string" } },
  { "kv:watch", function(...) kv:watch(...) end, { "keys", "nil|string|function", ">" },
    { "fn", "nil|function", fn }, { "opts", "nil|table" } },
  { "w:next", function(...) w:next(...) end, { "timeout", "nil|number" } },

  { "oc:consume", function(...) oc:consume(...) end, { "handler", "function", fn }, { "opts", "nil|table" } },
  { "oc:messages", function(...) oc:messages(...) end, { "opts", "nil|table" } },
  { "oc:fetch", function(...) oc:fetch(...) end, { "n", "number", 1 }, { "opts", "nil|table" } },
  { "it:next", function(...) it:next(...) end, { "timeout", "nil|number" } },

  { "jet.pipeline", function(...) jet.pipeline(...) end, { "config", "table" } },
  { "jet.retry.backoff", function(...) jet.retry.backoff(...) end, { "opts", "nil|table" } },
  { "jet.fail.permanent", function(...) jet.fail.permanent(...) end,
    { "err", "string|number|table|function|boolean", "e" }, { "level", "nil|number" } },
  { "jet.idempotent", function(...) jet.idempotent(...) end, { "opts", "table" } },
  { "jet.idempotent", function(...) once(...) end, { "handler", "function" } },
  { "jet.on_reload", function(...) jet.on_reload(...) end, { "fn", "function" } },
  { "jet.json.decode", function(...) jet.json.decode(...) end, { "text", "string" } },
  { "nc:service", function(...) nc:service(...) end, { "opts", "table" } },
  { "svc:endpoint", function(...) svc:endpoint(...) end, { "name", "string", "e" }, { "opts", "nil|table" },
    { "handler", "function", fn } },
  { "svc:group", function(...) svc:group(...) end, { "name", "string", "g" }, { "opts", "nil|table" } },
  { "group:endpoint", function(...) grp:endpoint(...) end, { "name", "string", "e" }, { "opts", "nil|table" },
    { "handler", "function", fn } },
  { "group:group", function(...) grp:group(...) end, { "name", "string", "h" }, { "opts", "nil|table" } },
  { "jet.micro.ping", function(...) jet.micro.ping(...) end, { "nc", "userdata", nc },
    { "name", "nil|string|table", "x" }, { "id", "nil|string|table", "y" }, { "opts", "nil|table" } },
  { "jet.micro.info", function(...) jet.micro.info(...) end, { "nc", "userdata", nc } },
  { "jet.micro.stats", function(...) jet.micro.stats(...) end, { "nc", "userdata", nc } },

  -- C functions that reload.lua wraps while the main chunk runs (as this test does)
  { "nc:subscribe", function(...) nc:subscribe(...) end, { "subject", "string", "args.sub" },
    { "handler", "function", fn }, { "opts", "nil|table" } },
  { "jet.timer", function(...) jet.timer(...) end, { "seconds", "number", 1 }, { "fn", "function", fn } },
  { "jet.every", function(...) jet.every(...) end, { "seconds", "number", 1 }, { "fn", "function", fn } },
  { "jet.connect", function(...) jet.connect(...) end, { "opts", "nil|table" } },
}

local function accepts(types, tname)
  for t in types:gmatch("[^|]+") do if t == tname then return true end end
  return false
end

-- "file:line: " where `call` was defined (= where it calls)
local function where(call)
  local info = debug.getinfo(call, "S")
  return info.short_src .. ":" .. info.linedefined .. ": "
end

T.test("wrong argument types: the function and argument are named, at the caller's line", function()
  local checked, bad = 0, {}
  for _, c in ipairs(CASES) do
    local fname, call = c[1], c[2]
    local nargs = #c - 2
    for i = 1, nargs do
      local arg, types = c[i + 2][1], c[i + 2][2]
      for _, s in ipairs(SAMPLES) do
        if not accepts(types, s[1]) then
          local args = {}
          for j = 1, nargs do args[j] = c[j + 2][3] end
          args[i] = s[2]
          local ok, err = pcall(call, unpack(args, 1, nargs))
          err = tostring(err)
          local want = ("%s: bad argument '%s'"):format(fname, arg)
          checked = checked + 1
          if ok then
            bad[#bad + 1] = ("%s(%s = %s): no error"):format(fname, arg, s[1])
          elseif err:sub(1, #where(call)) ~= where(call) or not err:find(want, 1, true) then
            bad[#bad + 1] = ("%s(%s = %s): %s"):format(fname, arg, s[1], err)
          end
        end
      end
    end
  end
  T.ok(checked > 250, "cases checked: " .. checked)
  print(("# %d wrong-type calls checked"):format(checked))
  T.eq(#bad, 0, "misplaced or unnamed errors:\n  " .. table.concat(bad, "\n  "))
end)

T.test("methods called with '.' instead of ':' name 'self'", function()
  local cases = {
    { "js:stream", function() js.stream({ name = "X" }) end },
    { "js:publish", function() js.publish("args.x", "d") end },
    { "js:consume", function() js.consume("ARGS", "C", fn) end },
    { "js:kv", function() js.kv("args") end },
    { "kv:get", function() kv.get("k") end },
    { "kv:put", function() kv.put("k", "v") end },
    { "oc:fetch", function() oc.fetch(1) end },
    { "svc:endpoint", function() svc.endpoint("e", fn) end },
    { "group:endpoint", function() grp.endpoint("e", fn) end },
  }
  for _, c in ipairs(cases) do
    local err = T.raises(c[2], nil, c[1])
    T.ok(err:find(c[1] .. ": bad argument 'self'", 1, true), err)
    T.eq(err:sub(1, #where(c[2])), where(c[2]), err)
  end
end)

T.test("unknown options and bad values point at the caller too", function()
  local cases = {
    { "js:stream: unknown option 'subject'", function() js:stream{ name = "X", subject = "x" } end },
    { "js:consumer: unknown option 'ack_wiat'", function() js:consumer("ARGS", { durable = "x", ack_wiat = 1 }) end },
    { "js:purge: unknown option 'subjects'", function() js:purge("ARGS", { subjects = "x" }) end },
    { "js:publish: unknown option 'msgid'", function() js:publish("args.x", "d", { msgid = "1" }) end },
    { "js:create_kv: unknown option 'histroy'", function() js:create_kv{ bucket = "b", histroy = 2 } end },
    { "kv:watch: unknown option 'x'", function() kv:watch(">", fn, { x = true }) end },
    { "jet.pipeline: unknown option 'form'", function() jet.pipeline{ js = js, name = "p", form = {} } end },
    { "jet.retry.backoff: unknown option 'maxx'", function() jet.retry.backoff{ maxx = 1 } end },
    { "nc:jetstream: unknown option 'tmeout'", function() nc:jetstream{ tmeout = 1 } end },
    { "nc:subscribe: unknown option 'queu'", function() nc:subscribe("a", fn, { queu = "q" }) end },
    { "nc:service: unknown option 'nmae'", function() nc:service{ name = "s", version = "1.0.0", nmae = "s" } end },
    { "svc:endpoint: unknown option 'subjet'", function() svc:endpoint("e", { subjet = "x" }, fn) end },
    { "nc:service: bad argument 'version'", function() nc:service{ name = "s", version = "1.0" } end },
    { "js:stream: bad argument 'storage'", function() js:stream{ name = "X", storage = "disk" } end },
    { "js:stream: bad argument 'max_age'", function() js:stream{ name = "X", max_age = "1d" } end },
    { "js:consumer: bad argument 'backoff'", function() js:consumer("ARGS", { durable = "x", backoff = { "1" } }) end },
    { "jet.json.encode: bad argument 'value'", function() jet.json.encode{ f = fn } end },
  }
  for _, c in ipairs(cases) do
    local err = T.raises(c[2], nil, c[1])
    T.ok(err:find(c[1], 1, true), ("%q does not contain %q"):format(err, c[1]))
    T.eq(err:sub(1, #where(c[2])), where(c[2]), err)
  end
end)

T.test("jet.json.decode of text that is not JSON still raises (scripts pcall it), naming itself", function()
  local ok, err = pcall(jet.json.decode, "{nope")
  T.eq(ok, false)
  T.ok(tostring(err):find("jet.json.decode: ", 1, true), err)
  T.eq(jet.json.decode('{"a":[1,2]}').a[2], 2)
  T.eq(jet.json.encode{ 1, 2 }, "[1,2]")
end)

T.run()
