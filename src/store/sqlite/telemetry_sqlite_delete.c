/* telemetry_sqlite_delete.c — deletes and retention of the SQLite telemetry
 * store: delete_range (with the repair of what it touched), delete_device,
 * delete_user and purge.
 *
 * delete_range favours correctness over speed. Before deleting it asks,
 * per (measurement, hour) of the doomed messages, how many values there are
 * and whether they are numeric. Then it deletes the messages and repairs
 * exactly what they contributed to:
 *  - rollups: every hour and day bucket that held a deleted numeric value
 *    is recomputed from the raw messages that remain in it;
 *  - latest: a value whose message was deleted falls back to the newest
 *    remaining message holding that measurement, or goes;
 *  - catalog: counts drop by the values deleted (a subtraction stays right
 *    after purge has removed older raw data, where a recount would not);
 *    an entry with no values left goes; a first/last seen that fell in the
 *    range moves to the nearest remaining message.
 * A bucket straddling the raw-retention cutoff is recomputed from the raw
 * messages still there, i.e. it loses the purged part.
 *
 * Every transaction here starts with iot_tmsql_begin, which first applies
 * the derived deltas write_batch left pending: the repairs above work on
 * complete derived rows, and no pending delta can name a deleted message. */
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/telemetry_sqlite_int.h"
#include "util/err.h"

enum { PURGE_DEVICES_PER_TX = 64 }; /* bounds how long purge holds the writer */

/* One (measurement, hour) of the messages delete_range removes. */
struct touched {
    char name[IOT_TM_NAME_MAX + 1];
    size_t name_len;
    int64_t hour;
    int64_t count;
    bool numeric;
};

struct touched_list {
    struct touched *v;
    size_t n, cap;
};

static int touched_push(struct touched_list *l, const struct touched *t)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        struct touched *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return IOT_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *t;
    return IOT_OK;
}

static int stmt_dev(struct iot_sqldb_conn *c, enum iot_tmsql_stmt id, int64_t device_id,
                    sqlite3_stmt **st)
{
    int rc = iot_sqldb_stmt(c, id, st);
    if (rc == IOT_OK)
        sqlite3_bind_int64(*st, 1, device_id);
    return rc;
}

/* A statement bound to (device_id, JSON path or name). */
static int stmt_dev_text(struct iot_sqldb_conn *c, enum iot_tmsql_stmt id, int64_t device_id,
                         const char *text, sqlite3_stmt **st)
{
    int rc = stmt_dev(c, id, device_id, st);
    if (rc == IOT_OK)
        sqlite3_bind_text(*st, 2, text, -1, SQLITE_STATIC);
    return rc;
}

static int64_t changes(struct iot_sqldb_conn *c)
{
    return sqlite3_changes64(iot_sqldb_handle(c));
}

/* ---- delete_range: what will go ---------------------------------------- */

/* Rows come grouped and sorted by (name, hour). Keys that are not valid
 * measurement names were never points (the catalog does not know them). */
static int collect_touched(struct iot_sqldb_conn *c, int64_t dev, int64_t from, int64_t to,
                           struct touched_list *out)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_dev(c, TMS_DR_TOUCHED, dev, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    int src;
    while (rc == IOT_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        if (!name || strlen(name) != len || !iot_tm_name_valid(name))
            continue;
        struct touched t = {.name_len = len, .hour = sqlite3_column_int64(st, 1),
                            .numeric = sqlite3_column_int(st, 2) != 0,
                            .count = sqlite3_column_int64(st, 3)};
        memcpy(t.name, name, len);
        rc = touched_push(out, &t);
    }
    if (rc == IOT_OK && src != SQLITE_DONE)
        rc = iot_sqldb_map(src);
    iot_sqldb_done(st);
    return rc;
}

/* ---- delete_range: repairs --------------------------------------------- */

static int catalog_subtract(struct iot_sqldb_conn *c, int64_t dev, const char *name, int64_t n)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_dev_text(c, TMS_CATALOG_SUB, dev, name, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 3, n);
    return iot_sqldb_step_done(st);
}

/* A bucket's rollup, summed the way ingest sums (telemetry_sqlite_write.c's
 * add_int): every value as a double; the integer ones (booleans are 0/1)
 * also exactly, the sum going approximate only when it overflows int64. */
struct bucket_sum {
    int64_t count;
    double sum, lo, hi;
    int64_t ints, isum, imin, imax;
    bool isum_over;
    double isum_approx;
};

static void bucket_add(struct bucket_sum *b, sqlite3_stmt *st)
{
    double v = sqlite3_column_double(st, 0);
    if (b->count == 0 || v < b->lo)
        b->lo = v;
    if (b->count == 0 || v > b->hi)
        b->hi = v;
    b->count++;
    b->sum += v;
    if (sqlite3_column_type(st, 0) != SQLITE_INTEGER)
        return;
    int64_t i = sqlite3_column_int64(st, 0);
    if (b->ints == 0 || i < b->imin)
        b->imin = i;
    if (b->ints == 0 || i > b->imax)
        b->imax = i;
    b->ints++;
    b->isum_approx += (double)i;
    if (!b->isum_over && __builtin_add_overflow(b->isum, i, &b->isum))
        b->isum_over = true;
}

/* Steps the bucket's remaining numeric values (see TMS_BUCKET_CALC). */
static int bucket_scan(struct iot_sqldb_conn *c, int64_t dev, const struct touched *t,
                       int64_t width, int64_t start, struct bucket_sum *b)
{
    char path[IOT_TMSQL_PATH_MAX];
    iot_tmsql_json_path(t->name, t->name_len, path);
    sqlite3_stmt *st = NULL;
    int rc = stmt_dev_text(c, TMS_BUCKET_CALC, dev, path, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 3, start);
    sqlite3_bind_int64(st, 4, start + width);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int type = sqlite3_column_type(st, 0);
        if (type == SQLITE_INTEGER || type == SQLITE_FLOAT)
            bucket_add(b, st);
    }
    iot_sqldb_done(st);
    return src == SQLITE_DONE ? IOT_OK : iot_sqldb_map(src);
}

/* Recomputes one bucket from the remaining raw messages. */
static int recompute_bucket(struct iot_sqldb_conn *c, int64_t dev, const struct touched *t,
                            int64_t width, int64_t start)
{
    struct bucket_sum b = {0};
    int rc = bucket_scan(c, dev, t, width, start, &b);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = stmt_dev_text(c, b.count ? TMS_ROLLUP_PUT : TMS_ROLLUP_DEL, dev, t->name, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 3, width);
    sqlite3_bind_int64(st, 4, start);
    if (b.count) {
        sqlite3_bind_int64(st, 5, b.count);
        sqlite3_bind_double(st, 6, b.sum);
        sqlite3_bind_double(st, 7, b.lo);
        sqlite3_bind_double(st, 8, b.hi);
        sqlite3_bind_int64(st, 9, b.ints);
        /* REAL marks an inexact sum, as ingest's upsert leaves it */
        if (b.isum_over)
            sqlite3_bind_double(st, 10, b.isum_approx);
        else
            sqlite3_bind_int64(st, 10, b.isum);
        if (b.ints) {
            sqlite3_bind_int64(st, 11, b.imin);
            sqlite3_bind_int64(st, 12, b.imax);
        } else {
            sqlite3_bind_null(st, 11);
            sqlite3_bind_null(st, 12);
        }
    }
    return iot_sqldb_step_done(st);
}

static bool same_name(const struct touched *a, const struct touched *b)
{
    return a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0;
}

/* Every touched hour, and every day holding one, once each. */
static int repair_rollups(struct iot_sqldb_conn *c, int64_t dev, const struct touched_list *l)
{
    int rc = IOT_OK;
    const struct touched *prev = NULL; /* last numeric entry */
    for (size_t i = 0; i < l->n && rc == IOT_OK; i++) {
        const struct touched *t = &l->v[i];
        if (!t->numeric)
            continue;
        int64_t day = iot_tmsql_bucket(t->hour, IOT_TM_DAY);
        bool new_day = !prev || !same_name(prev, t) ||
                       iot_tmsql_bucket(prev->hour, IOT_TM_DAY) != day;
        rc = recompute_bucket(c, dev, t, IOT_TM_HOUR, t->hour);
        if (rc == IOT_OK && new_day)
            rc = recompute_bucket(c, dev, t, IOT_TM_DAY, day);
        prev = t;
    }
    return rc;
}

static int latest_put(struct iot_sqldb_conn *c, int64_t dev, const struct touched *t,
                      sqlite3_stmt *newest)
{
    const char *jt = (const char *)sqlite3_column_text(newest, 3);
    sqlite3_stmt *st = NULL;
    int rc = stmt_dev_text(c, TMS_LATEST_PUT, dev, t->name, &st);
    if (rc)
        return rc;
    if (jt && strcmp(jt, "text") == 0) {
        sqlite3_bind_int(st, 3, IOT_TM_STRING);
        sqlite3_bind_null(st, 4);
        sqlite3_bind_value(st, 5, sqlite3_column_value(newest, 2));
        sqlite3_bind_null(st, 8);
    } else {
        bool is_bool = jt && (strcmp(jt, "true") == 0 || strcmp(jt, "false") == 0);
        sqlite3_bind_int(st, 3, is_bool ? IOT_TM_BOOL : IOT_TM_NUMBER);
        sqlite3_bind_double(st, 4, sqlite3_column_double(newest, 2));
        sqlite3_bind_null(st, 5);
        if (is_bool)
            sqlite3_bind_null(st, 8);
        else /* INTEGER or REAL as the JSON had it (see latest.val) */
            sqlite3_bind_value(st, 8, sqlite3_column_value(newest, 2));
    }
    sqlite3_bind_int64(st, 6, sqlite3_column_int64(newest, 0));
    sqlite3_bind_int64(st, 7, sqlite3_column_int64(newest, 1));
    return iot_sqldb_step_done(st);
}

/* A latest value whose message went falls back to the newest remaining
 * message holding the measurement, or is dropped. */
static int repair_latest(struct iot_sqldb_conn *c, int64_t dev, const struct touched *t,
                         int64_t from, int64_t to)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_dev_text(c, TMS_LATEST_GET, dev, t->name, &st);
    int64_t ts = 0;
    if (rc == IOT_OK)
        rc = iot_tmsql_step_ints(st, &ts, 1);
    if (rc == IOT_ENOTFOUND || (rc == IOT_OK && (ts < from || ts > to)))
        return IOT_OK;
    char path[IOT_TMSQL_PATH_MAX];
    iot_tmsql_json_path(t->name, t->name_len, path);
    sqlite3_stmt *newest;
    if (rc == IOT_OK)
        rc = stmt_dev_text(c, TMS_NEWEST_WITH, dev, path, &newest);
    if (rc)
        return rc;
    int src = sqlite3_step(newest);
    if (src == SQLITE_ROW) {
        rc = latest_put(c, dev, t, newest);
    } else if (src == SQLITE_DONE) {
        rc = stmt_dev_text(c, TMS_LATEST_DEL, dev, t->name, &st);
        if (rc == IOT_OK)
            rc = iot_sqldb_step_done(st);
    } else {
        rc = iot_sqldb_map(src);
    }
    iot_sqldb_done(newest);
    return rc;
}

/* The ts of the nearest remaining message holding the measurement, after
 * `to` (TMS_FIRST_WITH) or before `from` (TMS_LAST_WITH); *ts unchanged
 * when there is none. */
static int nearest_with(struct iot_sqldb_conn *c, enum iot_tmsql_stmt id, int64_t dev,
                        const struct touched *t, int64_t bound, int64_t *ts)
{
    char path[IOT_TMSQL_PATH_MAX];
    iot_tmsql_json_path(t->name, t->name_len, path);
    sqlite3_stmt *st = NULL;
    int rc = stmt_dev_text(c, id, dev, path, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 3, bound);
    rc = iot_tmsql_step_ints(st, ts, 1);
    return rc == IOT_ENOTFOUND ? IOT_OK : rc;
}

static int repair_catalog(struct iot_sqldb_conn *c, int64_t dev, const struct touched *t,
                          int64_t from, int64_t to)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_dev_text(c, TMS_CATALOG_GET, dev, t->name, &st);
    int64_t v[3] = {0, 0, 0}; /* count, first_seen, last_seen */
    if (rc == IOT_OK)
        rc = iot_tmsql_step_ints(st, v, 3);
    if (rc)
        return rc == IOT_ENOTFOUND ? IOT_OK : rc;
    if (v[0] <= 0) {
        rc = stmt_dev_text(c, TMS_CATALOG_DEL, dev, t->name, &st);
        return rc ? rc : iot_sqldb_step_done(st);
    }
    if (v[1] >= from && v[1] <= to)
        rc = nearest_with(c, TMS_FIRST_WITH, dev, t, to, &v[1]);
    if (rc == IOT_OK && v[2] >= from && v[2] <= to)
        rc = nearest_with(c, TMS_LAST_WITH, dev, t, from, &v[2]);
    if (rc == IOT_OK)
        rc = stmt_dev_text(c, TMS_CATALOG_SET, dev, t->name, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 3, v[1]);
    sqlite3_bind_int64(st, 4, v[2]);
    return iot_sqldb_step_done(st);
}

/* Subtracts each measurement's deleted values from its catalog count
 * (before the delete: the counts are per touched hour, summed here). */
static int subtract_counts(struct iot_sqldb_conn *c, int64_t dev, const struct touched_list *l)
{
    int rc = IOT_OK;
    for (size_t i = 0; i < l->n && rc == IOT_OK;) {
        int64_t n = 0;
        size_t j = i;
        for (; j < l->n && same_name(&l->v[i], &l->v[j]); j++)
            n += l->v[j].count;
        rc = catalog_subtract(c, dev, l->v[i].name, n);
        i = j;
    }
    return rc;
}

/* latest and catalog, once per distinct name. */
static int repair_names(struct iot_sqldb_conn *c, int64_t dev, const struct touched_list *l,
                        int64_t from, int64_t to)
{
    int rc = IOT_OK;
    for (size_t i = 0; i < l->n && rc == IOT_OK; i++) {
        if (i > 0 && same_name(&l->v[i - 1], &l->v[i]))
            continue;
        rc = repair_latest(c, dev, &l->v[i], from, to);
        if (rc == IOT_OK)
            rc = repair_catalog(c, dev, &l->v[i], from, to);
    }
    return rc;
}

static int delete_messages(struct iot_sqldb_conn *c, int64_t dev, int64_t from, int64_t to,
                           int64_t *deleted)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_dev(c, TMS_DR_DELETE, dev, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    rc = iot_sqldb_step_done(st);
    *deleted = rc == IOT_OK ? changes(c) : 0;
    if (rc == IOT_OK && *deleted)
        rc = stmt_dev(c, TMS_DEV_SUB, dev, &st);
    if (rc == IOT_OK && *deleted) {
        sqlite3_bind_int64(st, 2, *deleted);
        rc = iot_sqldb_step_done(st);
    }
    return rc;
}

int iot_tmsql_delete_range(void *self, int64_t device_id, int64_t from, int64_t to,
                           int64_t *deleted)
{
    struct iot_tmsql *s = self;
    int64_t n = 0;
    if (from > to) {
        if (deleted)
            *deleted = 0;
        return IOT_OK;
    }
    struct iot_sqldb_conn *c;
    int rc = iot_tmsql_begin(s, &c);
    if (rc)
        return rc;
    struct touched_list l = {0};
    rc = collect_touched(c, device_id, from, to, &l);
    if (rc == IOT_OK)
        rc = subtract_counts(c, device_id, &l);
    if (rc == IOT_OK)
        rc = delete_messages(c, device_id, from, to, &n);
    if (rc == IOT_OK)
        rc = repair_rollups(c, device_id, &l);
    if (rc == IOT_OK)
        rc = repair_names(c, device_id, &l, from, to);
    free(l.v);
    rc = iot_tmsql_end(s, c, rc);
    if (deleted)
        *deleted = rc == IOT_OK ? n : 0;
    return rc;
}

/* ---- delete_device / delete_user ----------------------------------------- */

static int delete_device_rows(struct iot_sqldb_conn *c, int64_t dev)
{
    static const enum iot_tmsql_stmt ids[] = {TMS_DEL_DEV_MSG, TMS_DEL_DEV_LATEST,
                                              TMS_DEL_DEV_ROLLUPS, TMS_DEL_DEV_CATALOG,
                                              TMS_DEL_DEV_ROW};
    int rc = IOT_OK;
    for (size_t i = 0; i < sizeof ids / sizeof ids[0] && rc == IOT_OK; i++) {
        sqlite3_stmt *st;
        rc = stmt_dev(c, ids[i], dev, &st);
        if (rc == IOT_OK)
            rc = iot_sqldb_step_done(st);
    }
    return rc;
}

int iot_tmsql_delete_device(void *self, int64_t device_id)
{
    struct iot_tmsql *s = self;
    struct iot_sqldb_conn *c;
    int rc = iot_tmsql_begin(s, &c);
    if (rc)
        return rc;
    return iot_tmsql_end(s, c, delete_device_rows(c, device_id));
}

struct id_list {
    int64_t *v;
    size_t n, cap;
};

/* Collects the first column of `st` (already bound) as integers. */
static int collect_ids(sqlite3_stmt *st, struct id_list *l)
{
    int rc = IOT_OK, src;
    while (rc == IOT_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        if (l->n == l->cap) {
            size_t cap = l->cap ? 2 * l->cap : 64;
            int64_t *v = realloc(l->v, cap * sizeof *v);
            if (!v) {
                rc = IOT_ENOMEM;
                break;
            }
            l->v = v;
            l->cap = cap;
        }
        l->v[l->n++] = sqlite3_column_int64(st, 0);
    }
    if (rc == IOT_OK && src != SQLITE_DONE)
        rc = iot_sqldb_map(src);
    iot_sqldb_done(st);
    return rc;
}

/* The devices the user owns (as of their latest batch) go whole; then any
 * message still carrying the user's id (a device that changed hands). */
static int delete_user_rows(struct iot_sqldb_conn *c, int64_t uid)
{
    struct id_list l = {0};
    sqlite3_stmt *st = NULL;
    int rc = stmt_dev(c, TMS_USER_DEVICES, uid, &st);
    if (rc == IOT_OK)
        rc = collect_ids(st, &l);
    for (size_t i = 0; i < l.n && rc == IOT_OK; i++)
        rc = delete_device_rows(c, l.v[i]);
    free(l.v);
    if (rc == IOT_OK)
        rc = stmt_dev(c, TMS_DEL_USER_MSG, uid, &st);
    return rc ? rc : iot_sqldb_step_done(st);
}

int iot_tmsql_delete_user(void *self, int64_t user_id)
{
    struct iot_tmsql *s = self;
    struct iot_sqldb_conn *c;
    int rc = iot_tmsql_begin(s, &c);
    if (rc)
        return rc;
    return iot_tmsql_end(s, c, delete_user_rows(c, user_id));
}

/* ---- purge ------------------------------------------------------------------ */

static int purge_device(struct iot_sqldb_conn *c, int64_t dev, int64_t raw_before,
                        int64_t rollup_before, int64_t *removed)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_dev(c, TMS_PURGE_MSG, dev, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 2, raw_before);
    rc = iot_sqldb_step_done(st);
    int64_t n = rc == IOT_OK ? changes(c) : 0;
    if (rc == IOT_OK && n)
        rc = stmt_dev(c, TMS_DEV_SUB, dev, &st);
    if (rc == IOT_OK && n) {
        sqlite3_bind_int64(st, 2, n);
        rc = iot_sqldb_step_done(st);
    }
    if (rc == IOT_OK)
        rc = stmt_dev(c, TMS_PURGE_ROLLUPS, dev, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int64(st, 2, rollup_before);
        rc = iot_sqldb_step_done(st);
    }
    if (rc == IOT_OK)
        *removed += n;
    return rc;
}

/* One transaction over the next PURGE_DEVICES_PER_TX devices after *after. */
static int purge_some(struct iot_tmsql *s, int64_t *after, int64_t raw_before,
                      int64_t rollup_before, int64_t *removed, bool *done)
{
    struct iot_sqldb_conn *c;
    int rc = iot_tmsql_begin(s, &c);
    if (rc)
        return rc;
    struct id_list l = {0};
    sqlite3_stmt *st = NULL;
    rc = stmt_dev(c, TMS_DEVICES_AFTER, *after, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int64(st, 2, PURGE_DEVICES_PER_TX);
        rc = collect_ids(st, &l);
    }
    int64_t n = 0;
    for (size_t i = 0; i < l.n && rc == IOT_OK; i++)
        rc = purge_device(c, l.v[i], raw_before, rollup_before, &n);
    rc = iot_tmsql_end(s, c, rc);
    if (rc == IOT_OK) {
        *removed += n;
        *done = l.n < PURGE_DEVICES_PER_TX;
        if (l.n)
            *after = l.v[l.n - 1];
    }
    free(l.v);
    return rc;
}

/* Walks the devices in several short transactions so that ingest is never
 * held up for the whole purge; each step is idempotent, so a failure half
 * way leaves a consistent store that the next purge finishes. *removed
 * counts raw messages (rollup rows are not counted). */
int iot_tmsql_purge(void *self, int64_t raw_before, int64_t rollup_before, int64_t *removed)
{
    int64_t after = INT64_MIN, n = 0;
    bool done = false;
    int rc = IOT_OK;
    while (rc == IOT_OK && !done)
        rc = purge_some(self, &after, raw_before, rollup_before, &n, &done);
    if (removed)
        *removed = n;
    return rc;
}
