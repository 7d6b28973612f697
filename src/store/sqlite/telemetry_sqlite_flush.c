/* telemetry_sqlite_flush.c — a flush: staged batches into the tables of
 * the SQLite telemetry store, in one write transaction under s->mu.
 *
 *  - decode the oldest staged batches (all of them, or whole batches up to
 *    IOT_TMSQL_FLUSH_MAX_WORK messages + points when it is the flusher's);
 *  - INSERT OR IGNORE of their messages in (device_id, ts, seq) order, and
 *    among equal identities in staging order: a retry, or a repeat within a
 *    batch, inserts nothing (the first write wins);
 *  - for each message really inserted (sqlite3_changes() == 1), in staging
 *    order, its deltas join the aggregation map (telemetry_sqlite_write.c),
 *    whose upserts follow; log_state.flushed_upto = the last batch applied;
 *  - COMMIT, and only then the flushed batches leave memory and the log
 *    segments that hold nothing else are deleted (iot_tmsql_stage_release).
 *    A failed flush rolls back and leaves everything staged.
 *
 * Also here: the transactions of delete_* and purge, which flush first
 * (iot_tmsql_begin/_end), and the flush before every read (iot_tmsql_sync).
 * Every write transaction's connection reports its WAL size to the store
 * through a WAL hook, for the flusher's checkpoints. */
#include <stdlib.h>

#include "store/sqlite/telemetry_sqlite_int.h"
#include "util/err.h"

enum { KEEP_SCRATCH = 1 << 16 }; /* messages of decode scratch kept between flushes */

/* A flush's decoded messages; reused from flush to flush, under s->mu. */
struct iot_tmsql_scratch {
    struct iot_tm_message *msgs;
    struct iot_tm_point *points;
    int64_t *batch_of;
    uint32_t *order;
    unsigned char *inserted;
    size_t msgs_cap, points_cap;
};

void iot_tmsql_scratch_free(struct iot_tmsql_scratch *x)
{
    if (!x)
        return;
    free(x->msgs);
    free(x->points);
    free(x->batch_of);
    free(x->order);
    free(x->inserted);
    free(x);
}

static void scratch_drop_msgs(struct iot_tmsql_scratch *x)
{
    free(x->msgs);
    free(x->batch_of);
    free(x->order);
    free(x->inserted);
    x->msgs = NULL;
    x->batch_of = NULL;
    x->order = NULL;
    x->inserted = NULL;
    x->msgs_cap = 0;
}

static int scratch_reserve(struct iot_tmsql_scratch *x, size_t msgs, size_t points)
{
    if (msgs > x->msgs_cap) {
        scratch_drop_msgs(x);
        x->msgs = malloc(msgs * sizeof *x->msgs);
        x->batch_of = malloc(msgs * sizeof *x->batch_of);
        x->order = malloc(msgs * sizeof *x->order);
        x->inserted = malloc(msgs);
        x->msgs_cap = x->msgs && x->batch_of && x->order && x->inserted ? msgs : 0;
        if (!x->msgs_cap)
            return IOT_ENOMEM;
    }
    if (points > x->points_cap) {
        free(x->points);
        x->points = malloc(points * sizeof *x->points);
        x->points_cap = x->points ? points : 0;
        if (!x->points_cap)
            return IOT_ENOMEM;
    }
    return IOT_OK;
}

static void scratch_trim(struct iot_tmsql_scratch *x)
{
    if (x->msgs_cap > KEEP_SCRATCH)
        scratch_drop_msgs(x);
    if (x->points_cap > 4 * KEEP_SCRATCH) {
        free(x->points);
        x->points = NULL;
        x->points_cap = 0;
    }
}

/* Decodes the nb staged batches from `first` on into the scratch arrays. */
static int decode_batches(struct iot_tmsql_scratch *x, const struct iot_tmsql_staged *first,
                          size_t nb, size_t *n_out)
{
    size_t n = 0, np = 0;
    const struct iot_tmsql_staged *b = first;
    for (size_t i = 0; i < nb; i++, b = i < nb ? b->next : NULL) {
        uint32_t count;
        if (iot_tmsql_batch_count(b->blob, b->len, &count) || count != b->n_msgs)
            return IOT_EINTERNAL;
        size_t pos = IOT_TMSQL_BATCH_HEAD;
        for (uint32_t k = 0; k < b->n_msgs; k++, n++) {
            if (np + IOT_TM_POINTS_MAX > x->points_cap)
                return IOT_EINTERNAL; /* more points than the batches said */
            int rc = iot_tmsql_batch_decode_msg(b->blob, b->len, &pos, &x->msgs[n],
                                                x->points + np);
            if (rc)
                return rc;
            np += x->msgs[n].n_points;
            x->batch_of[n] = b->batch;
            x->order[n] = (uint32_t)n;
        }
    }
    *n_out = n;
    return IOT_OK;
}

static int cmp_ident(const void *x, const void *y, void *arg)
{
    const struct iot_tm_message *msgs = arg;
    const struct iot_tm_message *a = &msgs[*(const uint32_t *)x];
    const struct iot_tm_message *b = &msgs[*(const uint32_t *)y];
    if (a->device_id != b->device_id)
        return a->device_id < b->device_id ? -1 : 1;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return *(const uint32_t *)x < *(const uint32_t *)y ? -1 : 1; /* first staged first */
}

static int insert_msgs(struct iot_sqldb_conn *c, struct iot_tmsql_scratch *x, size_t n)
{
    sqlite3_stmt *st;
    int rc = iot_sqldb_stmt(c, TMS_MSG_INSERT, &st);
    sqlite3 *db = iot_sqldb_handle(c);
    for (size_t k = 0; k < n && rc == IOT_OK; k++) {
        size_t i = x->order[k];
        const struct iot_tm_message *m = &x->msgs[i];
        sqlite3_bind_int64(st, 1, m->device_id);
        sqlite3_bind_int64(st, 2, m->ts);
        sqlite3_bind_int64(st, 3, m->seq);
        sqlite3_bind_int64(st, 4, m->user_id);
        sqlite3_bind_text(st, 5, m->data_json, (int)m->data_len, SQLITE_STATIC);
        if (m->meta_json)
            sqlite3_bind_text(st, 6, m->meta_json, (int)m->meta_len, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 6);
        rc = iot_sqldb_step_done(st);
        x->inserted[i] = rc == IOT_OK && sqlite3_changes(db) == 1;
    }
    return rc;
}

/* Records the newest batch applied: replay after a crash skips up to it. */
static int mark_applied(struct iot_sqldb_conn *c, int64_t upto)
{
    sqlite3_stmt *st;
    int rc = iot_sqldb_stmt(c, TMS_LOG_STATE_SET, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int64(st, 1, upto);
        rc = iot_sqldb_step_done(st);
    }
    return rc;
}

/* The aggregation map and the scratch, made on the first flush. */
static int flush_state(struct iot_tmsql *s)
{
    if (!s->agg && !(s->agg = iot_tmsql_agg_new()))
        return IOT_ENOMEM;
    if (!s->scratch && !(s->scratch = calloc(1, sizeof *s->scratch)))
        return IOT_ENOMEM;
    iot_tmsql_agg_reset(s->agg);
    return IOT_OK;
}

/* In the open write transaction (under mu): moves the oldest staged
 * batches into the tables. Memory changes only at commit (flush_done). */
static int flush_tx(struct iot_tmsql *s, struct iot_sqldb_conn *c, bool all)
{
    int rc = flush_state(s);
    if (rc)
        return rc;
    struct iot_tmsql_scratch *x = s->scratch;
    struct iot_tmsql_take t = iot_tmsql_stage_take(s, all);
    size_t n = 0;
    if (t.nb)
        rc = scratch_reserve(x, t.nm, t.np + IOT_TM_POINTS_MAX);
    if (rc == IOT_OK && t.nb)
        rc = decode_batches(x, t.first, t.nb, &n);
    if (rc == IOT_OK && n) {
        qsort_r(x->order, n, sizeof *x->order, cmp_ident, x->msgs);
        rc = insert_msgs(c, x, n);
    }
    /* deltas in staging order: the owner of a device and a series' unit
     * follow the last write, as if the batches had been applied one by one */
    for (size_t i = 0; i < n && rc == IOT_OK; i++)
        if (x->inserted[i])
            rc = iot_tmsql_agg_add(s->agg, &x->msgs[i], x->batch_of[i]);
    if (rc == IOT_OK)
        rc = iot_tmsql_agg_apply(c, s->agg);
    if (rc == IOT_OK && t.nb)
        rc = mark_applied(c, t.upto);
    iot_tmsql_agg_reset(s->agg);
    s->flushing = rc == IOT_OK ? t.nb : 0;
    s->flushed = rc == IOT_OK;
    s->flush_again = rc == IOT_OK && t.rest;
    return rc;
}

/* After the flush's COMMIT (under mu): its batches leave memory. */
static void flush_done(struct iot_tmsql *s)
{
    iot_tmsql_stage_release(s, s->flushing);
    s->flushing = 0;
    scratch_trim(s->scratch);
}

/* ---- WAL size --------------------------------------------------------------------- */

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    atomic_store(&((struct iot_tmsql *)arg)->wal_pages, pages);
    return SQLITE_OK;
}

/* Every write transaction's connection reports its WAL size to the store
 * (and no longer checkpoints by itself: the flusher does, see
 * telemetry_sqlite_flusher.c). */
static void hook(struct iot_tmsql *s, struct iot_sqldb_conn *c)
{
    sqlite3_wal_hook(iot_sqldb_handle(c), wal_hook, s);
}

/* ---- transactions ------------------------------------------------------------------- */

/* The unlocked halves of iot_tmsql_begin / _end. */
static int tx_begin(struct iot_tmsql *s, struct iot_sqldb_conn **c)
{
    int rc = iot_sqldb_write_begin(s->db, c);
    if (rc)
        return rc;
    hook(s, *c);
    s->flushed = false;
    if (atomic_load(&s->dirty))
        rc = flush_tx(s, *c, true);
    if (rc)
        iot_sqldb_write_end(s->db, *c, rc);
    return rc;
}

static int tx_end(struct iot_tmsql *s, struct iot_sqldb_conn *c, int rc)
{
    rc = iot_sqldb_write_end(s->db, c, rc);
    if (s->flushed && rc == IOT_OK)
        flush_done(s);
    else
        s->flushing = 0;
    s->flushed = false;
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

int iot_tmsql_flush(struct iot_tmsql *s, bool all)
{
    struct iot_sqldb_conn *c;
    int rc = iot_sqldb_write_begin(s->db, &c);
    if (rc)
        return rc;
    hook(s, c);
    s->flushed = false;
    rc = flush_tx(s, c, all);
    return tx_end(s, c, rc);
}

int iot_tmsql_sync(struct iot_tmsql *s)
{
    if (!atomic_load(&s->dirty))
        return IOT_OK;
    pthread_mutex_lock(&s->mu);
    int rc = atomic_load(&s->dirty) ? iot_tmsql_flush(s, true) : IOT_OK;
    pthread_mutex_unlock(&s->mu);
    return rc;
}
