-- NATS services (nc:service, the "micro" Service API): the $SRV.PING|INFO|STATS answers,
-- endpoints and groups, service errors, stats, stop; queue groups across processes; hot
-- reload keeping a service; jet.micro and `jetlua micro`; and a real Go peer built from
-- Debian's nats.go 1.22 (micro package), both ways: it finds, reads and calls a Lua
-- service, and a Go micro service is found and called from Lua.
local jet = require "jetlua"
local T = require "jetlua.testing"
local proc = jet.process

local srv = T.server{ js = false }
local nc = assert(jet.connect{ servers = srv.url })

local function decode(msg) return jet.json.decode(msg.data) end

local function names(list, field)
  local out = {}
  for i, v in ipairs(list) do out[i] = v[field or "name"] end
  return out
end

local function endpoint(stats, name)
  for _, e in ipairs(stats.endpoints) do if e.name == name then return e end end
end

T.test("nc:service: PING/INFO/STATS answers, endpoints, groups, respond, respond_json, respond_error", function()
  local svc = nc:service{ name = "incalc", version = "1.2.3-rc.1+b7", description = "adds numbers",
    metadata = { team = "core" }, stats_handler = function(ep) return { seen = ep.name } end }
  T.eq(type(svc.id), "string"); T.eq(#svc.id, 22); T.eq(svc.name, "incalc")
  T.ok(svc:endpoint("add", { subject = "calc.add", metadata = { unit = "int" } }, function(req)
    local v = jet.json.decode(req.data)
    req:respond_json({ sum = v.a + v.b }, { headers = { ["X-Sum"] = "yes" } })
  end))
  svc:endpoint("echo", function(req)          -- subject = the name; opts may be left out
    req:respond(req.subject .. "|" .. req.data .. "|" .. tostring(req:header("X-In")) .. "|" ..
      #req:header_values("X-In") .. "|" .. tostring(req.headers["X-In"] ~= nil) .. "|" .. req.size .. "|" ..
      tostring(req.reply == req.msg.reply and req.reply ~= nil))
  end)
  svc:endpoint("fail", { subject = "calc.fail" }, function(req)
    req:respond_error(400, "bad input", "details", { headers = { ["X-Extra"] = "1" } })
  end)
  svc:endpoint("solo", { subject = "calc.solo", queue = false }, function(req) req:respond("solo") end)
  local g = svc:group("math", { queue = "mq" })
  g:endpoint("mul", function(req) req:respond("mul") end)
  g:group("deep"):endpoint("pow", { subject = "p" }, function(req) req:respond("pow") end)

  T.eq(decode(nc:request("calc.add", '{"a":2,"b":3}')), { sum = 5 })
  T.eq(nc:request("calc.add", '{"a":1,"b":1}'):header("X-Sum"), "yes")
  T.eq(nc:request("echo", "hi", { headers = { ["X-In"] = "v" } }).data, "echo|hi|v|1|true|2|true")
  local r = nc:request("calc.fail", "")
  T.eq({ r:header("Nats-Service-Error-Code"), r:header("Nats-Service-Error"), r:header("X-Extra"), r.data },
    { "400", "bad input", "1", "details" })
  T.eq(nc:request("calc.solo", "").data, "solo")
  T.eq(nc:request("math.mul", "").data, "mul")
  T.eq(nc:request("math.deep.p", "").data, "pow")

  -- the three levels of $SRV subjects, for each verb
  for _, verb in ipairs{ "PING", "INFO", "STATS" } do
    for _, subj in ipairs{ "$SRV." .. verb, "$SRV." .. verb .. ".incalc", "$SRV." .. verb .. ".incalc." .. svc.id } do
      local a = decode(assert(nc:request(subj, "")))
      T.eq({ a.type, a.name, a.id, a.version, a.metadata },
        { "io.nats.micro.v1." .. verb:lower() .. "_response", "incalc", svc.id, "1.2.3-rc.1+b7",
          { team = "core" } }, subj)
    end
  end
  local info = decode(nc:request("$SRV.INFO.incalc", ""))
  T.eq(info.description, "adds numbers")
  T.eq(info.endpoints, {
    { name = "add", subject = "calc.add", queue_group = "q", metadata = { unit = "int" } },
    { name = "echo", subject = "echo", queue_group = "q", metadata = {} },
    { name = "fail", subject = "calc.fail", queue_group = "q", metadata = {} },
    { name = "solo", subject = "calc.solo", queue_group = "", metadata = {} },
    { name = "mul", subject = "math.mul", queue_group = "mq", metadata = {} },
    { name = "pow", subject = "math.deep.p", queue_group = "mq", metadata = {} },
  })
  T.eq(svc:info().endpoints, info.endpoints, "svc:info() is the INFO answer")
  local raw = nc:request("$SRV.STATS.incalc", "").data
  local stats = jet.json.decode(raw)
  T.ok(stats.started:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%d%d%d%dZ$"), stats.started)
  local add = endpoint(stats, "add")
  T.eq({ add.num_requests, add.num_errors, add.last_error, add.queue_group, add.data },
    { 2, 0, "", "q", { seen = "add" } })
  T.ok(add.processing_time > 0 and add.average_processing_time == math.floor(add.processing_time / 2), raw)
  T.eq({ endpoint(stats, "fail").num_errors, endpoint(stats, "fail").last_error }, { 1, "400:bad input" })
  T.eq(stats.num_requests, 7, "nats.go 1.22's total")
  T.eq(svc:stats().endpoints[1].num_requests, 2)

  -- processing times are integers on the wire, however large (cjson would write 2e+14)
  svc._endpoints[1].stats.processing_time = 2e14 + 7
  raw = nc:request("$SRV.STATS.incalc", "").data
  T.ok(raw:find('"processing_time":200000000000007,', 1, true), raw)
  T.ok(raw:find('"average_processing_time":100000000000003,', 1, true), raw)

  local started = svc:stats().started
  jet.sleep(0.01)
  svc:reset()
  stats = svc:stats()
  T.eq({ endpoint(stats, "add").num_requests, endpoint(stats, "fail").num_errors, stats.num_requests,
    stats.last_error }, { 0, 0, 0, "" })
  T.ok(stats.started > started, "reset restarts the clock")

  T.eq(svc:stopped(), false)
  T.eq(svc:stop(), true)
  T.eq(svc:stop(), false, "a second stop does nothing")
  T.eq(svc:stopped(), true)
  T.wait_until(function() return select(2, nc:request("calc.add", "{}", { timeout = 0.5 })) == "no_responders" end,
    5, "endpoints drained")
  T.eq(select(2, nc:request("$SRV.PING.incalc", "", { timeout = 0.5 })), "no_responders")
  T.raises(function() svc:endpoint("late", function() end) end, "svc:endpoint: the service is stopped")
  T.eq(svc:stats().name, "incalc", "stats still readable")
end)

T.test("handler errors: 500 service error, counted, the request still answered", function()
  local svc = nc:service{ name = "errs", version = "0.0.1" }
  svc:endpoint("boom", { subject = "errs.boom" }, function() error("kaboom") end)
  svc:endpoint("late", { subject = "errs.late" }, function(req)
    req:respond("first")
    error({ "not a string" })
  end)
  svc:endpoint("quiet", { subject = "errs.quiet" }, function() end)
  local r = nc:request("errs.boom", "")
  T.eq(r:header("Nats-Service-Error-Code"), "500")
  T.ok(r:header("Nats-Service-Error"):find("test_micro.lua:%d+: kaboom"), r:header("Nats-Service-Error"))
  T.eq(nc:request("errs.late", "").data, "first", "answered once, before the error")
  nc:publish("errs.quiet", "no reply wanted")
  nc:publish("errs.boom", "no reply wanted")
  nc:flush()
  local s
  T.wait_until(function() s = svc:stats(); return endpoint(s, "boom").num_requests == 2 end, 5)
  T.eq({ endpoint(s, "boom").num_errors, endpoint(s, "late").num_errors, endpoint(s, "quiet").num_errors },
    { 2, 1, 0 })
  T.ok(endpoint(s, "boom").last_error:find("^500:.*kaboom"), endpoint(s, "boom").last_error)
  T.ok(endpoint(s, "late").last_error:find("^500:table"), endpoint(s, "late").last_error)
  svc:stop()
end)

T.test("bad arguments raise, naming the function and the argument", function()
  local ok = function() end
  for _, v in ipairs{ "1.2.3", "0.0.0", "10.20.30", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-0.3.7",
                      "1.0.0-x.7.z.92", "1.0.0+20130313144700", "1.0.0-beta+exp.sha.5114f85", "1.0.0-a-b--c" } do
    local s = nc:service{ name = "v", version = v }
    s:stop()
  end
  for _, v in ipairs{ "1.2", "1", "v1.2.3", "01.2.3", "1.02.3", "1.2.3-", "1.2.3-01", "1.2.3+", "1.2.3-a..b",
                      "1.2.3+a_b", "1.2.3 ", "" } do
    T.raises(function() nc:service{ name = "v", version = v } end,
      "nc:service: bad argument 'version': '.*' is not a semantic version", v)
  end
  T.raises(function() nc:service() end, "nc:service: bad argument 'opts': table expected, got nil")
  T.raises(function() nc:service{ name = "a.b", version = "1.0.0" } end,
    "nc:service: bad argument 'name': invalid name 'a.b'")
  T.raises(function() nc:service{ version = "1.0.0" } end, "nc:service: bad argument 'name': string expected")
  T.raises(function() nc:service{ name = "x", version = "1.0.0", vesion = 1 } end,
    "nc:service: unknown option 'vesion'")
  T.raises(function() nc:service{ name = "x", version = "1.0.0", metadata = { a = 1 } } end,
    "nc:service: bad argument 'metadata': string keys and values expected")
  T.raises(function() nc:service{ name = "x", version = "1.0.0", queue = "a b" } end,
    "nc:service: bad argument 'queue': invalid queue group name")
  local err = T.raises(function() nc:service{ name = "x", version = "1.0.0", description = 5 } end,
    "nc:service: bad argument 'description'")
  T.ok(err:find("^[^\n]*test_micro%.lua:%d+:"), "the error points at the caller: " .. err)
  local svc = nc:service{ name = "args", version = "1.0.0" }
  T.raises(function() svc:endpoint("a.b", ok) end, "svc:endpoint: bad argument 'name': invalid name 'a.b'")
  T.raises(function() svc:endpoint("a") end, "svc:endpoint: bad argument 'handler': function expected, got nil")
  T.raises(function() svc:endpoint("a", { subject = "a..b" }, ok) end,
    "svc:endpoint: bad argument 'subject': invalid subject 'a..b' %(empty token%)")
  T.raises(function() svc:endpoint("a", { subject = "a.>.b" }, ok) end, "'>' must be the last token")
  T.raises(function() svc:endpoint("a", { queue = 7 }, ok) end, "svc:endpoint: bad argument 'queue'")
  T.raises(function() svc:endpoint("a", { concurrency = 0 }, ok) end, "svc:endpoint: bad argument 'concurrency'")
  T.raises(function() svc:endpoint("a", { subjet = "x" }, ok) end, "svc:endpoint: unknown option 'subjet'")
  T.raises(function() svc:group("a.>") end, "svc:group: bad argument 'name': invalid group name 'a.>'")
  T.raises(function() svc:group("g"):endpoint("b c", ok) end, "group:endpoint: bad argument 'name'")
  T.raises(function() svc.endpoint({}, "a", ok) end, "svc:endpoint: bad argument 'self'")
  svc:endpoint("wild", { subject = "args.*.x", concurrency = 4, pending_limit = 100 }, function(req)
    local results = {}
    results[1] = select(2, pcall(req.respond, req, 5))
    results[2] = select(2, pcall(req.respond_error, req, "", "x"))
    results[3] = select(2, pcall(req.respond_error, req, 1.5, "x"))
    results[4] = select(2, pcall(req.respond_error, req, 500, ""))
    results[5] = select(2, pcall(req.respond_json, req, { f = function() end }))
    results[6] = select(2, pcall(req.respond, req, "x", { header = {} }))
    req:respond(jet.json.encode(results))
  end)
  local got = decode(nc:request("args.any.x", ""))
  T.ok(got[1]:find("req:respond: bad argument 'data': string expected, got number"), got[1])
  T.ok(got[2]:find("req:respond_error: bad argument 'code'"), got[2])
  T.ok(got[3]:find("req:respond_error: bad argument 'code': integer expected"), got[3])
  T.ok(got[4]:find("req:respond_error: bad argument 'description'"), got[4])
  T.ok(got[5]:find("req:respond_json: bad argument 'value': Cannot serialise function", 1, true), got[5])
  T.ok(got[6]:find("req:respond: unknown option 'header'"), got[6])
  svc:stop()
  local other = assert(jet.connect{ servers = srv.url })
  local gone = other:service{ name = "gone", version = "1.0.0" }
  gone:endpoint("e", function(req) req:respond("e") end)
  T.eq(other:request("e", "").data, "e")
  other:close()
  T.raises(function() other:service{ name = "x", version = "1.0.0" } end, "nc:service: the connection is closed")
  T.eq(gone:stopped(), true, "a service on a closed connection is stopped")
  T.eq(gone:stats().endpoints[1].num_requests, 1, "and its stats stay readable")
  T.raises(function() gone:endpoint("f", function() end) end, "svc:endpoint: the connection is closed")
  T.eq(gone:stop(), true)
  gone:reset()
  T.raises(function() jet.micro.ping(nc, "a.b") end, "jet.micro.ping: bad argument 'name'")
  T.raises(function() jet.micro.info(nc, "a", "b.c") end, "jet.micro.info: bad argument 'id'")
  T.raises(function() jet.micro.stats(nc, { timeot = 1 }) end, "jet.micro.stats: unknown option 'timeot'")
end)

-- ---- other processes: two instances of a service, a reloading one, a Go peer ----

local dir = T.tmpdir()
T.write_file(dir .. "/calc.lua", [[
  local jet = require "jetlua"
  local nc = assert(jet.connect())
  local svc = nc:service{ name = "calc", version = "1.2.3", description = "adds numbers", metadata = { team = "core" } }
  svc:endpoint("add", { subject = "calc.add" }, function(req)
    local v = jet.json.decode(req.data)
    req:respond_json{ sum = v.a + v.b }
  end)
  svc:endpoint("fail", { subject = "calc.fail" }, function(req) req:respond_error(400, "bad input") end)
  svc:endpoint("boom", { subject = "calc.boom" }, function() error("kaboom") end)
  nc:flush()                -- the server has the subscriptions
  print("ready " .. svc.id)
]])
local children = {}
local function start_children()      -- two processes running calc.lua, started once
  if #children > 0 then return end
  for i = 1, 2 do
    children[i] = { out = dir .. "/calc" .. i .. ".out", err = dir .. "/calc" .. i .. ".err" }
    children[i].p = T.jetlua({ "run", "--server", srv.url, dir .. "/calc.lua" },
      { stdout = children[i].out, stderr = children[i].err })
  end
  for _, c in ipairs(children) do
    T.wait_until(function() return (T.read_file(c.out) or ""):find("ready") end, 15, "a calc instance")
    c.id = T.read_file(c.out):match("ready (%S+)")
  end
end

T.test("queue group 'q': two processes share one service's requests; jet.micro finds both", function()
  start_children()
  local pings = jet.micro.ping(nc, "calc", { max = 2, timeout = 5 })
  T.eq(#pings, 2)
  local want = { children[1].id, children[2].id }
  table.sort(want)
  T.eq(names(pings, "id"), want, "sorted by id")
  T.eq(pings[1].type, "io.nats.micro.v1.ping_response")
  T.eq(#jet.micro.info(nc, "calc", children[1].id), 1)
  local before = {}
  for _, s in ipairs(jet.micro.stats(nc, "calc", { max = 2, timeout = 5 })) do
    before[s.id] = endpoint(s, "add").num_requests
  end
  for i = 1, 40 do T.eq(decode(nc:request("calc.add", ('{"a":%d,"b":1}'):format(i))).sum, i + 1) end
  local total = 0
  for _, s in ipairs(jet.micro.stats(nc, "calc", { max = 2, timeout = 5 })) do
    local n = endpoint(s, "add").num_requests - before[s.id]
    T.ok(n > 0, "instance " .. s.id .. " took none of the 40 requests")
    total = total + n
  end
  T.eq(total, 40)
  -- a raising handler is logged with its traceback by the process that ran it
  T.eq(nc:request("calc.boom", ""):header("Nats-Service-Error-Code"), "500")
  T.wait_until(function()
    for _, c in ipairs(children) do
      local err = T.read_file(c.err) or ""
      if err:find("ERROR service 'calc' endpoint 'boom' %(calc%.boom%) failed: "
                  .. "[^\n]*calc%.lua:%d+: kaboom\nstack traceback:") then
        return true
      end
    end
  end, 5, "the handler error in a child's log")
end)

T.test("jetlua micro ls|info|stats, --json, errors", function()
  start_children()
  local runs = 0
  local function tool(args)
    runs = runs + 1
    local out, err = dir .. "/tool" .. runs .. ".out", dir .. "/tool" .. runs .. ".err"
    local argv = { "micro" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    argv[#argv + 1] = "--server"; argv[#argv + 1] = srv.url
    local p = T.jetlua(argv, { stdout = out, stderr = err })
    return p:wait(30), T.read_file(out) or "", T.read_file(err) or ""
  end
  local _, st, out, err
  st, out, err = tool{ "ls" }
  T.eq(st, 0, err)
  T.ok(out:find("NAME%s+VERSION%s+ID%s+ENDPOINTS%s+DESCRIPTION"), out)
  T.ok(out:find("calc%s+1%.2%.3%s+" .. children[1].id .. "%s+3%s+adds numbers"), out)
  T.ok(out:find(children[2].id, 1, true), out)
  st, out = tool{ "ls", "calc", "--json" }
  T.eq(st, 0)
  local list = jet.json.decode(out)
  T.eq(#list, 2); T.eq(list[1].type, "io.nats.micro.v1.info_response")
  st, out = tool{ "info", "calc", children[1].id }
  T.eq(st, 0)
  T.ok(out:find("id%s+" .. children[1].id), out); T.ok(out:find("metadata%s+team=core"), out)
  T.ok(out:find("add%s+calc%.add%s+q%s+%-"), out); T.ok(not out:find(children[2].id, 1, true), out)
  st, out = tool{ "stats", "calc" }
  T.eq(st, 0)
  T.ok(out:find("NAME%s+ID%s+ENDPOINT%s+REQUESTS%s+ERRORS%s+PROCESSING%s+AVERAGE%s+LAST ERROR"), out)
  T.ok(out:find("calc%s+%S+%s+fail%s+%d+%s+%d+"), out)
  T.eq(select(2, out:gsub("\ncalc ", "")), 6, "3 endpoints x 2 instances: " .. out)
  st, out = tool{ "stats", "calc", children[2].id, "--json" }
  T.eq(st, 0)
  list = jet.json.decode(out)
  T.eq({ #list, list[1].id, #list[1].endpoints }, { 1, children[2].id, 3 })
  st, _, err = tool{ "info", "nope", "--timeout", "0.2" }
  T.eq(st, 1); T.ok(err:find("no service named 'nope' answered within 0.2s", 1, true), err)
  st, _, err = tool{ "info" }
  T.eq(st, 2); T.ok(err:find("which service?", 1, true), err)
  st, _, err = tool{ "frob" }
  T.eq(st, 2); T.ok(err:find("unknown command 'frob'", 1, true), err)
  st, out = tool{ "--help" }
  T.eq(st, 0); T.ok(out:find("jetlua micro stats NAME [ID]", 1, true), out)
end)

T.test("hot reload (SIGHUP) keeps the service: same id and stats, handlers swapped, endpoints reconciled", function()
  T.write_file(dir .. "/version", "1")
  T.write_file(dir .. "/reloading.lua", [[
    local jet = require "jetlua"
    local f = io.open((arg[0]:match("^(.*)/") or ".") .. "/version"); local v = f:read("*l"); f:close()
    local nc = assert(jet.connect())
    local svc = nc:service{ name = "rcalc", version = v == "1" and "1.0.0" or "1.1.0", description = "v" .. v,
      metadata = { v = v } }
    svc:endpoint("add", { subject = "rcalc.add" }, function(req) req:respond("v" .. v) end)
    svc:endpoint("mv", { subject = v == "1" and "rcalc.mv1" or "rcalc.mv2" }, function(req) req:respond("mv" .. v) end)
    if v == "1" then svc:endpoint("old", { subject = "rcalc.old" }, function(req) req:respond("old") end) end
    if v ~= "1" then svc:group("rcalc"):endpoint("new", function(req) req:respond("new") end) end
    if v == "3" then svc:endpoint("three", { subject = "rcalc.three" }, function() end); error("boom in version 3") end
    -- printed once the server has the subscriptions (a reload subscribes when it commits)
    if v == "1" then nc:flush(); print("ran 1 " .. svc.id) end
    jet.on_reload(function() nc:flush(); print("ran " .. v .. " " .. svc.id) end)
  ]])
  local out, errf = dir .. "/reloading.out", dir .. "/reloading.err"
  local child = T.jetlua({ "run", "--server", srv.url, dir .. "/reloading.lua" }, { stdout = out, stderr = errf })
  T.wait_until(function() return (T.read_file(out) or ""):find("ran 1") end, 15)
  local id = T.read_file(out):match("ran 1 (%S+)")
  for _ = 1, 3 do T.eq(nc:request("rcalc.add", "").data, "v1") end
  T.eq(nc:request("rcalc.old", "").data, "old")
  T.eq(nc:request("rcalc.mv1", "").data, "mv1")
  T.write_file(dir .. "/version", "2")
  child:kill("HUP")
  T.wait_until(function() return (T.read_file(out) or ""):find("ran 2") end, 10)
  T.eq(T.read_file(out):match("ran 2 (%S+)"), id, "the same service object")
  T.wait_until(function()
    return (T.read_file(errf) or ""):find("2 handler(s) swapped, 1 started, 1 stopped", 1, true)
  end, 10, T.read_file(errf))
  T.eq(nc:request("rcalc.add", "").data, "v2")
  T.eq(nc:request("rcalc.new", "").data, "new")
  T.wait_until(function() return select(2, nc:request("rcalc.old", "", { timeout = 0.5 })) == "no_responders" end,
    5, "the endpoint that is gone is drained")
  T.eq(nc:request("rcalc.mv2", "").data, "mv2", "a changed subject is subscribed")
  T.wait_until(function() return select(2, nc:request("rcalc.mv1", "", { timeout = 0.5 })) == "no_responders" end,
    5, "the old subject is drained")
  local s = jet.micro.stats(nc, "rcalc", { max = 1, timeout = 5 })
  T.eq(#s, 1)
  T.eq({ s[1].id, s[1].version, s[1].metadata, endpoint(s[1], "add").num_requests, endpoint(s[1], "mv").num_requests },
    { id, "1.1.0", { v = "2" }, 4, 2 }, "id and stats kept")
  T.eq(names(s[1].endpoints), { "add", "mv", "new" })
  T.eq(endpoint(s[1], "mv").subject, "rcalc.mv2")
  T.eq(jet.micro.info(nc, "rcalc", id)[1].description, "v2")
  -- a reload that fails changes nothing
  T.write_file(dir .. "/version", "3")
  child:kill("HUP")
  T.wait_until(function() return (T.read_file(errf) or ""):find("reload failed: [^\n]*boom in version 3") end, 10)
  T.eq(select(2, nc:request("rcalc.three", "", { timeout = 0.5 })), "no_responders")
  T.eq(nc:request("rcalc.add", "").data, "v2")
  s = jet.micro.info(nc, "rcalc", id)
  T.eq({ #s, s[1].version, names(s[1].endpoints) }, { 1, "1.1.0", { "add", "mv", "new" } })
  child:kill("TERM")
  T.eq(child:wait(10), 0, T.read_file(errf))
end)

-- ---- the Go peer: nats.go 1.22 from Debian, built once in GOPATH mode ----

local function find_go()
  for d in (proc.getenv("PATH") or "/usr/bin"):gmatch("[^:]+") do
    local f = io.open(d .. "/go")
    if f then f:close(); return d .. "/go" end
  end
end

local go = find_go()
local microcheck
local function build_microcheck()
  if microcheck then return microcheck end
  local src = proc.getenv("JETLUA_SOURCE_DIR") or (arg[0]:match("^(.*)/tests/lua/[^/]*$") or ".")
  local gdir = T.tmpdir("jetlua-go")
  local log = gdir .. "/build.log"
  local env = { GO111MODULE = "off", GOPATH = "/usr/share/gocode", GOFLAGS = false }
  if not proc.getenv("HOME") and not proc.getenv("GOCACHE") and not proc.getenv("XDG_CACHE_HOME") then
    env.GOCACHE = gdir .. "/cache"
  end
  local p = assert(proc.spawn({ go, "build", "-o", gdir .. "/microcheck", "." },
    { cwd = src .. "/tests/go/microcheck", env = env, stdout = log, stderr = log }))
  local st = p:wait(600)
  if st ~= 0 then
    error("go build of tests/go/microcheck failed (status " .. tostring(st) .. "):\n" .. (T.read_file(log) or ""))
  end
  microcheck = gdir .. "/microcheck"
  return microcheck
end

if not go then
  print("# skipped: the Go peer tests need `go` "
    .. "(scripts/setup.sh installs golang-go and golang-github-nats-io-go-nats-dev)")
else
  T.test("a nats.go 1.22 peer finds, reads and calls the Lua service (2 instances)", function()
    local bin = build_microcheck()
    start_children()
    local out, err = dir .. "/check.out", dir .. "/check.err"
    local p = assert(proc.spawn({ bin, "check", "-server", srv.url, "-name", "calc", "-instances", "2",
      "-calls", "20" }, { stdout = out, stderr = err }))
    T.eq(p:wait(120), 0, (T.read_file(err) or "") .. (T.read_file(out) or ""))
    local summary = jet.json.decode(T.read_file(out))
    T.eq(summary.ok, true)
    local want = { children[1].id, children[2].id }
    table.sort(want)
    T.eq(summary.ids, want)
    T.eq(summary.info.metadata, { team = "core" })
    T.eq(names(summary.info.endpoints), { "add", "fail", "boom" })
  end)

  T.test("a nats.go 1.22 micro service is found and called from Lua and by `jetlua micro`", function()
    local bin = build_microcheck()
    start_children()
    local out = dir .. "/serve.out"
    local p = assert(proc.spawn({ bin, "serve", "-server", srv.url }, { stdout = out, stderr = dir .. "/serve.err" }))
    T.wait_until(function() return (T.read_file(out) or ""):find("ready") end, 30, "the Go service")
    local id = T.read_file(out):match("ready (%S+)")
    local pings = jet.micro.ping(nc, "gosvc", { max = 1, timeout = 5 })
    T.eq({ #pings, pings[1].id, pings[1].version }, { 1, id, "0.1.0" })
    local info = jet.micro.info(nc, "gosvc", id)[1]
    T.eq(info.description, "go echo")
    T.eq(info.endpoints, { { name = "default", subject = "go.echo", queue_group = "q", metadata = {} } })
    T.eq(nc:request("go.echo", "hello").data, "HELLO")
    local r = nc:request("go.echo", "fail")
    T.eq({ r:header("Nats-Service-Error-Code"), r:header("Nats-Service-Error") }, { "418", "teapot" })
    local st = jet.micro.stats(nc, "gosvc", id)[1]
    T.eq(st.endpoints[1].num_requests, 2)
    T.eq(nc:request("go.echo", "x").data, "X")
    T.eq(jet.micro.stats(nc, "gosvc", id)[1].num_requests, 3, "num_requests grows")
    local all = jet.micro.ping(nc, { max = 3, timeout = 5 })
    T.eq(names(all), { "calc", "calc", "gosvc" })
    local lout = dir .. "/ls.out"
    local lp = T.jetlua({ "micro", "ls", "--server", srv.url }, { stdout = lout })
    T.eq(lp:wait(30), 0)
    T.ok(T.read_file(lout):find("gosvc%s+0%.1%.0%s+" .. id .. "%s+1%s+go echo"), T.read_file(lout))
    p:kill("TERM")
    T.eq(p:wait(10), 0)
  end)
end

T.run()
