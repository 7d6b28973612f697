-- GET /telemetry/{id}/latest with the device's own key (next device each time).
dofile(os.getenv("BENCH_DIR") .. "/keys.lua")
for _, d in ipairs(devices) do d.path = "/api/v1/telemetry/" .. d.id .. "/latest" end
local headers = {}
request = function()
  local d = next_device()
  headers["X-API-Key"] = d.key
  return wrk.format("GET", d.path, headers)
end
