-- /metrics is valid Prometheus text whatever a script feeds jet.metrics: hostile help text,
-- label values and values are checked line by line against the format's grammar and parsed
-- by a real parser (Debian's python3-prometheus-client); bad names are argument errors.
local jet = require "jetlua"
local T = require "jetlua.testing"

local PY = "/usr/bin/python3"
local CHECKER = (jet.process.getenv("JETLUA_SOURCE_DIR") or ".") .. "/tests/lua/prom_check.py"

local function curl(url, out)
  local dir = T.tmpdir()
  local p = assert(jet.process.spawn({ "curl", "-s", "-o", out, "-w", "%{http_code}", url },
    { stdout = dir .. "/code" }))
  p:wait(30)
  return tonumber(T.read_file(dir .. "/code"))
end

-- the checker's verdict on a /metrics body saved in file: families, or nil and why
local function parse(file)
  local out = file .. ".json"
  local p = assert(jet.process.spawn({ PY, CHECKER, file }, { stdout = out, stderr = out .. ".err" }))
  T.eq(p:wait(60), 0, T.read_file(out .. ".err"))
  local r = jet.json.decode(T.read_file(out))
  return r.families, r.error
end

-- the value of the sample `name` whose labels are exactly `labels`
local function sample(fams, name, labels)
  for _, f in pairs(fams) do
    for _, s in ipairs(f.samples) do
      if s[1] == name then
        local same = true
        for k, v in pairs(s[2]) do if labels[k] ~= v then same = false end end
        for k, v in pairs(labels) do if s[2][k] ~= v then same = false end end
        if same then return s[3], f end
      end
    end
  end
end

local HOSTILE_HELP = 'line one\nline two \\ back "quoted" \255\254 tab\t end'
local FFFD = "\239\191\189"

T.test("hostile names, help, labels and values parse with a real Prometheus parser", function()
  local dir = T.tmpdir()
  local port = jet.process.free_port()
  T.write_file(dir .. "/child.lua", [[
    local jet = require "jetlua"
    local m = jet.metrics
    m.gauge("nan_gauge"):set(0/0)
    m.gauge("inf_gauge", { sign = "plus" }):set(math.huge)
    m.gauge("inf_gauge", { sign = "minus" }):set(-math.huge)
    m.gauge("small_gauge"):set(1e-300)
    m.gauge("max_gauge"):set(1.7976931348623157e308)
    m.gauge("third_gauge"):set(1/3)
    m.gauge("help_gauge", nil, ]] .. ("%q"):format(HOSTILE_HELP) .. [[):set(1)
    m.counter("quoted_total", { v = 'a"b\\c\nd' }):inc()
    m.counter("utf8_total", { lone = "x\255y", overlong = "\192\175", surrogate = "\237\160\128",
      cut = "\226\130", good = "\226\130\172\240\159\152\128" }):inc(2)
    m.counter("big_total", { v = string.rep("x", 3000), w = string.rep("\"", 600) }):inc(3)
    m.counter("num_label_total", { n = 0/0, i = math.huge, f = 0.5 }):inc()
    local h = m.histogram("odd_seconds", { path = "/a\"b" }, { buckets = { 1e-9, 0.1, 1234567.5 },
      help = "h\nelp" })
    h:observe(0.05); h:observe(math.huge); h:observe(0/0)
    print("ready")
    jet.sleep(120)
  ]])
  local child = T.jetlua({ "run", "--metrics", "127.0.0.1:" .. port, dir .. "/child.lua" },
    { stdout = dir .. "/out", stderr = dir .. "/err" })
  T.wait_until(function() return (T.read_file(dir .. "/out") or ""):find("ready") end, 30,
    "child ready: " .. (T.read_file(dir .. "/err") or ""))
  T.eq(curl("http://127.0.0.1:" .. port .. "/metrics", dir .. "/m.txt"), 200)
  local fams, err = parse(dir .. "/m.txt")
  T.ok(fams, err)

  T.eq(sample(fams, "nan_gauge", {}), "NaN")
  T.eq(sample(fams, "inf_gauge", { sign = "plus" }), "+Inf")
  T.eq(sample(fams, "inf_gauge", { sign = "minus" }), "-Inf")
  T.eq(sample(fams, "small_gauge", {}), "1e-300")
  T.eq(sample(fams, "max_gauge", {}), "1.7976931348623157e+308")
  T.eq(sample(fams, "third_gauge", {}), "0.3333333333333333")
  local _, f = sample(fams, "help_gauge", {})
  T.eq(f.help, (HOSTILE_HELP:gsub("\255\254", FFFD .. FFFD)))
  T.eq(sample(fams, "quoted_total", { v = 'a"b\\c\nd' }), "1.0")
  T.eq(sample(fams, "utf8_total", { lone = "x" .. FFFD .. "y", overlong = FFFD .. FFFD,
    surrogate = FFFD .. FFFD .. FFFD, cut = FFFD .. FFFD, good = "\226\130\172\240\159\152\128" }), "2.0")
  T.eq(sample(fams, "big_total", { v = string.rep("x", 3000), w = string.rep("\"", 600) }), "3.0",
    "a 4 KiB label set is whole")
  T.eq(sample(fams, "num_label_total", { n = "NaN", i = "+Inf", f = "0.5" }), "1.0")
  T.eq(sample(fams, "odd_seconds_bucket", { path = '/a"b', le = "1e-09" }), "0.0")
  T.eq(sample(fams, "odd_seconds_bucket", { path = '/a"b', le = "0.1" }), "1.0")
  T.eq(sample(fams, "odd_seconds_bucket", { path = '/a"b', le = "1234567.5" }), "1.0")
  T.eq(sample(fams, "odd_seconds_bucket", { path = '/a"b', le = "+Inf" }), "3.0")
  T.eq(sample(fams, "odd_seconds_count", { path = '/a"b' }), "3.0")
  T.eq(sample(fams, "odd_seconds_sum", { path = '/a"b' }), "NaN")
  T.eq(fams.odd_seconds.help, "h\nelp")
  -- what operators look for
  for _, name in ipairs({ "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                          "process_start_time_seconds", "process_max_fds", "process_virtual_memory_bytes" }) do
    T.ok(sample(fams, name, {}), name)
  end
  T.ok(tonumber((sample(fams, "process_resident_memory_bytes", {}))) > 1e6)
  T.ok(tonumber((sample(fams, "process_open_fds", {}))) >= 3)
  local start = tonumber((sample(fams, "process_start_time_seconds", {})))
  T.ok(math.abs(start - jet.now()) < 120, "started just now: " .. start .. " vs " .. jet.now())
  T.eq(fams.process_cpu_seconds.type, "counter")
  child:kill("TERM")
  T.eq(child:wait(15), 0, T.read_file(dir .. "/err"))
end)

T.test("the checker itself rejects what Prometheus rejects", function()
  local dir = T.tmpdir()
  local bad = {
    "# TYPE a gauge\na -nan\n",                               -- printf's NaN
    "# TYPE a gauge\na nan\n",
    '# TYPE a gauge\na{l="\255"} 1\n',                         -- not UTF-8
    "# HELP a two\nlines\n# TYPE a gauge\na 1\n",              -- raw newline in HELP
    '# TYPE a gauge\na{l="x\\ty"} 1\n',                        -- an escape the format lacks
  }
  for i, text in ipairs(bad) do
    T.write_file(dir .. "/" .. i, text)
    local fams, err = parse(dir .. "/" .. i)
    T.eq(fams, nil, text); T.ok(err, text)
  end
  T.write_file(dir .. "/good", '# HELP a x\\ny\n# TYPE a gauge\na{l="q\\"\\\\\\n"} NaN\n')
  local fams, err = parse(dir .. "/good")
  T.ok(fams, err)
  T.eq(sample(fams, "a", { l = 'q"\\\n' }), "NaN")
end)

T.test("jet.metrics: invalid names and labels are argument errors", function()
  local M = jet.metrics
  for _, name in ipairs({ "", "1abc", "a-b", "a b", "a.b", "\195\164", "a\0b" }) do
    T.raises(function() M.counter(name) end, "jet.metrics.counter: bad argument 'name'", ("%q"):format(name))
  end
  T.raises(function() M.gauge("1bad") end,
    "invalid metric name '1bad' %(it must match %[a%-zA%-Z_:%]%[a%-zA%-Z0%-9_:%]%*%)")
  T.raises(function() M.gauge("g_ok", { ["a:b"] = "x" }) end, "invalid label name 'a:b' %(it must match %[a%-zA%-Z_%]")
  T.raises(function() M.gauge("g_ok", { __x = "x" }) end, "names starting with '__' are reserved")
  T.raises(function() M.gauge("g_ok", { [1] = "x" }) end, "label names must be strings")
  T.raises(function() M.gauge("g_ok", { a = "x\0y" }) end, "a label value must not contain a NUL byte")
  T.raises(function() M.gauge("g_ok", nil, "he\0lp") end, "the help text must not contain a NUL byte")
  T.raises(function() M.gauge("g_ok", { a = true }) end, "value of 'a' must be a string or number, got boolean")
  T.raises(function() M.gauge("g_ok", { a = string.rep("x", 20000) }) end, "the label set is too long")
  local many = {}
  for i = 1, 17 do many["l" .. i] = i end
  T.raises(function() M.gauge("g_ok", many) end, "at most 16 labels")
  T.raises(function() M.histogram("h_ok", { le = "1" }) end, "the label 'le' is reserved for histogram buckets")
  T.raises(function() M.histogram("h_ok", nil, { buckets = { 1, math.huge } }) end, "bound 2 must be finite")
  T.raises(function() M.histogram("h_ok", nil, { buckets = { 0/0 } }) end, "bound 1 must be finite")
  M.histogram("lat")
  T.raises(function() M.gauge("lat_count") end, "'lat_count' is a series of the histogram 'lat'")
  M.gauge("q_bucket")
  T.raises(function() M.histogram("q") end, "the histogram 'q' would write the series 'q_bucket'")
  -- valid unusual names still work
  M.counter("a:b_c9_total"):inc()
  M.gauge("_x", { _y = "" }):set(1)
  T.eq(M.gauge("_x", { _y = "" }):value(), 1)
end)

T.run()
