-- jetlua stream ls|info|add|edit|view|purge|rm: inspect and manage JetStream streams.
local U = require "jetlua.tools.util"
local C = require "jetlua.jsconfig"

local usage = [[
Usage:
  jetlua stream ls                          streams with subjects, storage, messages, size
  jetlua stream info NAME                   configuration and state of one stream
  jetlua stream add NAME [settings]         create a stream (settings below; the rest: the
                                            server's defaults)
  jetlua stream edit NAME [settings]        change the given settings, keep all others
  jetlua stream view NAME [--from SEQ] [--count N] [--subject S]
                                            stored messages (default: the first 10)
  jetlua stream purge NAME [--subject S] [--keep N] [--seq N]
                                            remove messages (all, or only some)
  jetlua stream rm NAME [-f]                delete a stream and its messages (asks first;
                                            -f/--force: do not ask, needed without a terminal)
Settings (add, edit):
  --subjects A,B            subjects (repeatable; default: the stream's name)
  --storage file|memory     --retention limits|workqueue|interest     --discard old|new
  --max-age DURATION        --dupe-window DURATION     (30s, 5m, 1h, 1d, or seconds)
  --max-bytes SIZE          --max-msg-size SIZE        (bytes, or 64K, 10M, 1G; -1: unlimited)
  --max-msgs N              --max-msgs-per-subject N   (-1: unlimited)
  --replicas N              --description TEXT
  --allow-rollup            --deny-delete              --deny-purge
Storage and retention cannot change after creation (the server says so: exit 1).
Options: --json (machine-readable output), and the connection options below.
]]

local SETTINGS = {
  subjects = "list", storage = { "file", "memory" }, retention = { "limits", "workqueue", "interest" },
  discard = { "old", "new" }, ["max-age"] = "duration", ["dupe-window"] = "duration",
  ["max-bytes"] = "size", ["max-msg-size"] = "size", ["max-msgs"] = "number",
  ["max-msgs-per-subject"] = "number", replicas = "number", description = "string",
  ["allow-rollup"] = "bool", ["deny-delete"] = "bool", ["deny-purge"] = "bool",
}
local flags = { from = "number", count = "number", subject = "string", keep = "number", seq = "number",
  force = "bool" }
local setting_flags = {}
for k, v in pairs(SETTINGS) do flags[k] = v; setting_flags[#setting_flags + 1] = "--" .. k end
table.sort(setting_flags)
local settings = table.concat(setting_flags, " ")

local pos, opt = U.args({ ... }, { name = "stream", usage = usage, flags = flags, short = { f = "force" },
  commands = { "ls", "info", "add " .. settings, "edit " .. settings, "view --from --count --subject",
    "purge --subject --keep --seq", "rm --force" } })
local cmd, name = pos[1], pos[2]
if cmd ~= "ls" and not name then
  U.fail("stream " .. cmd .. ": which stream? (jetlua stream " .. cmd .. " NAME)", usage)
end
if name and not name:match("^[%w%-_]+$") then
  U.fail("stream " .. cmd .. ": invalid stream name '" .. name .. "' (letters, digits, - and _)")
end
if #pos > (cmd == "ls" and 1 or 2) then U.fail("stream " .. cmd .. ": unexpected argument '" .. pos[#pos] .. "'") end

-- the settings given on the command line, as js:stream names them
local function given_settings()
  local cfg = {}
  for k in pairs(SETTINGS) do
    if opt[k] ~= nil then
      local key = k == "dupe-window" and "duplicate_window" or k:gsub("%-", "_")
      cfg[key] = opt[k]
    end
  end
  return cfg
end

local function show(s)
  if opt.json then return U.json(s) end
  local c, st = s.config, s.state
  U.pairs_table{
    { "name", c.name }, { "subjects", table.concat(c.subjects or {}, ", ") },
    { "description", c.description or "-" }, { "storage", c.storage }, { "retention", c.retention },
    { "replicas", c.replicas or 1 }, { "max age", U.seconds(c.max_age) },
    { "max messages", (c.max_msgs or -1) < 0 and "unlimited" or c.max_msgs },
    { "max bytes", (c.max_bytes or -1) < 0 and "unlimited" or U.bytes(c.max_bytes) },
    { "max message size", (c.max_msg_size or -1) < 0 and "unlimited" or U.bytes(c.max_msg_size) },
    { "max per subject", (c.max_msgs_per_subject or -1) < 0 and "unlimited" or c.max_msgs_per_subject },
    { "discard", c.discard }, { "duplicate window", U.seconds(c.duplicate_window) },
    { "messages", st.messages }, { "bytes", U.bytes(st.bytes) },
    { "first seq", st.first_seq }, { "last seq", st.last_seq }, { "consumers", st.consumer_count },
  }
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
  show(U.check(js:stream_info(name)))
elseif cmd == "add" then
  -- js:stream would update an existing stream to this declaration: add only creates
  local _, code, detail = js:stream_info(name)
  if code == nil then
    U.fail(("stream %s already exists (change it with: jetlua stream edit %s ...)"):format(name, name), nil, 1)
  elseif code ~= "stream_not_found" then
    U.check(nil, code, detail)
  end
  local cfg = given_settings()
  cfg.name = name
  local info = U.check(js:stream(cfg))
  if not opt.json then print("created stream " .. name) end
  show(info)
elseif cmd == "edit" then
  local cfg = given_settings()
  if next(cfg) == nil then U.fail("stream edit: which settings? (see jetlua stream --help)") end
  -- Start from the server's config as it is (settings jetlua does not know included) and change
  -- only what was given: js:stream takes a declaration as the whole desired state.
  local cur = U.check(js:_api("STREAM.INFO." .. name))
  local wire = cur.config
  for k, v in pairs(C.to_wire("jetlua stream edit", cfg, C.STREAM)) do wire[k] = v end
  local r, code, detail = js:_api("STREAM.UPDATE." .. name, wire)
  if not r and code == "api_error" and tostring(detail):find("can not") then code = "immutable" end
  U.check(r, code, detail)
  if not opt.json then print("updated stream " .. name) end
  show(U.check(js:stream_info(name)))
elseif cmd == "view" then
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
  local n = U.check(js:purge(name, { subject = opt.subject, keep = opt.keep, seq = opt.seq }))
  if opt.json then U.json({ purged = n }) else print(("purged %d message(s) from %s"):format(n, name)) end
elseif cmd == "rm" then
  local info = U.check(js:stream_info(name))
  U.confirm(("Really delete stream %s and its %d message(s)?"):format(name, info.state.messages), opt.force,
    "stream " .. name .. " not deleted")
  U.check(js:delete_stream(name))
  if opt.json then U.json({ deleted = name }) else print("deleted stream " .. name) end
end
nc:close()
