-- Shared by the device scenarios. BENCH_DEVICES lists the devices as
-- "id:key,id:key,..." (BENCH_KEYS, keys only, is still understood).
-- Every request takes the next device, so each connection speaks for all
-- devices in turn and every device gets an equal share; thread t starts
-- its rotation at a different device (offset t * 7919).
dofile(os.getenv("BENCH_DIR") .. "/report.lua")

devices = {}
for id, key in string.gmatch(os.getenv("BENCH_DEVICES") or "", "(%d+):([^,]+)") do
  devices[#devices + 1] = {id = id, key = key}
end
for key in string.gmatch(os.getenv("BENCH_KEYS") or "", "[^,]+") do
  devices[#devices + 1] = {id = "0", key = key}
end
assert(#devices > 0, "BENCH_DEVICES is empty")

-- The device for the next request; counts it in `sent`.
function next_device()
  sent = sent + 1
  return devices[(sent + tid * 7919) % #devices + 1]
end

-- Kept for older scripts.
function device_key(n)
  return devices[(n % #devices) + 1].key
end

return devices
