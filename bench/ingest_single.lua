-- POST /telemetry: one message of 3 measurements per request, the next
-- device's key; no timestamp (the server stamps the arrival time).
-- Also the ceiling's script: the bare responder gets the same requests.
dofile(os.getenv("BENCH_DIR") .. "/keys.lua")
local body = '{"data": {"temperature": 21.5, "humidity": 40, "pressure": 1013}}'
local headers = {["Content-Type"] = "application/json"}
request = function()
  headers["X-API-Key"] = next_device().key
  return wrk.format("POST", nil, headers, body)
end
