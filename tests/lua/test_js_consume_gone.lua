-- A consumer or stream deleted under a running consumer (issue #11 item 1):
-- nats-server 2.9.10 often tells nobody (no 409 reaches a consumer busy with
-- a backlog), so the engine asks CONSUMER.INFO when heartbeats stop. Expected:
-- on_error("consumer_deleted" | "stream_not_found", detail, true) within a
-- few heartbeats, the handle closed, buffered messages dropped, and a process
-- with nothing else to do exits.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url })
local js = nc:jetstream()

local function fresh(name, ccfg) T.fresh_stream(js, name, ccfg) end

local function publish_n(subject, n) T.publish_n(js, subject, n) end

-- A consumer process working through a backlog with 1 ms handlers; it writes
-- how many it handled and every on_error call, and exits when nothing is left.
local dir = T.tmpdir("jetlua-gone")
local CHILD = T.write_file(dir .. "/child.lua", [[
local jet = require "jetlua"
local url, stream, out = arg[1], arg[2], arg[3]
local nc = assert(jet.connect{ servers = url })
local js = nc:jetstream()
local n, h = 0, nil
local function note(s) local f = assert(io.open(out, "a")); f:write(s, "\n"); f:close() end
h = assert(js:consume(stream, "C", function()
  n = n + 1
  if n % 100 == 0 then note("handled " .. n) end
  jet.sleep(0.001)
end, { max_messages = 20000, heartbeat = 1, expires = 5, on_error = function(code, detail, terminal)
  local st = h:stats()
  note(("error %s %s buffered=%d handled=%d %s"):format(code, tostring(terminal), st.buffered, n, detail))
end }))
]])

local function lines(path)
  local t = {}
  for l in (T.read_file(path) or ""):gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

local function handled(path)
  local n = 0
  for _, l in ipairs(lines(path)) do n = math.max(n, tonumber(l:match("^handled (%d+)")) or 0) end
  return n
end

local function run_child(stream, delete)
  local out = dir .. "/" .. stream .. ".txt"
  local p = T.jetlua({ "run", CHILD, srv.url, stream, out }, { stderr = dir .. "/" .. stream .. ".log" })
  T.wait_until(function() return handled(out) >= 300 end, 30, "the child is working through the backlog")
  delete()
  local status = p:wait(40)
  if status == nil then p:kill("KILL"); p:wait(5) end
  local errs, terminal = {}, nil
  for _, l in ipairs(lines(out)) do
    local code, term, rest = l:match("^error (%S+) (%S+) (.*)$")
    if code then
      errs[#errs + 1] = code
      if term == "true" then terminal = { code = code, rest = rest } end
    end
  end
  T.ok(status ~= nil, "the process exited by itself; errors: " .. table.concat(errs, ",") .. "; log: "
    .. (T.read_file(dir .. "/" .. stream .. ".log") or ""))
  T.eq(status, 0)
  return terminal, errs, handled(out)
end

T.test("consumer deleted during a 20,000 backlog: terminal consumer_deleted, closed, process exits", function()
  fresh("GONE1")
  publish_n("gone1.x", 20000)
  local terminal, errs, n = run_child("GONE1", function() assert(js:delete_consumer("GONE1", "C")) end)
  T.ok(terminal, "a terminal error: " .. table.concat(errs, ","))
  T.eq(terminal.code, "consumer_deleted")
  T.ok(n < 20000, "buffered messages were dropped, not all handled: " .. n)
end)

T.test("stream deleted during a backlog: terminal stream_not_found (or consumer_deleted), process exits", function()
  fresh("GONE2")
  publish_n("gone2.x", 20000)
  local terminal, errs = run_child("GONE2", function() assert(js:delete_stream("GONE2")) end)
  T.ok(terminal, "a terminal error: " .. table.concat(errs, ","))
  T.ok(terminal.code == "stream_not_found" or terminal.code == "consumer_deleted", terminal.code)
end)

T.test("a messages iterator on a deleted consumer ends with nil, consumer_deleted", function()
  fresh("GONE3")
  publish_n("gone3.x", 5000)
  local errs = {}
  local it = assert(js:messages("GONE3", "C", { max_messages = 2000, heartbeat = 0.5, expires = 2,
    on_error = function(code, _, terminal) errs[#errs + 1] = code .. ":" .. tostring(terminal) end }))
  for _ = 1, 100 do assert(it:next(5)):ack() end
  assert(js:delete_consumer("GONE3", "C"))
  local got, m, err, detail = 0
  local deadline = jet.monotonic() + 30
  repeat
    m, err, detail = it:next(1)
    if m then got = got + 1 end
  until (not m and err ~= "timeout") or jet.monotonic() > deadline
  T.eq(m, nil)
  T.eq(err, "consumer_deleted", "errors: " .. table.concat(errs, ","))
  T.ok(type(detail) == "string" and (detail:find("10014") or detail:find("409 Consumer Deleted")), tostring(detail))
  T.eq(select(2, it:next(0)), "consumer_deleted", "later calls say it too")
  T.eq(it:stats().closed, true)
  T.eq(it:stats().error, "consumer_deleted")
end)

T.test("ordered consumer whose stream is gone: terminal stream_not_found after a few tries", function()
  fresh("GONE4", false)
  publish_n("gone4.x", 50)
  local errs, got = {}, 0
  local h = assert(js:ordered("GONE4"):consume(function() got = got + 1 end, { expires = 2,
    on_error = function(code, _, terminal) errs[#errs + 1] = { code, terminal } end }))
  T.wait_until(function() return got == 50 end, 10)
  assert(js:delete_stream("GONE4"))
  T.wait_until(function() return #errs > 0 and errs[#errs][2] == true end, 40, "a terminal error")
  T.eq(errs[#errs][1], "stream_not_found")
  T.wait_until(function() return h:closed() end, 10, "closed")
  local n = #errs
  jet.sleep(3)
  T.eq(#errs, n, "no more tries after the terminal error")
  -- the iterator flavour
  fresh("GONE5", false)
  publish_n("gone5.x", 5)
  local it = assert(js:ordered("GONE5"):messages{ expires = 2 })
  for _ = 1, 5 do assert(it:next(5)) end
  assert(js:delete_stream("GONE5"))
  local m, err
  local deadline = jet.monotonic() + 40
  repeat m, err = it:next(1) until err ~= "timeout" or jet.monotonic() > deadline
  T.eq(m, nil); T.eq(err, "stream_not_found")
  T.eq(select(2, it:next(0)), "stream_not_found")
  -- fetch
  local oc = js:ordered("GONE6")
  local list, code = oc:fetch(1, { expires = 0.5 })
  T.eq(list, nil); T.eq(code, "stream_not_found")
end)

T.run()
