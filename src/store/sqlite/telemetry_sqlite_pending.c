/* telemetry_sqlite_pending.c — flushing the derived deltas that write_batch
 * accumulates (see telemetry_sqlite_write.c), and rebuilding them after a
 * crash.
 *
 * A flush is one write transaction: every upsert of the map, then DELETE
 * FROM pending WHERE batch <= last_batch; the map is emptied once that has
 * committed. The pending table and the map therefore always describe the
 * same batches: those committed since the last flush. Flushes happen
 *  - at the end of write_batch, when the map is FLUSH_AFTER_MS old or holds
 *    more than FLUSH_KEYS keys (or FLUSH_BYTES of memory);
 *  - before a read of derived rows (latest, rollups, catalog, stats), so
 *    that every message whose write_batch returned is visible there;
 *  - inside the transaction of delete_range, delete_device, delete_user and
 *    purge, before they change anything (they repair derived rows, which
 *    must be complete first);
 *  - at close.
 * If the process dies in between, the pending rows survive: open rebuilds
 * the map from them — it reads each named message (by primary key), parses
 * its data JSON back into points as the server built them, takes units
 * from its metadata as write_batch does — and flushes it. A named message
 * that no longer exists is skipped.
 *
 * One process per database file: the map lives in this process, so a second
 * process opening the file while this one has batches pending would rebuild
 * and apply them too. (iotflowd opens its telemetry file once; tools may read
 * it with plain SQLite, which is harmless.) */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/telemetry_sqlite_int.h"
#include "util/clock.h"
#include "util/err.h"

/* FLUSH_KEYS bounds the stall of the write_batch that flushes: ~1.7 us a
 * key, so ~30 ms. Measured with 10,000 devices x batches of 1000 (where
 * nothing aggregates and the map fills in two batches): 16384 keys gave the
 * same throughput as 50,000 with the worst batch at ~100 ms instead of
 * ~180 ms. At 100 devices a flush holds ~1000 keys and takes ~2 ms. */
enum {
    FLUSH_AFTER_MS = 250,
    FLUSH_KEYS = 16384,
    FLUSH_BYTES = 32 << 20,
};

/* ---- rebuilding the map from the pending table ---------------------------- */

static int64_t get_le64(const unsigned char *p)
{
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = (u << 8) | p[i];
    return (int64_t)u;
}

/* A value as write_batch's callers give it: number, boolean, or a string of
 * at most IOT_TM_STRING_MAX bytes. Anything else is no point. */
static bool read_value(json_t *jv, struct iot_tm_value *v)
{
    if (json_is_integer(jv))
        *v = (struct iot_tm_value){.type = IOT_TM_NUMBER,
                                   .num = (double)json_integer_value(jv)};
    else if (json_is_real(jv))
        *v = (struct iot_tm_value){.type = IOT_TM_NUMBER, .num = json_real_value(jv)};
    else if (json_is_boolean(jv))
        *v = (struct iot_tm_value){.type = IOT_TM_BOOL, .boolean = json_is_true(jv)};
    else if (json_is_string(jv) && json_string_length(jv) <= IOT_TM_STRING_MAX)
        *v = (struct iot_tm_value){.type = IOT_TM_STRING, .str = json_string_value(jv),
                                   .str_len = json_string_length(jv)};
    else
        return false;
    return true;
}

/* Adds the message that `get` (TMS_MSG_GET, on its row) holds. */
static int add_stored(struct iot_tmsql_agg *a, sqlite3_stmt *get, int64_t dev, int64_t ts,
                      int64_t seq, int64_t batch)
{
    struct iot_tm_point points[IOT_TM_POINTS_MAX];
    struct iot_tm_message m = {.device_id = dev, .user_id = sqlite3_column_int64(get, 0),
                               .ts = ts, .seq = seq, .points = points};
    const char *data = (const char *)sqlite3_column_text(get, 1);
    size_t data_len = (size_t)sqlite3_column_bytes(get, 1);
    if (sqlite3_column_type(get, 2) != SQLITE_NULL) {
        m.meta_json = (const char *)sqlite3_column_text(get, 2);
        m.meta_len = (size_t)sqlite3_column_bytes(get, 2);
        if (!m.meta_json)
            return IOT_ENOMEM;
    }
    if (!data)
        return IOT_ENOMEM;
    json_error_t err;
    json_t *obj = json_loadb(data, data_len, JSON_ALLOW_NUL, &err);
    if (!obj && json_error_code(&err) == json_error_out_of_memory)
        return IOT_ENOMEM;
    const char *name;
    json_t *jv;
    if (json_is_object(obj)) {
        json_object_foreach(obj, name, jv) {
            if (m.n_points == IOT_TM_POINTS_MAX)
                break;
            struct iot_tm_point *p = &points[m.n_points];
            if (iot_tmsql_name_ok(name, strlen(name)) && read_value(jv, &p->value)) {
                p->name = name;
                m.n_points++;
            }
        }
    }
    int rc = iot_tmsql_agg_add(a, &m, batch);
    json_decref(obj);
    return rc;
}

/* Adds the messages one pending row names. */
static int add_pending_row(struct iot_tmsql_agg *a, sqlite3_stmt *get, int64_t batch,
                           const unsigned char *keys, size_t n)
{
    int rc = IOT_OK;
    for (size_t i = 0; i < n && rc == IOT_OK; i++) {
        const unsigned char *k = keys + i * IOT_TMSQL_KEY_BYTES;
        int64_t dev = get_le64(k), ts = get_le64(k + 8), seq = get_le64(k + 16);
        sqlite3_bind_int64(get, 1, dev);
        sqlite3_bind_int64(get, 2, ts);
        sqlite3_bind_int64(get, 3, seq);
        int src = sqlite3_step(get);
        if (src == SQLITE_ROW)
            rc = add_stored(a, get, dev, ts, seq, batch);
        else if (src != SQLITE_DONE) /* DONE: deleted since, skipped */
            rc = iot_sqldb_map(src);
        iot_sqldb_done(get);
    }
    return rc;
}

/* Empties the map and adds every pending batch up to s->last_batch, in
 * batch order (the order write_batch added them in). Runs in the flush's
 * transaction. */
static int rebuild(struct iot_tmsql *s, struct iot_sqldb_conn *c)
{
    if (!s->agg && !(s->agg = iot_tmsql_agg_new()))
        return IOT_ENOMEM;
    iot_tmsql_agg_reset(s->agg);
    sqlite3_stmt *scan, *get;
    int rc = iot_sqldb_stmt(c, TMS_PENDING_SCAN, &scan);
    if (rc == IOT_OK)
        rc = iot_sqldb_stmt(c, TMS_MSG_GET, &get);
    if (rc)
        return rc;
    sqlite3_bind_int64(scan, 1, s->last_batch);
    int src;
    while (rc == IOT_OK && (src = sqlite3_step(scan)) == SQLITE_ROW) {
        const unsigned char *keys = sqlite3_column_blob(scan, 1);
        size_t bytes = (size_t)sqlite3_column_bytes(scan, 1);
        if (!keys && bytes) {
            rc = IOT_ENOMEM;
            break;
        }
        rc = add_pending_row(s->agg, get, sqlite3_column_int64(scan, 0), keys,
                             bytes / IOT_TMSQL_KEY_BYTES);
    }
    if (rc == IOT_OK && src != SQLITE_DONE)
        rc = iot_sqldb_map(src);
    iot_sqldb_done(scan);
    if (rc == IOT_OK)
        s->rebuild = false;
    else
        iot_tmsql_agg_reset(s->agg); /* rebuild stays set */
    return rc;
}

/* ---- applying ---------------------------------------------------------------- */

/* In the open write transaction: the map's upserts and the end of the
 * batches it holds. */
static int apply(struct iot_tmsql *s, struct iot_sqldb_conn *c)
{
    int rc = s->rebuild ? rebuild(s, c) : IOT_OK;
    if (rc == IOT_OK)
        rc = iot_tmsql_agg_apply(c, s->agg);
    sqlite3_stmt *st;
    if (rc == IOT_OK)
        rc = iot_sqldb_stmt(c, TMS_PENDING_DEL, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int64(st, 1, s->last_batch);
        rc = iot_sqldb_step_done(st);
    }
    s->applied = rc == IOT_OK;
    return rc;
}

/* The unlocked halves of iot_tmsql_begin / _end. */
static int tx_begin(struct iot_tmsql *s, struct iot_sqldb_conn **c)
{
    int rc = iot_sqldb_write_begin(s->db, c);
    if (rc)
        return rc;
    s->applied = false;
    if (atomic_load(&s->dirty))
        rc = apply(s, *c);
    if (rc)
        iot_sqldb_write_end(s->db, *c, rc);
    return rc;
}

static int tx_end(struct iot_tmsql *s, struct iot_sqldb_conn *c, int rc)
{
    rc = iot_sqldb_write_end(s->db, c, rc);
    if (s->applied && rc == IOT_OK) {
        iot_tmsql_agg_reset(s->agg);
        atomic_store(&s->dirty, 0);
        s->last_flush_ms = iot_now_ms();
    }
    s->applied = false;
    return rc;
}

int iot_tmsql_begin(struct iot_tmsql *s, struct iot_sqldb_conn **c)
{
    pthread_mutex_lock(&s->mu);
    int rc = tx_begin(s, c);
    if (rc)
        pthread_mutex_unlock(&s->mu);
    return rc;
}

int iot_tmsql_end(struct iot_tmsql *s, struct iot_sqldb_conn *c, int rc)
{
    rc = tx_end(s, c, rc);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- when to flush ------------------------------------------------------------ */

static bool due(struct iot_tmsql *s)
{
    int64_t now = iot_now_ms();
    if (now < s->last_flush_ms)
        s->last_flush_ms = now; /* the clock was set back */
    return s->rebuild || now - s->last_flush_ms >= FLUSH_AFTER_MS ||
           iot_tmsql_agg_keys(s->agg) > FLUSH_KEYS || iot_tmsql_agg_bytes(s->agg) > FLUSH_BYTES;
}

int iot_tmsql_flush_locked(struct iot_tmsql *s, bool force)
{
    if (!atomic_load(&s->dirty) || (!force && !due(s)))
        return IOT_OK;
    struct iot_sqldb_conn *c;
    int rc = tx_begin(s, &c);
    return rc ? rc : tx_end(s, c, IOT_OK);
}

int iot_tmsql_sync(struct iot_tmsql *s)
{
    if (!atomic_load(&s->dirty))
        return IOT_OK;
    pthread_mutex_lock(&s->mu);
    int rc = iot_tmsql_flush_locked(s, true);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int iot_tmsql_pending_open(struct iot_tmsql *s)
{
    struct iot_sqldb_conn *c = iot_sqldb_get(s->db);
    sqlite3_stmt *st;
    int64_t last = 0;
    int rc = iot_sqldb_stmt(c, TMS_PENDING_LAST, &st);
    if (rc == IOT_OK)
        rc = iot_tmsql_step_ints(st, &last, 1);
    iot_sqldb_put(s->db, c);
    if (rc)
        return rc;
    s->last_batch = last;
    s->last_flush_ms = iot_now_ms();
    if (last > 0) {
        s->rebuild = true;
        atomic_store(&s->dirty, 1);
    }
    return IOT_OK;
}
