-- --watch on a Kubernetes ConfigMap volume. The kubelet never edits a file there: the volume
-- holds `app.lua -> ..data/app.lua`, `..data -> ..2026_12_02_...` (a timestamped directory), and
-- an update writes a new timestamped directory, points a `..data_tmp` symlink at it, renames that
-- over `..data` (one atomic rename(2)) and removes the old directory. This test does exactly
-- that, twice, while a JetStream consumer works: each update is one reload, the new handler
-- takes over, every message is handled exactly once, the connection never drops.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url })
local js = nc:jetstream()

local APP = [[
local jet = require "jetlua"
local handler = require "handler"
local nc = assert(jet.connect())
local js = nc:jetstream()
assert(js:consume("CM", "W", function(msg) handler(nc, msg) end, { max_messages = 200 }))
jet.on_reload(function(info) nc:publish("reloaded", tostring(info.generation)) end)
nc:on("disconnected", function() nc:publish("results", "DISCONNECTED") end)
print("ready")
]]

local function handler(version)
  return ("return function(nc, msg) nc:publish('results', msg:metadata().stream_seq .. ':v%d') end\n"):format(version)
end

local function ln_s(target, name)
  T.eq(T.run_command({ "ln", "-s", target, name }), 0, "ln -s " .. target .. " " .. name)
end

-- What the kubelet's AtomicWriter does for a ConfigMap update (pkg/volume/util/atomic_writer.go).
local updates = 0
local function configmap_write(dir, files)
  updates = updates + 1
  local ts = ("..2026_12_02_10_%02d_00.%09d"):format(updates, 100000000 + updates)
  T.eq(T.run_command({ "mkdir", dir .. "/" .. ts }), 0)
  for name, body in pairs(files) do T.write_file(dir .. "/" .. ts .. "/" .. name, body) end
  for name in pairs(files) do                                     -- user-visible links, made once
    if not T.read_file(dir .. "/" .. name) then ln_s("..data/" .. name, dir .. "/" .. name) end
  end
  local old = T.read_file(dir .. "/..data/.ts")                   -- which directory ..data named
  T.write_file(dir .. "/" .. ts .. "/.ts", ts)
  ln_s(ts, dir .. "/..data_tmp")
  assert(os.rename(dir .. "/..data_tmp", dir .. "/..data"))        -- the one atomic switch
  if old then T.eq(T.run_command({ "rm", "-rf", dir .. "/" .. old }), 0) end  -- then the old one goes
end

T.test("ConfigMap updates (..data swapped) under --watch: one reload each, nothing lost", function()
  assert(js:stream{ name = "CM", subjects = { "cm.>" }, storage = "file" })
  assert(js:consumer("CM", { durable = "W", ack_wait = 30 }))
  local dir, logs = T.tmpdir(), T.tmpdir()          -- dir: the volume, as the pod sees it
  configmap_write(dir, { ["app.lua"] = APP, ["handler.lua"] = handler(1) })
  local out_file, err_file = logs .. "/out", logs .. "/err"
  local child = T.jetlua({ "run", "--watch", "--server", srv.url, dir .. "/app.lua" },
    { stdout = out_file, stderr = err_file })
  T.wait_until(function() return (T.read_file(out_file) or ""):find("ready") end, 20, "the app starts")
  local results, reloads = {}, 0
  nc:subscribe("results", function(m) results[#results + 1] = m.data end)
  nc:subscribe("reloaded", function() reloads = reloads + 1 end)
  nc:flush()
  local sent, flowing = 0, true
  jet.spawn(function()
    while flowing do
      sent = sent + 1
      js:publish_async("cm.x", tostring(sent))
      if sent % 5 == 0 then jet.sleep(0.005) end
    end
  end)
  local function seen(version)
    for i = #results, 1, -1 do if results[i]:find(":v" .. version .. "$") then return true end end
  end
  T.wait_until(function() return seen(1) end, 20, "v1 handles messages")
  for v = 2, 3 do
    configmap_write(dir, { ["app.lua"] = APP, ["handler.lua"] = handler(v) })
    T.wait_until(function() return reloads >= v - 1 end, 20, "the reload to v" .. v)
    T.wait_until(function() return seen(v) end, 20, "v" .. v .. " handles messages")
  end
  jet.sleep(0.3)
  flowing = false
  T.eq(js:publish_async_complete(20), 0, "every publish acked")
  T.wait_until(function() return #results >= sent end, 30, "every message handled")
  jet.sleep(0.5)            -- room for a stray reload (the old directories' removal) to show
  local byseq, versions = {}, {}
  for _, r in ipairs(results) do
    T.ok(r ~= "DISCONNECTED", "the connection never dropped")
    local seq, v = r:match("^(%d+):v(%d+)$")
    T.ok(seq, r)
    T.eq(byseq[seq], nil, "sequence " .. tostring(seq) .. " handled twice")
    byseq[seq] = true
    versions[v] = true
  end
  T.eq(#results, sent, "each message handled exactly once")
  T.ok(versions["1"] and versions["2"] and versions["3"], "all three versions handled messages")
  local err = T.read_file(err_file)
  T.eq(select(2, err:gsub("reload #%d+ ok", "")), 2, "one reload per update:\n" .. err)
  T.ok(err:find("reload #1 ok", 1, true) and err:find("reload #2 ok", 1, true), err)
  T.ok(not err:find("reload failed", 1, true), err)
  T.eq(reloads, 2)
  local info = assert(js:consumer_info("CM", "W"))
  T.eq(info.num_ack_pending, 0)
  T.eq(info.num_redelivered, 0, "nothing redelivered: no message was dropped")
  child:kill("TERM")
  T.eq(child:wait(30), 0, err)
end)

T.run()
