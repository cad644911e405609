-- service.lua: a request/reply service with a queue group, and a client calling it.
--   jetlua run scripts/examples/service.lua
-- Run several copies against one server (--server URL) and requests are spread across them.
local jet = require "jetlua"
local nc = assert(jet.connect())

-- the service: every member of the "math" queue group may answer, exactly one does
local served = 0
local svc = nc:subscribe("math.add", function(msg)
  local ok, req = pcall(jet.json.decode, msg.data)
  if not ok or type(req.a) ~= "number" or type(req.b) ~= "number" then
    msg:respond(jet.json.encode{ error = "send {\"a\": number, \"b\": number}" })
    return
  end
  served = served + 1
  msg:respond(jet.json.encode{ sum = req.a + req.b })
end, { queue = "math", concurrency = 16 })

-- a client: ten requests from ten coroutines at once
local answers = 0
for i = 1, 10 do
  jet.spawn(function()
    local reply, err = nc:request("math.add", jet.json.encode{ a = i, b = i * i }, { timeout = 2 })
    if reply then
      print(("%d + %d = %s"):format(i, i * i, jet.json.decode(reply.data).sum))
      answers = answers + 1
    else
      jet.log.error("request failed:", err)
    end
  end)
end

jet.timer(1, function()
  print(("%d answers, %d served by this process"):format(answers, served))
  svc:drain()
  nc:drain()
  if answers ~= 10 then jet.exit(1) end   -- an example that did not work says so
end)
