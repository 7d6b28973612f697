/* registry_sqlite_cleanup.c — the SQLite registry's pending telemetry
 * clean-ups (registry.h, ops version 3): the row a device or user delete
 * records in its own transaction, and the ops that list, finish and
 * postpone them. Its statements live in the store's dynamic slots after
 * the scans' (registry_sqlite_int.h), so their SQL stays in this file. */
#include <stdio.h>
#include <string.h>

#include "store/sqlite/registry_sqlite_int.h"
#include "util/clock.h"
#include "util/err.h"

enum cleanup_stmt { CL_INSERT, CL_LIST, CL_DONE, CL_FAILED, CL__COUNT };
_Static_assert(CL__COUNT == IOT_REG_SQLITE_CLEANUP_SLOTS,
               "IOT_REG_SQLITE_CLEANUP_SLOTS must count the clean-up statements");

static const char *const cleanup_sql[CL__COUNT] = {
    /* ids are never reused: a conflict cannot happen, and would keep the
     * older row (with its attempts) if it did */
    [CL_INSERT] = "INSERT INTO telemetry_cleanups (kind, target_id, created_at, next_at)"
                  " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (kind, target_id) DO NOTHING",
    [CL_LIST] = "SELECT kind, target_id, created_at, attempts, next_at, last_error"
                " FROM telemetry_cleanups WHERE next_at <= ?1"
                " ORDER BY next_at, kind, target_id LIMIT ?2",
    [CL_DONE] = "DELETE FROM telemetry_cleanups WHERE kind = ?1 AND target_id = ?2",
    [CL_FAILED] = "UPDATE telemetry_cleanups SET attempts = attempts + 1, next_at = ?3,"
                  " last_error = ?4 WHERE kind = ?1 AND target_id = ?2",
};

static int copy_sql(const void *arg, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s", (const char *)arg);
    return n > 0 && (size_t)n < size ? IOT_OK : IOT_EINTERNAL;
}

static int cleanup_stmt(struct iot_sqldb_conn *c, enum cleanup_stmt id, sqlite3_stmt **out)
{
    return iot_sqldb_dyn_stmt(c, IOT_REG_SQLITE_SCAN_SLOTS + (int)id, copy_sql, cleanup_sql[id],
                              out);
}

/* Binds ?1 kind and ?2 target_id; IOT_EINVAL for a kind that is none. */
static int bind_target(sqlite3_stmt *st, enum iot_cleanup_kind kind, int64_t target_id)
{
    const char *name = iot_reg_cleanup_kind_name(kind);
    if (!name)
        return IOT_EINVAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, target_id);
    return IOT_OK;
}

int iot_reg_sqlite_cleanup_record(struct iot_sqldb_conn *c, enum iot_cleanup_kind kind,
                                  int64_t target_id)
{
    sqlite3_stmt *st;
    int rc = cleanup_stmt(c, CL_INSERT, &st);
    if (rc)
        return rc;
    rc = bind_target(st, kind, target_id);
    if (rc) {
        iot_sqldb_done(st);
        return rc;
    }
    int64_t now = iot_now_ms();
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now + IOT_CLEANUP_GRACE_MS);
    return iot_sqldb_step_done(st);
}

static void read_cleanup(sqlite3_stmt *st, struct iot_pending_cleanup *out)
{
    memset(out, 0, sizeof *out);
    if (!iot_reg_cleanup_kind_parse((const char *)sqlite3_column_text(st, 0), &out->kind))
        out->kind = 0; /* the CHECK keeps other kinds out */
    out->target_id = sqlite3_column_int64(st, 1);
    out->created_at = sqlite3_column_int64(st, 2);
    out->attempts = sqlite3_column_int64(st, 3);
    out->next_at = sqlite3_column_int64(st, 4);
    const unsigned char *err = sqlite3_column_text(st, 5);
    size_t len = err ? (size_t)sqlite3_column_bytes(st, 5) : 0;
    if (len > IOT_CLEANUP_ERROR_MAX)
        len = IOT_CLEANUP_ERROR_MAX;
    if (len)
        memcpy(out->last_error, err, len);
    out->last_error[len] = '\0';
}

int iot_reg_sqlite_cleanup_list(void *self, int64_t due_by, struct iot_pending_cleanup *out,
                                size_t max, size_t *n)
{
    *n = 0;
    if (!out && max)
        return IOT_EINVAL;
    if (max > IOT_CLEANUP_PAGE_MAX)
        max = IOT_CLEANUP_PAGE_MAX;
    if (max == 0)
        return IOT_OK;
    struct iot_sqldb_conn *c = iot_sqldb_get(self);
    sqlite3_stmt *st;
    int rc = cleanup_stmt(c, CL_LIST, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int64(st, 1, due_by);
        sqlite3_bind_int64(st, 2, (int64_t)max);
        int src;
        while ((src = sqlite3_step(st)) == SQLITE_ROW && *n < max)
            read_cleanup(st, &out[(*n)++]);
        rc = src == SQLITE_ROW || src == SQLITE_DONE ? IOT_OK : iot_sqldb_map(src);
        iot_sqldb_done(st);
    }
    iot_sqldb_put(self, c);
    return rc;
}

/* Runs the done or failed statement on the row; no row: IOT_ENOTFOUND. */
static int change_row(void *self, enum cleanup_stmt id, enum iot_cleanup_kind kind,
                      int64_t target_id, int64_t next_at, const char *error)
{
    struct iot_sqldb_conn *c;
    int rc = iot_sqldb_write_begin(self, &c);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = cleanup_stmt(c, id, &st);
    if (rc == IOT_OK)
        rc = bind_target(st, kind, target_id);
    if (rc == IOT_OK && id == CL_FAILED) {
        sqlite3_bind_int64(st, 3, next_at);
        sqlite3_bind_text(st, 4, error, (int)iot_reg_cleanup_error_len(error), SQLITE_STATIC);
    }
    if (rc == IOT_OK) {
        rc = iot_sqldb_step_done(st);
        if (rc == IOT_OK && sqlite3_changes(iot_sqldb_handle(c)) == 0)
            rc = IOT_ENOTFOUND;
    } else if (st) {
        iot_sqldb_done(st);
    }
    return iot_sqldb_write_end(self, c, rc);
}

int iot_reg_sqlite_cleanup_done(void *self, enum iot_cleanup_kind kind, int64_t target_id)
{
    return change_row(self, CL_DONE, kind, target_id, 0, NULL);
}

int iot_reg_sqlite_cleanup_failed(void *self, enum iot_cleanup_kind kind, int64_t target_id,
                                  int64_t next_at, const char *error)
{
    return change_row(self, CL_FAILED, kind, target_id, next_at, error ? error : "");
}
