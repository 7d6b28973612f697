-- GET /telemetry/{id}?start_time=-30d&limit=BENCH_LIMIT (default 100): the
-- newest BENCH_LIMIT records of the next device, with its own key.
dofile(os.getenv("BENCH_DIR") .. "/keys.lua")
local limit = os.getenv("BENCH_LIMIT") or "100"
for _, d in ipairs(devices) do
  d.path = "/api/v1/telemetry/" .. d.id .. "?start_time=-30d&limit=" .. limit
end
local headers = {}
request = function()
  local d = next_device()
  headers["X-API-Key"] = d.key
  return wrk.format("GET", d.path, headers)
end
