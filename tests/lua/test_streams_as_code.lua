-- Streams and consumers as code: the declaration is the desired state (a setting removed from
-- it goes back to the server's default on the next run), and mirror, sources, placement,
-- republish, consumer replicas and mem_storage work against nats-server 2.9; subject_transform
-- and consumer metadata (2.10+) are refused with "not_supported" and leave nothing behind.
local jet = require "jetlua"
local T = require "jetlua.testing"

local srv = T.server{ js = true }
local nc = assert(jet.connect{ servers = srv.url })
local js = nc:jetstream()

local function fresh(name, cfg)
  js:delete_stream(name)
  cfg = cfg or {}
  cfg.name = name
  return assert(js:stream(cfg))
end

local function messages(stream) return js:stream_info(stream).state.messages end

T.test("each stream setting removed from the declaration goes back to the server's default", function()
  -- { setting, a non-default value, what stream_info says once it is gone }
  local cases = {
    { "max_age", 3600, 0 }, { "max_bytes", 1e6, -1 }, { "max_msgs", 10, -1 },
    { "max_msgs_per_subject", 3, -1 }, { "max_msg_size", 1024, -1 }, { "discard", "new", "old" },
    { "duplicate_window", 30, 120 }, { "allow_rollup", true, false }, { "description", "d", nil },
  }
  local base = { name = "DFLT", subjects = { "dflt.>" } }
  js:delete_stream("DFLT")
  assert(js:stream(base))
  for _, c in ipairs(cases) do
    local decl = { name = "DFLT", subjects = { "dflt.>" }, [c[1]] = c[2] }
    local info, changed = js:stream(decl)
    T.ok(info, c[1] .. ": " .. tostring(changed))
    T.eq(changed, "updated", c[1] .. " set")
    T.eq(info.config[c[1]], c[2], c[1] .. " set")
    T.eq(select(2, js:stream(decl)), nil, c[1] .. ": the same declaration again changes nothing")
    info, changed = js:stream(base)
    T.eq(changed, "updated", c[1] .. " removed")
    T.eq(info.config[c[1]], c[3], c[1] .. " back to the default")
    T.eq(select(2, js:stream(base)), nil, c[1] .. ": at the default now")
  end
  -- subjects: removed means the stream's name, as on create
  local info = assert(js:stream{ name = "DFLT" })
  T.eq(info.config.subjects, { "DFLT" })
  -- what nats-server 2.9 cannot take back is an "immutable" error, not silently kept
  for _, c in ipairs{ { "deny_delete", true }, { "deny_purge", true },
                      { "republish", { src = "dflt.>", dest = "dflt_out.>" } } } do
    js:delete_stream("DFLT")
    assert(js:stream{ name = "DFLT", subjects = { "dflt.>" }, [c[1]] = c[2] })
    local none, code, detail = js:stream(base)
    T.eq(none, nil, c[1]); T.eq(code, "immutable", c[1] .. ": " .. tostring(detail))
  end
end)

T.test("each consumer setting removed from the declaration goes back to the server's default", function()
  fresh("CDFLT", { subjects = { "cdflt.>" } })
  local cases = {
    { "ack_wait", 5, 30 }, { "max_deliver", 4, -1 }, { "max_ack_pending", 10, 1000 },
    { "description", "d", nil }, { "sample_freq", "50%", nil }, { "inactive_threshold", 3600, nil },
    { "max_request_batch", 10, nil }, { "max_request_expires", 5, nil }, { "max_request_max_bytes", 1000, nil },
    { "backoff", { 1, 2 }, nil }, { "mem_storage", true, nil }, { "replicas", 1, 0 },
  }
  local base = { durable = "C" }
  assert(js:consumer("CDFLT", base))
  for _, c in ipairs(cases) do
    local decl = { durable = "C", [c[1]] = c[2] }
    if c[1] == "backoff" then decl.max_deliver = 5 end
    local info, changed = js:consumer("CDFLT", decl)
    T.ok(info, c[1] .. ": " .. tostring(changed))
    T.eq(changed, "updated", c[1] .. " set")
    T.eq(info.config[c[1]], c[2], c[1] .. " set")
    T.eq(select(2, js:consumer("CDFLT", decl)), nil, c[1] .. ": the same declaration again changes nothing")
    info, changed = js:consumer("CDFLT", base)
    T.eq(changed, "updated", c[1] .. " removed")
    T.eq(info.config[c[1]], c[3], c[1] .. " back to the default")
    T.eq(select(2, js:consumer("CDFLT", base)), nil, c[1] .. ": at the default now")
  end
end)

T.test("mirror: a copy of another stream, filtered and from a start sequence", function()
  fresh("ORIGIN", { subjects = { "origin.>" } })
  for i = 1, 20 do assert(js:publish(i % 2 == 0 and "origin.even" or "origin.odd", tostring(i))) end
  js:delete_stream("COPY")
  local decl = { name = "COPY", mirror = { name = "ORIGIN", filter_subject = "origin.even", opt_start_seq = 11 } }
  local info, changed = assert(js:stream(decl))
  T.eq(changed, "created")
  T.eq(info.config.mirror.name, "ORIGIN")
  T.eq(info.config.subjects, nil, "a mirror has no subjects of its own")
  T.wait_until(function() return messages("COPY") == 5 end, 30, "12, 14, ..., 20 mirrored")
  T.eq(js:get_msg("COPY", 12).data, "12")
  T.eq(select(2, js:stream(decl)), nil, "re-declared: no change")
  assert(js:publish("origin.even", "22"))
  T.wait_until(function() return messages("COPY") == 6 end, 30, "new messages follow")
  T.raises(function() js:stream{ name = "COPY", mirror = { filter_subject = "x" } } end,
    "js:stream: bad argument 'mirror.name': is required")
  T.raises(function() js:stream{ name = "COPY", mirror = { name = "A", filtr = "x" } } end,
    "js:stream: unknown option 'mirror.filtr'")
end)

T.test("sources: one stream fed by several; a source added later", function()
  fresh("EU", { subjects = { "eu.>" } }); fresh("US", { subjects = { "us.>" } })
  fresh("APAC", { subjects = { "apac.>" } })
  for i = 1, 5 do assert(js:publish("eu.sale", "eu" .. i)); assert(js:publish("us.sale", "us" .. i)) end
  for i = 1, 5 do assert(js:publish(i <= 2 and "apac.sale" or "apac.refund", "apac" .. i)) end
  js:delete_stream("ALL")
  local decl = { name = "ALL", subjects = { "all.>" }, sources = { { name = "EU" }, { name = "US" } } }
  local _, changed = assert(js:stream(decl))
  T.eq(changed, "created")
  T.wait_until(function() return messages("ALL") == 10 end, 30, "both sources copied")
  T.eq(select(2, js:stream(decl)), nil, "re-declared: no change")
  decl.sources[3] = { name = "APAC", filter_subject = "apac.sale" }
  local info
  info, changed = assert(js:stream(decl))
  T.eq(changed, "updated")
  T.eq(#info.config.sources, 3)
  T.wait_until(function() return messages("ALL") == 12 end, 30, "the new source's sales copied")
  assert(js:publish("all.direct", "x"))
  T.wait_until(function() return messages("ALL") == 13 end, 30, "its own subjects still work")
end)

T.test("republish: every stored message is re-sent on a core subject", function()
  fresh("RP", { subjects = { "rp.in.>" }, republish = { src = "rp.in.>", dest = "rp.out.>" } })
  T.eq(js:stream_info("RP").config.republish, { src = "rp.in.>", dest = "rp.out.>" })
  local got = {}
  local sub = nc:subscribe("rp.out.>", function(msg) got[#got + 1] = msg end)
  nc:flush()
  assert(js:publish("rp.in.a", "hello"))
  T.wait_until(function() return #got == 1 end, 10, "the republished copy")
  T.eq(got[1].subject, "rp.out.a")
  T.eq(got[1].data, "hello")
  T.eq(got[1]:header("Nats-Stream"), "RP")
  T.eq(got[1]:header("Nats-Sequence"), "1")
  -- headers only (nats-server 2.9 takes republish at creation only)
  local info = fresh("RPH", { subjects = { "rph.in.>" },
    republish = { src = "rph.in.>", dest = "rp.out.>", headers_only = true } })
  T.eq(info.config.republish.headers_only, true)
  assert(js:publish("rph.in.b", "world"))
  T.wait_until(function() return #got == 2 end, 10, "the second copy")
  T.eq(got[2].data, ""); T.eq(got[2]:header("Nats-Msg-Size"), "5")
  sub:unsubscribe()
  T.raises(function() js:stream{ name = "RP", republish = { src = "x" } } end,
    "js:stream: bad argument 'republish.dest': is required")
end)

T.test("subject_transform (nats-server 2.10+): refused as not_supported, nothing left behind", function()
  js:delete_stream("TR")
  local info, code, detail = js:stream{ name = "TR", subjects = { "tr.>" },
    subject_transform = { src = "tr.>", dest = "tr2.>" } }
  T.eq(info, nil); T.eq(code, "not_supported")
  T.ok(detail:find("subject_transform", 1, true) and detail:find("2.10", 1, true), detail)
  T.eq(select(2, js:stream_info("TR")), "stream_not_found", "the stream was not created")
  -- on an existing stream: the update is undone
  assert(js:stream{ name = "TR", subjects = { "tr.>" }, max_msgs = 10 })
  info, code = js:stream{ name = "TR", subjects = { "tr.>" }, max_msgs = 20,
    subject_transform = { src = "tr.>", dest = "tr2.>" } }
  T.eq(info, nil); T.eq(code, "not_supported")
  T.eq(js:stream_info("TR").config.max_msgs, 10, "undone")
end)

T.test("consumer metadata (nats-server 2.10+): refused as not_supported, nothing left behind", function()
  fresh("MD", { subjects = { "md.>" } })
  local c, code, detail = js:consumer("MD", { durable = "C", metadata = { team = "billing" } })
  T.eq(c, nil); T.eq(code, "not_supported")
  T.ok(detail:find("metadata", 1, true), detail)
  T.eq(select(2, js:consumer_info("MD", "C")), "consumer_not_found", "the consumer was not created")
  assert(js:consumer("MD", { durable = "C", ack_wait = 10 }))
  c, code = js:consumer("MD", { durable = "C", ack_wait = 20, metadata = { team = "billing" } })
  T.eq(c, nil); T.eq(code, "not_supported")
  T.eq(js:consumer_info("MD", "C").config.ack_wait, 10, "undone")
  T.raises(function() js:consumer("MD", { durable = "C", metadata = { team = 1 } }) end,
    "js:consumer: bad argument 'metadata': string keys and string values expected")
end)

T.test("3-node cluster: placement by cluster and by server tags; consumer replicas", function()
  local c = T.cluster(3, { tags = { [2] = { "ssd" } } })
  local cn = assert(jet.connect{ servers = c.urls })
  local cjs = cn:jetstream{ timeout = 10 }
  T.wait_until(function() return cjs:account_info() end, 30, "JetStream cluster ready")
  local info = T.wait_until(function()
    return cjs:stream{ name = "FAST", subjects = { "fast.>" }, placement = { tags = { "ssd" } } }
  end, 30, "a stream placed by tag")
  T.eq(info.config.placement, { tags = { "ssd" } })
  T.eq(info.cluster.leader, "n2", "on the only server tagged ssd")
  local _, changed = cjs:stream{ name = "FAST", subjects = { "fast.>" }, placement = { tags = { "ssd" } } }
  T.eq(changed, nil, "re-declared: no change")
  local last
  info = T.wait_until(function()        -- R3 needs every peer current: retry while the cluster settles
    local i, code, detail = cjs:stream{ name = "HERE", subjects = { "here.>" }, replicas = 3,
      placement = { cluster = "jetlua-test" } }
    last = tostring(code) .. " " .. tostring(detail)
    if not i then jet.sleep(0.2) end
    return i
  end, 30, "an R3 stream placed by cluster name")
  T.ok(info, last)
  T.eq(info.cluster.name, "jetlua-test")
  local none, code = cjs:stream{ name = "THERE", subjects = { "there.>" }, placement = { cluster = "elsewhere" } }
  T.eq(none, nil)
  T.ok(code ~= nil, "no server in cluster 'elsewhere'")
  local ci = assert(cjs:consumer("HERE", { durable = "C", replicas = 1, mem_storage = true }))
  T.eq(ci.config.replicas, 1); T.eq(ci.config.mem_storage, true)
  T.eq(select(2, cjs:consumer("HERE", { durable = "C", replicas = 1, mem_storage = true })), nil)
  cn:close()
end)

T.run()
