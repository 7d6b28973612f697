/* docs_sqlite.c — the documents store on SQLite (docs_sqlite.h).
 *
 * All collections share one table, `docs`, keyed by (coll, id) where coll
 * is the iot_docs_coll value (append-only, so stored numbers keep their
 * meaning). The header fields are columns with indexes for the filters
 * docs.h offers; the body is the caller's JSON text, kept byte for byte;
 * tags are a JSON array searched with JSON1's json_each. The statements of
 * find, count_by and delete_where depend on which criteria a filter sets:
 * each combination is built once per connection and cached (dynamic slots).
 * Parameters are numbered (?1..?15) so that every shape binds the same way. */
#include "store/sqlite/docs_sqlite.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sqlite_db.h"
#include "util/err.h"

/* Append-only: never edit a shipped step, add a new one. */
static const char *const migrations[] = {
    /* 1: one table for every collection */
    "CREATE TABLE docs ("
    " coll INTEGER NOT NULL,"
    " id TEXT NOT NULL,"
    " user_id INTEGER NOT NULL,"
    " device_id INTEGER NOT NULL,"
    " ts_ms INTEGER NOT NULL,"
    " rev INTEGER NOT NULL,"
    " k1 TEXT,"
    " k2 TEXT,"
    " tags TEXT," /* JSON array of strings, NULL when none */
    " lat REAL,"
    " lon REAL,"
    " body TEXT NOT NULL,"
    " UNIQUE (coll, id));"
    "CREATE INDEX docs_by_user ON docs(coll, user_id, ts_ms, id);"
    "CREATE INDEX docs_by_user_k1 ON docs(coll, user_id, k1, ts_ms, id);"
    "CREATE INDEX docs_by_device ON docs(coll, device_id, ts_ms, id);"
    "CREATE INDEX docs_by_time ON docs(coll, ts_ms, id);"
    "CREATE INDEX docs_by_location ON docs(coll, lat, lon) WHERE lat IS NOT NULL;"
    /* Rule names are unique per user (2 = IOT_DOCS_RULES). */
    "CREATE UNIQUE INDEX docs_rule_names ON docs(user_id, k1) WHERE coll = 2;",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

_Static_assert(IOT_DOCS_RULES == 2, "docs_rule_names names the rules collection by number");

#define COLUMNS "id, user_id, device_id, ts_ms, rev, k1, k2, tags, lat, lon, body"

enum stmt_id {
    ST_PING,
    ST_INSERT,
    ST_UPSERT,
    ST_REPLACE,
    ST_INSERT_IGNORE,
    ST_GET,
    ST_REMOVE,
    ST__COUNT
};

/* ?1 coll, ?2 id, ?3 user_id, ?4 device_id, ?5 ts_ms, ?6 k1, ?7 k2,
 * ?8 tags, ?9 lat, ?10 lon, ?11 body, ?12 expected rev. */
#define INSERT_VALUES                                                                          \
    "(coll, id, user_id, device_id, ts_ms, rev, k1, k2, tags, lat, lon, body)"                 \
    " VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, ?9, ?10, ?11)"
#define SET_FIELDS                                                                             \
    "user_id = ?3, device_id = ?4, ts_ms = ?5, k1 = ?6, k2 = ?7, tags = ?8, lat = ?9,"         \
    " lon = ?10, body = ?11, rev = rev + 1"

static const char *const stmt_sql[ST__COUNT] = {
    [ST_PING] = "SELECT 1",
    [ST_INSERT] = "INSERT INTO docs " INSERT_VALUES " RETURNING rev",
    [ST_UPSERT] = "INSERT INTO docs " INSERT_VALUES
                  " ON CONFLICT (coll, id) DO UPDATE SET " SET_FIELDS " RETURNING rev",
    [ST_REPLACE] = "UPDATE docs SET " SET_FIELDS
                   " WHERE coll = ?1 AND id = ?2 AND rev = ?12 RETURNING rev",
    [ST_INSERT_IGNORE] = "INSERT OR IGNORE INTO docs " INSERT_VALUES,
    [ST_GET] = "SELECT " COLUMNS " FROM docs WHERE coll = ?1 AND id = ?2",
    [ST_REMOVE] = "DELETE FROM docs WHERE coll = ?1 AND id = ?2",
};

/* The criteria a filter may set, one bit each: they pick the statement. */
enum {
    F_USER = 1 << 0,
    F_DEVICE = 1 << 1,
    F_K1 = 1 << 2,
    F_K2 = 1 << 3,
    F_TS_MIN = 1 << 4,
    F_TS_MAX = 1 << 5,
    F_TAG = 1 << 6,
    F_BOX = 1 << 7,
    F_COMBOS = 1 << 8,
};

/* find's shape adds cursor, direction and limit; count_by's its grouping. */
enum query_kind { Q_FIND, Q_COUNT, Q_DELETE };
#define FIND_SLOTS (F_COMBOS * 8)
#define COUNT_SLOTS (F_COMBOS * 3)
#define DELETE_SLOTS F_COMBOS

static const struct iot_sqldb_schema docs_schema = {
    .migrations = migrations,
    .n_migrations = N_MIGRATIONS,
    .stmts = stmt_sql,
    .n_stmts = ST__COUNT,
    .n_dyn = FIND_SLOTS + COUNT_SLOTS + DELETE_SLOTS,
};

/* ---- binding and reading ------------------------------------------------ */

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* The tags as a JSON array for the tags column; NULL (no allocation) when
 * there are none. *out is released by the caller with free(). */
static int tags_json(const struct iot_doc *d, char **out)
{
    *out = NULL;
    if (!d->n_tags)
        return IOT_OK;
    json_t *a = json_array();
    for (size_t i = 0; a && i < d->n_tags; i++)
        if (json_array_append_new(a, json_string(d->tags[i])))
            break;
    *out = a && json_array_size(a) == d->n_tags ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return *out ? IOT_OK : IOT_ENOMEM;
}

static void bind_doc(sqlite3_stmt *st, enum iot_docs_coll coll, const struct iot_doc *d,
                     const char *tags)
{
    sqlite3_bind_int(st, 1, (int)coll);
    sqlite3_bind_text(st, 2, d->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, d->user_id);
    sqlite3_bind_int64(st, 4, d->device_id);
    sqlite3_bind_int64(st, 5, d->ts_ms);
    bind_text_or_null(st, 6, d->k1);
    bind_text_or_null(st, 7, d->k2);
    bind_text_or_null(st, 8, tags);
    if (d->has_location) {
        sqlite3_bind_double(st, 9, d->lat);
        sqlite3_bind_double(st, 10, d->lon);
    } else {
        sqlite3_bind_null(st, 9);
        sqlite3_bind_null(st, 10);
    }
    sqlite3_bind_text(st, 11, d->body, (int)d->body_len, SQLITE_STATIC);
}

/* The tags column back into an array of borrowed strings. *arr holds the
 * parsed JSON that owns them (NULL when there are none). */
static int read_tags(sqlite3_stmt *st, int col, json_t **arr, const char **tags, size_t *n)
{
    *arr = NULL;
    *n = 0;
    const char *text = (const char *)sqlite3_column_text(st, col);
    if (!text)
        return IOT_OK;
    *arr = json_loads(text, 0, NULL);
    if (!json_is_array(*arr) || json_array_size(*arr) > IOT_DOCS_TAGS_MAX)
        return IOT_EINTERNAL;
    for (size_t i = 0; i < json_array_size(*arr); i++) {
        tags[i] = json_string_value(json_array_get(*arr, i));
        if (!tags[i])
            return IOT_EINTERNAL;
    }
    *n = json_array_size(*arr);
    return IOT_OK;
}

/* Calls fn with the row in COLUMNS order; *stop is set when fn asks to. */
static int emit_row(sqlite3_stmt *st, iot_docs_fn fn, void *ctx, bool *stop)
{
    const char *tags[IOT_DOCS_TAGS_MAX];
    json_t *arr;
    struct iot_doc d = {
        .id = (const char *)sqlite3_column_text(st, 0),
        .user_id = sqlite3_column_int64(st, 1),
        .device_id = sqlite3_column_int64(st, 2),
        .ts_ms = sqlite3_column_int64(st, 3),
        .rev = sqlite3_column_int64(st, 4),
        .k1 = (const char *)sqlite3_column_text(st, 5),
        .k2 = (const char *)sqlite3_column_text(st, 6),
        .tags = tags,
        .has_location = sqlite3_column_type(st, 8) != SQLITE_NULL,
        .lat = sqlite3_column_double(st, 8),
        .lon = sqlite3_column_double(st, 9),
        .body = (const char *)sqlite3_column_text(st, 10),
        .body_len = (size_t)sqlite3_column_bytes(st, 10),
    };
    int rc = read_tags(st, 7, &arr, tags, &d.n_tags);
    if (rc == IOT_OK && !(d.id && d.body))
        rc = IOT_ENOMEM;
    if (rc == IOT_OK)
        *stop = fn(ctx, &d) != 0;
    json_decref(arr);
    return rc;
}

/* ---- open / close / ping ------------------------------------------------- */

static int docs_open(const char *url, void **self)
{
    return iot_sqldb_open_self(url, &docs_schema, self);
}

static void docs_close(void *self) { iot_sqldb_close(self); }

static int docs_ping(void *self) { return iot_sqldb_ping(self, ST_PING); }

/* ---- writes ------------------------------------------------------------- */

/* Runs a RETURNING rev statement: no row back means the expectation failed. */
static int step_rev(sqlite3_stmt *st, int64_t *rev_out)
{
    int step = sqlite3_step(st);
    int rc = step == SQLITE_ROW ? IOT_OK : step == SQLITE_DONE ? IOT_ECONFLICT : iot_sqldb_map(step);
    if (rc == IOT_OK && rev_out)
        *rev_out = sqlite3_column_int64(st, 0);
    if (rc == IOT_OK && sqlite3_step(st) != SQLITE_DONE)
        rc = IOT_EINTERNAL;
    iot_sqldb_done(st);
    return rc;
}

static int docs_put(void *self, enum iot_docs_coll coll, const struct iot_doc *doc,
                    int64_t expect_rev, int64_t *rev_out)
{
    if (iot_docs_check_put(coll, doc) || expect_rev < IOT_DOCS_ANY_REV)
        return IOT_EINVAL;
    char *tags;
    int rc = tags_json(doc, &tags);
    if (rc)
        return rc;
    enum stmt_id id = expect_rev == IOT_DOCS_NEW       ? ST_INSERT
                      : expect_rev == IOT_DOCS_ANY_REV ? ST_UPSERT
                                                       : ST_REPLACE;
    struct iot_sqldb_conn *c;
    rc = iot_sqldb_write_begin(self, &c);
    if (rc == IOT_OK) {
        sqlite3_stmt *st;
        rc = iot_sqldb_stmt(c, id, &st);
        if (rc == IOT_OK) {
            bind_doc(st, coll, doc, tags);
            sqlite3_bind_int64(st, 12, expect_rev);
            rc = step_rev(st, rev_out);
        }
        rc = iot_sqldb_write_end(self, c, rc);
    }
    free(tags);
    return rc;
}

static int insert_one_ignoring(struct iot_sqldb_conn *c, enum iot_docs_coll coll,
                               const struct iot_doc *d, size_t *inserted)
{
    char *tags;
    int rc = tags_json(d, &tags);
    sqlite3_stmt *st;
    if (rc == IOT_OK)
        rc = iot_sqldb_stmt(c, ST_INSERT_IGNORE, &st);
    if (rc == IOT_OK) {
        bind_doc(st, coll, d, tags);
        rc = iot_sqldb_step_done(st);
        if (rc == IOT_OK)
            *inserted += (size_t)sqlite3_changes(iot_sqldb_handle(c));
    }
    free(tags);
    return rc;
}

/* One transaction for the whole batch: on SQLite it is all or nothing,
 * which the interface allows but does not promise. */
static int docs_insert_many(void *self, enum iot_docs_coll coll, const struct iot_doc *docs,
                            size_t n, size_t *inserted)
{
    if (inserted)
        *inserted = 0;
    if (iot_docs_check_batch(coll, docs, n))
        return IOT_EINVAL;
    if (n == 0)
        return IOT_OK;
    struct iot_sqldb_conn *c;
    int rc = iot_sqldb_write_begin(self, &c);
    if (rc)
        return rc;
    size_t count = 0;
    for (size_t i = 0; i < n && rc == IOT_OK; i++)
        rc = insert_one_ignoring(c, coll, &docs[i], &count);
    rc = iot_sqldb_write_end(self, c, rc);
    if (rc == IOT_OK && inserted)
        *inserted = count;
    return rc;
}

static int docs_remove(void *self, enum iot_docs_coll coll, const char *id)
{
    if (iot_docs_check_coll(coll) || iot_docs_check_id(id))
        return IOT_EINVAL;
    struct iot_sqldb_conn *c;
    int rc = iot_sqldb_write_begin(self, &c);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    rc = iot_sqldb_stmt(c, ST_REMOVE, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int(st, 1, (int)coll);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        rc = iot_sqldb_step_done(st);
        if (rc == IOT_OK && sqlite3_changes(iot_sqldb_handle(c)) == 0)
            rc = IOT_ENOTFOUND;
    }
    return iot_sqldb_write_end(self, c, rc);
}

/* ---- reads -------------------------------------------------------------- */

/* Steps a statement returning COLUMNS rows into fn until done or stopped. */
static int stream_rows(sqlite3_stmt *st, iot_docs_fn fn, void *ctx, size_t *rows)
{
    int rc = IOT_OK;
    bool stop = false;
    *rows = 0;
    while (rc == IOT_OK && !stop) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = iot_sqldb_map(step);
            break;
        }
        (*rows)++;
        rc = emit_row(st, fn, ctx, &stop);
    }
    iot_sqldb_done(st);
    return rc;
}

static int docs_get(void *self, enum iot_docs_coll coll, const char *id, iot_docs_fn fn,
                    void *ctx)
{
    if (iot_docs_check_coll(coll) || iot_docs_check_id(id) || !fn)
        return IOT_EINVAL;
    struct iot_sqldb_conn *c = iot_sqldb_get(self);
    sqlite3_stmt *st;
    size_t rows = 0;
    int rc = iot_sqldb_stmt(c, ST_GET, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int(st, 1, (int)coll);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        rc = stream_rows(st, fn, ctx, &rows);
    }
    iot_sqldb_put(self, c);
    return rc == IOT_OK && rows == 0 ? IOT_ENOTFOUND : rc;
}

/* ---- filtered statements ------------------------------------------------ */

static unsigned criteria_mask(const struct iot_docs_filter *f)
{
    return (f->user_id ? F_USER : 0u) | (f->device_id ? F_DEVICE : 0u) | (f->k1 ? F_K1 : 0u) |
           (f->k2 ? F_K2 : 0u) | (f->has_ts_min ? F_TS_MIN : 0u) |
           (f->has_ts_max ? F_TS_MAX : 0u) | (f->tag ? F_TAG : 0u) | (f->has_box ? F_BOX : 0u);
}

/* What picks a statement: the kind, the criteria and the kind's options
 * (find: after, ascending, limit; count: the grouping). */
struct query_shape {
    enum query_kind kind;
    unsigned mask;
    bool after, ascending, limit;
    enum iot_docs_group group;
};

static int shape_slot(const struct query_shape *q)
{
    switch (q->kind) {
    case Q_FIND:
        return (int)q->mask * 8 + (q->after ? 4 : 0) + (q->ascending ? 2 : 0) + (q->limit ? 1 : 0);
    case Q_COUNT:
        return FIND_SLOTS + (int)q->mask * 3 + (int)q->group;
    case Q_DELETE:
        return FIND_SLOTS + COUNT_SLOTS + (int)q->mask;
    }
    return -1;
}

/* ?1 coll, ?2 user, ?3 device, ?4 k1, ?5 k2, ?6 ts_min, ?7 ts_max, ?8 tag,
 * ?9..?12 lat_min, lat_max, lon_min, lon_max, ?13 after_ts, ?14 after_id,
 * ?15 limit. */
static void append_where(const struct query_shape *q, char *buf, size_t size)
{
    snprintf(buf, size, " WHERE coll = ?1%s%s%s%s%s%s%s%s%s",
             q->mask & F_USER ? " AND user_id = ?2" : "",
             q->mask & F_DEVICE ? " AND device_id = ?3" : "",
             q->mask & F_K1 ? " AND k1 = ?4" : "", q->mask & F_K2 ? " AND k2 = ?5" : "",
             q->mask & F_TS_MIN ? " AND ts_ms >= ?6" : "",
             q->mask & F_TS_MAX ? " AND ts_ms <= ?7" : "",
             q->mask & F_TAG ? " AND EXISTS (SELECT 1 FROM json_each(docs.tags) WHERE value = ?8)"
                             : "",
             q->mask & F_BOX ? " AND lat BETWEEN ?9 AND ?10 AND lon BETWEEN ?11 AND ?12" : "",
             !q->after      ? ""
             : q->ascending ? " AND (ts_ms, id) > (?13, ?14)"
                            : " AND (ts_ms, id) < (?13, ?14)");
}

static const char *const group_sql[] = {
    [IOT_DOCS_GROUP_NONE] = "SELECT NULL, NULL, count(*) FROM docs%s",
    [IOT_DOCS_GROUP_K1] = "SELECT k1, NULL, count(*) FROM docs%s GROUP BY k1",
    [IOT_DOCS_GROUP_K1_K2] = "SELECT k1, k2, count(*) FROM docs%s GROUP BY k1, k2",
};

static int build_query(const void *arg, char *buf, size_t size)
{
    const struct query_shape *q = arg;
    char where[512];
    append_where(q, where, sizeof where);
    int n = 0;
    switch (q->kind) {
    case Q_FIND:
        n = snprintf(buf, size, "SELECT " COLUMNS " FROM docs%s ORDER BY ts_ms %s, id %s%s", where,
                     q->ascending ? "ASC" : "DESC", q->ascending ? "ASC" : "DESC",
                     q->limit ? " LIMIT ?15" : "");
        break;
    case Q_COUNT:
        n = snprintf(buf, size, group_sql[q->group], where);
        break;
    case Q_DELETE:
        n = snprintf(buf, size, "DELETE FROM docs%s", where);
        break;
    }
    return n > 0 && (size_t)n < size ? IOT_OK : IOT_EINTERNAL;
}

/* Binds every parameter a shape may use; those its SQL lacks are ignored
 * (sqlite3_bind_* answers SQLITE_RANGE for them, harmlessly). */
static void bind_filter(sqlite3_stmt *st, enum iot_docs_coll coll, const struct iot_docs_filter *f)
{
    sqlite3_bind_int(st, 1, (int)coll);
    sqlite3_bind_int64(st, 2, f->user_id);
    sqlite3_bind_int64(st, 3, f->device_id);
    bind_text_or_null(st, 4, f->k1);
    bind_text_or_null(st, 5, f->k2);
    sqlite3_bind_int64(st, 6, f->ts_min);
    sqlite3_bind_int64(st, 7, f->ts_max);
    bind_text_or_null(st, 8, f->tag);
    sqlite3_bind_double(st, 9, f->lat_min);
    sqlite3_bind_double(st, 10, f->lat_max);
    sqlite3_bind_double(st, 11, f->lon_min);
    sqlite3_bind_double(st, 12, f->lon_max);
    sqlite3_bind_int64(st, 13, f->after_ts);
    bind_text_or_null(st, 14, f->has_after ? f->after_id : NULL);
    sqlite3_bind_int64(st, 15, f->limit > INT64_MAX ? INT64_MAX : (sqlite3_int64)f->limit);
}

static int filtered_stmt(struct iot_sqldb_conn *c, const struct query_shape *q,
                         enum iot_docs_coll coll, const struct iot_docs_filter *f,
                         sqlite3_stmt **st)
{
    int rc = iot_sqldb_dyn_stmt(c, shape_slot(q), build_query, q, st);
    if (rc == IOT_OK)
        bind_filter(*st, coll, f);
    return rc;
}

static int docs_find(void *self, enum iot_docs_coll coll, const struct iot_docs_filter *f,
                     iot_docs_fn fn, void *ctx)
{
    if (iot_docs_check_coll(coll) || iot_docs_check_filter(f) || !fn)
        return IOT_EINVAL;
    struct query_shape q = {.kind = Q_FIND, .mask = criteria_mask(f), .after = f->has_after,
                            .ascending = f->ascending, .limit = f->limit > 0};
    struct iot_sqldb_conn *c = iot_sqldb_get(self);
    sqlite3_stmt *st;
    size_t rows;
    int rc = filtered_stmt(c, &q, coll, f, &st);
    if (rc == IOT_OK)
        rc = stream_rows(st, fn, ctx, &rows);
    iot_sqldb_put(self, c);
    return rc;
}

static int stream_counts(sqlite3_stmt *st, iot_docs_count_fn fn, void *ctx)
{
    int rc = IOT_OK;
    for (;;) {
        int step = sqlite3_step(st);
        if (step != SQLITE_ROW) {
            rc = step == SQLITE_DONE ? IOT_OK : iot_sqldb_map(step);
            break;
        }
        int64_t n = sqlite3_column_int64(st, 2);
        if (n > 0 && fn(ctx, (const char *)sqlite3_column_text(st, 0),
                        (const char *)sqlite3_column_text(st, 1), n))
            break;
    }
    iot_sqldb_done(st);
    return rc;
}

static int docs_count_by(void *self, enum iot_docs_coll coll, const struct iot_docs_filter *f,
                         enum iot_docs_group group, iot_docs_count_fn fn, void *ctx)
{
    if (iot_docs_check_coll(coll) || iot_docs_check_filter(f) || !fn ||
        (unsigned)group > IOT_DOCS_GROUP_K1_K2)
        return IOT_EINVAL;
    struct query_shape q = {.kind = Q_COUNT, .mask = criteria_mask(f), .group = group};
    struct iot_sqldb_conn *c = iot_sqldb_get(self);
    sqlite3_stmt *st;
    int rc = filtered_stmt(c, &q, coll, f, &st);
    if (rc == IOT_OK)
        rc = stream_counts(st, fn, ctx);
    iot_sqldb_put(self, c);
    return rc;
}

static int docs_delete_where(void *self, enum iot_docs_coll coll, const struct iot_docs_filter *f,
                             int64_t *deleted)
{
    if (deleted)
        *deleted = 0;
    if (iot_docs_check_coll(coll) || iot_docs_check_filter(f) ||
        !iot_docs_filter_has_criterion(f))
        return IOT_EINVAL;
    struct query_shape q = {.kind = Q_DELETE, .mask = criteria_mask(f)};
    struct iot_sqldb_conn *c;
    int rc = iot_sqldb_write_begin(self, &c);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    rc = filtered_stmt(c, &q, coll, f, &st);
    if (rc == IOT_OK)
        rc = iot_sqldb_step_done(st);
    int64_t n = rc == IOT_OK ? sqlite3_changes64(iot_sqldb_handle(c)) : 0;
    rc = iot_sqldb_write_end(self, c, rc);
    if (rc == IOT_OK && deleted)
        *deleted = n;
    return rc;
}

const struct iot_docs_ops iot_docs_sqlite = {
    .name = "sqlite",
    .version = 1,
    .caps = 0,
    .open = docs_open,
    .close = docs_close,
    .ping = docs_ping,
    .put = docs_put,
    .insert_many = docs_insert_many,
    .get = docs_get,
    .remove = docs_remove,
    .find = docs_find,
    .count_by = docs_count_by,
    .delete_where = docs_delete_where,
};
