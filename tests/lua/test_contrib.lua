-- contrib/: the Kubernetes manifests, the Dockerfile and the systemd unit, checked without a
-- cluster, a Docker daemon or systemd (check_contrib.py parses them with python3-yaml and
-- checks what must agree); the checker catches broken variants; and the ConfigMap's scripts
-- run with the Deployment's exact arguments against a real nats-server, from a directory laid
-- out as the kubelet lays out a ConfigMap volume, answering the probes the Deployment uses.
local jet = require "jetlua"
local T = require "jetlua.testing"
local proc = jet.process

local src = proc.getenv("JETLUA_SOURCE_DIR") or "."

local function check(dir)
  local out = T.tmpdir()
  local st = T.run_command({ "/usr/bin/python3", src .. "/tests/lua/check_contrib.py", dir },
    { stdout = out .. "/json", stderr = out .. "/err" })
  T.eq(st, 0, T.read_file(out .. "/err"))
  return jet.json.decode(T.read_file(out .. "/json"))
end

local function curl(url)
  local dir = T.tmpdir()
  local p = assert(proc.spawn({ "curl", "-s", "--max-time", "20", "-o", dir .. "/body",
    "-w", "%{http_code}", url }, { stdout = dir .. "/code" }))
  p:wait(30)
  return tonumber(T.read_file(dir .. "/code")), T.read_file(dir .. "/body") or ""
end

local checked

T.test("contrib/ manifests, Dockerfile and unit agree with themselves and with jetlua", function()
  checked = check(src)
  T.eq(checked.errors, {})
  T.eq(checked.run.live, "/livez")
  T.eq(checked.run.ready, "/readyz")
end)

T.test("the checker catches what breaks a deployment", function()
  local function variant(file, from, to, want)
    local dir = T.tmpdir()
    T.eq(T.run_command({ "cp", "-r", src .. "/contrib", src .. "/CMakeLists.txt", dir }), 0)
    local path = dir .. "/" .. file
    local text = assert(T.read_file(path))
    local changed, n = text:gsub(from, to, 1)
    T.eq(n, 1, "the variant applies: " .. from)
    T.write_file(path, changed)
    local errors = check(dir).errors
    local found = false
    for _, e in ipairs(errors) do if e:find(want, 1, true) then found = true end end
    T.ok(found, ("%s with %q -> %q: expected an error %q, got %s"):format(file, from, to, want,
      table.concat(errors, "; ")))
  end
  local dep = "contrib/k8s/deployment.yaml"
  variant(dep, "readOnly: true", "readOnly: true\n              subPath: app.lua", "mounted with subPath")
  variant(dep, "terminationGracePeriodSeconds: 40", "terminationGracePeriodSeconds: 20",
    "is not above --shutdown-timeout")
  variant(dep, "path: /readyz", "path: /healthz", "readinessProbe is not GET /readyz")
  variant(dep, 'prometheus.io/port: "9464"', 'prometheus.io/port: "9090"', "prometheus.io/port")
  variant(dep, "\n%s*%- %-%-watch", "", "args lack --watch")
  variant(dep, "configMap:\n%s*name: jetlua%-neofeeds", "configMap:\n            name: other", "is not the ConfigMap")
  variant(dep, "mountPath: /etc/jetlua", "mountPath: /etc/scripts", "no volume mounted at /etc/jetlua")
  variant("contrib/k8s/kustomization.yaml", "  %- deployment.yaml\n", "", "kustomization.yaml resources")
  variant("contrib/k8s/configmap.yaml", "data:", "data: [", "configmap.yaml: ")
  variant("contrib/docker/Dockerfile", "USER 10001:10001", "USER root", "runs as root")
  variant("contrib/docker/Dockerfile", "9464/livez", "9464/healthz", "HEALTHCHECK does not ask /livez")
  variant("contrib/docker/Dockerfile", "libuv1%-dev ", "", "does not install libuv1-dev")
  variant("contrib/systemd/jetlua@.service", "Type=notify", "Type=simple", "Type=simple, expected notify")
  variant("contrib/systemd/jetlua@.service", "TimeoutStopSec=30s", "TimeoutStopSec=15s", "TimeoutStopSec=15s")
  variant("contrib/systemd/jetlua@.service", "NoNewPrivileges=yes", "NoNewPrivileges=no", "NoNewPrivileges")
end)

T.test("the ConfigMap's scripts, run as the Deployment runs them, consume and answer the probes", function()
  local run = assert(checked and checked.run, "the first case ran")
  local srv = T.server{ js = true }
  -- the volume as the kubelet lays it out
  local vol = T.tmpdir()
  local ts = "..2026_12_02_10_00_00.123456789"
  T.eq(T.run_command({ "mkdir", vol .. "/" .. ts }), 0)
  for name, text in pairs(run.files) do
    T.write_file(vol .. "/" .. ts .. "/" .. name, text)
    T.eq(T.run_command({ "ln", "-s", "..data/" .. name, vol .. "/" .. name }), 0)
  end
  T.eq(T.run_command({ "ln", "-s", ts, vol .. "/..data" }), 0)
  -- the Deployment's arguments, with the volume's path, a free loopback port, the test server
  local port = proc.free_port()
  local argv = { "run" }
  for _, a in ipairs(run.args) do
    a = a:gsub("^" .. run.mount:gsub("%p", "%%%0") .. "/", vol .. "/")
    a = a:gsub("^%-%-metrics=.*:(%d+)$", function(p)
      T.eq(tonumber(p), run.metrics_port)
      return "--metrics=127.0.0.1:" .. port
    end)
    argv[#argv + 1] = a
  end
  local env = {}
  for k, v in pairs(run.env) do env[k] = v end
  T.ok(env.NATS_URL, "the Deployment gives NATS_URL")
  env.NATS_URL = srv.url
  local logs = T.tmpdir()
  local work = T.tmpdir()                                      -- the pod's writable /var/lib/jetlua
  local child = T.jetlua(argv, { stdout = logs .. "/out", stderr = logs .. "/err", env = env, cwd = work })
  local function log() return T.read_file(logs .. "/err") or "" end
  T.wait_until(function() return log():find("neofeeds: consuming", 1, true) end, 30, "the app starts: " .. log())
  local base = "http://127.0.0.1:" .. port
  T.wait_until(function() return curl(base .. run.ready) == 200 end, 20, "readiness")
  T.eq((curl(base .. run.live)), 200)

  local nc = assert(jet.connect{ servers = srv.url })
  local js = nc:jetstream()
  for i, feed in ipairs{ "BTC/USD", "ETH/USD", "SOL/USD" } do
    assert(js:publish("neo.datafeed.update", jet.json.encode{ feedId = feed, price = tostring(1000 * i), decimals = 8 },
      { msg_id = "update-" .. i }))
  end
  assert(js:publish("neo.datafeed.update", "not json", { msg_id = "update-bad" }))
  assert(js:publish("neo.datafeed.update", jet.json.encode{ feedId = "BTC/USD", price = "1000" },
    { msg_id = "update-1" }))
  T.wait_until(function()
    local info = js:stream_info("neo-dlq")
    return info and info.state.messages == 1
  end, 30, "the invalid update in the DLQ: " .. log())
  T.wait_until(function()
    local ci = js:consumer_info("neo-events", "neofeeds-consumer")
    return ci and ci.num_pending == 0 and ci.num_ack_pending == 0
  end, 30, "every update acked")
  local m = assert(js:get_msg("neo-dlq", 1))
  T.eq(m.subject, "neo.dlq.datafeed")
  T.eq(m.data, "not json")
  T.ok(m.headers["Jetlua-Dlq-Error"]:find("invalid datafeed update", 1, true), m.headers["Jetlua-Dlq-Error"])
  local _, body = curl(base .. "/metrics")
  T.ok(body:find('neofeeds_updates_total{result="ok"} 3', 1, true), body)     -- the duplicate id was dropped
  T.ok(body:find('neofeeds_updates_total{result="invalid"} 1', 1, true), body)
  local lines = 0
  for line in log():gmatch("[^\n]+") do
    local ok, rec = pcall(jet.json.decode, line)
    T.ok(ok and type(rec) == "table", "--log-format=json: " .. line)
    if rec.msg:find("^datafeed ") then lines = lines + 1 end
  end
  T.eq(lines, 3)
  child:kill("TERM")
  T.eq(child:wait(run.grace), 0, log())
  nc:close()
end)

T.run()
