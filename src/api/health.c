/* health.c — GET /health, /health?detailed=true, /status and /. */
#include <string.h>

#include "api/app.h"
#include "api/device_common.h"
#include "api/handlers.h"
#include "api/views.h"
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

static json_t *system_health(struct iot_app *app)
{
    json_t *checks = json_pack(
        "{s:o, s:o, s:o}", "database",
        check(app->registry.ops->name, "registry", app->registry.ops->ping, app->registry.self),
        "cache", check(app->cache.ops->name, "cache", app->cache.ops->ping, app->cache.self),
        "telemetry",
        check(app->telemetry.ops->name, "telemetry", app->telemetry.ops->ping, app->telemetry.self));
    int failed = 0;
    const char *name;
    json_t *c;
    json_object_foreach(checks, name, c)
        failed += !json_is_true(json_object_get(c, "healthy"));
    double uptime = (double)(iot_mono_us() - app->started_mono_us) / 1e6;
    const char *status = failed == 0 ? "healthy" : failed == 1 ? "degraded" : "unhealthy";
    return json_pack("{s:s, s:o, s:s, s:f, s:o, s:{s:o, s:{s:s, s:f, s:I, s:o}}}", "status", status,
                     "timestamp", iot_json_time(iot_now_ms()), "version", IOT_VERSION,
                     "uptime_seconds", uptime, "checks", checks, "metrics", "devices",
                     device_metrics(app), "application", "version", IOT_VERSION, "uptime_seconds",
                     uptime, "http_threads", (json_int_t)app->threads, "started_at",
                     iot_json_time(app->started_at_ms));
}

/* 503 only when no store answers: a load balancer should stop sending
 * traffic then, but not because one optional store is degraded. */
static void reply_health(struct iot_req *r)
{
    json_t *h = system_health(iot_app_of(r));
    bool down = h && strcmp(json_string_value(json_object_get(h, "status")), "unhealthy") == 0;
    iot_reply_json(r, down ? 503 : 200, h);
}

void iot_h_health(struct iot_req *r)
{
    if (iot_req_query_bool(r, "detailed", false)) {
        reply_health(r);
        return;
    }
    iot_reply_json(r, 200, json_pack("{s:s, s:s, s:s}", "status", "healthy", "message",
                                     "IoTFlow is running", "version", IOT_VERSION));
}

void iot_h_status(struct iot_req *r) { reply_health(r); }

void iot_h_root(struct iot_req *r)
{
    iot_reply_json(r, 200,
                   json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}, s:s}",
                             "name", "IoTFlow (iotflowd)", "version", IOT_VERSION, "description",
                             "IoT device connectivity, telemetry and management API", "endpoints",
                             "health", "/health", "status", "/status", "auth", "/api/v1/auth",
                             "users", "/api/v1/users", "devices", "/api/v1/devices", "groups",
                             "/api/v1/groups", "admin", "/api/v1/admin", "telemetry",
                             "/api/v1/telemetry", "documentation", "docs/openapi.yaml"));
}
