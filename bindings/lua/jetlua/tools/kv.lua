-- jetlua kv ls|get|put: key-value buckets.
local U = require "jetlua.tools.util"

local usage = [[
Usage:
  jetlua kv ls                    buckets
  jetlua kv ls BUCKET             keys of a bucket
  jetlua kv get BUCKET KEY        a value (--revision N for an older one)
  jetlua kv put BUCKET KEY VALUE  store a value (creates the bucket if it does not exist)
Options: --json, and the `jetlua run` connection options (--server URL, ...).
]]

local pos, opt = U.args({ ... }, { usage = usage, flags = { revision = "number" } })
local cmd, bucket, key, value = pos[1], pos[2], pos[3], pos[4]
if not cmd then U.fail("kv: which command? (ls, get, put)", usage) end
local nc, js = U.connect()

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
  if not key then U.fail("kv get: which key? (jetlua kv get BUCKET KEY)", usage) end
  local kv = U.check(js:kv(bucket))
  local e = U.check(kv:get(key, opt.revision))
  if opt.json then U.json(e) else print(e.value) end
elseif cmd == "put" then
  if not key or not value then U.fail("kv put: needs BUCKET KEY VALUE", usage) end
  local kv = js:kv(bucket)
  if not kv then
    kv = U.check(js:create_kv{ bucket = bucket })
    if not opt.json then io.stderr:write("created bucket " .. bucket .. "\n") end
  end
  local rev = U.check(kv:put(key, value))
  if opt.json then U.json({ bucket = bucket, key = key, revision = rev }) else
    print(("%s/%s = revision %d"):format(bucket, key, rev))
  end
else
  U.fail("kv: unknown command '" .. cmd .. "' (ls, get, put)", usage)
end
nc:close()
