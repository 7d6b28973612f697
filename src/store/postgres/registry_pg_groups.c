/* registry_pg_groups.c — the group and membership ops of the PostgreSQL
 * registry. A group's device_count is counted on every read, never stored,
 * so it cannot drift from the membership rows. */
#include <string.h>

#include "store/postgres/registry_pg_int.h"
#include "util/clock.h"
#include "util/err.h"

static void param_group_fields(struct iot_pg_params *p, const struct iot_group *g)
{
    IOT_PG_PARAM_FIELD(p, g->name);
    IOT_PG_PARAM_FIELD(p, g->description);
    IOT_PG_PARAM_FIELD(p, g->color);
}

int iot_pg_reg_group_create(void *self, struct iot_group *g)
{
    struct iot_pg_reg *r = self;
    if (!g)
        return IOT_EINVAL;
    struct iot_group v = *g;
    iot_reg_group_defaults(&v);
    struct iot_pg_params p = {0};
    iot_pg_param_int(&p, v.user_id);
    param_group_fields(&p, &v);
    iot_pg_param_int(&p, v.created_at);
    iot_pg_param_int(&p, v.updated_at);
    /* an unknown owner is a foreign-key violation: IOT_ENOTFOUND */
    int rc = iot_pg_run(r->pool, ST_GRP_INSERT, &p, 0, iot_pg_reg_read_id, &v.id, NULL);
    if (rc == IOT_OK)
        *g = v;
    return rc;
}

int iot_pg_reg_group_get(void *self, int64_t id, struct iot_group *out)
{
    struct iot_pg_reg *r = self;
    if (!out)
        return IOT_EINVAL;
    struct iot_pg_params p = {0};
    iot_pg_param_int(&p, id);
    return iot_pg_run(r->pool, ST_GRP_BY_ID, &p, IOT_PG_RETRY, iot_pg_reg_read_group, out, NULL);
}

/* name, description, color; updated_at 0 means "now". */
int iot_pg_reg_group_update(void *self, const struct iot_group *g)
{
    if (!g)
        return IOT_EINVAL;
    struct iot_pg_params p = {0};
    iot_pg_param_int(&p, g->id);
    param_group_fields(&p, g);
    iot_pg_param_int(&p, g->updated_at ? g->updated_at : iot_now_ms());
    return iot_pg_reg_update(self, ST_GRP_UPDATE, &p);
}

/* Memberships go with it (ON DELETE CASCADE); the devices stay. */
int iot_pg_reg_group_delete(void *self, int64_t id)
{
    return iot_pg_reg_delete_by_id(self, ST_GRP_DELETE, id);
}

/* user_id 0 lists every user's groups (admin view). */
int iot_pg_reg_group_list(void *self, int64_t user_id, struct iot_page page, iot_group_fn fn,
                          void *ctx, int64_t *total)
{
    struct iot_reg_scan sc = {.kind = IOT_REG_SCAN_GROUPS, .page = page, .total = total,
                              .ctx = ctx, .fn.group = fn, .has_fn = fn != NULL, .uid = user_id,
                              .mask = user_id ? IOT_REG_FILTER_UID : 0};
    return iot_pg_reg_scan(self, &sc);
}

/* One INSERT: a missing group or device is a foreign-key violation
 * (IOT_ENOTFOUND), a second membership a unique violation (IOT_ECONFLICT);
 * the constraints decide atomically, so no existence check can go stale. */
int iot_pg_reg_member_add(void *self, int64_t group_id, int64_t device_id, int64_t *added_at)
{
    struct iot_pg_reg *r = self;
    int64_t now = iot_now_ms();
    struct iot_pg_params p = {0};
    iot_pg_param_int(&p, group_id);
    iot_pg_param_int(&p, device_id);
    iot_pg_param_int(&p, now);
    int rc = iot_pg_run(r->pool, ST_MEM_INSERT, &p, 0, NULL, NULL, NULL);
    if (rc == IOT_OK && added_at)
        *added_at = now;
    return rc;
}

int iot_pg_reg_member_remove(void *self, int64_t group_id, int64_t device_id)
{
    struct iot_pg_params p = {0};
    iot_pg_param_int(&p, group_id);
    iot_pg_param_int(&p, device_id);
    return iot_pg_reg_update(self, ST_MEM_DELETE, &p);
}

/* In membership order; IOT_ENOTFOUND when the group does not exist (an
 * empty group is IOT_OK). */
int iot_pg_reg_group_devices(void *self, int64_t group_id, const struct iot_device_filter *f,
                             struct iot_page page, iot_member_fn fn, void *ctx, int64_t *total)
{
    struct iot_reg_scan sc = {.kind = IOT_REG_SCAN_GROUP_DEVICES, .page = page, .total = total,
                              .ctx = ctx, .fn.member = fn, .has_fn = fn != NULL,
                              .parent = group_id};
    iot_reg_scan_filter(&sc, f, false);
    return iot_pg_reg_scan(self, &sc);
}

/* By group id; IOT_ENOTFOUND when the device does not exist. */
int iot_pg_reg_device_groups(void *self, int64_t device_id, iot_device_group_fn fn, void *ctx)
{
    struct iot_reg_scan sc = {.kind = IOT_REG_SCAN_DEVICE_GROUPS, .page = {.limit = INT64_MAX},
                              .ctx = ctx, .fn.device_group = fn, .has_fn = fn != NULL,
                              .parent = device_id};
    return iot_pg_reg_scan(self, &sc);
}
