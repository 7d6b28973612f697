-- GET /events?limit=BENCH_LIMIT (default 100): the newest page of the
-- user's event log, with the user's Bearer token (BENCH_TOKEN).
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
local token = os.getenv("BENCH_TOKEN")
assert(token and token ~= "", "BENCH_TOKEN is empty")
local path = "/api/v1/events?limit=" .. (os.getenv("BENCH_LIMIT") or "100")
local headers = {["Authorization"] = "Bearer " .. token}
request = function()
  sent = sent + 1
  return wrk.format("GET", path, headers)
end
