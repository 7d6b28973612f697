/* registry_sqlite.c — the registry store on SQLite: statements and the ops.
 * The schema's migrations are in registry_sqlite_schema.c; pooling,
 * transactions and running migrations are in sqlite_db.c.
 *
 * Scans (the paged listings) copy rows out in chunks and run the caller's
 * callback with no connection held, so a callback may call back into the
 * store, even to write, without deadlocking on an exhausted pool; later
 * chunks continue from the last key seen (keyset), not by OFFSET. */
#include "store/sqlite/registry_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/registry_scan.h"
#include "store/sqlite/registry_sqlite_int.h"
#include "store/sqlite/sqlite_db.h"
#include "util/clock.h"
#include "util/err.h"

enum { SCAN_CHUNK = 32 }; /* rows copied out per connection hold during scans */

/* ---- statements -------------------------------------------------------- */

#define USER_COLS                                                                              \
    "u.id, u.user_id, u.username, u.email, u.password_hash, u.is_active, u.is_admin, "        \
    "u.created_at, u.updated_at, u.last_login"
#define DEV_COLS                                                                               \
    "d.id, d.user_id, d.name, d.description, d.device_type, d.status, d.location, "           \
    "d.firmware_version, d.hardware_version, d.api_key_hash, d.api_key_prefix, "              \
    "d.created_at, d.updated_at, d.last_seen, d.status_set_by, "                              \
    "(SELECT o.is_active FROM users o WHERE o.id = d.user_id)"
#define GRP_COLS                                                                               \
    "g.id, g.user_id, g.name, g.description, g.color, g.created_at, g.updated_at, "           \
    "(SELECT COUNT(*) FROM device_group_members c WHERE c.group_id = g.id)"
#define N_USER_COLS 10
#define N_DEV_COLS 16
#define N_GRP_COLS 8

enum stmt_id {
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
    ST_DEV_BY_DEVICE,
    ST_GRP_INSERT,
    ST_GRP_BY_ID,
    ST_GRP_UPDATE,
    ST_GRP_DELETE,
    ST_GRP_EXISTS,
    ST_MEM_INSERT,
    ST_MEM_DELETE,
    ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
    [ST_PING] = "SELECT 1",
    [ST_USER_INSERT] = "INSERT INTO users (user_id, username, email, password_hash, is_active,"
                       " is_admin, created_at, updated_at, last_login)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_USER_BY_ID] = "SELECT " USER_COLS " FROM users u WHERE u.id = ?1",
    [ST_USER_BY_UID] = "SELECT " USER_COLS " FROM users u WHERE u.user_id = ?1",
    /* lower() on both sides: the expression the nocase indexes are on */
    [ST_USER_BY_NAME] = "SELECT " USER_COLS " FROM users u WHERE lower(u.username) = lower(?1)",
    [ST_USER_BY_EMAIL] = "SELECT " USER_COLS " FROM users u WHERE lower(u.email) = lower(?1)",
    [ST_USER_UPDATE] = "UPDATE users SET username = ?2, email = ?3, password_hash = ?4,"
                       " is_active = ?5, is_admin = ?6, updated_at = ?7, last_login = ?8"
                       " WHERE id = ?1",
    [ST_USER_DELETE] = "DELETE FROM users WHERE id = ?1",
    [ST_DEV_INSERT] = "INSERT INTO devices (user_id, name, description, device_type, status,"
                      " location, firmware_version, hardware_version, api_key_hash,"
                      " api_key_prefix, status_set_by, created_at, updated_at, last_seen)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [ST_DEV_BY_ID] = "SELECT " DEV_COLS " FROM devices d WHERE d.id = ?1",
    [ST_DEV_BY_KEY] = "SELECT " DEV_COLS " FROM devices d WHERE d.api_key_hash = ?1",
    /* last_seen only moves forward here too: a read-modify-write of the
     * device must not undo touches that landed in between. An empty
     * status_set_by leaves the stored one. */
    [ST_DEV_UPDATE] = "UPDATE devices SET name = ?2, description = ?3, device_type = ?4,"
                      " status = ?5, location = ?6, firmware_version = ?7,"
                      " hardware_version = ?8, api_key_hash = ?9, api_key_prefix = ?10,"
                      " status_set_by = COALESCE(NULLIF(?11, ''), status_set_by), updated_at = ?12, last_seen = CASE WHEN ?13 IS"
                      " NOT NULL AND (last_seen IS NULL OR last_seen < ?13) THEN ?13"
                      " ELSE last_seen END WHERE id = ?1",
    [ST_DEV_DELETE] = "DELETE FROM devices WHERE id = ?1",
    [ST_DEV_TOUCH] = "UPDATE devices SET last_seen = ?2"
                     " WHERE id = ?1 AND (last_seen IS NULL OR last_seen < ?2)",
    [ST_DEV_STATS] = "SELECT COUNT(*), SUM(status = 'active'), SUM(status = 'inactive'),"
                     " SUM(status = 'maintenance'),"
                     " SUM(status = 'active' AND last_seen >= ?1) FROM devices",
    [ST_DEV_EXISTS] = "SELECT 1 FROM devices WHERE id = ?1",
    /* device_update_by_device: the WHERE refuses a status change out of
     * iot_device_held_off, judged on the stored row; status_set_by reads
     * the old status (SET sees the row as it was); NULL: column unchanged. */
    [ST_DEV_BY_DEVICE] = "UPDATE devices SET status_set_by = CASE WHEN status = ?2"
                         " THEN status_set_by ELSE 'device' END, status = ?2,"
                         " location = COALESCE(?3, location),"
                         " firmware_version = COALESCE(?4, firmware_version),"
                         " hardware_version = COALESCE(?5, hardware_version), updated_at = ?6"
                         " WHERE id = ?1 AND (status = ?2 OR status = 'active'"
                         " OR status_set_by <> 'admin')",
    [ST_GRP_INSERT] = "INSERT INTO device_groups (user_id, name, description, color,"
                      " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_GRP_BY_ID] = "SELECT " GRP_COLS " FROM device_groups g WHERE g.id = ?1",
    [ST_GRP_UPDATE] = "UPDATE device_groups SET name = ?2, description = ?3, color = ?4,"
                      " updated_at = ?5 WHERE id = ?1",
    [ST_GRP_DELETE] = "DELETE FROM device_groups WHERE id = ?1",
    [ST_GRP_EXISTS] = "SELECT 1 FROM device_groups WHERE id = ?1",
    [ST_MEM_INSERT] = "INSERT INTO device_group_members (group_id, device_id, added_at)"
                      " VALUES (?1, ?2, ?3)",
    [ST_MEM_DELETE] = "DELETE FROM device_group_members WHERE group_id = ?1 AND device_id = ?2",
};

/* Scans: paged listings (kinds and filters in store/registry_scan.h). The
 * SQL has a %s where optional filter clauses go, so that each filter
 * combination is its own statement and can use its index (a "? IS NULL OR
 * col = ?" form defeats the planner). Every row query ends with two extra
 * columns: added_at (or 0) and the keyset cursor. */

struct scan_sql {
    const char *rows;
    const char *count;
    int parent;        /* ST_* finding the parent row (else IOT_ENOTFOUND), or -1 */
    const char *owner; /* alias whose user_id IOT_REG_FILTER_UID filters */
};

#define PAGE_SQL " LIMIT :limit OFFSET :offset"
static const struct scan_sql scan_sql[IOT_REG_SCAN__COUNT] = {
    [IOT_REG_SCAN_USERS] = {
        .rows = "SELECT " USER_COLS ", 0, u.id FROM users u WHERE u.id > :after%s"
                " ORDER BY u.id" PAGE_SQL,
        .count = "SELECT COUNT(*) FROM users u WHERE 1%s",
        .parent = -1,
        .owner = "u"},
    [IOT_REG_SCAN_DEVICES] = {
        .rows = "SELECT " DEV_COLS ", 0, d.id FROM devices d WHERE d.id > :after%s"
                " ORDER BY d.id" PAGE_SQL,
        .count = "SELECT COUNT(*) FROM devices d WHERE 1%s",
        .parent = -1,
        .owner = "d"},
    [IOT_REG_SCAN_GROUPS] = {
        .rows = "SELECT " GRP_COLS ", 0, g.id FROM device_groups g WHERE g.id > :after%s"
                " ORDER BY g.id" PAGE_SQL,
        .count = "SELECT COUNT(*) FROM device_groups g WHERE 1%s",
        .parent = -1,
        .owner = "g"},
    [IOT_REG_SCAN_GROUP_DEVICES] = {
        .rows = "SELECT " DEV_COLS ", m.added_at, m.id FROM device_group_members m"
                " JOIN devices d ON d.id = m.device_id"
                " WHERE m.group_id = :parent AND m.id > :after%s ORDER BY m.id" PAGE_SQL,
        .count = "SELECT COUNT(*) FROM device_group_members m JOIN devices d"
                 " ON d.id = m.device_id WHERE m.group_id = :parent%s",
        .parent = ST_GRP_EXISTS,
        .owner = "d"},
    [IOT_REG_SCAN_DEVICE_GROUPS] = {
        .rows = "SELECT " GRP_COLS ", m.added_at, g.id FROM device_group_members m"
                " JOIN device_groups g ON g.id = m.group_id"
                " WHERE m.device_id = :parent AND g.id > :after%s ORDER BY g.id" PAGE_SQL,
        .count = "SELECT COUNT(*) FROM device_group_members m"
                 " WHERE m.device_id = :parent%s",
        .parent = ST_DEV_EXISTS,
        .owner = "g"},
};

/* ---- glue to sqlite_db ------------------------------------------------- */

/* Dynamic statement slots: scan kind x filter combination x {rows, count};
 * the clean-ups' come after them (registry_sqlite_int.h). */
#define DYN_SLOT(k, mask, count)                                                               \
    ((((int)(k) * IOT_REG_FILTER_COMBOS) + (int)(mask)) * 2 + ((count) ? 1 : 0))

static const struct iot_sqldb_schema registry_schema = {
    .migrations = iot_reg_sqlite_migrations,
    .n_migrations = IOT_REG_SQLITE_N_MIGRATIONS,
    .stmts = stmt_sql,
    .n_stmts = ST__COUNT,
    .n_dyn = IOT_REG_SQLITE_DYN_SLOTS,
    .checks = iot_reg_sqlite_migration_checks,
    .notes = iot_reg_sqlite_migration_notes,
};

struct scan_sql_key {
    enum iot_reg_scan_kind kind;
    unsigned mask;
    bool count;
};

static int build_scan_sql(const void *arg, char *buf, size_t size)
{
    const struct scan_sql_key *key = arg;
    unsigned mask = key->mask;
    char where[160];
    bool uid = mask & IOT_REG_FILTER_UID;
    snprintf(where, sizeof where, "%s%s%s%s%s", uid ? " AND " : "",
             uid ? scan_sql[key->kind].owner : "", uid ? ".user_id = :uid" : "",
             (mask & IOT_REG_FILTER_STATUS) ? " AND d.status = :status" : "",
             (mask & IOT_REG_FILTER_TYPE) ? " AND d.device_type = :type" : "");
    const struct scan_sql *q = &scan_sql[key->kind];
    int n = snprintf(buf, size, key->count ? q->count : q->rows, where);
    return n > 0 && (size_t)n < size ? IOT_OK : IOT_EINTERNAL;
}

static int scan_stmt(struct iot_sqldb_conn *c, enum iot_reg_scan_kind k, unsigned mask,
                     bool count, sqlite3_stmt **out)
{
    struct scan_sql_key key = {.kind = k, .mask = mask, .count = count};
    return iot_sqldb_dyn_stmt(c, DYN_SLOT(k, mask, count), build_scan_sql, &key, out);
}

/* ---- binding and reading ----------------------------------------------- */

static void bind_text(sqlite3_stmt *st, int i, const char *s, size_t cap)
{
    sqlite3_bind_text(st, i, s, (int)strnlen(s, cap - 1), SQLITE_STATIC);
}
#define BIND_FIELD(st, i, field) bind_text((st), (i), (field), sizeof(field))

/* 0 ("never") is stored as NULL. */
static void bind_time(sqlite3_stmt *st, int i, int64_t ms)
{
    if (ms)
        sqlite3_bind_int64(st, i, ms);
    else
        sqlite3_bind_null(st, i);
}

static void bind_key_hash(sqlite3_stmt *st, int i, const char *hash, size_t cap)
{
    if (hash[0])
        bind_text(st, i, hash, cap);
    else
        sqlite3_bind_null(st, i);
}

static void col_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *p = sqlite3_column_text(st, i);
    size_t n = p ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (n > cap - 1)
        n = cap - 1;
    if (n)
        memcpy(dst, p, n);
    dst[n] = '\0';
}
#define COL_FIELD(st, i, field) col_text((st), (i), (field), sizeof(field))

static void read_user(sqlite3_stmt *st, void *out)
{
    struct iot_user *u = out;
    u->id = sqlite3_column_int64(st, 0);
    COL_FIELD(st, 1, u->user_id);
    COL_FIELD(st, 2, u->username);
    COL_FIELD(st, 3, u->email);
    COL_FIELD(st, 4, u->password_hash);
    u->is_active = sqlite3_column_int(st, 5) != 0;
    u->is_admin = sqlite3_column_int(st, 6) != 0;
    u->created_at = sqlite3_column_int64(st, 7);
    u->updated_at = sqlite3_column_int64(st, 8);
    u->last_login = sqlite3_column_int64(st, 9); /* NULL reads as 0 */
}

static void read_device(sqlite3_stmt *st, void *out)
{
    struct iot_device *d = out;
    d->id = sqlite3_column_int64(st, 0);
    d->user_id = sqlite3_column_int64(st, 1);
    COL_FIELD(st, 2, d->name);
    COL_FIELD(st, 3, d->description);
    COL_FIELD(st, 4, d->device_type);
    COL_FIELD(st, 5, d->status);
    COL_FIELD(st, 6, d->location);
    COL_FIELD(st, 7, d->firmware_version);
    COL_FIELD(st, 8, d->hardware_version);
    COL_FIELD(st, 9, d->api_key_hash);
    COL_FIELD(st, 10, d->api_key_prefix);
    d->created_at = sqlite3_column_int64(st, 11);
    d->updated_at = sqlite3_column_int64(st, 12);
    d->last_seen = sqlite3_column_int64(st, 13);
    COL_FIELD(st, 14, d->status_set_by);
    d->owner_active = sqlite3_column_int(st, 15) != 0;
}

static void read_group(sqlite3_stmt *st, void *out)
{
    struct iot_group *g = out;
    g->id = sqlite3_column_int64(st, 0);
    g->user_id = sqlite3_column_int64(st, 1);
    COL_FIELD(st, 2, g->name);
    COL_FIELD(st, 3, g->description);
    COL_FIELD(st, 4, g->color);
    g->created_at = sqlite3_column_int64(st, 5);
    g->updated_at = sqlite3_column_int64(st, 6);
    g->device_count = sqlite3_column_int64(st, 7);
}

/* Steps a single-row query into `out` with `rd`; no row is IOT_ENOTFOUND. */
static int step_one(sqlite3_stmt *st, void (*rd)(sqlite3_stmt *, void *), void *out)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (rd)
            rd(st, out);
        rc = IOT_OK;
    } else {
        rc = rc == SQLITE_DONE ? IOT_ENOTFOUND : iot_sqldb_map(rc);
    }
    iot_sqldb_done(st);
    return rc;
}

/* ---- helpers ----------------------------------------------------------- */

/* Number of rows the last write statement touched, 0 → IOT_ENOTFOUND. */
static int changed_or_notfound(struct iot_sqldb_conn *c, int rc)
{
    if (rc == IOT_OK && sqlite3_changes(iot_sqldb_handle(c)) == 0)
        return IOT_ENOTFOUND;
    return rc;
}

/* A read of one row by `id` (integer key) or `key` (text key). */
static int read_row(struct iot_sqldb *s, enum stmt_id id, int64_t ikey, const char *tkey,
                    void (*rd)(sqlite3_stmt *, void *), void *out)
{
    struct iot_sqldb_conn *c = iot_sqldb_get(s);
    sqlite3_stmt *st;
    int rc = iot_sqldb_stmt(c, id, &st);
    if (rc == IOT_OK) {
        if (tkey)
            sqlite3_bind_text(st, 1, tkey, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, 1, ikey);
        rc = step_one(st, rd, out);
    }
    iot_sqldb_put(s, c);
    return rc;
}

/* ---- open / close ------------------------------------------------------ */

static int reg_open(const char *url, void **self)
{
    return iot_sqldb_open_self(url, &registry_schema, self);
}

static void reg_close(void *self) { iot_sqldb_close(self); }

static int reg_ping(void *self) { return iot_sqldb_ping(self, ST_PING); }

/* ---- users ------------------------------------------------------------- */

static void bind_user_fields(sqlite3_stmt *st, int first, const struct iot_user *u)
{
    BIND_FIELD(st, first, u->username);
    BIND_FIELD(st, first + 1, u->email);
    BIND_FIELD(st, first + 2, u->password_hash);
    sqlite3_bind_int(st, first + 3, u->is_active);
    sqlite3_bind_int(st, first + 4, u->is_admin);
}

static int user_create(void *self, struct iot_user *u)
{
    if (!u)
        return IOT_EINVAL;
    struct iot_user v = *u; /* the caller's struct changes only on success */
    iot_reg_user_defaults(&v);
    struct iot_sqldb_conn *c;
    int rc = iot_sqldb_write_begin(self, &c);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    rc = iot_sqldb_stmt(c, ST_USER_INSERT, &st);
    if (rc == IOT_OK) {
        BIND_FIELD(st, 1, v.user_id);
        bind_user_fields(st, 2, &v);
        sqlite3_bind_int64(st, 7, v.created_at);
        sqlite3_bind_int64(st, 8, v.updated_at);
        bind_time(st, 9, v.last_login);
        rc = iot_sqldb_step_done(st);
        v.id = sqlite3_last_insert_rowid(iot_sqldb_handle(c));
    }
    rc = iot_sqldb_write_end(self, c, rc);
    if (rc == IOT_OK)
        *u = v;
    return rc;
}

static int user_get_by_id(void *self, int64_t id, struct iot_user *out)
{
    return out ? read_row(self, ST_USER_BY_ID, id, NULL, read_user, out) : IOT_EINVAL;
}

static int user_get_by_user_id(void *self, const char *user_id, struct iot_user *out)
{
    return out && user_id ? read_row(self, ST_USER_BY_UID, 0, user_id, read_user, out)
                          : IOT_EINVAL;
}

static int user_get_by_username(void *self, const char *username, struct iot_user *out)
{
    return out && username ? read_row(self, ST_USER_BY_NAME, 0, username, read_user, out)
                           : IOT_EINVAL;
}

static int user_get_by_email(void *self, const char *email, struct iot_user *out)
{
    return out && email ? read_row(self, ST_USER_BY_EMAIL, 0, email, read_user, out)
                        : IOT_EINVAL;
}

/* user_id and created_at are immutable; updated_at 0 means "now". */
static int user_update(void *self, const struct iot_user *u)
{
    if (!u)
        return IOT_EINVAL;
    struct iot_sqldb_conn *c;
    int rc = iot_sqldb_write_begin(self, &c);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    rc = iot_sqldb_stmt(c, ST_USER_UPDATE, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int64(st, 1, u->id);
        bind_user_fields(st, 2, u);
        sqlite3_bind_int64(st, 7, u->updated_at ? u->updated_at : iot_now_ms());
        bind_time(st, 8, u->last_login);
        rc = changed_or_notfound(c, iot_sqldb_step_done(st));
    }
    return iot_sqldb_write_end(self, c, rc);
}

/* No telemetry to clean up after the delete (groups). */
#define NO_CLEANUP ((enum iot_cleanup_kind)0)

/* Deletes by integer id with the statement `id`; ON DELETE CASCADE removes
 * the dependent rows in the same statement, inside the write transaction.
 * For a device or user (`kind`), the pending clean-up of its telemetry is
 * recorded in that transaction too: a crash can lose neither without the
 * other. */
static int delete_by_id(void *self, enum stmt_id id, int64_t key, enum iot_cleanup_kind kind)
{
    struct iot_sqldb_conn *c;
    int rc = iot_sqldb_write_begin(self, &c);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    rc = iot_sqldb_stmt(c, id, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int64(st, 1, key);
        rc = changed_or_notfound(c, iot_sqldb_step_done(st));
    }
    if (rc == IOT_OK && kind != NO_CLEANUP)
        rc = iot_reg_sqlite_cleanup_record(c, kind, key);
    return iot_sqldb_write_end(self, c, rc);
}

static int user_delete(void *self, int64_t id)
{
    return delete_by_id(self, ST_USER_DELETE, id, IOT_CLEANUP_USER);
}

/* ---- scans ------------------------------------------------------------- */

/* The paging loop is store/registry_scan.c; here is the fetch of one chunk. */

static void bind_named_int(sqlite3_stmt *st, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i)
        sqlite3_bind_int64(st, i, v);
}

static void bind_named_text(sqlite3_stmt *st, const char *name, const char *v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

static void bind_scan(sqlite3_stmt *st, const struct iot_reg_scan *sc)
{
    bind_named_int(st, ":uid", sc->uid);
    bind_named_int(st, ":parent", sc->parent);
    if (sc->status)
        bind_named_text(st, ":status", sc->status);
    if (sc->type)
        bind_named_text(st, ":type", sc->type);
}

static void read_scan_row(const struct iot_reg_scan *sc, sqlite3_stmt *st, struct iot_reg_row *r)
{
    int ncols;
    switch (sc->kind) {
    case IOT_REG_SCAN_USERS:
        read_user(st, &r->v.u);
        ncols = N_USER_COLS;
        break;
    case IOT_REG_SCAN_DEVICES:
    case IOT_REG_SCAN_GROUP_DEVICES:
        read_device(st, &r->v.d);
        ncols = N_DEV_COLS;
        break;
    default:
        read_group(st, &r->v.g);
        ncols = N_GRP_COLS;
        break;
    }
    r->added_at = sqlite3_column_int64(st, ncols);
    r->key = sqlite3_column_int64(st, ncols + 1);
}

/* First-chunk prologue, inside the read transaction: the parent row must
 * exist, then *total is counted on the same snapshot as the rows. */
static int scan_prologue(struct iot_sqldb_conn *c, const struct iot_reg_scan *sc)
{
    sqlite3_stmt *st;
    int rc = IOT_OK;
    int parent = scan_sql[sc->kind].parent;
    if (parent >= 0) {
        rc = iot_sqldb_stmt(c, parent, &st);
        if (rc == IOT_OK) {
            sqlite3_bind_int64(st, 1, sc->parent);
            rc = step_one(st, NULL, NULL);
        }
    }
    if (rc == IOT_OK && sc->total) {
        rc = scan_stmt(c, sc->kind, sc->mask, true, &st);
        if (rc == IOT_OK) {
            bind_scan(st, sc);
            int src = sqlite3_step(st);
            *sc->total = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
            rc = src == SQLITE_ROW ? IOT_OK : iot_sqldb_map(src);
            iot_sqldb_done(st);
        }
    }
    return rc;
}

/* Copies up to ch->want rows after the keyset cursor into ch->rows. */
static int scan_rows(struct iot_sqldb_conn *c, struct iot_reg_chunk *ch)
{
    const struct iot_reg_scan *sc = ch->sc;
    sqlite3_stmt *st;
    int rc = scan_stmt(c, sc->kind, sc->mask, false, &st);
    if (rc)
        return rc;
    bind_scan(st, sc);
    bind_named_int(st, ":after", ch->after);
    bind_named_int(st, ":limit", ch->want);
    bind_named_int(st, ":offset", ch->offset);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW && ch->n < ch->want)
        read_scan_row(sc, st, &ch->rows[ch->n++]);
    iot_sqldb_done(st);
    return src == SQLITE_ROW || src == SQLITE_DONE ? IOT_OK : iot_sqldb_map(src);
}

/* One connection hold (an iot_reg_fetch_fn): for the first chunk a read
 * transaction around the prologue and the rows, for later chunks a single
 * keyset query. */
static int scan_chunk(void *self, struct iot_reg_chunk *ch)
{
    struct iot_sqldb *s = self;
    struct iot_sqldb_conn *c = iot_sqldb_get(s);
    int rc = IOT_OK;
    ch->n = 0;
    if (ch->first) {
        rc = iot_sqldb_read_begin(c);
        if (rc == IOT_OK)
            rc = scan_prologue(c, ch->sc);
    }
    if (rc == IOT_OK && ch->want > 0)
        rc = scan_rows(c, ch);
    if (ch->first)
        iot_sqldb_read_end(c);
    iot_sqldb_put(s, c);
    return rc;
}

static int run_scan(struct iot_sqldb *s, const struct iot_reg_scan *sc)
{
    return iot_reg_scan_run(sc, SCAN_CHUNK, scan_chunk, s);
}

static int user_list(void *self, struct iot_page page, iot_user_fn fn, void *ctx, int64_t *total)
{
    struct iot_reg_scan sc = {.kind = IOT_REG_SCAN_USERS, .page = page, .total = total,
                              .ctx = ctx, .fn.user = fn, .has_fn = fn != NULL};
    return run_scan(self, &sc);
}

/* ---- devices ----------------------------------------------------------- */

static void bind_device_fields(sqlite3_stmt *st, int first, const struct iot_device *d)
{
    BIND_FIELD(st, first, d->name);
    BIND_FIELD(st, first + 1, d->description);
    BIND_FIELD(st, first + 2, d->device_type);
    BIND_FIELD(st, first + 3, d->status);
    BIND_FIELD(st, first + 4, d->location);
    BIND_FIELD(st, first + 5, d->firmware_version);
    BIND_FIELD(st, first + 6, d->hardware_version);
    bind_key_hash(st, first + 7, d->api_key_hash, sizeof d->api_key_hash);
    BIND_FIELD(st, first + 8, d->api_key_prefix);
    BIND_FIELD(st, first + 9, d->status_set_by);
}

/* An empty status defaults to "active" (iot_reg_device_defaults). */
static int device_create(void *self, struct iot_device *d)
{
    if (!d)
        return IOT_EINVAL;
    struct iot_device *v = malloc(sizeof *v); /* ~1.6 KB: keep it off the stack */
    if (!v)
        return IOT_ENOMEM;
    *v = *d;
    iot_reg_device_defaults(v);
    struct iot_sqldb_conn *c;
    int rc = iot_sqldb_write_begin(self, &c);
    if (rc == IOT_OK) {
        sqlite3_stmt *st;
        rc = iot_sqldb_stmt(c, ST_DEV_INSERT, &st);
        if (rc == IOT_OK) {
            sqlite3_bind_int64(st, 1, v->user_id);
            bind_device_fields(st, 2, v);
            sqlite3_bind_int64(st, 12, v->created_at);
            sqlite3_bind_int64(st, 13, v->updated_at);
            bind_time(st, 14, v->last_seen);
            rc = iot_sqldb_step_done(st);
            v->id = sqlite3_last_insert_rowid(iot_sqldb_handle(c));
        }
        rc = iot_sqldb_write_end(self, c, rc);
    }
    if (rc == IOT_OK)
        *d = *v;
    free(v);
    return rc;
}

static int device_get(void *self, int64_t id, struct iot_device *out)
{
    return out ? read_row(self, ST_DEV_BY_ID, id, NULL, read_device, out) : IOT_EINVAL;
}

static int device_get_by_key_hash(void *self, const char *key_hash, struct iot_device *out)
{
    if (!out || !key_hash)
        return IOT_EINVAL;
    if (!key_hash[0])
        return IOT_ENOTFOUND; /* stored as NULL: never matches */
    return read_row(self, ST_DEV_BY_KEY, 0, key_hash, read_device, out);
}

static int device_update(void *self, const struct iot_device *d)
{
    if (!d)
        return IOT_EINVAL;
    struct iot_sqldb_conn *c;
    int rc = iot_sqldb_write_begin(self, &c);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    rc = iot_sqldb_stmt(c, ST_DEV_UPDATE, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int64(st, 1, d->id);
        bind_device_fields(st, 2, d);
        sqlite3_bind_int64(st, 12, d->updated_at ? d->updated_at : iot_now_ms());
        bind_time(st, 13, d->last_seen);
        rc = changed_or_notfound(c, iot_sqldb_step_done(st));
    }
    return iot_sqldb_write_end(self, c, rc);
}

static int device_delete(void *self, int64_t id)
{
    return delete_by_id(self, ST_DEV_DELETE, id, IOT_CLEANUP_DEVICE);
}

static int device_list(void *self, const struct iot_device_filter *f, struct iot_page page,
                       iot_device_fn fn, void *ctx, int64_t *total)
{
    struct iot_reg_scan sc = {.kind = IOT_REG_SCAN_DEVICES, .page = page, .total = total,
                              .ctx = ctx, .fn.device = fn, .has_fn = fn != NULL};
    iot_reg_scan_filter(&sc, f, true);
    return run_scan(self, &sc);
}

static int device_touch(void *self, const struct iot_seen *seen, size_t n)
{
    if (n == 0)
        return IOT_OK;
    if (!seen)
        return IOT_EINVAL;
    struct iot_sqldb_conn *c;
    int rc = iot_sqldb_write_begin(self, &c);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    rc = iot_sqldb_stmt(c, ST_DEV_TOUCH, &st);
    for (size_t i = 0; i < n && rc == IOT_OK; i++) {
        if (seen[i].last_seen == 0)
            continue; /* "never" cannot move last_seen forward */
        sqlite3_bind_int64(st, 1, seen[i].device_id);
        sqlite3_bind_int64(st, 2, seen[i].last_seen);
        rc = iot_sqldb_step_done(st);
    }
    return iot_sqldb_write_end(self, c, rc);
}

static int device_stats(void *self, int64_t online_since, struct iot_device_stats *out)
{
    if (!out)
        return IOT_EINVAL;
    struct iot_sqldb_conn *c = iot_sqldb_get(self);
    sqlite3_stmt *st;
    int rc = iot_sqldb_stmt(c, ST_DEV_STATS, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int64(st, 1, online_since);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            /* SUM over no rows is NULL, which reads as 0 */
            out->total = sqlite3_column_int64(st, 0);
            out->active = sqlite3_column_int64(st, 1);
            out->inactive = sqlite3_column_int64(st, 2);
            out->maintenance = sqlite3_column_int64(st, 3);
            out->online = sqlite3_column_int64(st, 4);
        }
        rc = src == SQLITE_ROW ? IOT_OK : iot_sqldb_map(src);
        iot_sqldb_done(st);
    }
    iot_sqldb_put(self, c);
    return rc;
}

/* ---- groups and memberships -------------------------------------------- */

static void bind_group_fields(sqlite3_stmt *st, int first, const struct iot_group *g)
{
    BIND_FIELD(st, first, g->name);
    BIND_FIELD(st, first + 1, g->description);
    BIND_FIELD(st, first + 2, g->color);
}

static int group_create(void *self, struct iot_group *g)
{
    if (!g)
        return IOT_EINVAL;
    struct iot_group v = *g;
    iot_reg_group_defaults(&v);
    struct iot_sqldb_conn *c;
    int rc = iot_sqldb_write_begin(self, &c);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    rc = iot_sqldb_stmt(c, ST_GRP_INSERT, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int64(st, 1, v.user_id);
        bind_group_fields(st, 2, &v);
        sqlite3_bind_int64(st, 5, v.created_at);
        sqlite3_bind_int64(st, 6, v.updated_at);
        rc = iot_sqldb_step_done(st);
        v.id = sqlite3_last_insert_rowid(iot_sqldb_handle(c));
    }
    rc = iot_sqldb_write_end(self, c, rc);
    if (rc == IOT_OK)
        *g = v;
    return rc;
}

static int group_get(void *self, int64_t id, struct iot_group *out)
{
    return out ? read_row(self, ST_GRP_BY_ID, id, NULL, read_group, out) : IOT_EINVAL;
}

static int group_update(void *self, const struct iot_group *g)
{
    if (!g)
        return IOT_EINVAL;
    struct iot_sqldb_conn *c;
    int rc = iot_sqldb_write_begin(self, &c);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    rc = iot_sqldb_stmt(c, ST_GRP_UPDATE, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int64(st, 1, g->id);
        bind_group_fields(st, 2, g);
        sqlite3_bind_int64(st, 5, g->updated_at ? g->updated_at : iot_now_ms());
        rc = changed_or_notfound(c, iot_sqldb_step_done(st));
    }
    return iot_sqldb_write_end(self, c, rc);
}

static int group_delete(void *self, int64_t id)
{
    return delete_by_id(self, ST_GRP_DELETE, id, NO_CLEANUP);
}

/* user_id 0 lists every user's groups (admin view). */
static int group_list(void *self, int64_t user_id, struct iot_page page, iot_group_fn fn,
                      void *ctx, int64_t *total)
{
    struct iot_reg_scan sc = {.kind = IOT_REG_SCAN_GROUPS, .page = page, .total = total,
                              .ctx = ctx, .fn.group = fn, .has_fn = fn != NULL, .uid = user_id,
                              .mask = user_id ? IOT_REG_FILTER_UID : 0};
    return run_scan(self, &sc);
}

static int row_exists(struct iot_sqldb_conn *c, enum stmt_id id, int64_t key)
{
    sqlite3_stmt *st;
    int rc = iot_sqldb_stmt(c, id, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, key);
    return step_one(st, NULL, NULL);
}

/* In the write transaction, so "held off" and "gone" cannot change
 * between the update and the existence check. */
/* A text field, or NULL ("leave the column") when `write` is false. */
static void bind_field_if(sqlite3_stmt *st, int i, bool write, const char *s, size_t cap)
{
    if (write)
        bind_text(st, i, s, cap);
    else
        sqlite3_bind_null(st, i);
}

static int device_update_by_device(void *self, const struct iot_device *d, unsigned fields)
{
    if (!d)
        return IOT_EINVAL;
    struct iot_sqldb_conn *c;
    int rc = iot_sqldb_write_begin(self, &c);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    rc = iot_sqldb_stmt(c, ST_DEV_BY_DEVICE, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int64(st, 1, d->id);
        BIND_FIELD(st, 2, d->status);
        bind_field_if(st, 3, fields & IOT_REG_OWN_LOCATION, d->location, sizeof d->location);
        bind_field_if(st, 4, fields & IOT_REG_OWN_FIRMWARE, d->firmware_version,
                      sizeof d->firmware_version);
        bind_field_if(st, 5, fields & IOT_REG_OWN_HARDWARE, d->hardware_version,
                      sizeof d->hardware_version);
        sqlite3_bind_int64(st, 6, d->updated_at ? d->updated_at : iot_now_ms());
        rc = changed_or_notfound(c, iot_sqldb_step_done(st));
    }
    if (rc == IOT_ENOTFOUND) { /* the row is gone, or held off */
        int found = row_exists(c, ST_DEV_EXISTS, d->id);
        rc = found == IOT_OK ? IOT_ECONFLICT : found;
    }
    return iot_sqldb_write_end(self, c, rc);
}

/* The existence checks run in the write transaction, so the answer cannot
 * change before the insert; they make "missing" IOT_ENOTFOUND explicitly
 * rather than relying on how a foreign-key failure is reported. */
static int member_add(void *self, int64_t group_id, int64_t device_id, int64_t *added_at)
{
    int64_t now = iot_now_ms();
    struct iot_sqldb_conn *c;
    int rc = iot_sqldb_write_begin(self, &c);
    if (rc)
        return rc;
    rc = row_exists(c, ST_GRP_EXISTS, group_id);
    if (rc == IOT_OK)
        rc = row_exists(c, ST_DEV_EXISTS, device_id);
    sqlite3_stmt *st;
    if (rc == IOT_OK)
        rc = iot_sqldb_stmt(c, ST_MEM_INSERT, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int64(st, 1, group_id);
        sqlite3_bind_int64(st, 2, device_id);
        sqlite3_bind_int64(st, 3, now);
        rc = iot_sqldb_step_done(st);
    }
    rc = iot_sqldb_write_end(self, c, rc);
    if (rc == IOT_OK && added_at)
        *added_at = now;
    return rc;
}

static int member_remove(void *self, int64_t group_id, int64_t device_id)
{
    struct iot_sqldb_conn *c;
    int rc = iot_sqldb_write_begin(self, &c);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    rc = iot_sqldb_stmt(c, ST_MEM_DELETE, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int64(st, 1, group_id);
        sqlite3_bind_int64(st, 2, device_id);
        rc = changed_or_notfound(c, iot_sqldb_step_done(st));
    }
    return iot_sqldb_write_end(self, c, rc);
}

/* IOT_ENOTFOUND when the group does not exist (an empty group is IOT_OK). */
static int group_devices(void *self, int64_t group_id, const struct iot_device_filter *f,
                         struct iot_page page, iot_member_fn fn, void *ctx, int64_t *total)
{
    struct iot_reg_scan sc = {.kind = IOT_REG_SCAN_GROUP_DEVICES, .page = page, .total = total,
                              .ctx = ctx, .fn.member = fn, .has_fn = fn != NULL,
                              .parent = group_id};
    iot_reg_scan_filter(&sc, f, false);
    return run_scan(self, &sc);
}

/* IOT_ENOTFOUND when the device does not exist. */
static int device_groups(void *self, int64_t device_id, iot_device_group_fn fn, void *ctx)
{
    struct iot_reg_scan sc = {.kind = IOT_REG_SCAN_DEVICE_GROUPS, .page = {.limit = INT64_MAX},
                              .ctx = ctx, .fn.device_group = fn, .has_fn = fn != NULL,
                              .parent = device_id};
    return run_scan(self, &sc);
}

const struct iot_registry_ops iot_registry_sqlite = {
    .name = "sqlite",
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
    .device_create = device_create,
    .device_get = device_get,
    .device_get_by_key_hash = device_get_by_key_hash,
    .device_update = device_update,
    .device_delete = device_delete,
    .device_list = device_list,
    .device_touch = device_touch,
    .device_stats = device_stats,
    .group_create = group_create,
    .group_get = group_get,
    .group_update = group_update,
    .group_delete = group_delete,
    .group_list = group_list,
    .member_add = member_add,
    .member_remove = member_remove,
    .group_devices = group_devices,
    .device_groups = device_groups,
    .device_update_by_device = device_update_by_device,
    .cleanup_list = iot_reg_sqlite_cleanup_list,
    .cleanup_done = iot_reg_sqlite_cleanup_done,
    .cleanup_failed = iot_reg_sqlite_cleanup_failed,
};
