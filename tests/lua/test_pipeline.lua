-- jet.pipeline: steps (map, filter, flat_map, route, batch), msg ids derived
-- from the upstream sequence, acks only after the downstream PubAck, failing
-- steps to the policy, and a 3-stage pipeline over 50,000 messages with one
-- stage's process killed with SIGKILL and restarted.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url, reconnect = { wait = 0.1 } })
local js = nc:jetstream()

local function stream(name, subjects)
  js:delete_stream(name)
  assert(js:stream{ name = name, subjects = subjects, storage = "file", duplicate_window = 120 })
end

local function all_msgs(name)
  local out = {}
  for seq = 1, js:stream_info(name).state.last_seq do
    local m = js:get_msg(name, seq)
    if m then out[#out + 1] = m end
  end
  return out
end

local function settled(s, c)
  local ci = js:consumer_info(s, c)
  return ci and ci.num_pending == 0 and ci.num_ack_pending == 0
end

T.test("map, filter, flat_map, route with json; msg ids from the upstream sequence", function()
  stream("IN", { "in.>" }); stream("OUT", { "out.>" })
  local orders = {
    { id = 1, region = "eu", items = { "a", "b" } },
    { id = 2, region = "us", items = {} },
    { id = 3, region = "us", items = { "c" } },
    { id = 4, region = "eu", items = { "d" }, test = true },
  }
  for _, o in ipairs(orders) do assert(js:publish("in.orders", jet.json.encode(o))) end
  local p = assert(jet.pipeline{
    js = js, name = "split", from = { stream = "IN" }, codec = "json",
    steps = {
      { filter = function(o) return not o.test end },
      { flat_map = function(o)
          local out = {}
          for _, it in ipairs(o.items) do out[#out + 1] = { order = o.id, item = it, region = o.region } end
          return out
        end },
      { map = function(x) x.item = x.item:upper(); return x end },
      { route = function(x) return "out." .. x.region end },
    },
  })
  T.wait_until(function() return settled("IN", "split") end, 10)
  jet.sleep(0.2)
  local got = {}
  for _, m in ipairs(all_msgs("OUT")) do
    local x = jet.json.decode(m.data)
    got[#got + 1] = ("%s %d %s %s"):format(m.subject, x.order, x.item, m.headers["Nats-Msg-Id"])
  end
  T.eq(got, { "out.eu 1 A IN:1:1", "out.eu 1 B IN:1:2", "out.us 3 C IN:3" })
  local st = p:stats()
  T.eq(st["in"], 4); T.eq(st.out, 3); T.eq(st.filtered, 2); T.eq(st.acked, 4)
  p:stop()
  -- a redelivery of everything adds nothing downstream (same msg ids, inside the window)
  assert(js:delete_consumer("IN", "split"))
  p = assert(jet.pipeline{ js = js, name = "split", from = { stream = "IN" }, codec = "json",
    steps = { { filter = function(o) return not o.test end },
              { flat_map = function(o)
                  local r = {}
                  for _, i in ipairs(o.items) do r[#r + 1] = { order = o.id, item = i:upper() } end
                  return r
                end } },
    to = function(x) return "out." .. (x.order == 2 and "us" or "eu") end })
  T.wait_until(function() return settled("IN", "split") end, 10)
  jet.sleep(0.2)
  T.eq(js:stream_info("OUT").state.messages, 3, "no second copy")
  p:stop()
end)

T.test("a failing step goes to the policy; a failed publish naks; batch", function()
  stream("FIN", { "fin.>" }); stream("FOUT", { "fout.>" }); stream("FDLQ", { "fdlq.>" })
  for i = 1, 6 do assert(js:publish("fin.x", tostring(i))) end
  local p = assert(jet.pipeline{
    js = js, name = "fail", from = { stream = "FIN" },
    steps = { { map = function(v) if v == "4" then error("cannot map 4") end return "v" .. v end } },
    to = "fout.x",
    retry = jet.retry.backoff{ initial = 0.05, max_deliver = 2, dlq = "fdlq.x" },
  })
  T.wait_until(function() return settled("FIN", "fail") and js:stream_info("FDLQ").state.messages == 1 end, 10)
  T.eq(js:stream_info("FOUT").state.messages, 5)
  T.eq(js:get_msg("FDLQ", 1).data, "4")
  p:stop()
  -- outputs to a subject no stream has: no_responders -> upstream nak'd, not acked
  stream("NIN", { "nin.>" })
  assert(js:publish("nin.x", "x"))
  local js2 = nc:jetstream{ ack_timeout = 1 }
  p = assert(jet.pipeline{ js = js2, name = "nowhere", from = { stream = "NIN" }, to = "nostream.x" })
  T.wait_until(function() return p:stats().publish_failed >= 1 end, 10)
  T.eq(p:stats().acked, 0)
  p:stop()
  -- batch: 10 inputs -> batches of 4, 4, and 2 (by timeout)
  stream("BIN", { "bin.>" }); stream("BOUT", { "bout.>" })
  for i = 1, 10 do assert(js:publish("bin.x", tostring(i))) end
  p = assert(jet.pipeline{ js = js, name = "batcher", from = { stream = "BIN" }, codec = "json",
    steps = { { map = function(v) return v * 10 end }, { batch = { size = 4, timeout = 0.3 } } },
    to = "bout.x" })
  T.wait_until(function() return settled("BIN", "batcher") end, 10)
  local sizes = {}
  for _, m in ipairs(all_msgs("BOUT")) do sizes[#sizes + 1] = #jet.json.decode(m.data) end
  T.eq(sizes, { 4, 4, 2 })
  T.eq(js:get_msg("BOUT", 1).headers["Nats-Msg-Id"], "BIN:1-4")
  p:stop()
end)

T.test("bad pipeline configs raise naming the option", function()
  T.raises(function() jet.pipeline{ name = "x", from = { stream = "A" }, to = "b" } end,
    "jet.pipeline: bad argument 'js'")
  T.raises(function() jet.pipeline{ js = js, name = "x", from = { stream = "A" } } end, "bad argument 'to'")
  T.raises(function() jet.pipeline{ js = js, name = "x", from = { stream = "A" }, to = "b", stepz = {} } end,
    "unknown option 'stepz'")
  T.raises(function()
    jet.pipeline{ js = js, name = "x", from = { stream = "A" }, to = "b", steps = { { mapp = print } } }
  end,
    "unknown kind 'mapp'")
  T.raises(function() jet.pipeline{ js = js, name = "x", from = { stream = "A" }, to = "b",
    steps = { { batch = { size = 2 } }, { map = print } } } end, "batch must be the last step")
end)

-- one stage: consume <from>, map, publish to <to>
local STAGE = T.write_file(T.tmpdir("jetlua-stage") .. "/stage.lua", [[
local jet = require "jetlua"
local url, name, from, to = arg[1], arg[2], arg[3], arg[4]
local nc = assert(jet.connect{ servers = url, reconnect = { wait = 0.1 } })
local js = nc:jetstream{ retry = true }
assert(jet.pipeline{ js = js, name = name, from = { stream = from }, to = to, max_messages = 500,
                     steps = { { map = function(v) return v .. ">" .. name end } } })
print("ready")
]])

T.test("3 stages over 50,000 messages, the middle stage SIGKILLed and restarted: exactly 50,000 at the end", function()
  stream("P0", { "p0.>" }); stream("P1", { "p1.>" }); stream("P2", { "p2.>" }); stream("P3", { "p3.>" })
  -- what the killed stage had received comes back after ack_wait
  for i = 1, 3 do assert(js:consumer("P" .. (i - 1), { durable = "s" .. i, ack_wait = 3 })) end
  local dir = T.tmpdir("jetlua-pipe")
  local function start(i)
    local p = T.jetlua({ "run", STAGE, srv.url, "s" .. i, "P" .. (i - 1), "p" .. i .. ".x" },
      { stdout = dir .. "/s" .. i .. ".out", stderr = dir .. "/s" .. i .. ".err" })
    T.wait_until(function() return (T.read_file(dir .. "/s" .. i .. ".out") or ""):find("ready") end, 10)
    return p
  end
  local stages = { start(1), start(2), start(3) }
  local n = 50000
  for i = 1, n do js:publish_async("p0.x", tostring(i)) end
  T.eq(js:publish_async_complete(60), 0)
  T.wait_until(function() return js:stream_info("P2").state.messages >= n / 3 end, 60, "stage 2 is working")
  stages[2]:kill("KILL"); stages[2]:wait(5)
  jet.sleep(0.5)
  stages[2] = start(2)
  T.wait_until(function() return js:stream_info("P3").state.messages >= n and settled("P2", "s3") end, 120,
    "everything reached the end")
  jet.sleep(1)
  T.eq(js:stream_info("P3").state.messages, n, "exactly n in the final stream")
  local seen, count, bad = {}, 0, nil
  assert(js:consumer("P3", { durable = "check" }))
  local h = assert(js:consume("P3", "check", function(m)
    if not m.data:find("^%d+>s1>s2>s3$") then bad = bad or m.data end
    local v = m.data:match("^(%d+)")
    if not seen[v] then seen[v] = true; count = count + 1 end
  end))
  T.wait_until(function() return settled("P3", "check") end, 120, "checked")
  T.eq(bad, nil, "every message went through the three stages")
  T.eq(count, n, "n distinct messages")
  h:stop()
  for _, p in ipairs(stages) do p:kill("TERM"); p:wait(10) end
end)

T.run()
