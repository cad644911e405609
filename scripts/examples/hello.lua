-- hello.lua: the demo. Run it with `jetlua run scripts/examples/hello.lua`.
-- With no --server and no NATS_URL, jetlua starts a private nats-server for it.
local jet = require "jetlua"

local nc = assert(jet.connect())            -- the server jetlua was started with
print("connected to " .. nc:connected_url())

-- a subscriber on a wildcard subject
local received = 0
local sub = nc:subscribe("greetings.*", function(msg)
  received = received + 1
  print(("  received on %-18s %s"):format(msg.subject, msg.data))
end)

-- a request/reply service
nc:subscribe("time.now", function(msg)
  msg:respond(os.date("!%Y-%m-%dT%H:%M:%SZ"))
end)

for i, who in ipairs{"world", "jetlua", "nats"} do
  nc:publish("greetings." .. who, ("hello %s (#%d)"):format(who, i))
end
nc:flush()

local reply, err = nc:request("time.now", "", { timeout = 2 })
print("asked time.now, got: " .. (reply and reply.data or err))

jet.sleep(0.2)
print(("%d messages received; bye"):format(received))
sub:unsubscribe()
nc:drain()      -- nothing left: the process would exit by itself
if not (received == 3 and reply) then jet.exit(1) end   -- an example that did not work says so
