-- Plain GET of the URL given to wrk (e.g. /health), keep-alive.
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
wrk.method = "GET"
request = function()
  sent = sent + 1
  return wrk.format("GET")
end
