/* health.c — GET /health, /health?detailed=true, /status and /.
 *
 * Everyone gets the plain answer: status (healthy, degraded or unhealthy,
 * from a ping of each store at most a second old; 503 when unhealthy),
 * message and version — what a load balancer or the original IoTFlow's
 * clients need. The details
 * (per-store checks with backend names, device counts, threads, uptime)
 * tell an attacker what runs where, so only the admin (admin token, or an
 * active is_admin user) gets them, or anyone when the operator sets
 * IOTFLOW_PUBLIC_STATUS=1. Anyone else asking for details gets the plain
 * answer rather than 401/403: these endpoints are public and ignore
 * credentials they cannot use. */
#include <stdatomic.h>
#include <string.h>

#include "api/app.h"
#include "api/credential.h"
#include "api/device_common.h"
#include "api/handlers.h"
#include "api/views.h"
#include "api/web.h"
#include "util/clock.h"
#include "util/err.h"

static json_t *check(const char *backend, const char *role, int (*ping)(void *), void *self)
{
    int64_t t0 = iot_mono_us();
    int rc = ping(self);
    double ms = (double)(iot_mono_us() - t0) / 1000.0;
    return json_pack("{s:b, s:s, s:s, s:s, s:f}", "healthy", rc == IOT_OK, "backend", backend,
                     "role", role, "status", rc == IOT_OK ? "connected" : iot_strerror(rc),
                     "response_time_ms", ms);
}

static json_t *device_metrics(struct iot_app *app)
{
    struct iot_device_stats s;
    if (iot_device_stats_now(app, &s) != IOT_OK)
        return json_pack("{s:s}", "error", "registry unavailable");
    return json_pack("{s:I, s:I, s:I, s:I}", "total_devices", (json_int_t)s.total,
                     "active_devices", (json_int_t)s.active, "online_devices", (json_int_t)s.online,
                     "offline_devices", (json_int_t)(s.active - s.online));
}

static const char *status_word(int failed)
{
    return failed == 0 ? "healthy" : failed == 1 ? "degraded" : "unhealthy";
}

/* The latest store pings, for the plain answer: a load balancer probing
 * /health (or a flood of probes) must not turn every probe into three
 * store round trips (with them, one wrk run of /health on the embedded
 * stores served 28% fewer requests a second). The process has one set of
 * stores, so this is process-wide; pinged_us 0 = never. */
#define PING_MAX_AGE_US 1000000
static _Atomic int64_t pinged_us;
static _Atomic int pinged_failed;

/* A ping of each store; *failed: how many did not answer. */
static json_t *store_checks(struct iot_app *app, int *failed)
{
    json_t *checks = json_pack(
        "{s:o, s:o, s:o}", "database",
        check(app->registry.ops->name, "registry", app->registry.ops->ping, app->registry.self),
        "cache", check(app->cache.ops->name, "cache", app->cache.ops->ping, app->cache.self),
        "telemetry",
        check(app->telemetry.ops->name, "telemetry", app->telemetry.ops->ping, app->telemetry.self));
    *failed = checks ? 0 : 3;
    const char *name;
    json_t *c;
    json_object_foreach(checks, name, c)
        *failed += !json_is_true(json_object_get(c, "healthy"));
    atomic_store(&pinged_failed, *failed);
    atomic_store(&pinged_us, iot_mono_us());
    return checks;
}

/* Failed stores as of at most PING_MAX_AGE_US ago: one caller pings when
 * the last result is older, the others meanwhile use the last result. */
static int recent_failed(struct iot_app *app)
{
    int64_t now = iot_mono_us(), at = atomic_load(&pinged_us);
    if ((at != 0 && now - at < PING_MAX_AGE_US) ||
        !atomic_compare_exchange_strong(&pinged_us, &at, now))
        return atomic_load(&pinged_failed);
    int failed;
    json_decref(store_checks(app, &failed));
    return failed;
}

static json_t *system_health(struct iot_app *app, const char **status)
{
    int failed;
    json_t *checks = store_checks(app, &failed);
    *status = status_word(failed);
    double uptime = (double)(iot_mono_us() - app->started_mono_us) / 1e6;
    return json_pack("{s:s, s:o, s:s, s:f, s:o, s:{s:o, s:{s:s, s:f, s:I, s:o}}}", "status", *status,
                     "timestamp", iot_json_time(iot_now_ms()), "version", IOT_VERSION,
                     "uptime_seconds", uptime, "checks", checks, "metrics", "devices",
                     device_metrics(app), "application", "version", IOT_VERSION, "uptime_seconds",
                     uptime, "http_threads", (json_int_t)app->threads, "started_at",
                     iot_json_time(app->started_at_ms));
}

/* 503 only when no store answers: a load balancer should stop sending
 * traffic then, but not because one optional store is degraded. */
static int http_status(const char *status) { return strcmp(status, "unhealthy") == 0 ? 503 : 200; }

static void reply_details(struct iot_req *r)
{
    const char *status;
    json_t *h = system_health(iot_app_of(r), &status);
    iot_reply_json(r, http_status(status), h);
}

static void reply_plain(struct iot_req *r)
{
    const char *status = status_word(recent_failed(iot_app_of(r)));
    iot_reply_json(r, http_status(status),
                   json_pack("{s:s, s:s, s:s}", "status", status, "message", "IoTFlow is running",
                             "version", IOT_VERSION));
}

static bool may_see_details(struct iot_req *r)
{
    return iot_app_of(r)->cfg->public_status || iot_credential_is_admin(r);
}

void iot_h_health(struct iot_req *r)
{
    if (iot_req_query_bool(r, "detailed", false) && may_see_details(r))
        reply_details(r);
    else
        reply_plain(r);
}

void iot_h_status(struct iot_req *r)
{
    if (may_see_details(r))
        reply_details(r);
    else
        reply_plain(r);
}

/* GET / and GET /api/v1: the service description. At / a browser (Accept
 * preferring text/html) gets the dashboard instead (api/web.c). */
void iot_h_root(struct iot_req *r)
{
    if (strcmp(r->path, "/") == 0 && iot_web_prefers_html(r)) {
        iot_web_reply_index(r);
        return;
    }
    iot_reply_json(r, 200,
                   json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
                             "s:s, s:s, s:s}, s:s}",
                             "name", "IoTFlow (iotflowd)", "version", IOT_VERSION, "description",
                             "IoT device connectivity, telemetry and management API", "endpoints",
                             "health", "/health", "status", "/status", "auth", "/api/v1/auth",
                             "users", "/api/v1/users", "devices", "/api/v1/devices", "groups",
                             "/api/v1/groups", "admin", "/api/v1/admin", "telemetry",
                             "/api/v1/telemetry", "events", "/api/v1/events", "alerts",
                             "/api/v1/alerts", "alert_rules", "/api/v1/alert-rules", "metrics",
                             "/metrics", "dashboard", "/", "documentation", "docs/openapi.yaml"));
}
