-- GET of the URL given to wrk (/devices/status) with the next device's key.
dofile(os.getenv("BENCH_DIR") .. "/keys.lua")
local headers = {}
request = function()
  headers["X-API-Key"] = next_device().key
  return wrk.format("GET", nil, headers)
end
