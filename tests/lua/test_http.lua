-- The --metrics HTTP endpoint under abuse: hundreds of silent connections, HEAD, other
-- methods, oversized requests, IPv6 and host names, and a stuck event loop (/livez).
local jet = require "jetlua"
local T = require "jetlua.testing"

local PY = "/usr/bin/python3"

-- curl: -> status code (nil when no answer), body, headers
local function curl(url, extra)
  local dir = T.tmpdir()
  local argv = { "curl", "-s", "-g", "--max-time", "20", "-D", dir .. "/head", "-o", dir .. "/body",
                 "-w", "%{http_code}" }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = url
  local p = assert(jet.process.spawn(argv, { stdout = dir .. "/code" }))
  p:wait(30)
  local code = tonumber(T.read_file(dir .. "/code"))
  return code ~= 0 and code or nil, T.read_file(dir .. "/body") or "", T.read_file(dir .. "/head") or ""
end

-- a child `jetlua run --metrics ADDR script`; returns proc, dir
local function child(addr, script, wrap)
  local dir = T.tmpdir()
  T.write_file(dir .. "/child.lua", script)
  local args = { "run", "--metrics", addr, dir .. "/child.lua" }
  local p
  if wrap then   -- run under `sh -c 'ulimit ...; exec jetlua ...'`
    local argv = { "sh", "-c", wrap .. ' && exec "$@"', "sh", jet.process.getenv("JETLUA_BIN") }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    p = assert(jet.process.spawn(argv, { stdout = dir .. "/out", stderr = dir .. "/err" }))
  else
    p = T.jetlua(args, { stdout = dir .. "/out", stderr = dir .. "/err" })
  end
  T.wait_until(function() return (T.read_file(dir .. "/err") or ""):find("metrics on ") end, 30,
    "listening: " .. (T.read_file(dir .. "/err") or ""))
  return p, dir
end

local IDLE = [[
  local jet = require "jetlua"
  jet.every(0.2, function() end)
]]

T.test("300 silent connections: fds stay bounded, /livez and /metrics answer again", function()
  local port = jet.process.free_port()
  -- 256 fds: the old endpoint (no cap, no timeout) ran out of them and never answered again
  local p, dir = child("127.0.0.1:" .. port, IDLE, "ulimit -n 256")
  local base = "http://127.0.0.1:" .. port
  T.eq((curl(base .. "/livez")), 200)
  -- 300 sockets that connect and send nothing, held open; meanwhile the most fds the
  -- child had open is sampled from /proc
  T.write_file(dir .. "/silent.py", [[
import os, socket, sys, time
port, pid, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
socks, most = [], 0
def fds():
    try: return len(os.listdir("/proc/%d/fd" % pid))
    except OSError: return 0
for i in range(300):
    s = socket.socket()
    s.settimeout(5)
    try: s.connect(("127.0.0.1", port)); socks.append(s)
    except OSError: pass
    most = max(most, fds())
open(out + ".tmp", "w").write("%d %d\n" % (len(socks), most)); os.rename(out + ".tmp", out)
end = time.time() + 40
while time.time() < end and not os.path.exists(out + ".stop"):
    most = max(most, fds())
    open(out + ".tmp", "w").write("%d %d\n" % (len(socks), most)); os.rename(out + ".tmp", out)
    time.sleep(0.2)
]])
  local silent = assert(jet.process.spawn({ PY, dir .. "/silent.py", tostring(port), tostring(p.pid),
    dir .. "/silent.out" }, { stderr = dir .. "/silent.err" }))
  T.wait_until(function() return T.read_file(dir .. "/silent.out") end, 60, "sockets opened: " ..
    (T.read_file(dir .. "/silent.err") or ""))
  -- while all 300 are still open on our side, both endpoints answer (after at most the
  -- 10 s idle timeout frees the 64 the server accepted; the rest were closed at once)
  T.wait_until(function() return curl(base .. "/livez") == 200 end, 40, "/livez answers")
  local code, text = curl(base .. "/metrics")
  T.eq(code, 200)
  T.write_file(dir .. "/silent.out.stop", "")
  T.eq(silent:wait(60), 0, T.read_file(dir .. "/silent.err"))
  local opened, most = T.read_file(dir .. "/silent.out"):match("(%d+) (%d+)")
  T.ok(tonumber(opened) >= 250, "sockets connected: " .. opened)
  T.ok(tonumber(most) <= 64 + 40, "the child never held more than the cap + its own fds: " .. most)
  T.ok(tonumber(text:match("\njetlua_http_connections_refused_total (%d+)\n")) > 0, "refused some: " .. text)
  T.ok(p:running(), "the child is alive")
  p:kill("TERM")
  T.eq(p:wait(20), 0, T.read_file(dir .. "/err"))
end)

T.test("HEAD has no body, other methods get 405, oversized requests 431, unknown paths 404", function()
  local port = jet.process.free_port()
  local p, dir = child("127.0.0.1:" .. port, IDLE)
  local base = "http://127.0.0.1:" .. port
  -- a raw HEAD: the response ends right after the headers, which give the GET body's length
  T.write_file(dir .. "/head.py", [[
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"HEAD " + sys.argv[2].encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    b = s.recv(4096)
    if not b: break
    data += b
end = data.index(b"\r\n\r\n") + 4
length = [l for l in data[:end].decode().split("\r\n") if l.lower().startswith("content-length:")]
sys.stdout.write("%s %d %d %s\n" % (data.split()[1].decode(), len(data), end, length[0].split(":")[1].strip()))
]])
  for _, path in ipairs({ "/metrics", "/livez", "/readyz", "/healthz", "/nothing" }) do
    local h = assert(jet.process.spawn({ PY, dir .. "/head.py", tostring(port), path },
      { stdout = dir .. "/head.out", stderr = dir .. "/head.err" }))
    T.eq(h:wait(30), 0, T.read_file(dir .. "/head.err"))
    local code, total, headers, length = T.read_file(dir .. "/head.out"):match("(%d+) (%d+) (%d+) (%d+)\n$")
    T.ok(code, T.read_file(dir .. "/head.out"))
    T.eq(total, headers, "HEAD " .. path .. ": nothing after the headers")
    T.ok(tonumber(length) > 0, "HEAD " .. path .. ": Content-Length of the GET body")
    local gcode, gbody = curl(base .. path)
    T.eq(tonumber(code), gcode, path)
    if path ~= "/metrics" then T.eq(tonumber(length), #gbody, path) end
  end

  local code, body, head = curl(base .. "/metrics", { "-X", "POST", "-d", "x=1" })
  T.eq(code, 405); T.ok(head:find("Allow: GET, HEAD"), head); T.eq(body, "only GET and HEAD\n")
  T.eq((curl(base .. "/livez", { "-X", "DELETE" })), 405)
  code = curl(base .. "/livez", { "-H", "X-Big: " .. string.rep("a", 40000) })
  T.eq(code, 431, "a 40 KB header is refused")
  code = curl(base .. "/" .. string.rep("a", 40000))
  T.ok(code == 414 or code == 431, "a 40 KB URL is refused: " .. tostring(code))
  code, body = curl(base .. "/nothing")
  T.eq(code, 404); T.ok(body:find("/livez"), body)
  T.eq((curl(base .. "/livez")), 200, "still serving")
  p:kill("TERM")
  T.eq(p:wait(20), 0, T.read_file(dir .. "/err"))
end)

T.test("--metrics takes localhost, [::1] and :PORT; bad addresses are command-line errors", function()
  local port = jet.process.free_port()
  local p, dir = child("localhost:" .. port, IDLE)
  T.eq((curl("http://127.0.0.1:" .. port .. "/livez")), 200, "localhost -> 127.0.0.1")
  p:kill("TERM"); T.eq(p:wait(20), 0, T.read_file(dir .. "/err"))

  -- IPv6 loopback, when this machine has it
  local probe = T.tmpdir() .. "/v6"
  local v6 = assert(jet.process.spawn({ PY, "-c",
    "import socket; s = socket.socket(socket.AF_INET6); s.bind(('::1', 0))" }, { stderr = probe }))
  if v6:wait(30) == 0 then
    port = jet.process.free_port()
    p, dir = child("[::1]:" .. port, IDLE)
    T.ok(T.read_file(dir .. "/err"):find("http://[::1]:" .. port, 1, true), T.read_file(dir .. "/err"))
    T.eq((curl("http://[::1]:" .. port .. "/livez")), 200, "served on ::1")
    T.eq((curl("http://127.0.0.1:" .. port .. "/livez")), nil, "and only there")
    p:kill("TERM"); T.eq(p:wait(20), 0, T.read_file(dir .. "/err"))
  else
    print("# skipped the IPv6 part: ::1 is not available here")
  end

  port = jet.process.free_port()
  p, dir = child(":" .. port, IDLE)
  T.eq((curl("http://127.0.0.1:" .. port .. "/livez")), 200, ":PORT is every interface")
  p:kill("TERM"); T.eq(p:wait(20), 0, T.read_file(dir .. "/err"))

  local d = T.tmpdir()
  T.write_file(d .. "/x.lua", "")
  for addr, want in pairs({
    ["::1:9464"] = "an IPv6 address goes in brackets",
    ["[::1]9464"] = "is not [IPV6]:PORT",
    ["127.0.0.1:99999"] = "the port must be a number from 0 to 65535",
    ["no.such.host.invalid:9464"] = "cannot resolve 'no.such.host.invalid'",
  }) do
    local e = T.jetlua({ "run", "--metrics", addr, d .. "/x.lua" }, { stderr = d .. "/err" })
    T.eq(e:wait(30), 2, addr)
    T.ok(T.read_file(d .. "/err"):find(want, 1, true), T.read_file(d .. "/err"))
  end
  -- a port in use is an error too
  port = jet.process.free_port()
  p, dir = child("127.0.0.1:" .. port, IDLE)
  local e = T.jetlua({ "run", "--metrics", "127.0.0.1:" .. port, d .. "/x.lua" }, { stderr = d .. "/err2" })
  T.eq(e:wait(30), 2)
  T.ok(T.read_file(d .. "/err2"):find("Address already in use", 1, true), T.read_file(d .. "/err2"))
  p:kill("TERM"); T.eq(p:wait(20), 0, T.read_file(dir .. "/err"))
end)

T.test("a stuck event loop: /livez 503, /readyz 503, /metrics 503 after 5 s; all fine again after", function()
  local port = jet.process.free_port()
  local d = T.tmpdir()
  local p, dir = child("127.0.0.1:" .. port, ([[
    local jet = require "jetlua"
    local function exists(f) local h = io.open(f) if h then h:close() end return h ~= nil end
    jet.every(0.1, function()
      if not exists(%q) then return end
      os.remove(%q)
      local t0 = os.clock()
      repeat                                  -- spin, never yielding: the loop is stuck
        for _ = 1, 1e5 do end
      until exists(%q) or os.clock() - t0 > 60
    end)
  ]]):format(d .. "/spin", d .. "/spin", d .. "/stop"))
  local base = "http://127.0.0.1:" .. port
  T.eq((curl(base .. "/livez")), 200)
  T.write_file(d .. "/spin", "")
  T.wait_until(function() return curl(base .. "/livez") == 503 end, 30, "/livez says the loop is stuck")
  local code, body = curl(base .. "/livez")
  T.eq(code, 503); T.ok(body:find("^event loop stuck for %d+%.%d s\n$"), body)
  code, body = curl(base .. "/readyz")
  T.eq(code, 503); T.ok(body:find("^not ready: event loop stuck for"), body)
  code, body = curl(base .. "/metrics")
  T.eq(code, 503); T.eq(body, "the event loop did not answer within 5 s\n")
  T.write_file(d .. "/stop", "")
  T.wait_until(function() return curl(base .. "/livez") == 200 end, 30, "/livez fine again")
  T.eq((curl(base .. "/metrics")), 200)
  p:kill("TERM")
  T.eq(p:wait(20), 0, T.read_file(dir .. "/err"))
end)

T.run()
