-- jetlua stream ls|info|view|purge|rm: inspect and manage JetStream streams.
local U = require "jetlua.tools.util"

local usage = [[
Usage:
  jetlua stream ls                          streams with subjects, storage, messages, size
  jetlua stream info NAME                   configuration and state of one stream
  jetlua stream view NAME [--from SEQ] [--count N] [--subject S]
                                            stored messages (default: the first 10)
  jetlua stream purge NAME [--subject S] [--keep N] [--seq N]
                                            remove messages (all, or only some)
  jetlua stream rm NAME                     delete a stream and its messages
Options: --json (machine-readable output), and the connection options below.
]]

local pos, opt = U.args({ ... }, { usage = usage,
  flags = { from = "number", count = "number", subject = "string", keep = "number", seq = "number" } })
local cmd, name = pos[1], pos[2]
if not cmd then U.fail("stream: which command? (ls, info, view, purge, rm)", usage) end
local function need_name()
  if not name then U.fail("stream " .. cmd .. ": which stream? (jetlua stream " .. cmd .. " NAME)", usage) end
end

local nc, js = U.connect()

if cmd == "ls" then
  local list = U.check(js:streams())
  table.sort(list, function(a, b) return a.config.name < b.config.name end)
  if opt.json then
    U.json(list)
  elseif #list == 0 then
    print("no streams")
  else
    local rows = {}
    for _, s in ipairs(list) do
      rows[#rows + 1] = { s.config.name, table.concat(s.config.subjects or {}, ","), s.config.storage,
        s.config.retention or "limits", s.state.messages, U.bytes(s.state.bytes), s.state.last_seq }
    end
    U.table({ "NAME", "SUBJECTS", "STORAGE", "RETENTION", "MESSAGES", "BYTES", "LAST SEQ" }, rows)
  end
elseif cmd == "info" then
  need_name()
  local s = U.check(js:stream_info(name))
  if opt.json then U.json(s) else
    local c, st = s.config, s.state
    U.pairs_table{
      { "name", c.name }, { "subjects", table.concat(c.subjects or {}, ", ") },
      { "description", c.description or "-" }, { "storage", c.storage }, { "retention", c.retention },
      { "replicas", c.replicas or 1 }, { "max age", U.seconds(c.max_age) },
      { "max messages", (c.max_msgs or -1) < 0 and "unlimited" or c.max_msgs },
      { "max bytes", (c.max_bytes or -1) < 0 and "unlimited" or U.bytes(c.max_bytes) },
      { "max per subject", (c.max_msgs_per_subject or -1) < 0 and "unlimited" or c.max_msgs_per_subject },
      { "discard", c.discard }, { "duplicate window", U.seconds(c.duplicate_window) },
      { "messages", st.messages }, { "bytes", U.bytes(st.bytes) },
      { "first seq", st.first_seq }, { "last seq", st.last_seq }, { "consumers", st.consumer_count },
    }
  end
elseif cmd == "view" then
  need_name()
  local info = U.check(js:stream_info(name))
  local seq = opt.from or info.state.first_seq
  local want = opt.count or 10
  local out = {}
  while #out < want and seq <= info.state.last_seq do
    local m, code, detail
    if opt.subject then
      local r
      r, code, detail = js:_api("STREAM.MSG.GET." .. name, { seq = seq, next_by_subj = opt.subject })
      m = r and js._stored_msg(r)
    else
      m, code, detail = js:get_msg(name, seq)
    end
    if m then
      out[#out + 1] = m
      seq = m.seq + 1
    elseif code == "no_message_found" then
      if opt.subject then break end
      seq = seq + 1           -- a deleted message
    else
      U.check(nil, code, detail)
    end
  end
  if opt.json then U.json(out) else
    if #out == 0 then print("no messages") end
    for _, m in ipairs(out) do
      print(("[%d] %s  %s"):format(m.seq, m.time or "", m.subject))
      for k, v in pairs(m.headers or {}) do
        print(("  %s: %s"):format(k, type(v) == "table" and table.concat(v, ", ") or v))
      end
      print("  " .. U.printable(m.data))
    end
  end
elseif cmd == "purge" then
  need_name()
  local n = U.check(js:purge(name, { subject = opt.subject, keep = opt.keep, seq = opt.seq }))
  if opt.json then U.json({ purged = n }) else print(("purged %d message(s) from %s"):format(n, name)) end
elseif cmd == "rm" then
  need_name()
  U.check(js:delete_stream(name))
  if opt.json then U.json({ deleted = name }) else print("deleted stream " .. name) end
else
  U.fail("stream: unknown command '" .. cmd .. "' (ls, info, view, purge, rm)", usage)
end
nc:close()
