-- POST /telemetry/batch: BENCH_BATCH messages (default 100) of 3
-- measurements each per request, the next device's key. Message j of a
-- request has timestamp T0 + j * stride + slot, where T0 = BENCH_T0_MS
-- (an hour ago), stride = 1 h / BENCH_BATCH, and slot counts the requests
-- of all threads (request k of thread t: k * threads + t, modulo stride):
-- every request spreads its messages over the past hour and no two
-- requests share a timestamp until stride requests have been sent.
dofile(os.getenv("BENCH_DIR") .. "/keys.lua")
local n = tonumber(os.getenv("BENCH_BATCH") or "100")
local t0 = tonumber(os.getenv("BENCH_T0_MS") or "0")
if t0 == 0 then t0 = (os.time() - 3600) * 1000 end
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local stride = math.floor(3600000 / n)

-- The constant head of message j, up to the timestamp's opening quote.
local heads = {}
for j = 0, n - 1 do
  heads[j] = string.format('{"data":{"temperature":%.1f,"humidity":%d,"pressure":%d},"timestamp":"',
                           18 + (j % 60) * 0.1, 30 + j % 40, 990 + j % 40)
end

-- "YYYY-MM-DDTHH:MM:SS" of a second, memoised (an hour has 3600).
local seconds = {}
local function iso_second(s)
  local v = seconds[s]
  if not v then
    v = os.date("!%Y-%m-%dT%H:%M:%S", s)
    seconds[s] = v
  end
  return v
end

local parts = {}
local headers = {["Content-Type"] = "application/json"}
request = function()
  local d = next_device()
  local slot = ((sent - 1) * nthreads + tid) % stride
  local k = 1
  parts[k] = "["
  for j = 0, n - 1 do
    local ms = t0 + j * stride + slot
    local s = math.floor(ms / 1000)
    parts[k + 1] = (j > 0 and "," or "") .. heads[j]
    parts[k + 2] = iso_second(s)
    parts[k + 3] = string.format('.%03dZ"}', ms - s * 1000)
    k = k + 3
  end
  parts[k + 1] = "]"
  headers["X-API-Key"] = d.key
  return wrk.format("POST", nil, headers, table.concat(parts, "", 1, k + 1))
end
