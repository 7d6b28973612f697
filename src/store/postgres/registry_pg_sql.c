/* registry_pg_sql.c — the PostgreSQL registry's SQL: schema migrations, the
 * statements prepared on every connection, the scan statements built at open,
 * and the readers that turn result rows into the registry's structs.
 *
 * Storage rules, the same as the SQLite backend's so the two behave alike:
 * times are BIGINT epoch ms and "never" (0) is NULL, so last_seen >= $1 is
 * false for it; an empty api_key_hash is NULL, so it never conflicts and
 * never matches; ids are identity columns, which never hand out a number
 * twice, even after deletes or rolled-back inserts. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/postgres/registry_pg_int.h"
#include "util/err.h"

/* ---- schema -------------------------------------------------------------- */

/* The byte limits of registry.h are written out as CHECKs, in numbers: a
 * shipped step never changes, so a new limit needs a new step. These
 * asserts say when. */
_Static_assert(IOT_STATUS_BY_MAX == 12 && IOT_USER_ID_LEN == 32 && IOT_USERNAME_MAX == 80 && IOT_EMAIL_MAX == 120 &&
                   IOT_PWHASH_MAX == 160 && IOT_DEVICE_NAME_MAX == 100 &&
                   IOT_DESCRIPTION_MAX == 1000 && IOT_DEVICE_TYPE_MAX == 50 &&
                   IOT_STATUS_MAX == 20 && IOT_LOCATION_MAX == 200 && IOT_VERSION_MAX == 20 &&
                   IOT_KEY_HASH_LEN == 64 && IOT_KEY_PREFIX_LEN == 8 &&
                   IOT_GROUP_NAME_MAX == 100 && IOT_COLOR_LEN == 7 &&
                   IOT_CLEANUP_ERROR_MAX == 200,
               "registry.h limits changed: add a migration step for the CHECKs");

#define MAXB(col, n) " CHECK (octet_length(" col ") <= " #n ")"

/* Append-only: never edit a shipped step, add a new one. Indexes end in id
 * where a scan filters on a column and pages by id (SQLite gets that suffix
 * for free from the rowid). Table names avoid SQL keywords ("groups"). */
const char *const iot_pg_reg_migrations[] = {
    /* 1: initial schema */
    "CREATE TABLE users ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " user_id TEXT NOT NULL UNIQUE" MAXB("user_id", 32) ","
    " username TEXT NOT NULL UNIQUE" MAXB("username", 80) ","
    " email TEXT NOT NULL UNIQUE" MAXB("email", 120) ","
    " password_hash TEXT NOT NULL" MAXB("password_hash", 160) ","
    " is_active BOOLEAN NOT NULL DEFAULT TRUE,"
    " is_admin BOOLEAN NOT NULL DEFAULT FALSE,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " last_login BIGINT);"
    "CREATE TABLE devices ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL" MAXB("name", 100) ","
    " description TEXT NOT NULL DEFAULT ''" MAXB("description", 1000) ","
    " device_type TEXT NOT NULL DEFAULT ''" MAXB("device_type", 50) ","
    " status TEXT NOT NULL DEFAULT 'active'" MAXB("status", 20) ","
    " location TEXT NOT NULL DEFAULT ''" MAXB("location", 200) ","
    " firmware_version TEXT NOT NULL DEFAULT ''" MAXB("firmware_version", 20) ","
    " hardware_version TEXT NOT NULL DEFAULT ''" MAXB("hardware_version", 20) ","
    " api_key_hash TEXT UNIQUE" MAXB("api_key_hash", 64) ","
    " api_key_prefix TEXT NOT NULL DEFAULT ''" MAXB("api_key_prefix", 8) ","
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " last_seen BIGINT,"
    " UNIQUE (user_id, name));"
    "CREATE INDEX devices_by_user ON devices (user_id, id);"
    "CREATE INDEX devices_by_status ON devices (status, id);"
    "CREATE INDEX devices_by_type ON devices (device_type, id);"
    "CREATE TABLE device_groups ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL" MAXB("name", 100) ","
    " description TEXT NOT NULL DEFAULT ''" MAXB("description", 1000) ","
    " color TEXT NOT NULL DEFAULT ''" MAXB("color", 7) ","
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " UNIQUE (user_id, name));"
    "CREATE INDEX device_groups_by_user ON device_groups (user_id, id);"
    "CREATE TABLE device_group_members ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY," /* membership order */
    " group_id BIGINT NOT NULL REFERENCES device_groups(id) ON DELETE CASCADE,"
    " device_id BIGINT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
    " added_at BIGINT NOT NULL,"
    " UNIQUE (group_id, device_id));"
    "CREATE INDEX members_by_group ON device_group_members (group_id, id);"
    "CREATE INDEX members_by_device ON device_group_members (device_id);",
    /* 2: usernames and emails unique regardless of ASCII case. lower()
     * under COLLATE "C" folds ASCII letters only, as SQLite's lower() does,
     * so both backends agree on what "the same name" is. The lookups
     * compare the same expression and so use these indexes. */
    "CREATE UNIQUE INDEX users_username_nocase ON users (lower(username COLLATE \"C\"));"
    "CREATE UNIQUE INDEX users_email_nocase ON users (lower(email COLLATE \"C\"));",
    /* 3: who set a device's status last (registry.h, iot_device_held_off);
     * rows from before are classified as in the SQLite backend's step 3. */
    "ALTER TABLE devices ADD COLUMN status_set_by TEXT NOT NULL DEFAULT 'new'"
    " CHECK (status_set_by IN ('new', 'device', 'admin'));"
    "UPDATE devices SET status_set_by = CASE"
    " WHEN status = 'active' THEN 'device'"
    " WHEN status = 'inactive' AND last_seen IS NULL THEN 'new'"
    " ELSE 'admin' END;",
    /* 4: pending telemetry clean-ups of deleted devices and users
     * (registry.h, ops version 3), written in the delete's statement.
     * Ids are never reused, so (kind, target_id) names one deletion. */
    "CREATE TABLE telemetry_cleanups ("
    " kind TEXT NOT NULL CHECK (kind IN ('device', 'user')),"
    " target_id BIGINT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " attempts BIGINT NOT NULL DEFAULT 0,"
    " next_at BIGINT NOT NULL,"
    " last_error TEXT NOT NULL DEFAULT ''" MAXB("last_error", 200) ","
    " PRIMARY KEY (kind, target_id));"
    "CREATE INDEX telemetry_cleanups_due ON telemetry_cleanups (next_at, kind, target_id);",
};

/* Before step 2: accounts that differ only in case would make the unique
 * indexes fail. Picking one silently would lock the other out, so start-up
 * stops and names them; the operator renames or merges them. */
const char *const iot_pg_reg_migration_checks[] = {
    NULL,
    "SELECT 'usernames or emails that differ only in case, now required to be unique"
    " regardless of case: ' || string_agg(v, ', ') || '; rename all but one of each"
    " (UPDATE users SET username = ... / email = ...) and start again'"
    " FROM (SELECT string_agg(quote_literal(username), ' = ') AS v FROM users"
    " GROUP BY lower(username COLLATE \"C\") HAVING COUNT(*) > 1"
    " UNION ALL SELECT string_agg(quote_literal(email), ' = ') FROM users"
    " GROUP BY lower(email COLLATE \"C\") HAVING COUNT(*) > 1) dup HAVING COUNT(*) > 0",
    NULL,
    NULL,
};
/* After step 3: the used devices it took as switched off by an admin (an
 * admin may have done it; they may also have switched themselves off, which
 * was allowed before). The rule errs on the side of a person confirming;
 * this says so once, with how to switch them on. */
const char *const iot_pg_reg_migration_notes[] = {
    NULL,
    NULL,
    "SELECT n || ' used device(s) that were inactive or in maintenance are now taken as"
    " switched off by an admin (status_set_by = ''admin'', ids ' || ids || CASE WHEN n > 20"
    " THEN ', ...' ELSE '' END || '): their API keys are refused and they cannot switch"
    " themselves on until an admin does, with PUT /api/v1/admin/devices/{id}/status"
    " {\"status\": \"active\"} (see docs/OPERATIONS.md)' FROM (SELECT COUNT(*) AS n,"
    " (SELECT string_agg(id::text, ', ') FROM (SELECT id FROM devices"
    " WHERE status_set_by = 'admin' ORDER BY id LIMIT 20) f) AS ids"
    " FROM devices WHERE status_set_by = 'admin') c WHERE n > 0",
    NULL,
};
const int iot_pg_reg_n_migrations =
    (int)(sizeof iot_pg_reg_migrations / sizeof iot_pg_reg_migrations[0]);
/* pg_migrate.c reads checks[v] and notes[v] for every step v. */
_Static_assert(sizeof iot_pg_reg_migration_checks == sizeof iot_pg_reg_migrations &&
                   sizeof iot_pg_reg_migration_notes == sizeof iot_pg_reg_migrations,
               "one check and one note entry (NULL for none) per migration step");

/* ---- fixed statements ---------------------------------------------------- */

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

static const char *const fixed_sql[ST__FIXED] = {
    [ST_PING] = "SELECT 1",
    [ST_USER_INSERT] = "INSERT INTO users (user_id, username, email, password_hash, is_active,"
                       " is_admin, created_at, updated_at, last_login)"
                       " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    [ST_USER_BY_ID] = "SELECT " USER_COLS " FROM users u WHERE u.id = $1",
    [ST_USER_BY_UID] = "SELECT " USER_COLS " FROM users u WHERE u.user_id = $1",
    /* the expression the nocase indexes are on, on both sides */
    [ST_USER_BY_NAME] = "SELECT " USER_COLS " FROM users u"
                        " WHERE lower(u.username COLLATE \"C\") = lower($1 COLLATE \"C\")",
    [ST_USER_BY_EMAIL] = "SELECT " USER_COLS " FROM users u"
                         " WHERE lower(u.email COLLATE \"C\") = lower($1 COLLATE \"C\")",
    [ST_USER_UPDATE] = "UPDATE users SET username = $2, email = $3, password_hash = $4,"
                       " is_active = $5, is_admin = $6, updated_at = $7, last_login = $8"
                       " WHERE id = $1",
    /* ON DELETE CASCADE takes devices, groups and memberships in the same
     * statement, hence the same transaction; so does the pending clean-up
     * of the telemetry (a data-modifying CTE runs once, in the statement).
     * $2 now, $3 when it is due; answers how many rows went (0 or 1). */
    [ST_USER_DELETE] = "WITH gone AS (DELETE FROM users WHERE id = $1 RETURNING id),"
                       " noted AS (INSERT INTO telemetry_cleanups (kind, target_id,"
                       " created_at, next_at) SELECT 'user', id, $2::bigint, $3::bigint"
                       " FROM gone ON CONFLICT (kind, target_id) DO NOTHING)"
                       " SELECT COUNT(*) FROM gone",
    [ST_DEV_INSERT] = "INSERT INTO devices (user_id, name, description, device_type, status,"
                      " location, firmware_version, hardware_version, api_key_hash,"
                      " api_key_prefix, status_set_by, created_at, updated_at, last_seen)"
                      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                      " RETURNING id",
    [ST_DEV_BY_ID] = "SELECT " DEV_COLS " FROM devices d WHERE d.id = $1",
    [ST_DEV_BY_KEY] = "SELECT " DEV_COLS " FROM devices d WHERE d.api_key_hash = $1",
    /* last_seen only moves forward here too (GREATEST skips NULLs): a
     * read-modify-write of the device must not undo touches in between; an
     * empty status_set_by leaves the stored one */
    [ST_DEV_UPDATE] = "UPDATE devices SET name = $2, description = $3, device_type = $4,"
                      " status = $5, location = $6, firmware_version = $7,"
                      " hardware_version = $8, api_key_hash = $9, api_key_prefix = $10,"
                      " status_set_by = COALESCE(NULLIF($11, ''), status_set_by),"
                      " updated_at = $12, last_seen = GREATEST(last_seen, $13)"
                      " WHERE id = $1",
    /* as ST_USER_DELETE */
    [ST_DEV_DELETE] = "WITH gone AS (DELETE FROM devices WHERE id = $1 RETURNING id),"
                      " noted AS (INSERT INTO telemetry_cleanups (kind, target_id,"
                      " created_at, next_at) SELECT 'device', id, $2::bigint, $3::bigint"
                      " FROM gone ON CONFLICT (kind, target_id) DO NOTHING)"
                      " SELECT COUNT(*) FROM gone",
    /* $1: ascending distinct ids, $2: their times. The rows are locked in id
     * order before they are written, so two batches that share devices
     * (two iotflowd instances) queue instead of deadlocking. */
    [ST_DEV_TOUCH] = "WITH s AS (SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS t(id, ts)),"
                     " l AS MATERIALIZED (SELECT d.id, s.ts FROM devices d JOIN s ON s.id = d.id"
                     " WHERE d.last_seen IS NULL OR d.last_seen < s.ts"
                     " ORDER BY d.id FOR UPDATE OF d)"
                     " UPDATE devices d SET last_seen = l.ts FROM l"
                     " WHERE d.id = l.id AND (d.last_seen IS NULL OR d.last_seen < l.ts)",
    [ST_DEV_STATS] = "SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'active'),"
                     " COUNT(*) FILTER (WHERE status = 'inactive'),"
                     " COUNT(*) FILTER (WHERE status = 'maintenance'),"
                     " COUNT(*) FILTER (WHERE status = 'active' AND last_seen >= $1::bigint)"
                     " FROM devices",
    [ST_DEV_EXISTS] = "SELECT 1 FROM devices WHERE id = $1",
    [ST_GRP_INSERT] = "INSERT INTO device_groups (user_id, name, description, color,"
                      " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    [ST_GRP_BY_ID] = "SELECT " GRP_COLS " FROM device_groups g WHERE g.id = $1",
    [ST_GRP_UPDATE] = "UPDATE device_groups SET name = $2, description = $3, color = $4,"
                      " updated_at = $5 WHERE id = $1",
    [ST_GRP_DELETE] = "DELETE FROM device_groups WHERE id = $1",
    [ST_GRP_EXISTS] = "SELECT 1 FROM device_groups WHERE id = $1",
    [ST_MEM_INSERT] = "INSERT INTO device_group_members (group_id, device_id, added_at)"
                      " VALUES ($1, $2, $3)",
    [ST_MEM_DELETE] = "DELETE FROM device_group_members WHERE group_id = $1 AND device_id = $2",
    /* device_update_by_device. The WHERE refuses a status change out of
     * iot_device_held_off, judged on the stored row; under READ COMMITTED
     * an UPDATE that waited for a concurrent admin write re-checks it on
     * the new row, so the test and the write are one step. Answers 0
     * (written), 1 (held off: the row exists) or 2 (no row).
     * status_set_by reads the old status (SET sees the old row); NULL:
     * column unchanged. */
    [ST_DEV_BY_DEVICE] = "WITH u AS (UPDATE devices SET status_set_by = CASE WHEN status = $2"
                         " THEN status_set_by ELSE 'device' END, status = $2,"
                         " location = COALESCE($3, location),"
                         " firmware_version = COALESCE($4, firmware_version),"
                         " hardware_version = COALESCE($5, hardware_version), updated_at = $6"
                         " WHERE id = $1 AND (status = $2 OR status = 'active'"
                         " OR status_set_by <> 'admin')"
                         " RETURNING 1) SELECT CASE WHEN EXISTS (SELECT 1 FROM u) THEN 0"
                         " WHEN EXISTS (SELECT 1 FROM devices WHERE id = $1) THEN 1"
                         " ELSE 2 END::bigint",
    /* pending clean-ups: $1 kind, $2 target_id */
    [ST_CLEANUP_LIST] = "SELECT kind, target_id, created_at, attempts, next_at, last_error"
                        " FROM telemetry_cleanups WHERE next_at <= $1::bigint"
                        " ORDER BY next_at, kind, target_id LIMIT $2::bigint",
    [ST_CLEANUP_DONE] = "DELETE FROM telemetry_cleanups WHERE kind = $1 AND target_id = $2",
    [ST_CLEANUP_FAILED] = "UPDATE telemetry_cleanups SET attempts = attempts + 1,"
                          " next_at = $3, last_error = $4 WHERE kind = $1 AND target_id = $2",
};

/* ---- scan statements ----------------------------------------------------- */

/* Each row query ends with two extra columns: added_at (or 0) and the key
 * the scan pages by. Parameters are numbered in the order the scan binds
 * them: parent id, owner, status, type, then (rows only) after, limit,
 * offset. */
struct scan_def {
    const char *rows;   /* SELECT … FROM … (no WHERE) */
    const char *count;  /* SELECT COUNT(*) FROM … (no WHERE), NULL: no total */
    const char *parent; /* column equal to the parent id, or NULL */
    const char *owner;  /* alias whose user_id IOT_REG_FILTER_UID filters */
    const char *key;    /* keyset column */
    unsigned filters;   /* IOT_REG_FILTER_* this scan accepts */
};

static const struct scan_def scan_defs[IOT_REG_SCAN__COUNT] = {
    [IOT_REG_SCAN_USERS] = {.rows = "SELECT " USER_COLS ", 0, u.id FROM users u",
                            .count = "SELECT COUNT(*) FROM users u",
                            .owner = "u",
                            .key = "u.id"},
    [IOT_REG_SCAN_DEVICES] = {.rows = "SELECT " DEV_COLS ", 0, d.id FROM devices d",
                              .count = "SELECT COUNT(*) FROM devices d",
                              .owner = "d",
                              .key = "d.id",
                              .filters = IOT_REG_FILTER_UID | IOT_REG_FILTER_STATUS |
                                         IOT_REG_FILTER_TYPE},
    [IOT_REG_SCAN_GROUPS] = {.rows = "SELECT " GRP_COLS ", 0, g.id FROM device_groups g",
                             .count = "SELECT COUNT(*) FROM device_groups g",
                             .owner = "g",
                             .key = "g.id",
                             .filters = IOT_REG_FILTER_UID},
    [IOT_REG_SCAN_GROUP_DEVICES] = {.rows = "SELECT " DEV_COLS ", m.added_at, m.id"
                                            " FROM device_group_members m"
                                            " JOIN devices d ON d.id = m.device_id",
                                    .count = "SELECT COUNT(*) FROM device_group_members m"
                                             " JOIN devices d ON d.id = m.device_id",
                                    .parent = "m.group_id",
                                    .owner = "d",
                                    .key = "m.id",
                                    .filters = IOT_REG_FILTER_STATUS | IOT_REG_FILTER_TYPE},
    [IOT_REG_SCAN_DEVICE_GROUPS] = {.rows = "SELECT " GRP_COLS ", m.added_at, g.id"
                                            " FROM device_group_members m"
                                            " JOIN device_groups g ON g.id = m.group_id",
                                    .parent = "m.device_id",
                                    .owner = "g",
                                    .key = "g.id"},
};

enum { SCAN_SQL_MAX = 2048 };

struct sql_buf {
    char text[SCAN_SQL_MAX];
    size_t len;
    bool overflow;
};

/* Appends to b; a statement too long for the buffer is a bug, reported by
 * the overflow flag rather than truncated. */
__attribute__((format(printf, 2, 3))) static void appendf(struct sql_buf *b, const char *fmt, ...)
{
    if (b->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->text + b->len, sizeof b->text - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof b->text - b->len)
        b->overflow = true;
    else
        b->len += (size_t)n;
}

/* The SQL of one scan statement, on the heap; NULL if out of memory. */
static char *build_scan(const struct scan_def *d, unsigned mask, bool count)
{
    struct sql_buf b = {.len = 0};
    int n = 0; /* parameters numbered so far */
    appendf(&b, "%s WHERE TRUE", count ? d->count : d->rows);
    if (d->parent)
        appendf(&b, " AND %s = $%d", d->parent, ++n);
    if (mask & IOT_REG_FILTER_UID)
        appendf(&b, " AND %s.user_id = $%d", d->owner, ++n);
    if (mask & IOT_REG_FILTER_STATUS)
        appendf(&b, " AND d.status = $%d", ++n);
    if (mask & IOT_REG_FILTER_TYPE)
        appendf(&b, " AND d.device_type = $%d", ++n);
    if (!count)
        appendf(&b, " AND %s > $%d ORDER BY %s LIMIT $%d OFFSET $%d", d->key, n + 1, d->key,
                n + 2, n + 3);
    return b.overflow ? NULL : strdup(b.text);
}

int iot_pg_reg_sql_build(struct iot_pg_reg *r)
{
    for (int i = 0; i < ST__FIXED; i++)
        r->sql[i] = fixed_sql[i];
    for (int k = 0; k < IOT_REG_SCAN__COUNT; k++) {
        const struct scan_def *d = &scan_defs[k];
        for (unsigned mask = 0; mask < IOT_REG_FILTER_COMBOS; mask++) {
            if (mask & ~d->filters)
                continue; /* a combination this scan never uses */
            for (int count = 0; count < 2; count++) {
                if (count && !d->count)
                    continue;
                char *sql = build_scan(d, mask, count);
                if (!sql)
                    return IOT_ENOMEM;
                r->sql[SCAN_STMT(k, mask, count)] = sql;
            }
        }
    }
    return IOT_OK;
}

void iot_pg_reg_sql_free(struct iot_pg_reg *r)
{
    for (int i = ST__FIXED; i < REG_N_STMTS; i++) {
        free((char *)r->sql[i]); /* built by iot_pg_reg_sql_build */
        r->sql[i] = NULL;
    }
}

/* ---- rows ---------------------------------------------------------------- */

void iot_pg_reg_read_id(const PGresult *r, int row, void *out)
{
    *(int64_t *)out = iot_pg_i64(r, row, 0);
}

void iot_pg_reg_read_user(const PGresult *r, int row, void *out)
{
    struct iot_user *u = out;
    u->id = iot_pg_i64(r, row, 0);
    IOT_PG_FIELD(r, row, 1, u->user_id);
    IOT_PG_FIELD(r, row, 2, u->username);
    IOT_PG_FIELD(r, row, 3, u->email);
    IOT_PG_FIELD(r, row, 4, u->password_hash);
    u->is_active = iot_pg_bool(r, row, 5);
    u->is_admin = iot_pg_bool(r, row, 6);
    u->created_at = iot_pg_i64(r, row, 7);
    u->updated_at = iot_pg_i64(r, row, 8);
    u->last_login = iot_pg_i64(r, row, 9); /* NULL reads as 0 */
}

void iot_pg_reg_read_device(const PGresult *r, int row, void *out)
{
    struct iot_device *d = out;
    d->id = iot_pg_i64(r, row, 0);
    d->user_id = iot_pg_i64(r, row, 1);
    IOT_PG_FIELD(r, row, 2, d->name);
    IOT_PG_FIELD(r, row, 3, d->description);
    IOT_PG_FIELD(r, row, 4, d->device_type);
    IOT_PG_FIELD(r, row, 5, d->status);
    IOT_PG_FIELD(r, row, 6, d->location);
    IOT_PG_FIELD(r, row, 7, d->firmware_version);
    IOT_PG_FIELD(r, row, 8, d->hardware_version);
    IOT_PG_FIELD(r, row, 9, d->api_key_hash); /* NULL reads as "" */
    IOT_PG_FIELD(r, row, 10, d->api_key_prefix);
    d->created_at = iot_pg_i64(r, row, 11);
    d->updated_at = iot_pg_i64(r, row, 12);
    d->last_seen = iot_pg_i64(r, row, 13);
    IOT_PG_FIELD(r, row, 14, d->status_set_by);
    d->owner_active = iot_pg_bool(r, row, 15);
}

void iot_pg_reg_read_group(const PGresult *r, int row, void *out)
{
    struct iot_group *g = out;
    g->id = iot_pg_i64(r, row, 0);
    g->user_id = iot_pg_i64(r, row, 1);
    IOT_PG_FIELD(r, row, 2, g->name);
    IOT_PG_FIELD(r, row, 3, g->description);
    IOT_PG_FIELD(r, row, 4, g->color);
    g->created_at = iot_pg_i64(r, row, 5);
    g->updated_at = iot_pg_i64(r, row, 6);
    g->device_count = iot_pg_i64(r, row, 7);
}
