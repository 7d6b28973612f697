/* groups.c — /api/v1/groups: a user's device groups and their members. */
#include <stdio.h>
#include <string.h>

#include "api/app.h"
#include "api/authn.h"
#include "api/device_common.h"
#include "api/handlers.h"
#include "api/views.h"
#include "core/alerting.h"
#include "util/clock.h"
#include "util/err.h"

#define GROUPS_PAGE_DEFAULT 100
#define GROUPS_PAGE_MAX 1000
#define BULK_MAX 1000
/* Members listed inline (include_devices) per response: a user may put any
 * number of devices in a group, and a list of 1000 groups would multiply
 * them. Past this many, a group lists the members that fit and says
 * "devices_truncated": true; GET /groups/{id}/devices pages through all. */
#define INLINE_MEMBERS_MAX 1000

static bool color_valid(const char *c)
{
    if (c[0] == '\0')
        return true; /* unset */
    if (strlen(c) != IOT_COLOR_LEN || c[0] != '#')
        return false;
    for (int i = 1; i < IOT_COLOR_LEN; i++) {
        char x = c[i];
        if (!((x >= '0' && x <= '9') || (x >= 'a' && x <= 'f') || (x >= 'A' && x <= 'F')))
            return false;
    }
    return true;
}

/* Reads name/description/color into g; returns fields set or IOT_EINVAL. */
static int read_group_fields(struct iot_req *r, json_t *body, struct iot_group *g)
{
    int name = iot_field_text(r, body, "name", 1, IOT_GROUP_NAME_MAX, g->name, sizeof g->name);
    if (name < 0)
        return name;
    int desc = iot_field_text(r, body, "description", 0, IOT_DESCRIPTION_MAX, g->description,
                              sizeof g->description);
    if (desc < 0)
        return desc;
    char color[32] = "";
    int col = iot_field_text(r, body, "color", 0, sizeof color - 1, color, sizeof color);
    if (col < 0)
        return col;
    if (col) {
        if (!color_valid(color)) {
            iot_reply_error(r, 400, "Validation error", "'color' must look like #RRGGBB");
            return IOT_EINVAL;
        }
        memcpy(g->color, color, sizeof g->color);
    }
    return name + desc + col;
}

static void reply_group_conflict(struct iot_req *r, const struct iot_group *g)
{
    iot_reply_error(r, 409, "Group with this name already exists", "you already have a group named '%s'",
                    g->name);
}

void iot_h_group_create(struct iot_req *r)
{
    struct iot_user u;
    if (!iot_authn_user(r, &u))
        return;
    json_t *body = iot_req_json_object(r);
    if (!body)
        return;
    struct iot_group g = {.user_id = u.id};
    json_t *name = json_object_get(body, "name");
    bool missing = !name || json_is_null(name) || (json_is_string(name) && !json_string_length(name));
    int set = missing ? IOT_EINVAL : read_group_fields(r, body, &g);
    json_decref(body);
    if (missing)
        iot_reply_error(r, 400, "Group name is required", "'name' is required");
    if (set < 0)
        return;
    int rc = iot_reg_group_create(&iot_app_of(r)->registry, &g);
    if (rc == IOT_ECONFLICT) {
        reply_group_conflict(r, &g);
        return;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "group");
        return;
    }
    iot_reply_json(r, 201, json_pack("{s:s, s:s, s:o}", "status", "success", "message",
                                     "Group created successfully", "group", iot_json_group(&g)));
}

static int append_member(void *ctx, const struct iot_device *d, int64_t added_at)
{
    json_t *view = iot_json_device(d);
    json_object_set_new(view, "added_to_group_at", iot_json_time(added_at));
    return json_array_append_new(ctx, view);
}

/* The group's JSON, with its devices when asked: at most *budget of them,
 * which it uses up. */
static json_t *group_view(struct iot_req *r, const struct iot_group *g, bool with_devices,
                          int64_t *budget, int *rc)
{
    json_t *view = iot_json_group(g);
    *rc = IOT_OK;
    if (!with_devices)
        return view;
    json_t *devices = json_array();
    struct iot_page some = {.limit = *budget};
    if (*budget > 0)
        *rc = iot_reg_group_devices(&iot_app_of(r)->registry, g->id, NULL, some, append_member,
                                    devices, NULL);
    int64_t listed = (int64_t)json_array_size(devices);
    *budget -= listed;
    json_object_set_new(view, "devices", devices);
    if (g->device_count > listed)
        json_object_set_new(view, "devices_truncated", json_true());
    return view;
}

struct list_ctx {
    struct iot_req *r;
    json_t *groups;
    bool with_devices;
    int rc;
    int64_t members_left; /* INLINE_MEMBERS_MAX for the whole list */
};

static int append_group(void *ctx, const struct iot_group *g)
{
    struct list_ctx *c = ctx;
    json_array_append_new(c->groups, group_view(c->r, g, c->with_devices, &c->members_left, &c->rc));
    return c->rc;
}

void iot_h_group_list(struct iot_req *r)
{
    struct iot_user u;
    struct iot_page page;
    if (!iot_authn_user(r, &u) ||
        !iot_req_query_int(r, "limit", GROUPS_PAGE_DEFAULT, GROUPS_PAGE_MAX, &page.limit) ||
        !iot_req_query_int(r, "offset", 0, INT64_MAX, &page.offset))
        return;
    struct list_ctx c = {r, json_array(), iot_req_query_bool(r, "include_devices", false), IOT_OK,
                         INLINE_MEMBERS_MAX};
    int64_t total = 0;
    int rc = iot_reg_group_list(&iot_app_of(r)->registry, u.id, page, append_group, &c, &total);
    if (rc || c.rc) {
        json_decref(c.groups);
        iot_reply_store_error(r, rc ? rc : c.rc, "group");
        return;
    }
    iot_reply_json(r, 200,
                   json_pack("{s:s, s:o, s:{s:I, s:I, s:I}}", "status", "success", "groups",
                             c.groups, "meta", "total", (json_int_t)total, "limit",
                             (json_int_t)page.limit, "offset", (json_int_t)page.offset));
}

void iot_h_group_get(struct iot_req *r)
{
    struct iot_user u;
    struct iot_group g;
    if (!iot_authn_user(r, &u) || !iot_load_owned_group(r, &u, &g))
        return;
    int rc;
    int64_t members = INLINE_MEMBERS_MAX;
    json_t *view = group_view(r, &g, iot_req_query_bool(r, "include_devices", true), &members, &rc);
    if (rc) {
        json_decref(view);
        iot_reply_store_error(r, rc, "group");
        return;
    }
    iot_reply_json(r, 200, json_pack("{s:s, s:o}", "status", "success", "group", view));
}

void iot_h_group_update(struct iot_req *r)
{
    struct iot_user u;
    struct iot_group g;
    if (!iot_authn_user(r, &u) || !iot_load_owned_group(r, &u, &g))
        return;
    json_t *body = iot_req_json_object(r);
    if (!body)
        return;
    int set = read_group_fields(r, body, &g);
    json_decref(body);
    if (set < 0)
        return;
    if (set == 0) {
        iot_reply_error(r, 400, "Request body required", "send at least one of name, description, color");
        return;
    }
    g.updated_at = iot_now_ms();
    int rc = iot_reg_group_update(&iot_app_of(r)->registry, &g);
    if (rc == IOT_ECONFLICT) {
        reply_group_conflict(r, &g);
        return;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "group");
        return;
    }
    iot_reply_json(r, 200, json_pack("{s:s, s:s, s:o}", "status", "success", "message",
                                     "Group updated successfully", "group", iot_json_group(&g)));
}

void iot_h_group_delete(struct iot_req *r)
{
    struct iot_user u;
    struct iot_group g;
    if (!iot_authn_user(r, &u) || !iot_load_owned_group(r, &u, &g))
        return;
    int rc = iot_reg_group_delete(&iot_app_of(r)->registry, g.id);
    if (rc) {
        iot_reply_store_error(r, rc, "group");
        return;
    }
    iot_alerting_user_changed(iot_app_of(r)->alerting, u.id); /* its group rules */
    iot_reply_json(r, 200, json_pack("{s:s, s:s++}", "status", "success", "message", "Group '",
                                     g.name, "' deleted successfully"));
}

void iot_h_group_add_device(struct iot_req *r)
{
    struct iot_user u;
    struct iot_group g;
    if (!iot_authn_user(r, &u) || !iot_load_owned_group(r, &u, &g))
        return;
    json_t *body = iot_req_json_object(r);
    if (!body)
        return;
    int64_t device_id = 0;
    int rc = iot_field_id(r, body, "device_id", &device_id);
    json_decref(body);
    if (rc == IOT_FIELD_ABSENT)
        iot_reply_error(r, 400, "device_id is required", "send {\"device_id\": <id>}");
    if (rc <= 0)
        return;
    struct iot_device d;
    rc = iot_reg_device_get(&iot_app_of(r)->registry, device_id, &d);
    if (rc == IOT_OK && d.user_id != u.id) {
        iot_reply_error(r, 403, "Forbidden", "this device does not belong to you");
        return;
    }
    int64_t added_at = 0;
    if (rc == IOT_OK)
        rc = iot_reg_member_add(&iot_app_of(r)->registry, g.id, device_id, &added_at);
    if (rc == IOT_ECONFLICT) {
        iot_reply_error(r, 409, "Device already in group", "device %lld is already in this group",
                        (long long)device_id);
        return;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "device");
        return;
    }
    iot_alerting_user_changed(iot_app_of(r)->alerting, u.id); /* its group rules */
    iot_reply_json(r, 201, json_pack("{s:s, s:s, s:{s:I, s:I, s:o}}", "status", "success", "message",
                                     "Device added to group successfully", "membership", "group_id",
                                     (json_int_t)g.id, "device_id", (json_int_t)device_id,
                                     "added_at", iot_json_time(added_at)));
}

void iot_h_group_remove_device(struct iot_req *r)
{
    struct iot_user u;
    struct iot_group g;
    int64_t device_id;
    if (!iot_authn_user(r, &u) || !iot_load_owned_group(r, &u, &g))
        return;
    int rc = iot_parse_id(iot_req_param(r, 1), &device_id)
                 ? iot_reg_member_remove(&iot_app_of(r)->registry, g.id, device_id)
                 : IOT_ENOTFOUND;
    if (rc == IOT_ENOTFOUND) {
        iot_reply_error(r, 404, "Device not in group", "device %s is not in this group",
                        iot_req_param(r, 1));
        return;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "membership");
        return;
    }
    iot_alerting_user_changed(iot_app_of(r)->alerting, u.id); /* its group rules */
    iot_reply_json(r, 200, json_pack("{s:s, s:s}", "status", "success", "message",
                                     "Device removed from group successfully"));
}

void iot_h_group_devices(struct iot_req *r)
{
    struct iot_user u;
    struct iot_group g;
    struct iot_page page;
    if (!iot_authn_user(r, &u) || !iot_load_owned_group(r, &u, &g) ||
        !iot_req_query_int(r, "limit", GROUPS_PAGE_DEFAULT, GROUPS_PAGE_MAX, &page.limit) ||
        !iot_req_query_int(r, "offset", 0, INT64_MAX, &page.offset))
        return;
    struct iot_device_filter f = {.status = iot_req_query(r, "status"),
                                  .device_type = iot_req_query(r, "device_type")};
    json_t *devices = json_array();
    int64_t total = 0;
    int rc = iot_reg_group_devices(&iot_app_of(r)->registry, g.id, &f, page, append_member, devices,
                                   &total);
    if (rc) {
        json_decref(devices);
        iot_reply_store_error(r, rc, "group");
        return;
    }
    iot_reply_json(r, 200,
                   json_pack("{s:s, s:I, s:s, s:o, s:{s:I, s:I, s:I}}", "status", "success",
                             "group_id", (json_int_t)g.id, "group_name", g.name, "devices", devices,
                             "meta", "total", (json_int_t)total, "limit", (json_int_t)page.limit,
                             "offset", (json_int_t)page.offset));
}

/* Adds one device of a bulk request; false when it is skipped. */
static bool bulk_add_one(struct iot_req *r, const struct iot_user *u, const struct iot_group *g,
                         json_t *item, int *err)
{
    struct iot_registry *reg = &iot_app_of(r)->registry;
    struct iot_device d;
    int64_t id;
    if (!iot_json_id(item, &id))
        return false;
    int rc = iot_reg_device_get(reg, id, &d);
    if (rc == IOT_OK && d.user_id == u->id)
        rc = iot_reg_member_add(reg, g->id, d.id, NULL);
    else if (rc == IOT_OK)
        return false; /* someone else's device */
    if (rc == IOT_OK)
        return true;
    if (rc != IOT_ENOTFOUND && rc != IOT_ECONFLICT)
        *err = rc;
    return false;
}

void iot_h_group_bulk_add(struct iot_req *r)
{
    struct iot_user u;
    struct iot_group g;
    if (!iot_authn_user(r, &u) || !iot_load_owned_group(r, &u, &g))
        return;
    json_t *body = iot_req_json_object(r);
    if (!body)
        return;
    json_t *ids = json_object_get(body, "device_ids");
    if (!json_is_array(ids) || json_array_size(ids) > BULK_MAX) {
        json_decref(body);
        iot_reply_error(r, 400, "device_ids array is required",
                        "'device_ids' must be an array of at most %d device ids", BULK_MAX);
        return;
    }
    json_t *added = json_array(), *skipped = json_array();
    int err = IOT_OK;
    size_t i;
    json_t *item;
    json_array_foreach(ids, i, item) {
        bool ok = bulk_add_one(r, &u, &g, item, &err);
        if (err)
            break;
        json_array_append(ok ? added : skipped, item);
    }
    json_decref(body);
    if (err) {
        json_decref(added);
        json_decref(skipped);
        iot_reply_store_error(r, err, "membership");
        return;
    }
    size_t n_added = json_array_size(added), n_skipped = json_array_size(skipped);
    if (n_added)
        iot_alerting_user_changed(iot_app_of(r)->alerting, u.id); /* its group rules */
    char message[64];
    snprintf(message, sizeof message, "%zu device%s added to group", n_added,
             n_added == 1 ? "" : "s");
    iot_reply_json(r, 201, json_pack("{s:s, s:s, s:I, s:I, s:{s:o, s:o}}", "status", "success",
                                     "message", message, "added", (json_int_t)n_added, "skipped",
                                     (json_int_t)n_skipped, "details", "added_device_ids", added,
                                     "skipped_device_ids", skipped));
}
