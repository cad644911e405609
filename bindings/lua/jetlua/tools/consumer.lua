-- jetlua consumer ls|info|add|next|rm: inspect and manage pull consumers, take messages.
local jet = require "jetlua"
local U = require "jetlua.tools.util"

local usage = [[
Usage:
  jetlua consumer ls STREAM                 consumers of a stream
  jetlua consumer info STREAM NAME          configuration and state of one consumer
  jetlua consumer add STREAM NAME [settings]
                                            create a durable pull consumer (settings below)
  jetlua consumer next STREAM NAME [--count N] [--no-ack] [--wait DURATION]
                                            take messages (and ack them, unless --no-ack)
  jetlua consumer rm STREAM NAME [-f]       delete a consumer (asks first; -f/--force: do
                                            not ask, needed without a terminal)
Settings (add):
  --filter SUBJECT          only the stream's messages on this subject
  --deliver all|new|last|last-per-subject   where it starts (default all); --start-seq N:
                            at this stream sequence
  --ack explicit|all|none   (default explicit)     --ack-wait DURATION (default 30s)
  --max-deliver N           deliveries of a message before it is given up (default: no limit)
  --backoff D1,D2,...       redelivery delays (the first is the ack wait)
  --max-ack-pending N       --description TEXT
Durations: 30s, 5m, 1h, 1d, or seconds.
Options: --json (machine-readable output), and the connection options below.
]]

local SETTINGS = "--filter --deliver --start-seq --ack --ack-wait --max-deliver --backoff --max-ack-pending "
  .. "--description"
local pos, opt = U.args({ ... }, { name = "consumer", usage = usage, short = { f = "force" },
  flags = { count = "number", ["no-ack"] = "bool", wait = "duration", force = "bool", filter = "string",
    deliver = { "all", "new", "last", "last-per-subject" }, ["start-seq"] = "number",
    ack = { "explicit", "all", "none" }, ["ack-wait"] = "duration", ["max-deliver"] = "number",
    backoff = "durations", ["max-ack-pending"] = "number", description = "string" },
  commands = { "ls", "info", "add " .. SETTINGS, "next --count --no-ack --wait", "rm --force" } })
local cmd, stream, name = pos[1], pos[2], pos[3]
if not stream then U.fail("consumer " .. cmd .. ": which stream?", usage) end
if cmd ~= "ls" and not name then
  U.fail(("consumer %s: which consumer? (jetlua consumer %s STREAM NAME)"):format(cmd, cmd), usage)
end
for _, v in ipairs{ stream, name } do
  if not v:match("^[%w%-_]+$") then
    U.fail("consumer " .. cmd .. ": invalid name '" .. v .. "' (letters, digits, - and _)")
  end
end
if #pos > (cmd == "ls" and 2 or 3) then U.fail("consumer " .. cmd .. ": unexpected argument '" .. pos[#pos] .. "'") end
if opt.count and opt.count < 1 then U.fail("consumer next: --count must be >= 1") end

local function show(c)
  if opt.json then return U.json(c) end
  local cf = c.config
  U.pairs_table{
    { "stream", c.stream }, { "name", c.name }, { "durable", cf.durable or "-" },
    { "description", cf.description or "-" },
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
  show(U.check(js:consumer_info(stream, name)))
elseif cmd == "add" then
  -- js:consumer would update an existing consumer to this declaration: add only creates
  local _, code, detail = js:consumer_info(stream, name)
  if code == nil then
    U.fail(("consumer %s already exists on stream %s"):format(name, stream), nil, 1)
  elseif code ~= "consumer_not_found" then
    U.check(nil, code, detail)
  end
  local deliver = opt.deliver and opt.deliver:gsub("%-", "_")
  if opt["start-seq"] then
    if opt.deliver then U.fail("consumer add: --deliver or --start-seq, not both") end
    deliver = "by_start_sequence"
  end
  local cfg = { durable = name, filter_subject = opt.filter, deliver_policy = deliver,
    opt_start_seq = opt["start-seq"], ack_policy = opt.ack, ack_wait = opt["ack-wait"],
    max_deliver = opt["max-deliver"], backoff = opt.backoff, max_ack_pending = opt["max-ack-pending"],
    description = opt.description }
  local info = U.check(js:consumer(stream, cfg))
  if not opt.json then print(("created consumer %s on stream %s"):format(name, stream)) end
  show(info)
elseif cmd == "rm" then
  local info = U.check(js:consumer_info(stream, name))
  U.confirm(("Really delete consumer %s of stream %s (%d message(s) waiting for an ack)?")
    :format(name, stream, info.num_ack_pending or 0), opt.force,
    ("consumer %s of stream %s not deleted"):format(name, stream))
  U.check(js:delete_consumer(stream, name))
  if opt.json then U.json({ deleted = name, stream = stream }) else
    print(("deleted consumer %s of stream %s"):format(name, stream))
  end
elseif cmd == "next" then
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
end
nc:close()
