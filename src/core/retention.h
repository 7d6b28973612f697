/* retention.h — keeping telemetry only as long as configured.
 *
 * The store is told the two periods once (iot_tm_set_retention): a store
 * that expires data by itself (IOT_TM_CAP_TTL, Cassandra) needs nothing
 * more. For the others a thread of its own purges once at start and then
 * every hour — off the ingest writer, whose commits a purge would stall. */
#ifndef IOT_CORE_RETENTION_H
#define IOT_CORE_RETENTION_H

#include <stdint.h>

#include "store/telemetry.h"

struct iot_retention;

/* raw_ms / rollup_ms: how long raw messages / rollups are kept, 0 =
 * forever. NULL when the thread cannot start (out of memory). */
struct iot_retention *iot_retention_start(struct iot_telemetry *tm, int64_t raw_ms,
                                          int64_t rollup_ms);
/* Stops promptly (a purge in progress finishes first) and frees. NULL is a
 * no-op. */
void iot_retention_stop(struct iot_retention *r);
/* One purge now, as the thread runs it (tests). */
void iot_retention_run(struct iot_telemetry *tm, int64_t raw_ms, int64_t rollup_ms, int64_t now);

#endif
