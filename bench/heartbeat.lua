-- POST /devices/heartbeat, rotating over the devices' keys.
dofile(os.getenv("BENCH_DIR") .. "/keys.lua")
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", nil, {["X-API-Key"] = device_key(i + first * 7919)}, "")
end
