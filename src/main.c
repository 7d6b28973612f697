/* main.c — iotflowd: reads the configuration, opens the stores, serves the
 * API until SIGINT/SIGTERM, then finishes in-flight requests and closes the
 * stores. `iotflowd copy-telemetry ...` runs that tool instead
 * (src/tools/copy_telemetry.h). */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/app.h"
#include "api/device_common.h"
#include "api/stream.h"
#include "core/alerting.h"
#include "core/config.h"
#include "core/events.h"
#include "core/metrics.h"
#include "core/reports.h"
#include "core/retention.h"
#include "core/secrets.h"
#include "http/server.h"
#include "mqtt/mqtt_server.h"
#include "tools/copy_telemetry.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

static int open_stores(const struct iot_config *cfg, struct iot_app *app)
{
    char url[4096];
    if (*cfg->database_url)
        snprintf(url, sizeof url, "%s", cfg->database_url);
    else
        snprintf(url, sizeof url, "sqlite://%s/iotflow.db", cfg->data_dir);
    char shown[4096];
    int rc = iot_registry_open(url, &app->registry);
    if (rc) {
        iot_config_redact_url(url, shown, sizeof shown);
        IOT_ERROR("cannot open the registry store (%s): %s; compiled-in backends: %s", shown,
                  iot_strerror(rc), iot_registry_backend_names());
        return rc;
    }
    rc = iot_cache_open(*cfg->redis_url ? cfg->redis_url : NULL, &app->cache);
    if (rc) {
        iot_config_redact_url(cfg->redis_url, shown, sizeof shown);
        IOT_ERROR("cannot open the cache store (%s): %s; compiled-in backends: %s",
                  *cfg->redis_url ? shown : "in-process", iot_strerror(rc),
                  iot_cache_backend_names());
        iot_registry_close(&app->registry);
        return rc;
    }
    if (*cfg->telemetry_url)
        snprintf(url, sizeof url, "%s", cfg->telemetry_url);
    else
        snprintf(url, sizeof url, "sqlite://%s/telemetry.db", cfg->data_dir);
    rc = iot_telemetry_open(url, cfg->fsync, &app->telemetry);
    if (rc) {
        iot_config_redact_url(url, shown, sizeof shown);
        IOT_ERROR("cannot open the telemetry store (%s): %s; compiled-in backends: %s", shown,
                  iot_strerror(rc), iot_telemetry_backend_names());
        iot_cache_close(&app->cache);
        iot_registry_close(&app->registry);
        return rc;
    }
    if (*cfg->mongodb_url)
        snprintf(url, sizeof url, "%s", cfg->mongodb_url);
    else
        snprintf(url, sizeof url, "sqlite://%s/documents.db", cfg->data_dir);
    rc = iot_docs_open(url, &app->docs);
    if (rc) {
        iot_config_redact_url(url, shown, sizeof shown);
        IOT_ERROR("cannot open the documents store (%s): %s; compiled-in backends: %s", shown,
                  iot_strerror(rc), iot_docs_backend_names());
        iot_telemetry_close(&app->telemetry);
        iot_cache_close(&app->cache);
        iot_registry_close(&app->registry);
        return rc;
    }
    IOT_INFO("stores: registry=%s cache=%s telemetry=%s%s documents=%s", app->registry.ops->name,
             app->cache.ops->name, app->telemetry.ops->name, cfg->fsync ? " (fsync)" : "",
             app->docs.ops->name);
    return IOT_OK;
}

static void close_stores(struct iot_app *app)
{
    iot_docs_close(&app->docs);
    iot_telemetry_close(&app->telemetry);
    iot_cache_close(&app->cache);
    iot_registry_close(&app->registry);
}

/* The daily reports' thread (core/reports.h); no handler needs it. */
static struct iot_daily_reports *daily_reports;

#define DEVCACHE_SLOTS 16384
#define DAY_MS INT64_C(86400000)

/* Retention, the pipeline, the key cache and the live streams: everything
 * between the HTTP layer and the stores that has threads or state of its
 * own. Retention first: the telemetry store learns its retention before
 * the pipeline writes anything. */
static int start_services(const struct iot_config *cfg, struct iot_app *app)
{
    struct iot_retention_config rcfg = {.raw_ms = cfg->retention_days * DAY_MS,
                                        .rollup_ms = cfg->rollup_retention_days * DAY_MS};
    int rc = iot_retention_start(&rcfg, &app->telemetry, &app->retention);
    if (rc) {
        IOT_ERROR("cannot start retention: %s", iot_strerror(rc));
        return rc;
    }
    /* Alert rules see every committed batch (core/alerting.h). */
    app->alerting = iot_alerting_new(&(struct iot_alerting_config){0}, &app->docs, &app->cache,
                                     &app->registry);
    struct iot_ingest_config icfg = {.queue_max = (size_t)cfg->ingest_queue, .batch_max = 4096,
                                     .seen_flush_ms = 1000,
                                     .after_commit = iot_alerting_after_commit,
                                     .after_commit_ctx = app->alerting};
    app->devcache = iot_devcache_new(DEVCACHE_SLOTS, cfg->key_cache_ttl_ms);
    app->ingest = iot_ingest_start(&icfg, &app->telemetry, &app->cache, &app->registry);
    /* A failed clean-up is retried after IOTFLOW_CLEANUP_RETRY s, doubling
     * to 10 min; due ones are looked for as often, at least every 10 s. */
    int64_t retry_ms = cfg->cleanup_retry * 1000;
    struct iot_cleaner_config ccfg = {.poll_ms = retry_ms < 10000 ? retry_ms : 10000,
                                      .retry_min_ms = retry_ms, .retry_max_ms = 600000};
    app->cleaner = iot_cleaner_new(&ccfg, &app->registry, &app->telemetry, &app->docs);
    if (!app->cleaner || iot_cleaner_start(app->cleaner) != IOT_OK) {
        IOT_ERROR("cannot start the telemetry cleaner");
        return IOT_ENOMEM;
    }
    /* The event log: before the API, so that no state change goes unrecorded. */
    struct iot_events_config ecfg = {.retention_ms = cfg->event_retention_days * DAY_MS,
                                     .online_window_ms = cfg->online_window * 1000};
    rc = iot_events_start(&ecfg, &app->docs, &app->registry, &app->cache, &app->events);
    if (rc) {
        IOT_ERROR("cannot start the event log writer: %s", iot_strerror(rc));
        return rc;
    }
    app->devices = (struct iot_device_gate){.registry = &app->registry, .cache = &app->cache,
                                            .devcache = app->devcache, .events = app->events,
                                            .rate_limit = cfg->device_rate_limit,
                                            .byte_rate_limit = cfg->device_byte_rate_limit};
    struct iot_report_stores stores = {&app->registry, &app->telemetry, &app->docs};
    if (cfg->daily_reports && !(daily_reports = iot_daily_reports_start(&stores))) {
        IOT_ERROR("cannot start the daily reports");
        return IOT_ENOMEM;
    }
    /* Streams may use at most half the connections, so that a flood of
     * them can never lock out the rest of the API. */
    size_t max_streams = (size_t)cfg->max_connections / 2;
    app->streams = iot_streams_new(app, max_streams > 1024 ? 1024 : max_streams ? max_streams : 1);
    if (app->devcache && app->ingest && app->streams && iot_device_notices_start(app) == IOT_OK &&
        app->alerting && iot_alerting_start(app->alerting, app->events) == IOT_OK)
        return IOT_OK;
    IOT_ERROR("cannot start the ingest pipeline, key cache, streams or alerting");
    return IOT_ENOMEM;
}

static void stop_services(struct iot_app *app)
{
    iot_cleaner_free(app->cleaner);
    app->cleaner = NULL;
    iot_device_notices_stop(app);
    iot_ingest_free(app->ingest);
    iot_alerting_free(app->alerting); /* after the pipeline: it feeds it */
    iot_retention_free(app->retention);
    iot_streams_free(app->streams);
    iot_devcache_free(app->devcache);
    iot_daily_reports_free(daily_reports);
    daily_reports = NULL;
    iot_events_free(app->events); /* last: the services above may still emit */
    app->events = NULL;
}

static int wait_for_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    return sig;
}

/* A worker blocks while a store answers: twice the CPUs keep the CPUs busy
 * on the embedded stores, but a store across the network leaves a worker
 * waiting for round trips — a 100-row history page on Cassandra is two —
 * so then eight times (measured: 1.7x the pages/s on one Cassandra node). */
static unsigned worker_threads(const struct iot_config *cfg)
{
    if (cfg->threads > 0)
        return (unsigned)cfg->threads;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    bool remote = *cfg->database_url || *cfg->redis_url || *cfg->mongodb_url ||
                  iot_telemetry_backend(cfg->telemetry_url) != iot_telemetry_backend(NULL);
    return cpus > 0 ? (unsigned)((remote ? 8 : 2) * cpus) : 4;
}

/* The MQTT listener on IOTFLOW_MQTT_PORT; NULL when it cannot start
 * (logged). */
static struct iot_mqtt_server *start_mqtt(const struct iot_config *cfg, struct iot_app *app)
{
    struct iot_mqtt_config mcfg = {
        .host = cfg->host, .port = (uint16_t)cfg->mqtt_port,
        .threads = (unsigned)cfg->mqtt_threads,
        .max_connections = (unsigned)cfg->mqtt_max_connections,
        .max_packet = (size_t)cfg->mqtt_max_packet, .inflight = (unsigned)cfg->mqtt_inflight,
        .keepalive_max = (unsigned)cfg->mqtt_keepalive_max,
        .session_expiry_max = (unsigned)cfg->mqtt_session_expiry,
        .connect_timeout = (unsigned)cfg->mqtt_connect_timeout,
        .pending_per_ip = (unsigned)cfg->mqtt_pending_per_ip,
        .per_device = (unsigned)cfg->mqtt_per_device};
    struct iot_mqtt_env env = {.devices = &app->devices, .ingest = app->ingest,
                               .docs = &app->docs, .cache = &app->cache, .events = app->events};
    struct iot_mqtt_server *m = iot_mqtt_start(&mcfg, &env);
    if (m)
        IOT_INFO("MQTT listening on mqtt://%s:%u (%u event loops)", cfg->host, iot_mqtt_port(m),
                 mcfg.threads);
    return m;
}

static int serve(const struct iot_config *cfg)
{
    struct iot_app app = {.cfg = cfg, .started_at_ms = iot_now_ms(),
                          .started_mono_us = iot_mono_us(), .threads = worker_threads(cfg)};
    if (iot_metrics_init(iot_api_routes, iot_api_n_routes))
        return EXIT_FAILURE;
    if (open_stores(cfg, &app)) {
        iot_metrics_shutdown();
        return EXIT_FAILURE;
    }
    if (start_services(cfg, &app)) {
        stop_services(&app);
        close_stores(&app);
        iot_metrics_shutdown();
        return EXIT_FAILURE;
    }
    struct iot_server_config scfg = {
        .host = cfg->host, .port = (uint16_t)cfg->port, .threads = app.threads,
        .max_connections = (unsigned)cfg->max_connections, .max_body = (size_t)cfg->max_body,
        .epoll = cfg->http_epoll,
        .max_connections_per_ip = (unsigned)cfg->max_connections_per_ip,
        .header_timeout = (unsigned)cfg->http_header_timeout,
        .body_timeout = (unsigned)cfg->http_body_timeout,
        .max_uri = (size_t)cfg->http_max_uri, .max_header = (size_t)cfg->http_max_header,
        .cors_origins = cfg->cors_origins, .trusted_proxies = cfg->trusted_proxies,
        .routes = iot_api_routes, .n_routes = iot_api_n_routes, .app = &app};
    /* MQTT first, so that /metrics never sees app.mqtt change. */
    bool mqtt_ok = cfg->mqtt_port == 0 || (app.mqtt = start_mqtt(cfg, &app)) != NULL;
    struct iot_server *server = mqtt_ok ? iot_server_start(&scfg) : NULL;
    if (!server && app.mqtt) {
        iot_ingest_stop(app.ingest);
        iot_mqtt_stop(app.mqtt);
    }
    int status = EXIT_FAILURE;
    if (server) {
        IOT_INFO("iotflowd %s listening on http://%s:%u (%u threads)%s", IOT_VERSION, cfg->host,
                 iot_server_port(server), app.threads,
                 *cfg->admin_token ? "" : "; admin API disabled (no IOTFLOW_ADMIN_TOKEN)");
        int sig = wait_for_signal();
        IOT_INFO("signal %d: finishing in-flight requests", sig);
        /* Order matters: commit and answer every queued telemetry request
         * (new ones get 503 from now on) and end the retention thread (at
         * once, or after the purge it is running); end the live streams;
         * only then stop the HTTP threads, which requires that no request
         * is suspended; MQTT clients meanwhile get answers, and a
         * DISCONNECT "server shutting down" last. */
        iot_mqtt_quiesce(app.mqtt);
        iot_ingest_stop(app.ingest);
        iot_alerting_stop(app.alerting);
        iot_retention_stop(app.retention);
        iot_streams_close_all(app.streams);
        iot_server_stop(server);
        /* After the pipeline (the PUBACKs of what it committed are sent)
         * and after HTTP (GET /metrics reads the listener). */
        iot_mqtt_stop(app.mqtt);
        status = EXIT_SUCCESS;
    }
    stop_services(&app);
    close_stores(&app);
    iot_metrics_shutdown();
    IOT_INFO("stopped");
    return status;
}

#define ADMIN_TOKEN_MIN 16

/* The admin token is the only thing between the network and every user's
 * data: a short one can be guessed. Empty stays allowed (admin API off). */
static bool admin_token_ok(const char *token)
{
    size_t len = strlen(token);
    if (len == 0 || len >= ADMIN_TOKEN_MIN)
        return true;
    IOT_ERROR("IOTFLOW_ADMIN_TOKEN is %zu bytes; at least %d are required so that it cannot be "
              "guessed. Make one with: head -c 24 /dev/urandom | base64 (or leave it empty to "
              "turn the admin API off)",
              len, ADMIN_TOKEN_MIN);
    return false;
}

/* SCHED_BATCH for this thread and every thread started after (they inherit
 * it): a woken thread no longer preempts a running one at once. A request
 * crosses threads (HTTP worker, ingest writer, flusher) and each hand-off
 * wakes one; under load, preempting the running thread for it cost more
 * context switches than it saved latency. Measured on 2 cores: single-
 * message ingest +9-13% with the same p99. No privilege is needed. */
static void use_sched_batch(void)
{
    struct sched_param param = {0};
    if (sched_setscheduler(0, SCHED_BATCH, &param) != 0)
        IOT_WARN("cannot switch to SCHED_BATCH: %s", strerror(errno));
}

int main(int argc, char **argv)
{
    /* Block the shutdown signals in every thread; main waits for them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && strcmp(argv[1], "copy-telemetry") == 0)
        return iot_copy_telemetry_main(argc - 1, argv + 1);

    struct iot_config cfg;
    int rc = iot_config_load(&cfg, argc, argv, stdout, stderr);
    if (rc) {
        iot_config_free(&cfg);
        return rc == 1 ? EXIT_SUCCESS : 2;
    }
    enum iot_log_level level = IOT_LOG_INFO;
    iot_log_parse_level(cfg.log_level, &level);
    iot_log_set_level(level);
    if (!admin_token_ok(cfg.admin_token)) {
        iot_config_free(&cfg);
        return 2;
    }
    if (iot_secrets_init()) {
        IOT_ERROR("libsodium failed to initialise");
        iot_config_free(&cfg);
        return EXIT_FAILURE;
    }
    if (mkdir(cfg.data_dir, 0700) != 0 && access(cfg.data_dir, W_OK) != 0) {
        IOT_ERROR("data directory %s is not writable", cfg.data_dir);
        iot_config_free(&cfg);
        return EXIT_FAILURE;
    }
    if (cfg.sched_batch)
        use_sched_batch();
    int status = serve(&cfg);
    iot_config_free(&cfg);
    return status;
}
