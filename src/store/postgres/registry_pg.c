/* registry_pg.c — the registry store on PostgreSQL: open/close, ping, the
 * user ops, and the ops table. Devices, groups and scans are in the
 * registry_pg_*.c files beside it; the pool, reconnection and migrations in
 * pg_pool.c and pg_migrate.c.
 *
 * Writes are single statements in autocommit (atomic on their own, cascades
 * and the pending clean-up of a deleted device or user included) except
 * device_touch, which may need several; none is retried
 * when the connection breaks under it, since it may or may not have
 * committed: the caller gets IOT_EUNAVAILABLE. Reads are retried once. */
#include "store/postgres/registry_pg.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/postgres/registry_pg_int.h"
#include "util/clock.h"
#include "util/err.h"

/* pg_advisory_xact_lock key serialising registry migrations: "iotflow" in
 * ASCII, then 01 for the registry. */
#define REGISTRY_MIGRATION_LOCK INT64_C(0x696f74666c6f7701)

/* ---- shared helpers ------------------------------------------------------ */

int iot_pg_reg_update(struct iot_pg_reg *r, int stmt, const struct iot_pg_params *params)
{
    int64_t changed = 0;
    int rc = iot_pg_run(r->pool, stmt, params, 0, NULL, NULL, &changed);
    return rc == IOT_OK && changed == 0 ? IOT_ENOTFOUND : rc;
}

int iot_pg_reg_delete_by_id(struct iot_pg_reg *r, int stmt, int64_t key)
{
    struct iot_pg_params p = {0};
    iot_pg_param_int(&p, key);
    return iot_pg_reg_update(r, stmt, &p);
}


/* ---- open / close -------------------------------------------------------- */

static void reg_free(struct iot_pg_reg *r)
{
    iot_pg_reg_sql_free(r);
    free(r);
}

static int reg_open(const char *url, void **self)
{
    if (!self)
        return IOT_EINVAL;
    *self = NULL;
    if (!url)
        return IOT_EINVAL;
    if (sodium_init() < 0)
        return IOT_EINTERNAL;
    struct iot_pg_reg *r = calloc(1, sizeof *r);
    if (!r)
        return IOT_ENOMEM;
    int rc = iot_pg_reg_sql_build(r);
    if (rc) {
        reg_free(r);
        return rc;
    }
    r->schema = (struct iot_pg_schema){
        .component = "registry",
        .migrations = iot_pg_reg_migrations,
        .n_migrations = iot_pg_reg_n_migrations,
        .checks = iot_pg_reg_migration_checks,
        .notes = iot_pg_reg_migration_notes,
        .migration_lock = REGISTRY_MIGRATION_LOCK,
        .stmts = r->sql,
        .n_stmts = REG_N_STMTS,
    };
    rc = iot_pg_pool_open(url, &r->schema, &r->pool);
    if (rc) {
        reg_free(r);
        return rc;
    }
    *self = r;
    return IOT_OK;
}

static void reg_close(void *self)
{
    struct iot_pg_reg *r = self;
    if (!r)
        return;
    iot_pg_pool_close(r->pool);
    reg_free(r);
}

static int reg_ping(void *self)
{
    struct iot_pg_reg *r = self;
    return iot_pg_run(r->pool, ST_PING, NULL, IOT_PG_RETRY, NULL, NULL, NULL);
}

/* ---- users --------------------------------------------------------------- */

static void param_user_fields(struct iot_pg_params *p, const struct iot_user *u)
{
    IOT_PG_PARAM_FIELD(p, u->username);
    IOT_PG_PARAM_FIELD(p, u->email);
    IOT_PG_PARAM_FIELD(p, u->password_hash);
    iot_pg_param_bool(p, u->is_active);
    iot_pg_param_bool(p, u->is_admin);
}

static int user_create(void *self, struct iot_user *u)
{
    struct iot_pg_reg *r = self;
    if (!u)
        return IOT_EINVAL;
    struct iot_user v = *u; /* the caller's struct changes only on success */
    iot_reg_user_defaults(&v);
    struct iot_pg_params p = {0};
    IOT_PG_PARAM_FIELD(&p, v.user_id);
    param_user_fields(&p, &v);
    iot_pg_param_int(&p, v.created_at);
    iot_pg_param_int(&p, v.updated_at);
    iot_pg_param_time(&p, v.last_login);
    int rc = iot_pg_run(r->pool, ST_USER_INSERT, &p, 0, iot_pg_reg_read_id, &v.id, NULL);
    if (rc == IOT_OK)
        *u = v;
    return rc;
}

/* A lookup by a text key: the caller's whole string, never truncated to a
 * field's size, so an over-long key matches nothing. */
static int user_get_by_text(struct iot_pg_reg *r, int stmt, const char *key, struct iot_user *out)
{
    if (!out || !key)
        return IOT_EINVAL;
    struct iot_pg_params p = {0};
    iot_pg_param_text(&p, key, strlen(key) + 1);
    return iot_pg_run(r->pool, stmt, &p, IOT_PG_RETRY, iot_pg_reg_read_user, out, NULL);
}

static int user_get_by_id(void *self, int64_t id, struct iot_user *out)
{
    struct iot_pg_reg *r = self;
    if (!out)
        return IOT_EINVAL;
    struct iot_pg_params p = {0};
    iot_pg_param_int(&p, id);
    return iot_pg_run(r->pool, ST_USER_BY_ID, &p, IOT_PG_RETRY, iot_pg_reg_read_user, out, NULL);
}

static int user_get_by_user_id(void *self, const char *user_id, struct iot_user *out)
{
    return user_get_by_text(self, ST_USER_BY_UID, user_id, out);
}

static int user_get_by_username(void *self, const char *username, struct iot_user *out)
{
    return user_get_by_text(self, ST_USER_BY_NAME, username, out);
}

static int user_get_by_email(void *self, const char *email, struct iot_user *out)
{
    return user_get_by_text(self, ST_USER_BY_EMAIL, email, out);
}

/* user_id and created_at are immutable; updated_at 0 means "now". */
static int user_update(void *self, const struct iot_user *u)
{
    if (!u)
        return IOT_EINVAL;
    struct iot_pg_params p = {0};
    iot_pg_param_int(&p, u->id);
    param_user_fields(&p, u);
    iot_pg_param_int(&p, u->updated_at ? u->updated_at : iot_now_ms());
    iot_pg_param_time(&p, u->last_login);
    return iot_pg_reg_update(self, ST_USER_UPDATE, &p);
}

static int user_delete(void *self, int64_t id)
{
    return iot_pg_reg_delete_with_cleanup(self, ST_USER_DELETE, id);
}

static int user_list(void *self, struct iot_page page, iot_user_fn fn, void *ctx, int64_t *total)
{
    struct iot_reg_scan sc = {.kind = IOT_REG_SCAN_USERS, .page = page, .total = total,
                              .ctx = ctx, .fn.user = fn, .has_fn = fn != NULL};
    return iot_pg_reg_scan(self, &sc);
}

const struct iot_registry_ops iot_registry_postgres = {
    .name = "postgres",
    .version = 3,
    .caps = IOT_REG_CAP_TRANSACTIONS,
    .open = reg_open,
    .close = reg_close,
    .ping = reg_ping,
    .user_create = user_create,
    .user_get_by_id = user_get_by_id,
    .user_get_by_user_id = user_get_by_user_id,
    .user_get_by_username = user_get_by_username,
    .user_get_by_email = user_get_by_email,
    .user_update = user_update,
    .user_delete = user_delete,
    .user_list = user_list,
    .device_create = iot_pg_reg_device_create,
    .device_get = iot_pg_reg_device_get,
    .device_get_by_key_hash = iot_pg_reg_device_get_by_key_hash,
    .device_update = iot_pg_reg_device_update,
    .device_delete = iot_pg_reg_device_delete,
    .device_list = iot_pg_reg_device_list,
    .device_touch = iot_pg_reg_device_touch,
    .device_stats = iot_pg_reg_device_stats,
    .group_create = iot_pg_reg_group_create,
    .group_get = iot_pg_reg_group_get,
    .group_update = iot_pg_reg_group_update,
    .group_delete = iot_pg_reg_group_delete,
    .group_list = iot_pg_reg_group_list,
    .member_add = iot_pg_reg_member_add,
    .member_remove = iot_pg_reg_member_remove,
    .group_devices = iot_pg_reg_group_devices,
    .device_groups = iot_pg_reg_device_groups,
    .device_update_by_device = iot_pg_reg_device_update_by_device,
    .cleanup_list = iot_pg_reg_cleanup_list,
    .cleanup_done = iot_pg_reg_cleanup_done,
    .cleanup_failed = iot_pg_reg_cleanup_failed,
};
