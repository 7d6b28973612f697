/* store_metrics.h — latency and errors of store operations, by store
 * (registry, telemetry, cache, documents) and backend (ops->name).
 *
 * Timed in one place: the iot_reg_*, iot_tm_*, iot_cache_* and iot_docs_*
 * inline wrappers run each op through IOT_STORE_TIMED, so no backend
 * measures itself. A (store, ops table) pair gets a slot the first time it
 * is seen (lock-free, at most IOT_STORE_SLOTS; a pair beyond them is not
 * counted), so labels are bounded by the compiled-in backends. An op that
 * streams rows to a callback is timed with the callback. Errors are the
 * store's own failures (timeout, unavailable, out of memory, internal,
 * limit); "not found", "conflict" and "invalid" are answers about the data,
 * not errors. Any thread. */
#ifndef IOT_STORE_STORE_METRICS_H
#define IOT_STORE_STORE_METRICS_H

#include <stdint.h>

#include "util/buf.h"
#include "util/clock.h"

enum iot_store_kind { IOT_STORE_REGISTRY, IOT_STORE_TELEMETRY, IOT_STORE_CACHE, IOT_STORE_DOCS };

#define IOT_STORE_SLOTS 32

/* Records one op of the store `kind` through the ops table `ops` (named
 * `backend`) that began at t0 and returned rc. */
void iot_store_op_done(enum iot_store_kind kind, const void *ops, const char *backend, int64_t t0,
                       int rc);

/* The body of a wrapper: runs `call` (an int expression), records it and
 * returns its result. */
#define IOT_STORE_TIMED(kind, ops, call)                                                            \
    do {                                                                                            \
        int64_t t0_ = iot_mono_real_us();                                                           \
        int rc_ = (call);                                                                           \
        iot_store_op_done((kind), (ops), (ops)->name, t0_, rc_);                                    \
        return rc_;                                                                                 \
    } while (0)

/* Appends iotflow_store_operation_duration_seconds and
 * iotflow_store_errors_total in the text exposition format. */
void iot_store_metrics_render(struct iot_buf *b);

#endif
