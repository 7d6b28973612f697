-- GET /devices/config: the device's own configuration, with the next
-- device's key. No If-None-Match: every answer is a 200 with the body.
dofile(os.getenv("BENCH_DIR") .. "/keys.lua")
local headers = {}
request = function()
  headers["X-API-Key"] = next_device().key
  return wrk.format("GET", "/api/v1/devices/config", headers)
end
