-- JetStream key-value buckets: create, put/get/update/create/delete/purge, keys, history, status.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url })
local js = nc:jetstream()

T.test("put, get, revisions and an update with a stale revision", function()
  local kv = assert(js:create_kv{ bucket = "cfg", history = 5 })
  local r1 = assert(kv:put("color", "blue"))
  local e = assert(kv:get("color"))
  T.eq(e.value, "blue"); T.eq(e.revision, r1); T.eq(e.key, "color"); T.eq(e.operation, "PUT")
  local r2 = assert(kv:update("color", "red", r1))
  T.ok(r2 > r1)
  local ok, code = kv:update("color", "green", r1)
  T.eq(ok, nil); T.eq(code, "wrong_revision")
  T.eq(kv:get("color").value, "red")
  T.eq(kv:get("color", r1).value, "blue", "an older revision")
end)

T.test("create only when absent; a deleted key can be created again", function()
  local kv = assert(js:kv("cfg"))
  T.ok(kv:create("size", "L"))
  local _, code = kv:create("size", "XL")
  T.eq(code, "key_exists")
  T.ok(kv:delete("size"))
  local gone, gcode = kv:get("size")
  T.eq(gone, nil); T.eq(gcode, "key_not_found")
  T.ok(kv:create("size", "M"), "create after delete")
  T.eq(kv:get("size").value, "M")
end)

T.test("delete with a revision: only while that revision is still the latest", function()
  local kv = assert(js:kv("cfg"))
  local r1 = assert(kv:put("lock", "mine"))
  local r2 = assert(kv:put("lock", "theirs"))
  local ok, code = kv:delete("lock", r1)
  T.eq(ok, nil); T.eq(code, "wrong_revision")
  T.eq(kv:get("lock").value, "theirs", "kept")
  T.ok(kv:delete("lock", r2))
  T.eq(select(2, kv:get("lock")), "key_not_found")
  T.raises(function() kv:delete("lock", "1") end, "kv:delete: bad argument 'revision': number expected, got string")
end)

T.test("keys, history, purge and status", function()
  local kv = assert(js:create_kv{ bucket = "hist", history = 10 })
  for i = 1, 3 do kv:put("a", "v" .. i) end
  kv:put("b", "x"); kv:put("c", "y"); kv:delete("c")
  T.eq(kv:keys(), { "a", "b" })
  local h = assert(kv:history("a"))
  T.eq(#h, 3); T.eq(h[1].value, "v1"); T.eq(h[3].value, "v3")
  T.ok(h[1].revision < h[2].revision)
  T.ok(kv:purge("a"))
  T.eq(kv:keys(), { "b" })
  local _, code = kv:get("a")
  T.eq(code, "key_not_found")
  local st = assert(kv:status())
  T.eq(st.bucket, "hist"); T.eq(st.history, 10); T.eq(st.storage, "file")
end)

T.test("ttl and a missing bucket", function()
  local kv = assert(js:create_kv{ bucket = "short", ttl = 1, storage = "memory" })
  kv:put("k", "v")
  T.eq(kv:status().ttl, 1)
  T.wait_until(function() return kv:get("k") == nil end, 5, "the value expired")
  local none, code = js:kv("missing")
  T.eq(none, nil); T.eq(code, "bucket_not_found")
  T.ok(js:delete_kv("short"))
  T.eq(select(2, js:kv("short")), "bucket_not_found")
end)

T.test("watch: initial values, then every change, in order; stop", function()
  local kv = assert(js:create_kv{ bucket = "watched", history = 5 })
  assert(kv:put("a", "1")); assert(kv:put("b", "1")); assert(kv:put("a", "2"))
  local seen, caught = {}, false
  local w = assert(kv:watch(function(e)
    if e == nil then caught = true; return end
    seen[#seen + 1] = ("%s=%s/%s@%d"):format(e.key, e.value, e.operation, e.revision)
  end))
  T.wait_until(function() return caught end, 5, "caught up")
  T.eq(seen, { "b=1/PUT@2", "a=2/PUT@3" }, "the latest value per key, in revision order")
  assert(kv:put("c", "9")); assert(kv:delete("b")); assert(kv:put("a", "3"))
  T.wait_until(function() return #seen == 5 end, 5)
  T.eq(seen[3], "c=9/PUT@4"); T.eq(seen[4], "b=/DEL@5"); T.eq(seen[5], "a=3/PUT@6")
  w:stop()
  assert(kv:put("a", "4"))
  jet.sleep(0.3)
  T.eq(#seen, 5, "nothing after stop")
  -- a pattern, history, and the iterator form
  local it = assert(kv:watch("a", nil, { include_history = true }))
  local vals = {}
  for e in it do
    vals[#vals + 1] = e.value
    if #vals == 4 then break end
  end
  T.eq(vals, { "1", "2", "3", "4" })
  T.ok(it:caught_up())
  it:stop()
  -- updates only, ignoring deletes, on an empty watch
  local ups = {}
  local u = assert(kv:watch(">", function(e) if e then ups[#ups + 1] = e.key end end,
                            { updates_only = true, ignore_deletes = true }))
  T.ok(u:caught_up(), "nothing to catch up with")
  assert(kv:delete("c")); assert(kv:put("d", "x"))
  T.wait_until(function() return #ups == 1 end, 5)
  jet.sleep(0.2)
  T.eq(ups, { "d" })
  u:stop()
  T.raises(function() kv:watch(42) end, "kv:watch: bad argument 'keys'")
  T.raises(function() kv:watch(">", print, { history = true }) end, "kv:watch: unknown option 'history'")
end)

T.test("bad input", function()
  local kv = assert(js:kv("cfg"))
  T.raises(function() js:create_kv{ bucket = "a.b" } end, "js:create_kv: bad argument 'bucket'")
  T.raises(function() js:create_kv{ bucket = "ok", histroy = 2 } end, "unknown option 'histroy'")
  T.raises(function() js:create_kv{ bucket = "ok", history = 100 } end, "bad argument 'history'")
  T.raises(function() kv:put("bad key", "x") end, "kv:put: bad argument 'key': invalid key 'bad key'")
  T.raises(function() kv:put(".lead", "x") end, "invalid key")
  T.raises(function() kv:put("k", 42) end, "kv:put: bad argument 'value'")
  T.raises(function() kv:update("k", "v") end, "kv:update: bad argument 'revision'")
  T.raises(function() js:kv(7) end, "js:kv: bad argument 'bucket'")
end)

T.run()
