-- Authentication (user/password, token) and TLS (server certificate, client certificates).
local jet = require "jetlua"
local T = require "jetlua.testing"

local function roundtrip(nc)
  local got
  nc:subscribe("auth.rt", function(m) got = m.data end)
  nc:publish("auth.rt", "ping")
  T.wait_until(function() return got end, 5, "roundtrip")
  T.eq(got, "ping")
end

T.test("user and password", function()
  local srv = T.server{ js = false, user = "alice", password = "s3cret" }
  local nc = assert(jet.connect{ servers = srv.url, user = "alice", password = "s3cret" })
  roundtrip(nc)
  nc:close()
  local bad, code = jet.connect{ servers = srv.url, user = "alice", password = "wrong", reconnect = { max = 0 } }
  T.eq(bad, nil)
  T.eq(code, "auth_failed")
  bad, code = jet.connect{ servers = srv.url, reconnect = { max = 0 } }
  T.eq(bad, nil)
  T.eq(code, "auth_failed")
end)

T.test("token", function()
  local srv = T.server{ js = false, token = "t0ken" }
  local nc = assert(jet.connect{ servers = srv.url, token = "t0ken" })
  roundtrip(nc)
  nc:close()
  local bad, code = jet.connect{ servers = srv.url, token = "nope", reconnect = { max = 0 } }
  T.eq(bad, nil)
  T.eq(code, "auth_failed")
end)

local certs = T.certs()

T.test("TLS with the test CA", function()
  local srv = T.server{ js = false, tls = { cert = certs.server_cert, key = certs.server_key } }
  local nc, code, detail = jet.connect{ servers = srv.tls_url, tls = { ca = certs.ca } }
  T.ok(nc, tostring(code) .. " " .. tostring(detail))
  roundtrip(nc)
  nc:close()
  -- without our CA the server certificate cannot be verified
  local bad
  bad, code = jet.connect{ servers = srv.tls_url, reconnect = { max = 0 } }
  T.eq(bad, nil)
  T.eq(code, "tls_error")
end)

T.test("TLS with client certificates", function()
  local srv = T.server{ js = false, tls = { cert = certs.server_cert, key = certs.server_key,
                                             ca = certs.ca, verify = true } }
  local nc, code, detail = jet.connect{ servers = srv.tls_url,
    tls = { ca = certs.ca, cert = certs.client_cert, key = certs.client_key } }
  T.ok(nc, tostring(code) .. " " .. tostring(detail))
  roundtrip(nc)
  nc:close()
  local bad = jet.connect{ servers = srv.tls_url, tls = { ca = certs.ca }, reconnect = { max = 0 } }
  T.eq(bad, nil, "connected without a client certificate")
end)

T.test("a missing CA file is a clear error naming the option", function()
  T.raises(function() jet.connect{ servers = "tls://127.0.0.1:1", tls = { ca = "/nonexistent/ca.pem" } } end,
    "jet.connect: bad argument 'tls.ca'")
  T.raises(function() jet.connect{ servers = "tls://127.0.0.1:1", tls = { cert = certs.client_cert } } end,
    "cert and key go together")
end)

T.run()
