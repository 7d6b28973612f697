/* app.h — the application context every API handler reaches through
 * r->app: configuration, the stores, and process-wide facts.
 *
 * Built once in main.c before the server starts and read-only afterwards
 * (the stores are thread-safe), so handlers need no locking to use it. */
#ifndef IOT_API_APP_H
#define IOT_API_APP_H

#include <stddef.h>
#include <stdint.h>

#include "core/cleanup.h"
#include "core/config.h"
#include "core/device_auth.h"
#include "core/devcache.h"
#include "core/ingest.h"
#include "core/retention.h"
#include "http/router.h"
#include "store/cache.h"
#include "store/docs.h"
#include "store/registry.h"
#include "store/telemetry.h"

struct iot_streams; /* live telemetry streams (api/stream.c) */
struct iot_events;  /* the event log writer (core/events.h) */
struct iot_alerting; /* alert rules evaluated on ingest (core/alerting.h) */
struct iot_mqtt_server; /* mqtt/mqtt_server.h */

struct iot_app {
    const struct iot_config *cfg;
    struct iot_registry registry;
    struct iot_cache cache;
    struct iot_telemetry telemetry;
    struct iot_docs docs;
    struct iot_ingest *ingest;
    struct iot_retention *retention; /* main.c's: no handler uses it */
    struct iot_cleaner *cleaner; /* telemetry of deleted devices and users */
    struct iot_devcache *devcache;
    struct iot_device_gate devices; /* device keys and limits, for every transport */
    struct iot_streams *streams;
    struct iot_events *events;
    struct iot_alerting *alerting;
    struct iot_cache_sub *device_notices; /* api/device_common.c */
    struct iot_mqtt_server *mqtt; /* the MQTT listener; NULL when off */
    int64_t started_at_ms;
    int64_t started_mono_us;
    unsigned threads;
};

static inline struct iot_app *iot_app_of(struct iot_req *r) { return (struct iot_app *)r->app; }

/* The route table of the whole API (src/api/routes.c). */
extern const struct iot_route iot_api_routes[];
extern const size_t iot_api_n_routes;

#endif
