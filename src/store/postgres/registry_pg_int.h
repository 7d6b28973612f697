/* registry_pg_int.h — what the files of the PostgreSQL registry share: the
 * handle, the statement ids, the row readers, the paged-scan runner and the
 * ops each file implements for the table in registry_pg.c.
 *
 * Internal to src/store/postgres/registry_pg*.c. The handle is immutable
 * after open; all shared state lives in the pool, which is thread-safe. */
#ifndef IOT_STORE_POSTGRES_REGISTRY_PG_INT_H
#define IOT_STORE_POSTGRES_REGISTRY_PG_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "store/postgres/pg_pool.h"
#include "store/registry.h"
#include "store/registry_scan.h"

/* Fixed statements, prepared on every connection (SQL in registry_pg_sql.c). */
enum reg_stmt {
    ST_PING,
    ST_USER_INSERT,
    ST_USER_BY_ID,
    ST_USER_BY_UID,
    ST_USER_BY_NAME,
    ST_USER_BY_EMAIL,
    ST_USER_UPDATE,
    ST_USER_DELETE,
    ST_DEV_INSERT,
    ST_DEV_BY_ID,
    ST_DEV_BY_KEY,
    ST_DEV_UPDATE,
    ST_DEV_DELETE,
    ST_DEV_TOUCH,
    ST_DEV_STATS,
    ST_DEV_EXISTS,
    ST_GRP_INSERT,
    ST_GRP_BY_ID,
    ST_GRP_UPDATE,
    ST_GRP_DELETE,
    ST_GRP_EXISTS,
    ST_MEM_INSERT,
    ST_MEM_DELETE,
    ST_DEV_BY_DEVICE,
    ST_CLEANUP_LIST,
    ST_CLEANUP_DONE,
    ST_CLEANUP_FAILED,
    ST__FIXED
};

/* Paged scans (kinds and filters in store/registry_scan.h): one statement
 * per kind x filter combination x {rows, count}, built at open and numbered
 * after the fixed ones, so that each filter combination is planned for its
 * own index (an "$1 IS NULL OR col = $1" form would defeat the planner). */
#define SCAN_STMT(kind, mask, count)                                                           \
    (ST__FIXED + (((int)(kind) * IOT_REG_FILTER_COMBOS + (int)(mask)) * 2 + ((count) ? 1 : 0)))
#define REG_N_STMTS (ST__FIXED + IOT_REG_SCAN__COUNT * IOT_REG_FILTER_COMBOS * 2)

/* The backend's handle (the ops' `self`). */
struct iot_pg_reg {
    struct iot_pg_pool *pool;
    struct iot_pg_schema schema;
    const char *sql[REG_N_STMTS]; /* fixed SQL, then the scans (heap, NULL if unused) */
};

/* ---- SQL (registry_pg_sql.c) --------------------------------------------- */

extern const char *const iot_pg_reg_migrations[];
extern const int iot_pg_reg_n_migrations;
/* One entry per migration (NULL: none); see iot_pg_schema.checks. */
extern const char *const iot_pg_reg_migration_checks[];
/* One entry per migration (NULL: none); see iot_pg_schema.notes. */
extern const char *const iot_pg_reg_migration_notes[];
/* Fills r->sql: the fixed statements and the built scan statements. */
int iot_pg_reg_sql_build(struct iot_pg_reg *r);
void iot_pg_reg_sql_free(struct iot_pg_reg *r);
/* Columns of the row readers below, in order. */
#define IOT_PG_USER_COLS 10
#define IOT_PG_DEV_COLS 16
#define IOT_PG_GRP_COLS 8

/* ---- rows (registry_pg_sql.c) ------------------------------------------- */

/* iot_pg_row_fn readers for USER/DEV/GRP columns starting at column 0, and
 * for the int64 id an INSERT … RETURNING id gives. */
void iot_pg_reg_read_id(const PGresult *r, int row, void *out);
void iot_pg_reg_read_user(const PGresult *r, int row, void *out);
void iot_pg_reg_read_device(const PGresult *r, int row, void *out);
void iot_pg_reg_read_group(const PGresult *r, int row, void *out);

/* ---- scans (registry_pg_scan.c) ------------------------------------------ */

/* Runs a paged scan (iot_reg_scan_run): rows by ascending key, delivered in
 * chunks with no connection held, so callbacks may call back into the store. */
int iot_pg_reg_scan(struct iot_pg_reg *r, const struct iot_reg_scan *sc);

/* ---- ops (registry_pg.c, registry_pg_devices.c, registry_pg_groups.c,
 * registry_pg_cleanup.c) ---- */

int iot_pg_reg_device_create(void *self, struct iot_device *d);
int iot_pg_reg_device_get(void *self, int64_t id, struct iot_device *out);
int iot_pg_reg_device_get_by_key_hash(void *self, const char *key_hash, struct iot_device *out);
int iot_pg_reg_device_update(void *self, const struct iot_device *d);
int iot_pg_reg_device_delete(void *self, int64_t id);
int iot_pg_reg_device_list(void *self, const struct iot_device_filter *f, struct iot_page page,
                           iot_device_fn fn, void *ctx, int64_t *total);
int iot_pg_reg_device_touch(void *self, const struct iot_seen *seen, size_t n);
int iot_pg_reg_device_stats(void *self, int64_t online_since, struct iot_device_stats *out);
int iot_pg_reg_device_update_by_device(void *self, const struct iot_device *d, unsigned fields);

int iot_pg_reg_group_create(void *self, struct iot_group *g);
int iot_pg_reg_group_get(void *self, int64_t id, struct iot_group *out);
int iot_pg_reg_group_update(void *self, const struct iot_group *g);
int iot_pg_reg_group_delete(void *self, int64_t id);
int iot_pg_reg_group_list(void *self, int64_t user_id, struct iot_page page, iot_group_fn fn,
                          void *ctx, int64_t *total);
int iot_pg_reg_member_add(void *self, int64_t group_id, int64_t device_id, int64_t *added_at);
int iot_pg_reg_member_remove(void *self, int64_t group_id, int64_t device_id);
int iot_pg_reg_group_devices(void *self, int64_t group_id, const struct iot_device_filter *f,
                             struct iot_page page, iot_member_fn fn, void *ctx, int64_t *total);
int iot_pg_reg_device_groups(void *self, int64_t device_id, iot_device_group_fn fn, void *ctx);

/* ---- pending clean-ups (registry_pg_cleanup.c) ------------------------- */

/* Deletes the device or user `key` with statement `stmt` (ST_DEV_DELETE,
 * ST_USER_DELETE), which records its pending clean-up in the same
 * statement; nothing deleted → IOT_ENOTFOUND. */
int iot_pg_reg_delete_with_cleanup(struct iot_pg_reg *r, int stmt, int64_t key);
int iot_pg_reg_cleanup_list(void *self, int64_t due_by, struct iot_pending_cleanup *out,
                            size_t max, size_t *n);
int iot_pg_reg_cleanup_done(void *self, enum iot_cleanup_kind kind, int64_t target_id);
int iot_pg_reg_cleanup_failed(void *self, enum iot_cleanup_kind kind, int64_t target_id,
                              int64_t next_at, const char *error);

/* Deletes the row `key` with statement `stmt`; 0 rows → IOT_ENOTFOUND. */
int iot_pg_reg_delete_by_id(struct iot_pg_reg *r, int stmt, int64_t key);
/* Runs update statement `stmt`; 0 rows → IOT_ENOTFOUND. */
int iot_pg_reg_update(struct iot_pg_reg *r, int stmt, const struct iot_pg_params *params);

#endif
