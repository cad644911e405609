-- The command-line tools (jetlua stream|consumer|pub|sub|kv) against a real server:
-- readable tables, --json, clear errors and exit statuses. (Creating, editing and removing
-- streams and consumers, req, kv del|history|watch, -s and unknown options: test_tools_cli.lua.)
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url })
local js = nc:jetstream()
local dir = T.tmpdir()
local runs = 0

-- run a tool; returns status, stdout, stderr
local function tool(args)
  runs = runs + 1
  local out, err = dir .. "/out" .. runs, dir .. "/err" .. runs
  local argv = {}
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv[#argv + 1] = "--server"; argv[#argv + 1] = srv.url
  local opts = { stdout = out, stderr = err }
  local p = T.jetlua(argv, opts)
  return p:wait(30), T.read_file(out) or "", T.read_file(err) or ""
end

assert(js:stream{ name = "ORDERS", subjects = { "orders.>" } })
assert(js:stream{ name = "LOGS", subjects = { "logs.>" }, storage = "memory" })

T.test("pub: JetStream with PubAcks, msg-id dedupe, {{i}}, core fallback", function()
  local st, out, err = tool{ "pub", "orders.new", "order {{i}}", "--count", "5" }
  T.eq(st, 0, err)
  T.ok(out:find("published 5 message(s) to orders.new: stream ORDERS, seq 1..5", 1, true), out)
  st, out, err = tool{ "pub", "orders.new", "x", "--msg-id", "m-1" }
  T.eq(st, 0, err); T.ok(out:find("published 1 message(s) to orders.new: stream ORDERS, seq 6", 1, true), out)
  st, out, err = tool{ "pub", "orders.new", "x", "--msg-id", "m-1", "--json" }
  T.eq(st, 0, err)
  local r = jet.json.decode(out)
  T.eq(r.duplicates, 1); T.eq(r.stream, "ORDERS")
  T.eq(js:stream_info("ORDERS").state.messages, 6)
  T.eq(js:get_msg("ORDERS", 3).data, "order 3")
  st, out = tool{ "pub", "plain.subject", "hi" }
  T.eq(st, 0); T.ok(out:find("core message", 1, true), out)
  st, out, err = tool{ "pub", "plain.subject", "hi", "--msg-id", "z" }
  T.eq(st, 1); T.eq(out, ""); T.ok(err:find("no stream listens on 'plain.subject'", 1, true), err)
end)

T.test("stream ls, info, view, purge, rm", function()
  local st, out, err = tool{ "stream", "ls" }
  T.eq(st, 0, err)
  T.ok(out:find("NAME%s+SUBJECTS%s+STORAGE"), out)
  T.ok(out:find("ORDERS%s+orders%.>%s+file%s+limits%s+6"), out)
  T.ok(out:find("LOGS%s+logs%.>%s+memory"), out)
  st, out, err = tool{ "stream", "ls", "--json" }
  T.eq(st, 0, err); T.eq(#jet.json.decode(out), 2)
  st, out, err = tool{ "stream", "info", "ORDERS" }
  T.eq(st, 0, err); T.ok(out:find("messages%s+6"), out); T.ok(out:find("subjects%s+orders%.>"), out)
  st, out, err = tool{ "stream", "view", "ORDERS", "--count", "2" }
  T.eq(st, 0, err)
  T.ok(out:find("[1]", 1, true) and out:find("order 2", 1, true) and not out:find("order 3", 1, true), out)
  st, out, err = tool{ "stream", "view", "ORDERS", "--from", "4", "--count", "1", "--json" }
  T.eq(st, 0, err); T.eq(jet.json.decode(out)[1].data, "order 4")
  st, out = tool{ "stream", "purge", "ORDERS", "--keep", "2" }
  T.eq(st, 0); T.ok(out:find("purged 4 message(s) from ORDERS", 1, true), out)
  st, out, err = tool{ "stream", "rm", "LOGS", "-f" }
  T.eq(st, 0, err); T.ok(out:find("deleted stream LOGS", 1, true), out)
  T.eq(select(2, js:stream_info("LOGS")), "stream_not_found")
  st, out, err = tool{ "stream", "info", "NOPE" }
  T.eq(st, 1); T.eq(out, ""); T.ok(err:find("stream not found", 1, true), err)
  st, out, err = tool{ "stream", "frobnicate" }
  T.eq(st, 2); T.eq(out, ""); T.ok(err:find("unknown command 'frobnicate'", 1, true), err)
  st, out, err = tool{ "stream", "ls", "--bogus" }
  T.eq(st, 2); T.eq(out, ""); T.ok(err:find("unknown option '--bogus' (see jetlua stream --help)", 1, true), err)
  st, out = tool{ "stream", "--help" }
  T.eq(st, 0); T.ok(out:find("Usage:", 1, true))
end)

T.test("consumer ls, info, next (acks unless --no-ack)", function()
  assert(js:consumer("ORDERS", { durable = "WORK" }))
  local st, out, err = tool{ "consumer", "ls", "ORDERS" }
  T.eq(st, 0, err); T.ok(out:find("WORK%s+%-%s+explicit%s+2"), out)
  st, out = tool{ "consumer", "next", "ORDERS", "WORK", "--no-ack" }
  T.eq(st, 0); T.ok(out:find("delivered 1 time"), out)
  st, out, err = tool{ "consumer", "next", "ORDERS", "WORK", "--count", "5", "--wait", "0.5", "--json" }
  T.eq(st, 0, err)
  local got = jet.json.decode(out)
  -- 2 were left after the purge (seq 5, 6); the --no-ack one (5) is not redelivered within its 30 s ack wait
  T.eq(#got, 1, out); T.eq(got[1].stream_seq, 6); T.eq(got[1].data, "x")
  st, out, err = tool{ "consumer", "info", "ORDERS", "WORK", "--json" }
  T.eq(st, 0, err)
  local info = jet.json.decode(out)
  T.eq(info.num_ack_pending, 1, out)   -- only the --no-ack message
  st, out, err = tool{ "consumer", "info", "ORDERS" }
  T.eq(st, 2); T.eq(out, ""); T.ok(err:find("which consumer", 1, true), err)
  -- a missing consumer (or stream) is an error, not "no messages"
  st, out, err = tool{ "consumer", "next", "ORDERS", "NOPE", "--wait", "0.2" }
  T.eq(st, 1, out .. err)
  T.ok(err:find("consumer not found", 1, true) and err:find("consumer_not_found", 1, true), err)
  T.ok(not out:find("no messages", 1, true), out)
  st, out, err = tool{ "consumer", "next", "NOSTREAM", "WORK", "--wait", "0.2" }
  T.eq(st, 1, out .. err); T.ok(err:find("stream_not_found", 1, true), err)
end)

T.test("sub prints messages and stops after --count", function()
  runs = runs + 1
  local out, err = dir .. "/out" .. runs, dir .. "/err" .. runs
  local p = T.jetlua({ "sub", "greet.*", "--count", "2", "--server", srv.url }, { stdout = out, stderr = err })
  T.wait_until(function() return (T.read_file(err) or ""):find("listening") end, 10)
  nc:publish("greet.a", "hello"); nc:publish("greet.b", "world")
  T.eq(p:wait(10), 0)
  local text = T.read_file(out)
  T.ok(text:find("[#1] greet.a: hello", 1, true) and text:find("[#2] greet.b: world", 1, true), text)
end)

T.test("kv put, get, ls", function()
  local st, out, err = tool{ "kv", "put", "app", "color", "blue" }
  T.eq(st, 0, err); T.ok(out:find("app/color = revision 1", 1, true), out)
  T.ok(err:find("created bucket app", 1, true), err)
  tool{ "kv", "put", "app", "size", "L" }
  st, out, err = tool{ "kv", "get", "app", "color" }
  T.eq(st, 0, err); T.eq(out, "blue\n")
  st, out, err = tool{ "kv", "ls", "app" }
  T.eq(st, 0, err); T.eq(out, "color\nsize\n")
  st, out, err = tool{ "kv", "ls" }
  T.eq(st, 0, err); T.ok(out:find("app%s+2"), out)
  st, out, err = tool{ "kv", "get", "app", "color", "--json" }
  T.eq(st, 0, err); T.eq(jet.json.decode(out).revision, 1)
  st, out, err = tool{ "kv", "get", "app", "nope" }
  T.eq(st, 1); T.eq(out, ""); T.ok(err:find("key_not_found", 1, true), err)
end)

T.run()
