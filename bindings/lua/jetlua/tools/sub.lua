-- jetlua sub SUBJECT: print messages as they arrive (core NATS; wildcards work).
local U = require "jetlua.tools.util"

local usage = [[
Usage:
  jetlua sub SUBJECT [--count N] [--queue GROUP] [--headers]
Prints each message as it arrives; stops after --count messages, or on Ctrl-C.
Options: --json (one JSON object per message), and the `jetlua run` connection options.
]]

local pos, opt = U.args({ ... }, { name = "sub", usage = usage,
  flags = { count = "number", queue = "string", headers = "bool" } })
local subject = pos[1]
if not subject then U.fail("sub: which subject?", usage) end
if #pos > 1 then U.fail("sub: unexpected argument '" .. pos[2] .. "'") end
if opt.count and opt.count < 1 then U.fail("sub: --count must be >= 1") end
local nc = U.connect()
local n = 0
local sub
sub = nc:subscribe(subject, function(m)
  n = n + 1
  if opt.json then
    U.json({ subject = m.subject, data = m.data, headers = m.headers, reply = m.reply })
  else
    print(("[#%d] %s%s: %s"):format(n, m.subject, m.reply and (" (reply " .. m.reply .. ")") or "",
      U.printable(m.data, 1000)))
    if opt.headers then
      for k, v in pairs(m.headers) do
        print(("  %s: %s"):format(k, type(v) == "table" and table.concat(v, ", ") or v))
      end
    end
  end
  if opt.count and n >= opt.count then sub:unsubscribe(); nc:close() end
end, { queue = opt.queue })
nc:flush()
if not opt.json then
  io.stderr:write(("listening on %s%s\n"):format(subject,
    opt.count and (" for " .. opt.count .. " message(s)") or " (Ctrl-C to stop)"))
end
