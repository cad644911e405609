-- Authentication (user/password, token) and TLS (server certificate, client certificates).
local jet = require "jetlua"
local T = require "jetlua.testing"

-- a subscription and a publish on nc, and a request/reply through a second connection
local function roundtrip(nc, peer)
  local got
  nc:subscribe("auth.rt", function(m) got = m.data end)
  nc:subscribe("auth.svc", function(m) m:respond("re:" .. m.data) end)
  nc:flush()
  nc:publish("auth.rt", "ping")
  T.wait_until(function() return got end, 5, "roundtrip")
  T.eq(got, "ping")
  if peer then
    local r, err = peer:request("auth.svc", "q", { timeout = 5 })
    T.eq(r and r.data, "re:q", err)
  end
end

-- fails with the code and does not retry: only a retried connect counts its attempts in the
-- detail ("(3 attempts in 1.2s)"); the_server_refused() counts them on the server's side
local function refused(opts, code, detail_pattern)
  local nc, c, detail = jet.connect(opts)
  T.eq(nc, nil, "connected although it should not")
  T.eq(c, code, detail)
  T.ok(type(detail) == "string" and #detail > 0, "no detail")
  if detail_pattern then T.ok(detail:find(detail_pattern), detail) end
  T.ok(not detail:find("attempt", 1, true), "retried: " .. detail)
  return detail
end

-- the server logged n refused connections in all (one per refused() call: none was retried).
-- Every retry would come before its connect returned, so only the last line can still be
-- on its way when the count is read.
local function the_server_refused(srv, n)
  local function count()
    local _, k = (T.read_file(srv.log) or ""):gsub("authentication error", "")
    return k
  end
  T.wait_until(function() return count() >= n end, 10, n .. " refusals in the server's log")
  T.eq(count(), n, "connections the server refused:\n" .. (T.read_file(srv.log) or ""))
end

T.test("user and password", function()
  local srv = T.server{ js = false, user = "alice", password = "s3cret" }
  local nc = assert(jet.connect{ servers = srv.url, user = "alice", password = "s3cret" })
  local peer = assert(jet.connect{ servers = "nats://alice:s3cret@127.0.0.1:" .. srv.port })
  roundtrip(nc, peer)
  nc:close(); peer:close()
  -- an auth failure is not retried, with or without reconnect.max
  refused({ servers = srv.url, user = "alice", password = "wrong" }, "auth_failed", "Authorization Violation")
  refused({ servers = srv.url, user = "alice", password = "wrong", reconnect = { max = 0 } }, "auth_failed")
  refused({ servers = srv.url, user = "bob", password = "s3cret" }, "auth_failed")
  refused({ servers = srv.url }, "auth_failed")
  refused({ servers = srv.url, token = "s3cret" }, "auth_failed")
  the_server_refused(srv, 5)
end)

T.test("token", function()
  local srv = T.server{ js = false, token = "t0ken" }
  local nc = assert(jet.connect{ servers = srv.url, token = "t0ken" })
  local peer = assert(jet.connect{ servers = "nats://t0ken@127.0.0.1:" .. srv.port })
  roundtrip(nc, peer)
  nc:close(); peer:close()
  refused({ servers = srv.url, token = "nope" }, "auth_failed", "Authorization Violation")
  refused({ servers = srv.url, reconnect = { max = 0 } }, "auth_failed")
  refused({ servers = srv.url, user = "t0ken", password = "x" }, "auth_failed")
  the_server_refused(srv, 3)
end)

local certs = T.certs()

T.test("TLS with the test CA", function()
  local srv = T.server{ js = false, tls = { cert = certs.server_cert, key = certs.server_key } }
  local nc, code, detail = jet.connect{ servers = srv.tls_url, tls = { ca = certs.ca } }
  T.ok(nc, tostring(code) .. " " .. tostring(detail))
  local peer = assert(jet.connect{ servers = srv.url, tls = { ca = certs.ca } })   -- nats:// upgrades
  roundtrip(nc, peer)
  nc:close(); peer:close()
  -- without our CA the server certificate cannot be verified: a clear TLS error, not retried
  local why = refused({ servers = srv.tls_url }, "tls_error")
  T.ok(why:find("certificate", 1, true) or why:find("issuer", 1, true), "unclear TLS error: " .. why)
  refused({ servers = srv.tls_url, reconnect = { max = 0 } }, "tls_error")
  refused({ servers = srv.url }, "tls_error")
  -- the client asks for TLS, the server has none
  local plain = T.server{ js = false }
  local nc2, code2, detail2 = jet.connect{ servers = plain.url, tls = { ca = certs.ca }, reconnect = { max = 0 } }
  T.eq(nc2, nil)
  T.ok(code2 and detail2:find("Secure Connection not available", 1, true), tostring(code2) .. " " .. tostring(detail2))
end)

T.test("TLS with client certificates", function()
  local srv = T.server{ js = false, tls = { cert = certs.server_cert, key = certs.server_key,
                                             ca = certs.ca, verify = true } }
  local nc, code, detail = jet.connect{ servers = srv.tls_url,
    tls = { ca = certs.ca, cert = certs.client_cert, key = certs.client_key } }
  T.ok(nc, tostring(code) .. " " .. tostring(detail))
  local peer = assert(jet.connect{ servers = srv.tls_url,
    tls = { ca = certs.ca, cert = certs.client_cert, key = certs.client_key } })
  roundtrip(nc, peer)
  nc:close(); peer:close()
  -- without a client certificate the server hangs up after the TLS handshake (cnats: "Expected
  -- 'PONG', got ''"); the server's INFO said it verifies client certificates: a tls_error that
  -- says so, at once, with or without reconnect.max
  for _, opts in ipairs{ { servers = srv.tls_url, tls = { ca = certs.ca }, reconnect = { max = 0 } },
                         { servers = srv.tls_url, tls = { ca = certs.ca } } } do
    local bad, c2, d2 = jet.connect(opts)
    T.eq(bad, nil, "connected without a client certificate")
    T.eq(c2, "tls_error", d2)
    T.ok(d2:find(srv.tls_url, 1, true), d2)
    T.ok(d2:find("the server requires a client certificate", 1, true), d2)
  end
  -- a trust anchor that did not sign the server's certificate: a verification error, not a
  -- client certificate one
  local _, c3, d3 = jet.connect{ servers = srv.tls_url, tls = { ca = certs.client_cert } }
  T.eq(c3, "tls_error", d3)
  T.ok(not d3:find("client certificate", 1, true) and d3:find("certificate", 1, true), d3)
end)

T.test("bad TLS files are clear errors naming the option, the file and the reason", function()
  T.raises(function() jet.connect{ servers = "tls://127.0.0.1:1", tls = { ca = "/nonexistent/ca.pem" } } end,
    "jet.connect: bad argument 'tls.ca': cannot read /nonexistent/ca.pem: No such file or directory")
  local err = T.raises(function() jet.connect{ servers = "tls://127.0.0.1:1", tls = { ca = certs.server_key } } end,
    "jet.connect: bad argument 'tls.ca': cannot load CA certificates")
  T.ok(err:find(certs.server_key, 1, true) and err:find("no certificate", 1, true), err)
  T.raises(function() jet.connect{ servers = "tls://127.0.0.1:1",
    tls = { cert = certs.client_cert, key = "/nonexistent/k.pem" } } end,
    "bad argument 'tls.key': cannot read /nonexistent/k.pem: No such file or directory")
  err = T.raises(function() jet.connect{ servers = "tls://127.0.0.1:1",
    tls = { cert = certs.client_cert, key = certs.server_key } } end, "bad argument 'tls.cert'")
  T.ok(err:find(certs.server_key, 1, true) and err:find("key values mismatch", 1, true), err)
  -- on the command line: exit status 2 before anything runs
  local dir = T.tmpdir()
  T.write_file(dir .. "/app.lua", "print('ran')")
  for _, opt in ipairs{ "--tls-ca", "--tls-cert" } do
    local argv = { "run", "--server", "tls://127.0.0.1:1", opt, "/nonexistent/x.pem" }
    if opt == "--tls-cert" then argv[#argv + 1] = "--tls-key"; argv[#argv + 1] = certs.client_key end
    argv[#argv + 1] = dir .. "/app.lua"
    local p = T.jetlua(argv, { stdout = dir .. "/out", stderr = dir .. "/err", env = { NATS_URL = false } })
    T.eq(p:wait(30), 2)
    local e = T.read_file(dir .. "/err") or ""
    T.ok(e:find(opt .. ": cannot read /nonexistent/x.pem: No such file or directory", 1, true), e)
    T.eq(T.read_file(dir .. "/out"), "")
  end
  T.raises(function() jet.connect{ servers = "tls://127.0.0.1:1", tls = { cert = certs.client_cert } } end,
    "jet.connect: bad argument 'tls': cert and key go together")
  T.raises(function() jet.connect{ servers = "tls://127.0.0.1:1", tls = { key = certs.client_key } } end,
    "cert and key go together")
  T.raises(function() jet.connect{ servers = "tls://127.0.0.1:1",
    tls = { cert = certs.client_cert, key = certs.server_key } } end, "jet.connect: bad argument 'tls.cert'")
end)

T.run()
