/* metrics.c — the series behind core/metrics.h and their rendering. */
#include "core/metrics.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alerting.h"
#include "core/events.h"
#include "core/ingest.h"
#include "http/router.h"
#include "mqtt/mqtt_server.h"
#include "store/store_metrics.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/metrics.h"

/* Label values beyond a fixed list are counted under the last slot. */
static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD",
                                      "other"};
#define N_METHODS (sizeof methods / sizeof *methods)
/* What the server answers; anything else is "other". */
static const int codes[] = {200, 201, 202, 204, 301, 302, 304, 400, 401, 403, 404, 405,
                            406, 409, 410, 412, 413, 414, 415, 422, 429, 431, 500, 501,
                            502, 503, 504};
#define N_CODES (sizeof codes / sizeof *codes)
#define N_STATUSES (N_CODES + 1)

/* Whole requests, from 0.5 ms to 10 s (a live stream lasts longer: +Inf). */
static const struct iot_hist_bounds request_bounds = {
    14, {500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
         5000000, 10000000}};
/* Group commits: a batch in the WAL is sub-millisecond, a remote store's
 * tens of milliseconds. */
static const struct iot_hist_bounds commit_bounds = {
    15, {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
         2500000, 5000000}};

static const char *const cache_names[] = {
    [IOT_METRICS_CACHE_API_KEY] = "api_key",
    [IOT_METRICS_CACHE_LATEST_VALUES] = "latest_values",
};
#define N_CACHES (sizeof cache_names / sizeof *cache_names)

static const char *const rate_limit_names[] = {
    [IOT_RATE_LIMIT_CLIENT_AUTH] = "client_auth",
    [IOT_RATE_LIMIT_ADMIN_AUTH] = "admin_auth_failures",
    [IOT_RATE_LIMIT_DEVICE_REQUESTS] = "device_requests",
    [IOT_RATE_LIMIT_DEVICE_BYTES] = "device_bytes",
    [IOT_RATE_LIMIT_STREAMS_PER_USER] = "streams_per_user",
    [IOT_RATE_LIMIT_STREAMS_PER_DEVICE] = "streams_per_device",
};
#define N_RATE_LIMITS (sizeof rate_limit_names / sizeof *rate_limit_names)

/* Route slot n_routes is "other". */
static struct {
    const struct iot_route *routes;
    size_t n_routes;
    struct iot_counter *requests; /* [route][method][status] */
    /* Routes of one pattern share a duration histogram: the first's. */
    size_t *pattern_slot;            /* [route] → slot in durations */
    struct iot_histogram *durations; /* [route] */
} http;

static struct iot_histogram commit_durations;
static struct iot_counter cache_lookups[N_CACHES][2]; /* [cache][hit] */
static struct iot_gauge streams_open;
static struct iot_counter rate_limited[N_RATE_LIMITS];

int iot_metrics_init(const struct iot_route *routes, size_t n_routes)
{
    size_t slots = n_routes + 1;
    http.requests = calloc(slots * N_METHODS * N_STATUSES, sizeof *http.requests);
    http.durations = calloc(slots, sizeof *http.durations);
    http.pattern_slot = calloc(slots, sizeof *http.pattern_slot);
    if (!http.requests || !http.durations || !http.pattern_slot) {
        iot_metrics_shutdown();
        return IOT_ENOMEM;
    }
    for (size_t r = 0; r < slots; r++) {
        size_t first = 0;
        while (first < r && r < n_routes && strcmp(routes[first].pattern, routes[r].pattern) != 0)
            first++;
        http.pattern_slot[r] = r < n_routes ? first : r;
    }
    http.routes = routes;
    http.n_routes = n_routes;
    return IOT_OK;
}

void iot_metrics_shutdown(void)
{
    free(http.requests);
    free(http.durations);
    free(http.pattern_slot);
    memset(&http, 0, sizeof http);
}

static size_t method_slot(const char *method)
{
    size_t i = 0;
    while (i < N_METHODS - 1 && strcmp(methods[i], method) != 0)
        i++;
    return i;
}

static size_t status_slot(int status)
{
    size_t i = 0;
    while (i < N_CODES && codes[i] != status)
        i++;
    return i;
}

/* A route of another table (a test's server) counts as "other". */
static size_t route_slot(const struct iot_route *route)
{
    if (route && route >= http.routes && route < http.routes + http.n_routes)
        return (size_t)(route - http.routes);
    return http.n_routes;
}

void iot_metrics_http_request(const struct iot_route *route, const char *method, int status,
                              int64_t us)
{
    if (!http.requests)
        return;
    size_t r = route_slot(route);
    iot_counter_inc(&http.requests[(r * N_METHODS + method_slot(method)) * N_STATUSES +
                                   status_slot(status)]);
    iot_histogram_observe(&http.durations[http.pattern_slot[r]], &request_bounds, us);
}

void iot_metrics_ingest_commit(int64_t us) { iot_histogram_observe(&commit_durations, &commit_bounds, us); }

void iot_metrics_cache_lookup(enum iot_metrics_cache cache, bool hit)
{
    iot_counter_inc(&cache_lookups[cache][hit]);
}

void iot_metrics_streams_open(int delta) { iot_gauge_add(&streams_open, delta); }

void iot_metrics_rate_limited(enum iot_metrics_rate_limit kind)
{
    iot_counter_inc(&rate_limited[kind]);
}

/* ---- rendering ----------------------------------------------------------- */

static const char *route_name(size_t r)
{
    return r < http.n_routes ? http.routes[r].pattern : "other";
}

static void render_http(struct iot_buf *b)
{
    if (!http.requests)
        return;
    iot_metrics_family(b, "iotflow_http_requests_total", "counter",
                       "HTTP requests answered, by method, matched route pattern (other: no "
                       "route) and status code (other: a code not in the server's list).");
    for (size_t r = 0; r <= http.n_routes; r++)
        for (size_t m = 0; m < N_METHODS; m++)
            for (size_t s = 0; s < N_STATUSES; s++) {
                uint64_t n = iot_counter_get(&http.requests[(r * N_METHODS + m) * N_STATUSES + s]);
                if (n == 0)
                    continue;
                char code[16];
                snprintf(code, sizeof code, "%d", codes[s < N_CODES ? s : 0]);
                struct iot_label l[] = {{"method", methods[m]},
                                        {"route", route_name(r)},
                                        {"status", s < N_CODES ? code : "other"}};
                iot_metrics_sample_u64(b, "iotflow_http_requests_total", l, 3, n);
            }
    iot_metrics_family(b, "iotflow_http_request_duration_seconds", "histogram",
                       "Time from a request's headers having been read until its answer was "
                       "sent (a live stream: until its answer's headers were), by matched "
                       "route pattern.");
    for (size_t r = 0; r <= http.n_routes; r++) {
        if (http.pattern_slot[r] != r || iot_histogram_count(&http.durations[r], &request_bounds) == 0)
            continue;
        struct iot_label l[] = {{"route", route_name(r)}};
        iot_metrics_histogram(b, "iotflow_http_request_duration_seconds", l, 1,
                              &http.durations[r], &request_bounds);
    }
}

static void counter_family(struct iot_buf *b, const char *name, const char *help, uint64_t v)
{
    iot_metrics_family(b, name, "counter", help);
    iot_metrics_sample_u64(b, name, NULL, 0, v);
}

static void gauge_family(struct iot_buf *b, const char *name, const char *help, double v)
{
    iot_metrics_family(b, name, "gauge", help);
    iot_metrics_sample(b, name, NULL, 0, v);
}

/* The ingest pipeline's own totals (core/ingest.h), read at scrape time. */
static const struct {
    const char *name, *help;
    size_t field; /* an int64_t of struct iot_ingest_stats */
} ingest_counters[] = {
    {"iotflow_ingest_commits_total", "Group commits of telemetry batches to the telemetry store.",
     offsetof(struct iot_ingest_stats, commits)},
    {"iotflow_ingest_messages_stored_total", "Telemetry messages committed to the telemetry store.",
     offsetof(struct iot_ingest_stats, committed_messages)},
    {"iotflow_ingest_points_stored_total",
     "Telemetry data points (measurement values) committed to the telemetry store.",
     offsetof(struct iot_ingest_stats, committed_points)},
    {"iotflow_ingest_messages_failed_total",
     "Telemetry messages whose commit failed (answered 503).",
     offsetof(struct iot_ingest_stats, failed)},
    {"iotflow_ingest_queue_full_total",
     "Telemetry requests refused because the ingest queue was full (503).",
     offsetof(struct iot_ingest_stats, rejected_full)},
};

static void render_ingest(struct iot_buf *b, struct iot_ingest *ingest)
{
    if (ingest) {
        struct iot_ingest_stats st;
        iot_ingest_stats(ingest, &st);
        gauge_family(b, "iotflow_ingest_queue_messages",
                     "Telemetry messages waiting in the ingest queue for their commit.",
                     (double)st.queued);
        for (size_t i = 0; i < sizeof ingest_counters / sizeof *ingest_counters; i++) {
            int64_t v;
            memcpy(&v, (const char *)&st + ingest_counters[i].field, sizeof v);
            counter_family(b, ingest_counters[i].name, ingest_counters[i].help, (uint64_t)v);
        }
    }
    iot_metrics_family(b, "iotflow_ingest_commit_duration_seconds", "histogram",
                       "Time from the ingest writer taking a batch until its requests were "
                       "answered: store write and cache fan-out, failed commits included.");
    iot_metrics_histogram(b, "iotflow_ingest_commit_duration_seconds", NULL, 0,
                          &commit_durations, &commit_bounds);
}

/* The event log's writer and the alert engine, read at scrape time: what
 * they drop when their queues are full (nothing else tells it but a
 * rate-limited log line) is what an operator alerts on. */
static void render_background(struct iot_buf *b, const struct iot_metrics_sources *src)
{
    if (src->events) {
        struct iot_events_stats st;
        iot_events_stats(src->events, &st);
        gauge_family(b, "iotflow_events_queued", "Events waiting for the event log's writer.",
                     (double)st.queued);
        counter_family(b, "iotflow_events_written_total", "Events written to the event log.",
                       st.written);
        counter_family(b, "iotflow_events_dropped_total",
                       "Events never written: the event log's queue was full.", st.dropped);
        counter_family(b, "iotflow_events_write_failures_total",
                       "Failed writes of an event batch to the documents store (retried).",
                       st.failed_writes);
    }
    if (src->alerting) {
        struct iot_alerting_stats st;
        iot_alerting_stats(src->alerting, &st);
        counter_family(b, "iotflow_alert_evaluations_total",
                       "Telemetry messages evaluated against the alert rules.",
                       (uint64_t)st.evaluated);
        counter_family(b, "iotflow_alert_evaluations_dropped_total",
                       "Telemetry messages not evaluated against the alert rules: the "
                       "engine's queue was full.",
                       (uint64_t)st.dropped);
        counter_family(b, "iotflow_alerts_raised_total", "Alerts raised by the alert rules.",
                       (uint64_t)st.raised);
        counter_family(b, "iotflow_alerts_resolved_total",
                       "Alerts the alert rules resolved by themselves.", (uint64_t)st.resolved);
    }
}

/* The MQTT listener (mqtt/mqtt_server.h), when it runs. */
static void render_mqtt(struct iot_buf *b, const struct iot_mqtt_stats *st)
{
    if (!st)
        return;
    gauge_family(b, "iotflow_mqtt_connections", "MQTT connections open now.",
                 (double)st->connections);
    gauge_family(b, "iotflow_mqtt_sessions",
                 "MQTT sessions held: one per connection, plus persistent ones waiting for "
                 "their client.",
                 (double)st->sessions);
    counter_family(b, "iotflow_mqtt_connections_accepted_total", "MQTT connections accepted.",
                   (uint64_t)st->accepted);
    counter_family(b, "iotflow_mqtt_connects_refused_total",
                   "MQTT CONNECTs refused (bad key, owner deactivated, bad client id or will).",
                   (uint64_t)st->refused_connects);
    counter_family(b, "iotflow_mqtt_messages_stored_total",
                   "Telemetry PUBLISHes (QoS 0 and 1, wills included) committed.",
                   (uint64_t)st->published);
    counter_family(b, "iotflow_mqtt_messages_refused_total",
                   "Telemetry PUBLISHes refused: payload, topic, device status or rate limit.",
                   (uint64_t)st->rejected);
    counter_family(b, "iotflow_mqtt_messages_delivered_total",
                   "PUBLISHes sent to subscribers (configurations and alerts).",
                   (uint64_t)st->delivered);
}

static void render_lookups(struct iot_buf *b)
{
    iot_metrics_family(b, "iotflow_cache_lookups_total", "counter",
                       "Lookups in iotflowd's caches by cache (api_key: device API key to "
                       "device, in process; latest_values: a device's latest values, in the "
                       "cache store) and result (hit or miss).");
    for (size_t c = 0; c < N_CACHES; c++)
        for (int hit = 1; hit >= 0; hit--) {
            struct iot_label l[] = {{"cache", cache_names[c]}, {"result", hit ? "hit" : "miss"}};
            iot_metrics_sample_u64(b, "iotflow_cache_lookups_total", l, 2,
                                   iot_counter_get(&cache_lookups[c][hit]));
        }
}

static void render_limits(struct iot_buf *b)
{
    gauge_family(b, "iotflow_streams_open", "Live streams (Server-Sent Events) open now.",
                 (double)iot_gauge_get(&streams_open));
    iot_metrics_family(b, "iotflow_rate_limited_total", "counter",
                       "Requests refused with 429 by a rate limit, by kind of limit.");
    for (size_t k = 0; k < N_RATE_LIMITS; k++) {
        struct iot_label l[] = {{"kind", rate_limit_names[k]}};
        iot_metrics_sample_u64(b, "iotflow_rate_limited_total", l, 1,
                               iot_counter_get(&rate_limited[k]));
    }
}

static void render_process(struct iot_buf *b, const struct iot_metrics_sources *src)
{
    iot_metrics_family(b, "iotflow_build_info", "gauge",
                       "Always 1; the version of the running iotflowd is a label.");
    iot_metrics_sample(b, "iotflow_build_info", &(struct iot_label){"version", IOT_VERSION}, 1,
                       1);
    gauge_family(b, "iotflow_process_start_time_seconds",
                 "When the process started, in seconds since the Unix epoch.",
                 (double)src->started_at_ms / 1000.0);
    gauge_family(b, "iotflow_uptime_seconds", "Seconds since the process started.",
                 (double)(iot_mono_us() - src->started_mono_us) / 1e6);
}

void iot_metrics_render(struct iot_buf *b, const struct iot_metrics_sources *src)
{
    render_process(b, src);
    render_http(b);
    render_ingest(b, src->ingest);
    render_background(b, src);
    render_mqtt(b, src->mqtt);
    iot_store_metrics_render(b);
    render_lookups(b);
    render_limits(b);
}
