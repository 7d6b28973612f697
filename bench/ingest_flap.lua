-- POST /telemetry like ingest_single.lua, but the pressure alternates
-- between 1013 and 1014 for each device (per wrk thread), so that a rule
-- "pressure != 1013" fires and resolves itself again and again. The two
-- bodies have the same length as ingest_single.lua's.
dofile(os.getenv("BENCH_DIR") .. "/keys.lua")
local bodies = {
  [false] = '{"data": {"temperature": 21.5, "humidity": 40, "pressure": 1013}}',
  [true] = '{"data": {"temperature": 21.5, "humidity": 40, "pressure": 1014}}',
}
local headers = {["Content-Type"] = "application/json"}
request = function()
  local d = next_device()
  d.flip = not d.flip
  headers["X-API-Key"] = d.key
  return wrk.format("POST", nil, headers, bodies[d.flip])
end
