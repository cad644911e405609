-- jetlua pub SUBJECT [DATA]: publish, through JetStream (with its PubAck) when a stream
-- listens on the subject, else as a core NATS message.
local U = require "jetlua.tools.util"

local usage = [[
Usage:
  jetlua pub SUBJECT [DATA] [--count N] [--msg-id ID] [--header K:V ...] [--core]
DATA and ID may contain {{i}}: the message number (1..N). Without DATA, stdin is read.
With a stream on SUBJECT the publish waits for the PubAck (--msg-id sets Nats-Msg-Id,
so a repeated publish is stored once); --core publishes plain NATS messages.
Options: --json, and the `jetlua run` connection options (--server URL, ...).
]]

local pos, opt = U.args({ ... }, { name = "pub", usage = usage,
  flags = { count = "number", ["msg-id"] = "string", header = "strings", core = "bool" } })
local subject, data = pos[1], pos[2]
if not subject then U.fail("pub: which subject?", usage) end
if #pos > 2 then U.fail("pub: unexpected argument '" .. pos[3] .. "'") end
local count = opt.count or 1
if count < 1 then U.fail("pub: --count must be >= 1", usage) end
local headers = U.headers(opt.header)
if not data then data = io.stdin:read("*a") or "" end
local function fill(s, i) return (s:gsub("{{i}}", tostring(i))) end

local nc, js = U.connect()
local result = { subject = subject, count = count }
local core = opt.core
if not core then
  -- the first message tells whether a stream listens
  local o = { headers = headers, msg_id = opt["msg-id"] and fill(opt["msg-id"], 1) }
  local ack, code, detail = js:publish(subject, fill(data, 1), o)
  if not ack and code == "no_responders" then
    if opt["msg-id"] then U.fail("pub: no stream listens on '" .. subject .. "' (--msg-id needs one)", nil, 1) end
    core = true
  else
    U.check(ack, code, detail)
    result.stream, result.first_seq, result.last_seq = ack.stream, ack.seq, ack.seq
    result.duplicates = ack.duplicate and 1 or 0
    local futures = {}
    for i = 2, count do
      futures[#futures + 1] = js:publish_async(subject, fill(data, i),
        { headers = headers, msg_id = opt["msg-id"] and fill(opt["msg-id"], i) })
    end
    for _, f in ipairs(futures) do
      local a, c, d = f:wait()
      U.check(a, c, d)
      result.last_seq = math.max(result.last_seq, a.seq)
      if a.duplicate then result.duplicates = result.duplicates + 1 end
    end
  end
end
if core then
  for i = 1, count do assert(nc:publish(subject, fill(data, i), { headers = headers })) end
  U.check(nc:flush())
  result.core = true
end
if opt.json then U.json(result)
elseif core then print(("published %d core message(s) to %s (no stream listens)"):format(count, subject))
else
  print(("published %d message(s) to %s: stream %s, seq %d..%d%s"):format(count, subject, result.stream,
    result.first_seq, result.last_seq, result.duplicates > 0 and (", " .. result.duplicates .. " duplicate(s)") or ""))
end
nc:close()
