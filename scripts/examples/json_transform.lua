-- json_transform.lua: reshape JSON events between two streams.
--   jetlua run scripts/examples/json_transform.lua
-- Sensor readings in Fahrenheit with vendor field names become the
-- canonical {sensor, celsius, at}; readings without a value are dropped.
local jet = require "jetlua"

local nc = assert(jet.connect())
local js = nc:jetstream()
js:delete_stream("RAW_READINGS"); js:delete_stream("READINGS")
assert(js:stream{ name = "RAW_READINGS", subjects = { "raw.readings" } })
assert(js:stream{ name = "READINGS", subjects = { "readings.>" } })
local raw = { { devId = "t1", tempF = 212, ts = 1 }, { devId = "t2", tempF = 32, ts = 2 }, { devId = "t3", ts = 3 } }
for _, r in ipairs(raw) do assert(js:publish("raw.readings", jet.json.encode(r))) end

local p = assert(jet.pipeline{
  js = js, name = "to_celsius", from = { stream = "RAW_READINGS" }, codec = "json",
  steps = {
    { filter = function(r) return r.tempF ~= nil end },
    { map = function(r) return { sensor = r.devId, celsius = (r.tempF - 32) * 5 / 9, at = r.ts } end },
  },
  to = function(r) return "readings." .. r.sensor end,
})
local deadline = jet.monotonic() + 60
while js:stream_info("READINGS").state.messages < 2 and jet.monotonic() < deadline do jet.sleep(0.05) end
p:drain()
local out = js:stream_info("READINGS").state.messages
for seq = 1, out do
  local m = js:get_msg("READINGS", seq)
  local r = jet.json.decode(m.data)
  print(("%s: %s at %d = %.1f C"):format(m.subject, r.sensor, r.at, r.celsius))
end
print(("dropped %d reading(s) without a value"):format(p:stats().filtered))
nc:close()
if out ~= 2 or p:stats().filtered ~= 1 then jet.exit(1) end   -- an example that did not work says so
