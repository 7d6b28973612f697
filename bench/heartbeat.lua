-- POST /devices/heartbeat (empty body) with the next device's key.
dofile(os.getenv("BENCH_DIR") .. "/keys.lua")
local headers = {}
request = function()
  headers["X-API-Key"] = next_device().key
  return wrk.format("POST", nil, headers, "")
end
