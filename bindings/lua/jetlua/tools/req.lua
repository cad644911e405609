-- jetlua req SUBJECT [DATA]: send a request, print the reply.
local U = require "jetlua.tools.util"

local usage = [[
Usage:
  jetlua req SUBJECT [DATA] [--timeout DURATION] [--header K:V ...] [--headers]
Sends DATA (default: empty) to SUBJECT and prints the reply's data; --headers prints its
headers first. --timeout: how long to wait for the reply (default 5s; 30s, 1m, or seconds).
--header adds a request header (repeatable).
Exit status 1 when no reply came (timeout), nobody listens (no responders), or the reply
is a service error (a Nats-Service-Error header: the error goes to stderr).
Options: --json (the reply as {subject=, data=, headers=}), and the connection options below.
]]

local pos, opt = U.args({ ... }, { name = "req", usage = usage,
  flags = { timeout = "duration", header = "strings", headers = "bool" } })
local subject, data = pos[1], pos[2]
if not subject then U.fail("req: which subject?", usage) end
if #pos > 2 then U.fail("req: unexpected argument '" .. pos[3] .. "'") end
if subject:find("[%s%*>]") or subject:find("%.%.") or subject:find("^%.") or subject:find("%.$") then
  U.fail("req: invalid subject '" .. subject .. "' (no spaces or wildcards, no empty tokens)")
end
if opt.timeout and opt.timeout <= 0 then U.fail("req: --timeout must be > 0") end
local headers = U.headers(opt.header)

local nc = U.connect()
local m = U.check(nc:request(subject, data or "", { timeout = opt.timeout or 5, headers = headers }))
local err = m:header("Nats-Service-Error")
if opt.json then
  U.json({ subject = m.subject, data = m.data, headers = m.headers })
else
  if opt.headers then
    local names = {}
    for k in pairs(m.headers) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do
      local v = m.headers[k]
      print(("%s: %s"):format(k, type(v) == "table" and table.concat(v, ", ") or v))
    end
    if #names > 0 then print() end
  end
  if not (err and m.data == "") then print(m.data) end
end
nc:close()
if err then
  U.fail(("service error %s: %s"):format(m:header("Nats-Service-Error-Code") or "?", err), nil, 1)
end
