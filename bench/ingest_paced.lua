-- The single-message ingest of ingest_single.lua at a fixed aggregate rate
-- BENCH_RATE (requests/s over all threads). Each thread keeps a schedule
-- of send times, BENCH_THREADS x 1000 / BENCH_RATE ms apart (threads
-- interleaved); whenever one of its connections is ready for its next
-- request, delay() books the next free time on that schedule and returns
-- how long to wait for it (whole milliseconds: wrk's timer unit; the
-- schedule keeps the average exact). A connection late by more than
-- 100 ms drops the missed times instead of bursting to catch up. wrk's
-- latency starts when the request is written, so it excludes the delay.
dofile(os.getenv("BENCH_DIR") .. "/ingest_single.lua")
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local CLOCK_MONOTONIC = 1
local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local rate = tonumber(os.getenv("BENCH_RATE") or "")
assert(rate and rate > 0, "BENCH_RATE must be a positive number of requests/s")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local interval = nthreads * 1000 / rate
local next_at = nil

function delay()
  local now = now_ms()
  if not next_at then next_at = now + interval * tid / nthreads end
  if next_at < now - 100 then next_at = now - 100 end
  local wait = next_at - now
  next_at = next_at + interval
  if wait <= 0 then return 0 end
  return math.floor(wait + 0.5)
end
