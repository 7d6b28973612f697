/* devices.c — /api/v1/devices: registration and the owner's views (user
 * credentials), and the device's own calls (X-API-Key): status, heartbeat,
 * config, credentials. */
#include <stdio.h>
#include <string.h>

#include "api/app.h"
#include "api/authn.h"
#include "api/device_common.h"
#include "api/handlers.h"
#include "api/views.h"
#include "core/events.h"
#include "core/secrets.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define DEVICES_PAGE_DEFAULT 100
#define DEVICES_PAGE_MAX 1000

/* name and device_type are required, as in the original. A new device is
 * inactive until its first use (authn.c). */
static bool read_new_device(struct iot_req *r, json_t *body, struct iot_device *d)
{
    if (iot_field_missing(body, "name") || iot_field_missing(body, "device_type")) {
        iot_reply_error(r, 400, "Missing required fields", "Required fields: name, device_type");
        return false;
    }
    snprintf(d->status, sizeof d->status, "inactive");
    snprintf(d->status_set_by, sizeof d->status_set_by, IOT_STATUS_BY_NEW);
    return iot_read_device_fields(r, body, IOT_DEV_ALL & ~IOT_DEV_STATUS, d) >= 0;
}

/* Gives d a fresh key; returns it in key (caller shows it once). */
static void issue_key(struct iot_device *d, char *key, size_t size)
{
    iot_api_key_new(key, size);
    iot_sha256_hex(key, strlen(key), d->api_key_hash, sizeof d->api_key_hash);
    memcpy(d->api_key_prefix, key, IOT_KEY_PREFIX_LEN);
    d->api_key_prefix[IOT_KEY_PREFIX_LEN] = '\0';
}

void iot_h_device_register(struct iot_req *r)
{
    struct iot_user owner;
    if (!iot_rate_limit_ip(r, "device_register") || !iot_authn_user(r, &owner))
        return;
    json_t *body = iot_req_json_object(r);
    if (!body)
        return;
    struct iot_device d = {.user_id = owner.id};
    bool ok = read_new_device(r, body, &d);
    json_decref(body);
    if (!ok)
        return;
    char key[IOT_API_KEY_LEN + 1];
    issue_key(&d, key, sizeof key);
    int rc = iot_reg_device_create(&iot_app_of(r)->registry, &d);
    if (rc == IOT_ECONFLICT) {
        iot_reply_error(r, 409, "Device name already exists", "you already have a device named '%s'",
                        d.name);
        return;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "device");
        return;
    }
    IOT_INFO("device %lld registered by user %s", (long long)d.id, owner.user_id);
    iot_events_emit(iot_app_of(r)->events, IOT_EV_DEVICE_REGISTERED, owner.id, d.id,
                    json_pack("{s:s, s:s}", "name", d.name, "device_type", d.device_type));
    json_t *view = iot_json_device(&d);
    json_object_set_new(view, "api_key", json_string(key));
    json_object_set_new(view, "owner", json_pack("{s:s, s:s}", "username", owner.username,
                                                 "email", owner.email));
    iot_reply_json(r, 201, json_pack("{s:s, s:o}", "message", "Device registered successfully",
                                     "device", view));
}

void iot_h_device_self_status(struct iot_req *r)
{
    struct iot_device d;
    if (!iot_authn_device(r, IOT_DEVICE_AUTH_ACTIVE, &d))
        return;
    iot_device_seen(r, &d);
    json_t *view = iot_json_device(&d);
    json_object_set_new(view, "is_online", json_boolean(iot_device_online(r, &d)));
    iot_reply_json(r, 200, json_pack("{s:s, s:o}", "status", "success", "device", view));
}

void iot_h_device_heartbeat(struct iot_req *r)
{
    struct iot_device d;
    if (!iot_authn_device(r, IOT_DEVICE_AUTH_ACTIVE, &d))
        return;
    iot_device_seen(r, &d);
    iot_reply_json(r, 200, json_pack("{s:s, s:I, s:o, s:s}", "message", "Heartbeat received",
                                     "device_id", (json_int_t)d.id, "timestamp",
                                     iot_json_time(d.last_seen), "status", "online"));
}

/* A device may change its own status (e.g. leave the maintenance it set
 * itself), except out of a status an admin switched it to. This answers
 * early from the copy at hand; the store decides on its row
 * (iot_authn_device_write_own), since that copy may be a stale cached one. */
static bool own_status_change_ok(struct iot_req *r, const struct iot_device *before,
                                 const struct iot_device *d)
{
    if (strcmp(before->status, d->status) == 0 || !iot_device_held_off(before))
        return true;
    iot_reply_device_held_off(r, before);
    return false;
}

/* The optional fields the body carries (null counts: it clears one); the
 * others keep their stored values, not those of a possibly stale copy. */
static unsigned own_fields_sent(json_t *body)
{
    return (json_object_get(body, "location") ? IOT_REG_OWN_LOCATION : 0) |
           (json_object_get(body, "firmware_version") ? IOT_REG_OWN_FIRMWARE : 0) |
           (json_object_get(body, "hardware_version") ? IOT_REG_OWN_HARDWARE : 0);
}

void iot_h_device_config(struct iot_req *r)
{
    struct iot_device d;
    /* Any status: a device in maintenance must be able to leave it. */
    if (!iot_authn_device(r, IOT_DEVICE_AUTH_ANY, &d))
        return;
    json_t *body = iot_req_json_object(r);
    if (!body)
        return;
    struct iot_device before = d;
    bool has_status = !iot_field_missing(body, "status");
    unsigned sent = own_fields_sent(body);
    int set = has_status ? iot_read_device_fields(r, body, IOT_DEV_STATUS | IOT_DEV_LOCATION |
                                                               IOT_DEV_VERSIONS, &d)
                         : 0;
    json_decref(body);
    if (!has_status) /* required, as in the original */
        iot_reply_error(r, 400, "Missing required fields", "Required fields: status");
    if (set <= 0 || !own_status_change_ok(r, &before, &d))
        return;
    d.updated_at = iot_now_ms();
    bool written = iot_authn_device_write_own(r, &d, sent);
    /* Written or not, drop the cached copy here and on every instance: a
     * new status takes effect on the next request; a refused write showed
     * it was stale. */
    iot_device_forget_key(r, &d);
    if (!written)
        return;
    /* The stored row (status_set_by is the store's to set), best effort. */
    struct iot_device stored;
    if (iot_reg_device_get(&iot_app_of(r)->registry, d.id, &stored) == IOT_OK)
        d = stored;
    iot_device_after_change(r, &before, &d, "device", true);
    iot_reply_json(r, 200, json_pack("{s:s, s:o}", "message", "Device configuration updated successfully",
                                     "device", iot_json_device(&d)));
}

void iot_h_device_credentials(struct iot_req *r)
{
    struct iot_device d;
    if (!iot_authn_device(r, IOT_DEVICE_AUTH_ANY, &d))
        return;
    iot_device_seen(r, &d);
    struct iot_user owner;
    int rc = iot_reg_user_get_by_id(&iot_app_of(r)->registry, d.user_id, &owner);
    if (rc) {
        iot_reply_store_error(r, rc, "device owner");
        return;
    }
    /* The caller proved it holds the key, so echoing it back reveals nothing. */
    iot_reply_json(r, 200, json_pack("{s:s, s:{s:I, s:s, s:s, s:s, s:s, s:I, s:{s:s, s:s}}}",
                                     "status", "success", "device", "id", (json_int_t)d.id, "name",
                                     d.name, "device_type", d.device_type, "status", d.status,
                                     "api_key", iot_req_header(r, "X-API-Key"), "user_id",
                                     (json_int_t)d.user_id, "owner", "username", owner.username,
                                     "user_id", owner.user_id));
}

static int append_device(void *ctx, const struct iot_device *d)
{
    return json_array_append_new(ctx, iot_json_device(d));
}

void iot_h_devices_of_user(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_page page;
    const char *uid = iot_req_param(r, 0);
    if (!iot_authn_self_or_admin(r, uid, &p) ||
        !iot_req_query_int(r, "limit", DEVICES_PAGE_DEFAULT, DEVICES_PAGE_MAX, &page.limit) ||
        !iot_req_query_int(r, "offset", 0, INT64_MAX, &page.offset))
        return;
    struct iot_user u;
    int rc = strlen(uid) == IOT_USER_ID_LEN
                 ? iot_reg_user_get_by_user_id(&iot_app_of(r)->registry, uid, &u)
                 : IOT_ENOTFOUND;
    if (rc) {
        iot_reply_store_error(r, rc, "user");
        return;
    }
    struct iot_device_filter f = {.user_id = u.id, .status = iot_req_query(r, "status"),
                                  .device_type = iot_req_query(r, "device_type")};
    json_t *devices = json_array();
    int64_t total = 0;
    rc = iot_reg_device_list(&iot_app_of(r)->registry, &f, page, append_device, devices, &total);
    if (rc) {
        json_decref(devices);
        iot_reply_store_error(r, rc, "device");
        return;
    }
    size_t returned = json_array_size(devices);
    iot_reply_json(r, 200,
                   json_pack("{s:s, s:s, s:s, s:I, s:o, s:{s:I, s:I, s:I}}", "status", "success",
                             "user_id", u.user_id, "username", u.username, "total_devices",
                             (json_int_t)total, "devices", devices, "meta", "limit",
                             (json_int_t)page.limit, "offset", (json_int_t)page.offset,
                             "returned", (json_int_t)returned));
}

void iot_h_device_status_by_id(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_device d;
    if (!iot_authn_any(r, &p) || !iot_load_owned_device(r, 0, &p, &d))
        return;
    int64_t last_seen = iot_device_last_seen(r, &d);
    iot_reply_json(r, 200,
                   json_pack("{s:s, s:{s:I, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:o, s:o, s:b, s:o}}",
                             "status", "success", "device", "id", (json_int_t)d.id, "name", d.name,
                             "device_type", d.device_type, "status", d.status, "status_set_by",
                             d.status_set_by[0] ? d.status_set_by : IOT_STATUS_BY_NEW, "api_key",
                             iot_json_masked_key(&d), "location", d.location, "firmware_version",
                             d.firmware_version, "hardware_version", d.hardware_version,
                             "created_at", iot_json_time(d.created_at), "updated_at",
                             iot_json_time(d.updated_at), "is_online", iot_device_online(r, &d),
                             "last_seen", iot_json_time(last_seen)));
}

static int append_device_group(void *ctx, const struct iot_group *g, int64_t added_at)
{
    return json_array_append_new(ctx, json_pack("{s:I, s:s, s:s?, s:o}", "id", (json_int_t)g->id,
                                                "name", g->name, "color", g->color[0] ? g->color : NULL,
                                                "added_at", iot_json_time(added_at)));
}

void iot_h_device_groups(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_device d;
    if (!iot_authn_any(r, &p) || !iot_load_owned_device(r, 0, &p, &d))
        return;
    json_t *groups = json_array();
    int rc = iot_reg_device_groups(&iot_app_of(r)->registry, d.id, append_device_group, groups);
    if (rc) {
        json_decref(groups);
        iot_reply_store_error(r, rc, "group");
        return;
    }
    size_t n = json_array_size(groups);
    iot_reply_json(r, 200, json_pack("{s:s, s:I, s:s, s:o, s:I}", "status", "success", "device_id",
                                     (json_int_t)d.id, "device_name", d.name, "groups", groups,
                                     "total_groups", (json_int_t)n));
}

void iot_h_device_rotate_key(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_device d;
    if (!iot_authn_any(r, &p) || !iot_load_owned_device(r, 0, &p, &d))
        return;
    struct iot_device old = d;
    char key[IOT_API_KEY_LEN + 1];
    issue_key(&d, key, sizeof key);
    d.updated_at = iot_now_ms();
    int rc = iot_device_save(r, &d);
    if (rc) {
        iot_reply_store_error(r, rc, "device");
        return;
    }
    iot_device_forget_key(r, &old); /* the old key stops working now */
    IOT_INFO("device %lld: API key rotated", (long long)d.id);
    iot_events_emit(iot_app_of(r)->events, IOT_EV_DEVICE_KEY_ROTATED, d.user_id, d.id,
                    json_pack("{s:s}", "by", p.admin ? "admin" : "owner"));
    iot_reply_json(r, 200, json_pack("{s:s, s:s, s:I, s:s}", "status", "success", "message",
                                     "API key rotated; the previous key no longer works",
                                     "device_id", (json_int_t)d.id, "api_key", key));
}
