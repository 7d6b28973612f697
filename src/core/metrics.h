/* metrics.h — iotflowd's Prometheus metrics: what the process counts and
 * how GET /metrics renders it (docs/OPERATIONS.md "Metrics" lists them).
 *
 * Process-wide, like the process they describe: the hot paths (a request's
 * end in http/server.c, the ingest writer's commit, the API-key and
 * latest-values caches, live streams, rate limits) record into fixed
 * arrays of relaxed atomics (util/metrics.h) — no lock, no allocation.
 * Every label set is bounded and known at start-up: a request's route is
 * the pattern of the route table entry it matched ("other" when none), its
 * method and status come from fixed lists ("other" beyond them). Store
 * operations are counted by store/store_metrics.h; what other modules
 * already count (the ingest pipeline's totals and queue) is read when
 * rendering. Recording before iot_metrics_init or after
 * iot_metrics_shutdown is a no-op for the HTTP series only. */
#ifndef IOT_CORE_METRICS_H
#define IOT_CORE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct iot_route;
struct iot_alerting;
struct iot_mqtt_stats;
struct iot_events;
struct iot_ingest;

/* Sizes the per-route series for this route table, which must outlive the
 * metrics; before the server starts. Returns IOT_OK or IOT_ENOMEM. */
int iot_metrics_init(const struct iot_route *routes, size_t n_routes);
/* Frees them; after the server has stopped. */
void iot_metrics_shutdown(void);

/* A request's end: the route table entry it matched (NULL: none), its
 * method and status, and how long it took from its headers having been
 * read (a live stream: until its answer's headers were queued). */
void iot_metrics_http_request(const struct iot_route *route, const char *method, int status,
                              int64_t us);

/* The ingest writer: one commit of a batch (failed ones too), from taking
 * it to answering its requests. */
void iot_metrics_ingest_commit(int64_t us);

enum iot_metrics_cache {
    IOT_METRICS_CACHE_API_KEY,       /* device API key → device (core/devcache.h) */
    IOT_METRICS_CACHE_LATEST_VALUES, /* a device's latest values (core/latest.h) */
};
void iot_metrics_cache_lookup(enum iot_metrics_cache cache, bool hit);

/* Live streams (SSE) open on this instance: +1 when one takes a slot, -1
 * when it gives it back. */
void iot_metrics_streams_open(int delta);

enum iot_metrics_rate_limit {
    IOT_RATE_LIMIT_CLIENT_AUTH,       /* per-address login/register limit */
    IOT_RATE_LIMIT_ADMIN_AUTH,        /* an address past its failed admin tokens */
    IOT_RATE_LIMIT_DEVICE_REQUESTS,   /* a device's telemetry requests per minute */
    IOT_RATE_LIMIT_DEVICE_BYTES,      /* a device's telemetry bytes per minute */
    IOT_RATE_LIMIT_STREAMS_PER_USER,  /* live streams of one user */
    IOT_RATE_LIMIT_STREAMS_PER_DEVICE /* live streams of one device */
};
/* One request refused with 429. */
void iot_metrics_rate_limited(enum iot_metrics_rate_limit kind);

/* What rendering reads from elsewhere. */
struct iot_metrics_sources {
    struct iot_ingest *ingest;       /* NULL: its series are left out */
    struct iot_events *events;       /* the event log's writer; NULL: left out */
    struct iot_alerting *alerting;   /* the alert engine; NULL: left out */
    const struct iot_mqtt_stats *mqtt; /* the MQTT listener's; NULL: off, left out */
    int64_t started_at_ms;     /* process start, Unix ms */
    int64_t started_mono_us;   /* the same on the monotonic clock */
};

/* Appends every metric in the text exposition format 0.0.4. */
void iot_metrics_render(struct iot_buf *b, const struct iot_metrics_sources *src);

#endif
