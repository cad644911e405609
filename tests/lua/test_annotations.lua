-- The LuaLS annotations (bindings/types/jetlua.lua, installed as share/jetlua/types/jetlua.lua)
-- against the README and the runtime: every function the README documents has an annotation and
-- every annotated function is documented; the file is valid Lua; what it annotates exists on the
-- real objects.
local jet = require "jetlua"
local T = require "jetlua.testing"

local src = jet.process.getenv("JETLUA_SOURCE_DIR") or "."
local TYPES = src .. "/bindings/types/jetlua.lua"
local README = src .. "/README.md"

-- the names the README gives the objects it documents -> the annotation classes
local RECEIVERS = {
  nc = "jetlua.Conn", js = "jetlua.JetStream", kv = "jetlua.KV", msg = "jetlua.Msg",
  sub = "jetlua.Subscription", f = "jetlua.Future", h = "jetlua.ConsumeHandle",
  it = "jetlua.MessageIterator", oc = "jetlua.OrderedConsumer", w = "jetlua.KVWatcher",
  svc = "jetlua.Service", g = "jetlua.ServiceGroup", req = "jetlua.ServiceRequest", proc = "jetlua.Process",
}
-- receivers the README uses that are not the scripts' API
local NOT_API = { T = "the test helper (jetlua.testing), documented under Tests" }

-- ---- the annotation file: function name -> first return type ----

-- "jetlua.Conn|nil" / "jetlua.Timer?" -> "jetlua.Timer"
local function first_type(t) return t and (t:match("^[%w_.]+")) end

local function parse_annotations(text)
  local class_of, funcs, order = {}, {}, {}
  local pending_class, ret
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local c = line:match("^%-%-%-@class%s+([%w_.]+)")
    if c then pending_class = c end
    local r = line:match("^%-%-%-@return%s+(%S+)")
    if r and not ret then ret = r end
    local var = line:match("^local%s+([%w_]+)%s*=%s*{") or line:match("^([%w_.]+)%s*=%s*{")
    if var and pending_class then class_of[var] = pending_class end
    local path, sep, name = line:match("^function%s+([%w_.]+)([:.])([%w_]+)%s*%(")
    if path then
      local key
      if path == "jet" or path:match("^jet%.") then key = path .. "." .. name
      elseif class_of[path] then key = class_of[path] .. sep .. name
      else error("annotation: function " .. path .. sep .. name .. " of an unknown table '" .. path .. "'") end
      funcs[key] = first_type(ret) or true
      order[#order + 1] = key
    end
    if not line:match("^%-%-%-") then
      ret = nil
      if not var then pending_class = nil end
    end
  end
  return funcs, order
end

-- ---- the README: documented functions ----

-- contexts: each table row, each paragraph; fenced code blocks are examples, not documentation
local function contexts(text)
  local out, para, fenced = {}, {}, false
  local function flush() if #para > 0 then out[#out + 1] = table.concat(para, "\n"); para = {} end end
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if line:match("^```") then fenced = not fenced; flush()
    elseif fenced then para = {}
    elseif line:match("^%s*|") then flush(); out[#out + 1] = line
    elseif line:match("^%s*$") then flush()
    else para[#para + 1] = line end
  end
  flush()
  return out
end

-- Every code span that calls a function: `nc:publish(...)`, `jet.retry.backoff{...}`,
-- `js = nc:jetstream(...)`, `jet.log.debug/info/warn/error(...)`; `.tmpdir(...)` continues the
-- previous name's table (`jet.process.free_port()`, `.tmpdir()`), and `:stop()` is a method of
-- what the previous function of the same row or paragraph returns (per the annotations).
local function documented(text, funcs)
  local doc, unknown = {}, {}
  for _, ctx in ipairs(contexts(text)) do
    local last, last_key
    for span in ctx:gmatch("`([^`]+)`") do
      span = span:gsub("^local%s+", ""):gsub("^[%w_]+%s*=%s*", "")
      local recv, sep, rest = span:match("^([%a_][%w_]*)([:.])([%a_][%w_./]*)[%({]")
      local cont_sep, cont = span:match("^([:.])([%a_][%w_]*)[%({]")
      local keys = {}
      if recv then
        local names = {}
        for part in rest:gmatch("[^/]+") do names[#names + 1] = part end
        local base = names[1]:match("^(.*)%.") or ""
        for i, n in ipairs(names) do
          local fn = i == 1 and n or (base ~= "" and base .. "." .. n or n)
          if recv == "jet" then keys[#keys + 1] = "jet." .. fn
          elseif RECEIVERS[recv] then keys[#keys + 1] = RECEIVERS[recv] .. sep .. fn
          elseif NOT_API[recv] then keys = nil; break
          else unknown[recv .. sep .. fn] = true; keys = nil; break end
        end
        last = keys and keys[#keys]
      elseif cont_sep == "." and last then
        keys[1] = last:match("^(.*)%.") .. "." .. cont
      elseif cont_sep == ":" and last_key ~= nil then
        local ret = funcs[last_key]
        keys[1] = type(ret) == "string" and (ret .. ":" .. cont) or ("<what " .. last_key .. " returns>:" .. cont)
      else
        keys = nil
      end
      for _, k in ipairs(keys or {}) do
        doc[k] = doc[k] or span:sub(1, 60)
        if cont_sep ~= ":" then last_key = k end
      end
      if recv and not keys then last_key = nil end
    end
  end
  return doc, unknown
end

local function sorted(set)
  local l = {}
  for k in pairs(set) do l[#l + 1] = k end
  table.sort(l)
  return l
end

local text = assert(T.read_file(TYPES), "no " .. TYPES)
local funcs, order = parse_annotations(text)

T.test("the annotation file is valid Lua that builds the module's tables", function()
  local chunk, err = loadfile(TYPES)
  T.ok(chunk, err)
  T.ok(text:match("^%-%-%-@meta jetlua\n"), "starts with ---@meta jetlua")
  local mod = chunk()
  T.eq(type(mod), "table")
  T.eq(type(mod.connect), "function"); T.eq(type(mod.json.encode), "function")
  T.ok(#order > 140, "annotated functions: " .. #order)
end)

T.test("every function the README documents is annotated, and every annotated one is documented", function()
  local doc, unknown = documented(assert(T.read_file(README)), funcs)
  T.eq(sorted(unknown), {}, "README code spans calling a function of an object the test does not know "
    .. "(add its name to RECEIVERS or NOT_API)")
  local missing, undocumented = {}, {}
  for _, k in ipairs(sorted(doc)) do
    if not funcs[k] then missing[#missing + 1] = k .. "   (README: `" .. doc[k] .. "`)" end
  end
  for _, k in ipairs(order) do
    if not doc[k] then undocumented[#undocumented + 1] = k end
  end
  T.eq(missing, {}, "documented in README.md, not annotated in bindings/types/jetlua.lua")
  T.eq(undocumented, {}, "annotated in bindings/types/jetlua.lua, not documented in README.md")
  T.ok(#sorted(doc) > 140, "documented functions found: " .. #sorted(doc))
end)

T.test("what is annotated exists: the module's functions and the real objects' methods", function()
  local srv = T.server{ js = true }
  local nc = assert(jet.connect{ servers = srv.url })
  local js = nc:jetstream()
  assert(js:stream{ name = "ANN", subjects = { "ann.>" } })
  assert(js:consumer("ANN", { durable = "c1" }))
  assert(js:consumer("ANN", { durable = "c2" }))
  assert(js:publish("ann.x", "1"))
  local kv = assert(js:create_kv{ bucket = "ann" })
  local svc = nc:service{ name = "ann", version = "1.0.0" }
  local got_req
  svc:endpoint("e", { subject = "ann.svc" }, function(r) got_req = r; r:respond("ok") end)
  assert(nc:request("ann.svc", ""))
  local timer = jet.timer(1000, function() end)
  local objects = {
    ["jetlua.Conn"] = nc, ["jetlua.JetStream"] = js, ["jetlua.KV"] = kv,
    ["jetlua.Subscription"] = nc:subscribe("ann.sub", function() end),
    ["jetlua.Msg"] = assert(js:fetch("ANN", "c1", 1))[1],
    ["jetlua.Future"] = js:publish_async("ann.y", "2"),
    ["jetlua.ConsumeHandle"] = assert(js:consume("ANN", "c2", function() end)),
    ["jetlua.MessageIterator"] = assert(js:messages("ANN", "c1")),
    ["jetlua.OrderedConsumer"] = js:ordered("ANN"),
    ["jetlua.KVWatcher"] = assert(kv:watch()),
    ["jetlua.Service"] = svc, ["jetlua.ServiceGroup"] = svc:group("g"), ["jetlua.ServiceRequest"] = got_req,
    ["jetlua.Process"] = assert(jet.process.spawn({ "true" })),
    ["jetlua.Timer"] = timer,
    ["jetlua.Counter"] = jet.metrics.counter("ann_c"), ["jetlua.Gauge"] = jet.metrics.gauge("ann_g"),
    ["jetlua.Histogram"] = jet.metrics.histogram("ann_h"),
    ["jetlua.Pipeline"] = assert(jet.pipeline{ js = js, name = "annp", from = { stream = "ANN" },
      steps = { { map = function(v) return v end } }, to = "ann.out" }),
  }
  local absent = {}
  for _, key in ipairs(order) do
    local v
    if key:match("^jet%.") then
      v = jet
      for part in key:sub(5):gmatch("[^.]+") do v = type(v) == "table" and v[part] or nil end
    else
      local class, name = key:match("^(.-)[:.]([%w_]+)$")
      local obj = objects[class]
      if obj == nil then absent[#absent + 1] = key .. " (the test has no " .. class .. ")"
      else v = obj[name] end
    end
    if type(v) ~= "function" then absent[#absent + 1] = key end
  end
  T.eq(absent, {}, "annotated, but not there")
  timer:stop()
  objects["jetlua.Pipeline"]:stop(); objects["jetlua.ConsumeHandle"]:stop()
  objects["jetlua.MessageIterator"]:stop(); objects["jetlua.KVWatcher"]:stop()
  svc:stop()
  nc:close()
end)

T.run()
