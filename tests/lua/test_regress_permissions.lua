-- Regression test (issue #12): permission violations must be clear. nats-server answers a
-- forbidden publish or subscribe with -ERR 'Permissions Violation for Publish to "x"' and keeps
-- the connection. A forbidden publish returned true and said nothing more; a forbidden request
-- or JetStream publish waited for its timeout and returned "timeout". Now nc:on("error") gets
-- ("permission_denied", the server's sentence, the subject); requests, js:publish and
-- js:publish_async waiting on that subject end at once with nil, "permission_denied", detail;
-- a refused subscription is reported with its subject and stopped.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ config = [[
authorization {
  users = [
    { user: "limited", password: "pw", permissions: {
        publish: { allow: ["ok.>", "_INBOX.>", "$JS.API.>", "s.ok"] },
        subscribe: { allow: ["ok.>", "_INBOX.>"] } } },
    { user: "admin", password: "pw" }
  ]
}]] }

local admin = assert(jet.connect{ servers = srv.url, user = "admin", password = "pw" })
assert(admin:jetstream():stream{ name = "S", subjects = { "s.>" }, storage = "memory" })

local function limited()
  local nc = assert(jet.connect{ servers = srv.url, user = "limited", password = "pw" })
  local errors = {}
  nc:on("error", function(_, code, detail, subject)
    errors[#errors + 1] = { code = code, detail = detail, subject = subject }
  end)
  return nc, errors
end

local function find(errors, subject)
  for _, e in ipairs(errors) do if e.subject == subject then return e end end
end

T.test("a forbidden publish reaches nc:on('error') with permission_denied and the subject", function()
  local nc, errors = limited()
  T.eq(nc:publish("forbidden.x", "x"), true, "a publish is asynchronous: accepted locally")
  T.wait_until(function() return find(errors, "forbidden.x") end, 10, "the error event")
  local e = find(errors, "forbidden.x")
  T.eq(e.code, "permission_denied")
  T.eq(e.detail, 'Permissions Violation for Publish to "forbidden.x"')
  T.eq(nc:status(), "connected", "the connection stays up")
  T.ok(nc:flush(5))
  nc:close()
end)

T.test("a forbidden request and js:publish end at once with permission_denied", function()
  local nc, errors = limited()
  -- timeouts far longer than the test's bound: "timeout" would mean nobody told them
  local m, code, detail = nc:request("forbidden.y", "x", { timeout = 10 })
  T.eq({ m, code }, { nil, "permission_denied" }, tostring(detail))
  T.ok(detail:find('Permissions Violation for Publish to "forbidden.y"', 1, true), detail)
  local js = nc:jetstream()
  local ack
  ack, code, detail = js:publish("s.no", "x", { timeout = 10 })
  T.eq({ ack, code }, { nil, "permission_denied" }, tostring(detail))
  T.ok(detail:find("js:publish to s.no", 1, true) and detail:find("Permissions Violation", 1, true), detail)
  T.ok(assert(js:publish("s.ok", "fine")).seq > 0, "an allowed JetStream publish still works")
  -- async: the forbidden one fails, the allowed ones around it are acked
  local f1 = js:publish_async("s.ok", "1", { timeout = 10 })
  local f2 = js:publish_async("s.no", "2", { timeout = 10, retry = 3 })
  local f3 = js:publish_async("s.ok", "3", { timeout = 10 })
  T.ok(f1:wait(), "s.ok acked")
  ack, code, detail = f2:wait()
  T.eq({ ack, code }, { nil, "permission_denied" }, tostring(detail))
  T.ok(f3:wait(), "s.ok acked")
  T.eq(js:publish_async_stats().retried, 0, "a refusal is never retried")
  T.ok(find(errors, "s.no"), "the error event too")
  T.eq(nc:status(), "connected")
  nc:close()
end)

T.test("a forbidden subscription is reported with its subject and stopped", function()
  local nc, errors = limited()
  local sub = nc:subscribe("forbidden.z", function() end)
  local qsub = nc:subscribe("forbidden.q", function() end, { queue = "workers" })
  local ok = nc:subscribe("ok.fine", function() end)
  T.wait_until(function() return sub:stats().closed and qsub:stats().closed end, 10, "the subscriptions to stop")
  T.eq(sub:stats().error, "permission_denied")
  T.eq(qsub:stats().error, "permission_denied")
  T.eq(find(errors, "forbidden.z").code, "permission_denied")
  T.eq(find(errors, "forbidden.q").detail,
    'Permissions Violation for Subscription to "forbidden.q" using queue "workers"')
  T.eq(ok:stats().closed, false, "the allowed subscription is untouched")
  T.eq(nc:status(), "connected")
  nc:close()
end)

T.run()
