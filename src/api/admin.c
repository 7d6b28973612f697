/* admin.c — /api/v1/admin: every device of every user, and statistics.
 * A status set here is recorded as set by an admin: a device switched off
 * here cannot switch itself back on (registry.h iot_device_held_off). */
#include <stdio.h>
#include <string.h>

#include "api/app.h"
#include "api/authn.h"
#include "api/device_common.h"
#include "api/handlers.h"
#include "api/views.h"
#include "core/events.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define ADMIN_PAGE_DEFAULT 1000
#define ADMIN_PAGE_MAX 10000
#define STATUSES_PAGE_DEFAULT 100
#define STATUSES_PAGE_MAX 1000

static int append_device(void *ctx, const struct iot_device *d)
{
    return json_array_append_new(ctx, iot_json_device(d));
}

/* A status a person sets holds against the device: switched off, it stays
 * off (the device may not switch itself back on) until a person switches
 * it on (registry.h iot_device_held_off). */
static void status_set_by_admin(struct iot_device *d)
{
    snprintf(d->status_set_by, sizeof d->status_set_by, IOT_STATUS_BY_ADMIN);
}

void iot_h_admin_devices(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_page page;
    if (!iot_authn_admin(r, &p) ||
        !iot_req_query_int(r, "limit", ADMIN_PAGE_DEFAULT, ADMIN_PAGE_MAX, &page.limit) ||
        !iot_req_query_int(r, "offset", 0, INT64_MAX, &page.offset))
        return;
    struct iot_device_filter f = {.status = iot_req_query(r, "status"),
                                  .device_type = iot_req_query(r, "device_type")};
    json_t *devices = json_array();
    int64_t total = 0;
    int rc = iot_reg_device_list(&iot_app_of(r)->registry, &f, page, append_device, devices, &total);
    if (rc) {
        json_decref(devices);
        iot_reply_store_error(r, rc, "device");
        return;
    }
    iot_reply_json(r, 200,
                   json_pack("{s:s, s:I, s:o, s:{s:I, s:I, s:I}}", "status", "success",
                             "total_devices", (json_int_t)total, "devices", devices, "meta", "total",
                             (json_int_t)total, "limit", (json_int_t)page.limit, "offset",
                             (json_int_t)page.offset));
}

void iot_h_admin_device_get(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_device d;
    if (!iot_authn_admin(r, &p) || !iot_load_device(r, 0, &d))
        return;
    json_t *view = iot_json_device(&d);
    json_object_set_new(view, "api_key", iot_json_masked_key(&d));
    json_object_set_new(view, "is_online", json_boolean(iot_device_online(r, &d)));
    iot_reply_json(r, 200, json_pack("{s:s, s:o}", "status", "success", "device", view));
}

void iot_h_admin_device_update(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_device d;
    if (!iot_authn_admin(r, &p) || !iot_load_device(r, 0, &d))
        return;
    json_t *body = iot_req_json_object(r);
    if (!body)
        return;
    struct iot_device before = d;
    bool sets_status = json_object_get(body, "status") != NULL;
    int set = iot_read_device_fields(r, body, IOT_DEV_ALL, &d);
    json_decref(body);
    if (set > 0 && sets_status)
        status_set_by_admin(&d);
    if (set < 0)
        return;
    if (set == 0) {
        iot_reply_error(r, 400, "No data provided", "send at least one editable device field");
        return;
    }
    d.updated_at = iot_now_ms();
    int rc = iot_device_save(r, &d);
    if (rc == IOT_ECONFLICT) {
        iot_reply_error(r, 409, "Device name already exists", "the owner already has a device named '%s'",
                        d.name);
        return;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "device");
        return;
    }
    iot_device_after_change(r, &before, &d, "admin", true);
    iot_reply_json(r, 200, json_pack("{s:s, s:s, s:o}", "status", "success", "message",
                                     "Device updated successfully", "device", iot_json_device(&d)));
}

void iot_h_admin_device_delete(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_device d;
    if (!iot_authn_admin(r, &p) || !iot_load_device(r, 0, &d))
        return;
    int rc = iot_device_remove(r, &d);
    if (rc) {
        iot_reply_store_error(r, rc, "device");
        return;
    }
    IOT_INFO("device %lld deleted by admin", (long long)d.id);
    iot_events_emit(iot_app_of(r)->events, IOT_EV_DEVICE_DELETED, d.user_id, d.id,
                    json_pack("{s:s, s:s}", "name", d.name, "by", "admin"));
    char message[IOT_DEVICE_NAME_MAX + 64];
    snprintf(message, sizeof message, "Device %s deleted successfully", d.name);
    iot_reply_json(r, 200, json_pack("{s:s, s:s, s:I}", "status", "success", "message", message,
                                     "device_id", (json_int_t)d.id));
}

void iot_h_admin_device_status(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_device d;
    if (!iot_authn_admin(r, &p) || !iot_load_device(r, 0, &d))
        return;
    json_t *body = iot_req_json_object(r);
    if (!body)
        return;
    struct iot_device before = d;
    const char *old_status = before.status;
    int set = iot_read_device_fields(r, body, IOT_DEV_STATUS, &d);
    json_decref(body);
    if (set == 0)
        iot_reply_error(r, 400, "Missing status", "Status field is required");
    if (set <= 0)
        return;
    status_set_by_admin(&d);
    d.updated_at = iot_now_ms();
    int rc = iot_device_save(r, &d);
    if (rc) {
        iot_reply_store_error(r, rc, "device");
        return;
    }
    iot_device_after_change(r, &before, &d, "admin", false);
    char message[96];
    snprintf(message, sizeof message, "Device status updated from %s to %s", old_status, d.status);
    iot_reply_json(r, 200, json_pack("{s:s, s:s, s:I, s:s, s:s}", "status", "success", "message",
                                     message, "device_id", (json_int_t)d.id, "old_status",
                                     old_status, "new_status", d.status));
}

void iot_h_admin_stats(struct iot_req *r)
{
    struct iot_principal p;
    if (!iot_authn_admin(r, &p))
        return;
    struct iot_app *app = iot_app_of(r);
    struct iot_device_stats s;
    int64_t now = iot_now_ms(), users = 0;
    int rc = iot_device_stats_now(app, &s);
    if (rc == IOT_OK)
        rc = iot_reg_user_list(&app->registry, (struct iot_page){0, 0}, NULL, NULL, &users);
    if (rc) {
        iot_reply_store_error(r, rc, "statistics");
        return;
    }
    iot_reply_json(r, 200,
                   json_pack("{s:s, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:I, s:I}", "status",
                             "success", "timestamp", iot_json_time(now), "device_stats", "total",
                             (json_int_t)s.total, "active", (json_int_t)s.active, "inactive",
                             (json_int_t)s.inactive, "maintenance", (json_int_t)s.maintenance,
                             "online", (json_int_t)s.online, "offline",
                             (json_int_t)(s.active - s.online), "total_devices", (json_int_t)s.total,
                             "total_users", (json_int_t)users));
}

struct statuses_ctx {
    struct iot_req *r;
    json_t *devices;
};

static int append_status(void *ctx, const struct iot_device *d)
{
    struct statuses_ctx *c = ctx;
    int64_t last_seen = iot_device_last_seen(c->r, d);
    return json_array_append_new(
        c->devices, json_pack("{s:I, s:s, s:s, s:s, s:b, s:o}", "id", (json_int_t)d->id, "name",
                              d->name, "device_type", d->device_type, "status", d->status,
                              "is_online", iot_device_online(c->r, d), "last_seen",
                              iot_json_time(last_seen)));
}

void iot_h_admin_statuses(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_page page;
    if (!iot_authn_admin(r, &p) ||
        !iot_req_query_int(r, "limit", STATUSES_PAGE_DEFAULT, STATUSES_PAGE_MAX, &page.limit) ||
        !iot_req_query_int(r, "offset", 0, INT64_MAX, &page.offset))
        return;
    struct statuses_ctx c = {r, json_array()};
    int64_t total = 0;
    int rc = iot_reg_device_list(&iot_app_of(r)->registry, &(struct iot_device_filter){0}, page,
                                 append_status, &c, &total);
    if (rc) {
        json_decref(c.devices);
        iot_reply_store_error(r, rc, "device");
        return;
    }
    iot_reply_json(r, 200,
                   json_pack("{s:s, s:o, s:{s:I, s:I, s:I}}", "status", "success", "devices",
                             c.devices, "meta", "total", (json_int_t)total, "limit",
                             (json_int_t)page.limit, "offset", (json_int_t)page.offset));
}
