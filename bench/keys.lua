-- Shared by the device scenarios: each connection speaks for one device,
-- taken round-robin from BENCH_KEYS (comma-separated API keys).
local keys = {}
for k in string.gmatch(os.getenv("BENCH_KEYS") or "", "[^,]+") do keys[#keys + 1] = k end
local counter = 0

function setup(thread)
  thread:set("first", counter)
  counter = counter + 1
end

function device_key(n)
  return keys[(n % #keys) + 1]
end
return keys
