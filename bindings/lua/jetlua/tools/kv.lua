-- jetlua kv ls|get|put|del|history|watch: key-value buckets.
local U = require "jetlua.tools.util"

local usage = [[
Usage:
  jetlua kv ls                    buckets
  jetlua kv ls BUCKET             keys of a bucket
  jetlua kv get BUCKET KEY        a value (--revision N for an older one)
  jetlua kv put BUCKET KEY VALUE  store a value (creates the bucket if it does not exist)
  jetlua kv del BUCKET KEY        delete a key (a delete marker: its history is kept)
  jetlua kv history BUCKET KEY    every kept revision of a key, deletes included
  jetlua kv watch BUCKET [KEY]    the latest value of each key (KEY: a key or a pattern
                                  with * and >), then every change, until Ctrl-C or
                                  --count N entries; --updates-only: changes only
Options: --json (machine-readable output; watch: one JSON object per line), and the
connection options below.
]]

local pos, opt = U.args({ ... }, { name = "kv", usage = usage,
  flags = { revision = "number", count = "number", ["updates-only"] = "bool" },
  commands = { "ls", "get --revision", "put", "del", "history", "watch --count --updates-only" } })
local cmd, bucket, key, value = pos[1], pos[2], pos[3], pos[4]
local need = { ls = 0, get = 2, put = 3, del = 2, history = 2, watch = 1 }
local most = { ls = 1, get = 2, put = 3, del = 2, history = 2, watch = 2 }
if #pos - 1 < need[cmd] then
  U.fail(("kv %s: needs %s"):format(cmd, ({ "BUCKET", "BUCKET KEY", "BUCKET KEY VALUE" })[need[cmd]]), usage)
end
if #pos - 1 > most[cmd] then U.fail("kv " .. cmd .. ": unexpected argument '" .. pos[#pos] .. "'") end
if bucket and not bucket:match("^[%w%-_]+$") then
  U.fail("kv " .. cmd .. ": invalid bucket name '" .. bucket .. "' (letters, digits, - and _)")
end
if opt.count and opt.count < 1 then U.fail("kv watch: --count must be >= 1") end
local nc, js = U.connect()

local function time(t)
  if type(t) == "number" then return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end
  return tostring(t or "-")
end

if cmd == "ls" and not bucket then
  local rows, list = {}, {}
  for _, s in ipairs(U.check(js:streams())) do
    local b = s.config.name:match("^KV_(.+)$")
    if b then
      list[#list + 1] = { bucket = b, values = s.state.messages, bytes = s.state.bytes,
        history = s.config.max_msgs_per_subject, ttl = s.config.max_age or 0 }
      rows[#rows + 1] = { b, s.state.messages, U.bytes(s.state.bytes), s.config.max_msgs_per_subject,
        U.seconds(s.config.max_age) }
    end
  end
  table.sort(rows, function(a, b) return a[1] < b[1] end)
  if opt.json then U.json(list) elseif #rows == 0 then print("no buckets") else
    U.table({ "BUCKET", "VALUES", "BYTES", "HISTORY", "TTL" }, rows)
  end
elseif cmd == "ls" then
  local kv = U.check(js:kv(bucket))
  local keys = U.check(kv:keys())
  if opt.json then U.json(keys) elseif #keys == 0 then print("no keys in " .. bucket) else
    for _, k in ipairs(keys) do print(k) end
  end
elseif cmd == "get" then
  local kv = U.check(js:kv(bucket))
  local e = U.check(kv:get(key, opt.revision))
  if opt.json then U.json(e) else print(e.value) end
elseif cmd == "put" then
  local kv = js:kv(bucket)
  if not kv then
    kv = U.check(js:create_kv{ bucket = bucket })
    if not opt.json then io.stderr:write("created bucket " .. bucket .. "\n") end
  end
  local rev = U.check(kv:put(key, value))
  if opt.json then U.json({ bucket = bucket, key = key, revision = rev }) else
    print(("%s/%s = revision %d"):format(bucket, key, rev))
  end
elseif cmd == "del" then
  local kv = U.check(js:kv(bucket))
  U.check(kv:get(key))                  -- a missing (or already deleted) key is an error
  local rev = U.check(kv:delete(key))
  if opt.json then U.json({ bucket = bucket, key = key, revision = rev, operation = "DEL" }) else
    print(("deleted %s/%s (revision %d)"):format(bucket, key, rev))
  end
elseif cmd == "history" then
  local kv = U.check(js:kv(bucket))
  local list = U.check(kv:history(key))
  if opt.json then U.json(list) else
    local rows = {}
    for _, e in ipairs(list) do
      rows[#rows + 1] = { e.revision, e.operation, time(e.created),
        e.operation == "PUT" and U.printable(e.value) or "" }
    end
    U.table({ "REVISION", "OPERATION", "CREATED", "VALUE" }, rows)
  end
elseif cmd == "watch" then
  local kv = U.check(js:kv(bucket))
  local n, w = 0, nil
  local function show(e)
    if not e then return end            -- the initial values are all in
    n = n + 1
    if opt.json then U.json(e)
    elseif e.operation == "PUT" then print(("[%d] PUT %s = %s"):format(e.revision, e.key, U.printable(e.value, 1000)))
    else print(("[%d] %s %s"):format(e.revision, e.operation, e.key)) end
    if opt.count and n >= opt.count then
      if w then w:stop() end
      nc:close()
    end
  end
  w = U.check(kv:watch(key or ">", show, { updates_only = opt["updates-only"] or nil }))
  if opt.count and n >= opt.count then w:stop() end
  io.stderr:write(("watching %s%s%s\n"):format(bucket, key and (" " .. key) or "",
    opt.count and (" for " .. opt.count .. " entries") or " (Ctrl-C to stop)"))
  return
end
nc:close()
