/* routes.c — the whole HTTP API in one table: method, path, handler. */
#include "api/app.h"
#include "api/handlers.h"
#include "api/handlers_alerts.h"
#include "api/handlers_events.h"
#include "api/web.h"

#define V1 "/api/v1"

#include "api/handlers_docs.h" /* device configurations, metadata, preferences */
#include "api/handlers_metrics.h" /* GET /metrics */

const struct iot_route iot_api_routes[] = {
    {"GET", "/", iot_h_root},
    /* The dashboard (api/web.c): "/" answers it to browsers, the JSON
     * description to everyone else; /api/v1 the JSON always. */
    {"GET", V1, iot_h_root},
    {"GET", "/ui/{}", iot_h_web_asset},
    {"GET", "/ui/js/{}", iot_h_web_asset},
    {"GET", "/ui/js/pages/{}", iot_h_web_asset},
    {"GET", "/health", iot_h_health},
    {"GET", "/status", iot_h_status},
    {"GET", "/metrics", iot_h_metrics},

    {"POST", V1 "/auth/register", iot_h_auth_register},
    {"POST", V1 "/auth/login", iot_h_auth_login},
    {"POST", V1 "/auth/logout", iot_h_auth_logout},

    {"GET", V1 "/users", iot_h_user_list},
    {"GET", V1 "/users/{}", iot_h_user_get},
    {"PUT", V1 "/users/{}", iot_h_user_update},
    {"DELETE", V1 "/users/{}", iot_h_user_delete},
    {"PATCH", V1 "/users/{}/activate", iot_h_user_activate},
    {"PATCH", V1 "/users/{}/deactivate", iot_h_user_deactivate},

    {"POST", V1 "/devices/register", iot_h_device_register},
    {"GET", V1 "/devices/status", iot_h_device_self_status},
    {"POST", V1 "/devices/heartbeat", iot_h_device_heartbeat},
    {"PUT", V1 "/devices/config", iot_h_device_config},
    {"GET", V1 "/devices/credentials", iot_h_device_credentials},
    {"GET", V1 "/devices/user/{}", iot_h_devices_of_user},
    {"GET", V1 "/devices/{}/status", iot_h_device_status_by_id},
    {"GET", V1 "/devices/{}/groups", iot_h_device_groups},
    {"POST", V1 "/devices/{}/rotate-key", iot_h_device_rotate_key},
    /* documents: configurations, metadata and search, preferences */
    {"GET", V1 "/devices/config", iot_h_device_own_config_get},
    {"GET", V1 "/devices/{}/config", iot_h_device_config_get},
    {"PUT", V1 "/devices/{}/config", iot_h_device_config_put},
    {"GET", V1 "/devices/{}/config/history", iot_h_device_config_history},
    {"PUT", V1 "/groups/{}/config", iot_h_group_config_put},
    {"GET", V1 "/devices/{}/metadata", iot_h_device_metadata_get},
    {"PUT", V1 "/devices/{}/metadata", iot_h_device_metadata_put},
    {"POST", V1 "/devices/{}/tags/{}", iot_h_device_tag_add},
    {"DELETE", V1 "/devices/{}/tags/{}", iot_h_device_tag_remove},
    {"GET", V1 "/devices/search", iot_h_device_search},
    {"GET", V1 "/users/{}/preferences", iot_h_user_prefs_get},
    {"PUT", V1 "/users/{}/preferences", iot_h_user_prefs_put},

    {"POST", V1 "/telemetry", iot_h_telemetry_post},
    {"POST", V1 "/telemetry/batch", iot_h_telemetry_batch},
    {"GET", V1 "/telemetry/status", iot_h_telemetry_status},
    {"GET", V1 "/telemetry/user/{}", iot_h_telemetry_user},
    {"GET", V1 "/telemetry/{}", iot_h_telemetry_history},
    {"DELETE", V1 "/telemetry/{}", iot_h_telemetry_delete},
    {"GET", V1 "/telemetry/{}/latest", iot_h_telemetry_latest},
    {"GET", V1 "/telemetry/{}/aggregated", iot_h_telemetry_aggregated},
    {"GET", V1 "/telemetry/{}/measurements", iot_h_telemetry_measurements},
    {"GET", V1 "/telemetry/{}/stream", iot_h_telemetry_stream},
    /* The event log and analytics reports (api/events.c, api/reports.c). */
    {"GET", V1 "/events", iot_h_events_list},
    {"GET", V1 "/events/summary", iot_h_events_summary},
    {"POST", V1 "/devices/{}/reports", iot_h_report_create},
    {"GET", V1 "/devices/{}/reports", iot_h_reports_of_device},
    {"GET", V1 "/reports/{}", iot_h_report_get},
    {"POST", V1 "/admin/reports/daily", iot_h_reports_daily_run},

    {"POST", V1 "/groups", iot_h_group_create},
    {"GET", V1 "/groups", iot_h_group_list},
    {"GET", V1 "/groups/{}", iot_h_group_get},
    {"PUT", V1 "/groups/{}", iot_h_group_update},
    {"DELETE", V1 "/groups/{}", iot_h_group_delete},
    {"POST", V1 "/groups/{}/devices", iot_h_group_add_device},
    {"GET", V1 "/groups/{}/devices", iot_h_group_devices},
    {"POST", V1 "/groups/{}/devices/bulk", iot_h_group_bulk_add},
    {"DELETE", V1 "/groups/{}/devices/{}", iot_h_group_remove_device},

    {"POST", V1 "/alert-rules", iot_h_alert_rule_create},
    {"GET", V1 "/alert-rules", iot_h_alert_rule_list},
    {"GET", V1 "/alert-rules/{}", iot_h_alert_rule_get},
    {"PUT", V1 "/alert-rules/{}", iot_h_alert_rule_update},
    {"DELETE", V1 "/alert-rules/{}", iot_h_alert_rule_delete},
    {"GET", V1 "/alerts", iot_h_alert_list},
    {"POST", V1 "/alerts", iot_h_alert_create},
    {"GET", V1 "/alerts/summary", iot_h_alert_summary},
    {"GET", V1 "/alerts/stream", iot_h_alert_stream},
    {"GET", V1 "/alerts/{}", iot_h_alert_get},
    {"POST", V1 "/alerts/{}/acknowledge", iot_h_alert_acknowledge},
    {"POST", V1 "/alerts/{}/resolve", iot_h_alert_resolve},

    {"GET", V1 "/admin/devices", iot_h_admin_devices},
    {"GET", V1 "/admin/devices/statuses", iot_h_admin_statuses},
    {"GET", V1 "/admin/devices/{}", iot_h_admin_device_get},
    {"PUT", V1 "/admin/devices/{}", iot_h_admin_device_update},
    {"DELETE", V1 "/admin/devices/{}", iot_h_admin_device_delete},
    {"PUT", V1 "/admin/devices/{}/status", iot_h_admin_device_status},
    {"GET", V1 "/admin/stats", iot_h_admin_stats},
};

const size_t iot_api_n_routes = sizeof iot_api_routes / sizeof iot_api_routes[0];
