/* retention.h — telemetry retention: raw messages older than raw_ms and
 * rollups older than rollup_ms are removed.
 *
 * At start the telemetry store is told both periods (iot_tm_set_retention:
 * a store that expires data itself, IOT_TM_CAP_TTL, needs nothing more; on
 * the others it does nothing). A store without IOT_TM_CAP_TTL is purged by
 * a thread of this module, `tm-retention`, once at start and then every
 * period (an hour), off the ingest writer, which a purge would stall.
 * Start before the ingest pipeline (the store wants its retention before
 * any write); stop it with the pipeline. One caller thread starts, stops
 * and frees. */
#ifndef IOT_CORE_RETENTION_H
#define IOT_CORE_RETENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "store/telemetry.h"

#define IOT_RETENTION_PERIOD_MS INT64_C(3600000)

struct iot_retention_config {
    int64_t raw_ms;    /* 0 = keep forever */
    int64_t rollup_ms; /* 0 = keep forever */
    int64_t period_ms; /* between purges; 0 = IOT_RETENTION_PERIOD_MS */
};

struct iot_retention;

/* Tells the store, then starts the purge thread when the store needs one
 * and anything is to be purged. The store's error when it refused the
 * periods (nothing started), IOT_EINVAL for negative periods, IOT_ENOMEM. */
int iot_retention_start(const struct iot_retention_config *cfg, struct iot_telemetry *tm,
                        struct iot_retention **out);
/* Whether this module purges the store (else the store expires data itself,
 * or everything is kept forever). */
bool iot_retention_purges(const struct iot_retention *r);
/* Ends the thread: at once when it waits, after the purge it is running
 * otherwise. Idempotent; NULL is a no-op. */
void iot_retention_stop(struct iot_retention *r);
/* Stops and frees. NULL is a no-op. */
void iot_retention_free(struct iot_retention *r);

#endif
