-- Pull consumers under faults: server restart, SIGSTOP/SIGCONT, a consuming
-- process killed with SIGKILL, two processes on one durable, a cluster
-- leader killed, and the ordered consumer across all of it.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url, reconnect = { wait = 0.1 } })
local js = nc:jetstream()

local function fresh(js_, name, storage, ccfg, replicas)
  js_:delete_stream(name)
  assert(js_:stream{ name = name, subjects = { name:lower() .. ".>" }, storage = storage or "file",
                     replicas = replicas })
  if ccfg ~= false then
    ccfg = ccfg or {}
    ccfg.durable = ccfg.durable or "C"
    assert(js_:consumer(name, ccfg))
  end
end

local function publish_n(js_, subject, n)
  for i = 1, n do js_:publish_async(subject, tostring(i)) end
  T.eq(js_:publish_async_complete(60), 0, "every publish acked")
end

-- a consumer process: records "stream_seq num_delivered" per handled message
local CHILD = T.write_file(T.tmpdir("jetlua-consumer") .. "/child.lua", [[
local jet = require "jetlua"
local url, stream, out, delay = arg[1], arg[2], arg[3], tonumber(arg[4] or "0")
local nc = assert(jet.connect{ servers = url })
local js = nc:jetstream()
local f = assert(io.open(out, "a"))
assert(js:consume(stream, "C", function(msg)
  local md = msg:metadata()
  if delay > 0 then jet.sleep(delay) end
  f:write(md.stream_seq, " ", md.num_delivered, "\n"); f:flush()
end, { max_messages = 100 }))
]])

local function read_seqs(path)
  local seqs = {}
  for line in (T.read_file(path) or ""):gmatch("[^\n]+") do
    local s, nd = line:match("(%d+) (%d+)")
    seqs[#seqs + 1] = { tonumber(s), tonumber(nd) }
  end
  return seqs
end

T.test("server restarted during consume: every message processed", function()
  fresh(js, "RST", "file", { ack_wait = 3 })   -- what was on the wire comes back after ack_wait
  local n = 20000
  publish_n(js, "rst.x", n)
  local seen, distinct = {}, 0
  local h = assert(js:consume("RST", "C", function(msg)
    local s = msg:metadata().stream_seq
    if not seen[s] then seen[s] = true; distinct = distinct + 1 end
    if distinct % 500 == 0 then jet.sleep(0.01) end
  end, { expires = 5 }))
  T.wait_until(function() return distinct >= 5000 end, 30)
  srv:restart()
  T.wait_until(function() return distinct >= n end, 60, "all processed after the restart")
  T.eq(distinct, n)
  T.ok(not h:closed(), "consume never ends because of a reconnect")
  h:stop()
end)

T.test("server paused (SIGSTOP) then resumed: missed heartbeats reported, then recovery", function()
  fresh(js, "PAUSE", "memory")
  local errs, got = {}, 0
  local h = assert(js:consume("PAUSE", "C", function() got = got + 1 end, {
    expires = 2, heartbeat = 0.5, on_error = function(code) errs[#errs + 1] = code end }))
  publish_n(js, "pause.x", 10)
  T.wait_until(function() return got == 10 end, 10)
  srv:pause()
  jet.sleep(2.5)
  srv:resume()
  local missed = 0
  for _, c in ipairs(errs) do if c == "no_heartbeat" then missed = missed + 1 end end
  T.ok(missed >= 1, "no_heartbeat reported: " .. table.concat(errs, ","))
  T.ok(h:stats().heartbeats_missed >= 1)
  publish_n(js, "pause.x", 10)
  T.wait_until(function() return got == 20 end, 15, "consumption recovered")
  h:stop()
end)

T.test("a messages iterator is unblocked when the connection closes", function()
  fresh(js, "UNB", "memory")
  local s2 = T.server{ js = true }
  local nc2 = assert(jet.connect{ servers = s2.url, reconnect = { max = 2, wait = 0.1 } })
  local js2 = nc2:jetstream()
  assert(js2:stream{ name = "UNB", subjects = { "unb.>" } })
  assert(js2:consumer("UNB", { durable = "C" }))
  local it = assert(js2:messages("UNB", "C"))
  local res
  jet.spawn(function() res = { it:next() } end)
  jet.sleep(0.2)
  s2:stop()
  T.wait_until(function() return res end, 15, "next() returned")
  T.eq(res[1], nil); T.eq(res[2], "closed")
end)

T.test("a consuming process killed with SIGKILL: its unacked messages go to another", function()
  fresh(js, "KILL", "file", { ack_wait = 2 })
  local n = 1000
  publish_n(js, "kill.x", n)
  local dir = T.tmpdir("jetlua-kill")
  local a = T.jetlua({ "run", CHILD, srv.url, "KILL", dir .. "/a.txt", "0.005" }, { stderr = dir .. "/a.log" })
  T.wait_until(function() return #read_seqs(dir .. "/a.txt") >= 200 end, 20, "A consumed some")
  a:kill("KILL"); a:wait(5)
  local b = T.jetlua({ "run", CHILD, srv.url, "KILL", dir .. "/b.txt" }, { stderr = dir .. "/b.log" })
  T.wait_until(function()
    local ci = js:consumer_info("KILL", "C")
    return ci.num_pending == 0 and ci.num_ack_pending == 0
  end, 30, "everything acked")
  b:kill("TERM"); b:wait(10)
  local all, redelivered = {}, 0
  for _, who in ipairs{ "a", "b" } do
    for _, r in ipairs(read_seqs(dir .. "/" .. who .. ".txt")) do
      all[r[1]] = true
      if who == "b" and r[2] > 1 then redelivered = redelivered + 1 end
    end
  end
  for i = 1, n do if not all[i] then error("stream_seq " .. i .. " was never processed") end end
  T.ok(redelivered >= 1, "B got A's unacked messages again: " .. redelivered)
end)

T.test("two processes on one durable split the messages: disjoint, union is N", function()
  fresh(js, "TWO", "file")
  local n = 4000
  local dir = T.tmpdir("jetlua-two")
  local a = T.jetlua({ "run", CHILD, srv.url, "TWO", dir .. "/a.txt", "0.0005" }, { stderr = dir .. "/a.log" })
  local b = T.jetlua({ "run", CHILD, srv.url, "TWO", dir .. "/b.txt", "0.0005" }, { stderr = dir .. "/b.log" })
  jet.sleep(0.5)
  publish_n(js, "two.x", n)
  T.wait_until(function() return #read_seqs(dir .. "/a.txt") + #read_seqs(dir .. "/b.txt") >= n end, 60)
  jet.sleep(0.3)
  a:kill("TERM"); b:kill("TERM"); a:wait(10); b:wait(10)
  local sa, sb = read_seqs(dir .. "/a.txt"), read_seqs(dir .. "/b.txt")
  T.ok(#sa > 0 and #sb > 0, ("both got messages: %d and %d"):format(#sa, #sb))
  T.eq(#sa + #sb, n, "no message twice")
  local all = {}
  for _, r in ipairs(sa) do all[r[1]] = "a" end
  for _, r in ipairs(sb) do
    if all[r[1]] then error("stream_seq " .. r[1] .. " went to both") end
    all[r[1]] = "b"
  end
  for i = 1, n do if not all[i] then error("stream_seq " .. i .. " missing") end end
end)

T.test("ordered consumer: in order, no gap or repeat, across deletion and a server restart", function()
  fresh(js, "ORD", "file", false)
  local n = 3000
  publish_n(js, "ord.x", n)
  local oc = js:ordered("ORD")
  local last, bad, count = 0, nil, 0
  local h = assert(oc:consume(function(msg)
    local s = msg:metadata().stream_seq
    if s ~= last + 1 then bad = bad or ("got " .. s .. " after " .. last) end
    last = s
    count = count + 1
    jet.sleep(0.001)
  end, { expires = 2, max_messages = 200 }))
  T.wait_until(function() return count >= 500 end, 20)
  for _, c in ipairs(js:consumers("ORD")) do js:delete_consumer("ORD", c.name) end
  T.wait_until(function() return count >= 1500 end, 30, "resumed after deletion")
  T.ok(count < n - 500, "still consuming when the server restarts: " .. count)
  srv:restart()
  T.wait_until(function() return count >= n end, 60, "resumed after the restart")
  T.eq(bad, nil); T.eq(last, n); T.eq(count, n)
  T.ok(h:stats().resets >= 1, "resets: " .. h:stats().resets)
  h:stop()
  -- the iterator and fetch flavours
  local it = assert(js:ordered("ORD", { filter_subject = "ord.x", opt_start_seq = 2991,
                                        deliver_policy = "by_start_sequence" }):messages())
  local seqs = {}
  for msg in it do
    seqs[#seqs + 1] = msg:metadata().stream_seq
    if #seqs == 10 then break end
  end
  T.eq(seqs, { 2991, 2992, 2993, 2994, 2995, 2996, 2997, 2998, 2999, 3000 })
  it:stop()
  local of = js:ordered("ORD", { deliver_policy = "last" })
  local list = of:fetch(5, { expires = 0.5 })
  T.eq(#list, 1); T.eq(list[1]:metadata().stream_seq, n)
end)

T.test("3-node cluster, R3 stream: the leader killed during consume, every message processed", function()
  local c = T.cluster(3)
  local cn = assert(jet.connect{ servers = c.urls, reconnect = { wait = 0.1 } })
  local cjs = cn:jetstream{ timeout = 10 }
  T.wait_until(function() return cjs:account_info() end, 30, "JetStream cluster ready")
  T.wait_until(function()
    return cjs:stream{ name = "R3", subjects = { "r3.>" }, storage = "file", replicas = 3 }
  end, 30, "R3 stream created")
  assert(cjs:consumer("R3", { durable = "C", ack_wait = 5 }))
  local n = 5000
  publish_n(cjs, "r3.x", n)
  local seen, distinct = {}, 0
  local h = assert(cjs:consume("R3", "C", function(msg)
    local s = msg:metadata().stream_seq
    if not seen[s] then seen[s] = true; distinct = distinct + 1 end
    if distinct % 100 == 0 then jet.sleep(0.02) end
  end, { expires = 2, max_messages = 200 }))
  T.wait_until(function() return distinct >= 1000 end, 30)
  local info = cjs:stream_info("R3")
  local leader = info.cluster and info.cluster.leader
  T.ok(leader, "a stream leader")
  for i, s in ipairs(c.servers) do
    if "n" .. i == leader then s:kill() end
  end
  T.wait_until(function() return distinct >= n end, 90, "all processed after the leader died")
  T.eq(distinct, n)
  h:stop()
  cn:close()
end)

T.run()
