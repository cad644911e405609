-- jetlua consumer ls|info|next: inspect consumers and take messages from them.
local jet = require "jetlua"
local U = require "jetlua.tools.util"

local usage = [[
Usage:
  jetlua consumer ls STREAM                 consumers of a stream
  jetlua consumer info STREAM NAME          configuration and state of one consumer
  jetlua consumer next STREAM NAME [--count N] [--no-ack] [--wait SECONDS]
                                            take messages (and ack them, unless --no-ack)
Options: --json, and the `jetlua run` connection options (--server URL, ...).
]]

local pos, opt = U.args({ ... }, { usage = usage, flags = { count = "number", ["no-ack"] = "bool", wait = "number" } })
local cmd, stream, name = pos[1], pos[2], pos[3]
if not cmd then U.fail("consumer: which command? (ls, info, next)", usage) end
if not stream then U.fail("consumer " .. cmd .. ": which stream?", usage) end
local nc, js = U.connect()

if cmd == "ls" then
  local list = U.check(js:consumers(stream))
  table.sort(list, function(a, b) return a.name < b.name end)
  if opt.json then U.json(list)
  elseif #list == 0 then print("no consumers on " .. stream)
  else
    local rows = {}
    for _, c in ipairs(list) do
      rows[#rows + 1] = { c.name, c.config.filter_subject or "-", c.config.ack_policy, c.num_pending or 0,
        c.num_ack_pending or 0, c.num_redelivered or 0, c.delivered and c.delivered.stream_seq or 0 }
    end
    U.table({ "NAME", "FILTER", "ACK", "PENDING", "ACK PENDING", "REDELIVERED", "LAST DELIVERED SEQ" }, rows)
  end
elseif cmd == "info" then
  if not name then U.fail("consumer info: which consumer? (jetlua consumer info STREAM NAME)", usage) end
  local c = U.check(js:consumer_info(stream, name))
  if opt.json then U.json(c) else
    local cf = c.config
    U.pairs_table{
      { "stream", c.stream }, { "name", c.name }, { "durable", cf.durable or "-" },
      { "filter subject", cf.filter_subject or "-" }, { "deliver policy", cf.deliver_policy },
      { "ack policy", cf.ack_policy }, { "ack wait", U.seconds(cf.ack_wait) },
      { "max deliver", (cf.max_deliver or -1) < 0 and "unlimited" or cf.max_deliver },
      { "max ack pending", cf.max_ack_pending or "-" },
      { "pending", c.num_pending or 0 }, { "ack pending", c.num_ack_pending or 0 },
      { "redelivered", c.num_redelivered or 0 }, { "waiting pulls", c.num_waiting or 0 },
      { "last delivered", c.delivered and c.delivered.stream_seq or 0 },
      { "ack floor", c.ack_floor and c.ack_floor.stream_seq or 0 },
    }
  end
elseif cmd == "next" then
  if not name then U.fail("consumer next: which consumer? (jetlua consumer next STREAM NAME)", usage) end
  -- a pull to a missing consumer gets no answer at all: ask first, so that
  -- is an error (exit 1), not "no messages"
  U.check(js:consumer_info(stream, name))
  local want, wait = opt.count or 1, opt.wait or 1
  local got = {}
  -- one pull request for up to --count messages, expiring after --wait seconds; the
  -- messages come to our own inbox (their subject is the stream's, so not nc:request)
  math.randomseed(os.time() + jet.process.pid())
  local inbox = ("_INBOX.jetlua_tool.%d%06d"):format(jet.process.pid(), math.random(999999))
  local done, failure = false, nil
  local sub = nc:subscribe(inbox, function(m)
    local status = m:header("Status")
    if status then
      if status ~= "100" then done = true end     -- 404 no messages, 408 expired, 409 ...
      if status ~= "404" and status ~= "408" and status ~= "100" then
        failure = ("%s %s"):format(status, m:header("Description") or "")
      end
      return
    end
    local t = {}
    for tok in (m.reply or ""):gmatch("[^.]+") do t[#t + 1] = tok end
    if not opt["no-ack"] then m:respond("+ACK") end
    got[#got + 1] = { subject = m.subject, data = m.data, headers = m.headers, stream_seq = tonumber(t[6]),
      delivered = tonumber(t[5]), pending = tonumber(t[9]) }
    if #got >= want then done = true end
  end)
  nc:flush()
  nc:publish(js.prefix .. "CONSUMER.MSG.NEXT." .. stream .. "." .. name,
    jet.json.encode{ batch = want, expires = math.floor(wait * 1e9) }, { reply = inbox })
  local deadline = jet.monotonic() + wait + 2
  while not done and jet.monotonic() < deadline do jet.sleep(0.01) end
  sub:unsubscribe()
  if failure then U.fail("consumer next: " .. failure, nil, 1) end
  nc:flush()
  if opt.json then U.json(got) else
    if #got == 0 then print("no messages") end
    for _, g in ipairs(got) do
      print(("[%s] %s (delivered %s time(s), %s pending)%s"):format(tostring(g.stream_seq), g.subject,
        tostring(g.delivered), tostring(g.pending), opt["no-ack"] and "" or ", acked"))
      print("  " .. U.printable(g.data))
    end
  end
else
  U.fail("consumer: unknown command '" .. cmd .. "' (ls, info, next)", usage)
end
nc:close()
