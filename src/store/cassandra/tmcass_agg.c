/* tmcass_agg.c — exact rollups on Cassandra: partial aggregates per commit,
 * combined on read, folded by a merger.
 *
 * Cassandra counters are not idempotent (a retried increment counts twice),
 * and a read-modify-write of a total races with other instances. So every
 * commit writes, per bucket it touches, a row of its own: key (writer id of
 * the process, commit number), value the commit's count, sum, min, max,
 * exact integer sum, first and last timestamps. Rewriting that row (a
 * retry) changes nothing; two instances write different rows. A read
 * combines a bucket's rows.
 *
 * So that a bucket does not collect a row per commit forever, a merger
 * thread folds the partial rows of the buckets this process wrote into one
 * merged row (writer 0, seq 0) carrying a version: read the rows, then a
 * conditional batch on the bucket's partition that sets the merged row to
 * old + folded IF its version is still the one read, and deletes exactly
 * the partials folded. Two mergers (two instances) serialise on the
 * version (Paxos); partials written meanwhile are untouched. Only partials
 * older than MERGE_AGE are folded: a request that timed out on the client
 * may still land on a replica, and a partial must not come back after its
 * deletion (its write timestamp is older than the delete's, as long as
 * clocks agree within MERGE_AGE). Readers that meet a bucket with many rows
 * ask the merger to fold it (a closed bucket nobody writes any more).
 *
 * delete_range repairs a bucket the same way (tmc_bucket_replace): the
 * merged row becomes the recomputed aggregate and every partial read goes.
 * A commit in flight during that repair may be counted twice or not at all
 * in that bucket (documented in docs/ARCHITECTURE.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/cassandra/tmcass_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define MERGE_AGE_MS 15000    /* partials younger than this stay */
#define MERGE_PERIOD_MS 20000 /* a pass over the dirty buckets */
#define MERGE_CHUNK 400       /* partials folded per conditional batch */
#define MERGE_MIN_PARTIALS 8  /* fewer are combined by readers, not merged (yet) */
#define MERGE_IDLE_MS 600000  /* a bucket nobody wrote for this long is settled */
#define MERGE_TRIES 8
#define DIRTY_MAX 200000      /* past this, notes are dropped (reads still combine) */

/* ---- the aggregate ------------------------------------------------------------------ */

void tmc_agg_add_value(struct tmc_agg *a, int64_t ts, const struct iot_tm_value *v)
{
    if (a->samples == 0 || ts < a->first_ts)
        a->first_ts = ts;
    if (a->samples == 0 || ts > a->last_ts)
        a->last_ts = ts;
    a->samples++;
    if (v->type == IOT_TM_STRING)
        return;
    /* + 0.0 turns -0.0 into 0.0, as the SQLite store's REAL columns do:
     * rollups answer the same on both (raw samples keep the sign). */
    double x = (v->type == IOT_TM_BOOL ? (v->boolean ? 1.0 : 0.0) : v->num) + 0.0;
    bool is_int = v->type == IOT_TM_BOOL || v->is_int;
    int64_t i = v->type == IOT_TM_BOOL ? (v->boolean ? 1 : 0) : v->i;
    if (a->count == 0 || x < a->min)
        a->min = x;
    if (a->count == 0 || x > a->max)
        a->max = x;
    a->count++;
    a->sum += x;
    if (!is_int)
        return;
    if (a->ints == 0 || i < a->imin)
        a->imin = i;
    if (a->ints == 0 || i > a->imax)
        a->imax = i;
    a->ints++;
    a->isum += i;
}

void tmc_agg_merge(struct tmc_agg *into, const struct tmc_agg *from)
{
    if (from->samples > 0) {
        if (into->samples == 0 || from->first_ts < into->first_ts)
            into->first_ts = from->first_ts;
        if (into->samples == 0 || from->last_ts > into->last_ts)
            into->last_ts = from->last_ts;
        into->samples += from->samples;
    }
    if (from->count > 0) {
        if (into->count == 0 || from->min < into->min)
            into->min = from->min;
        if (into->count == 0 || from->max > into->max)
            into->max = from->max;
        into->count += from->count;
        into->sum += from->sum;
    }
    if (from->ints > 0) {
        if (into->ints == 0 || from->imin < into->imin)
            into->imin = from->imin;
        if (into->ints == 0 || from->imax > into->imax)
            into->imax = from->imax;
        into->ints += from->ints;
        into->isum += from->isum;
    }
}

static void encode_agg(struct cql_buf *b, const struct tmc_agg *a)
{
    cql_encode_bigint(b, a->count);
    cql_encode_double(b, a->sum);
    cql_encode_double(b, a->count ? a->min : 0);
    cql_encode_double(b, a->count ? a->max : 0);
    cql_encode_bigint(b, a->ints);
    cql_encode_bigint(b, (int64_t)(uint64_t)(unsigned __int128)a->isum);
    cql_encode_bigint(b, (int64_t)(a->isum >> 64));
    cql_encode_bigint(b, a->ints ? a->imin : 0);
    cql_encode_bigint(b, a->ints ? a->imax : 0);
    cql_encode_bigint(b, a->samples);
    cql_encode_timestamp(b, a->samples ? a->first_ts : 0);
    cql_encode_timestamp(b, a->samples ? a->last_ts : 0);
}

static void encode_key(struct cql_buf *b, const struct tmc_bucket_key *k)
{
    cql_encode_bigint(b, k->device_id);
    cql_encode_bigint(b, k->span);
    cql_encode_int(b, k->width_h);
    cql_encode_text(b, k->name, strlen(k->name));
    cql_encode_timestamp(b, k->start);
}

void tmc_encode_partial(struct cql_buf *b, const struct tmc_bucket_key *k, int64_t writer,
                        int64_t seq, const struct tmc_agg *a, int32_t ttl_s)
{
    encode_key(b, k);
    cql_encode_bigint(b, writer);
    cql_encode_bigint(b, seq);
    encode_agg(b, a);
    cql_encode_int(b, ttl_s);
}

int tmc_decode_agg(const struct cql_value *c, struct tmc_agg *a)
{
    memset(a, 0, sizeof *a);
    a->count = tmc_cell_i64(c[0]);
    a->sum = tmc_cell_f64(c[1]);
    a->min = tmc_cell_f64(c[2]);
    a->max = tmc_cell_f64(c[3]);
    a->ints = tmc_cell_i64(c[4]);
    uint64_t lo = (uint64_t)tmc_cell_i64(c[5]);
    int64_t hi = tmc_cell_i64(c[6]);
    a->isum = (__int128)(((unsigned __int128)(uint64_t)hi << 64) | lo);
    a->imin = tmc_cell_i64(c[7]);
    a->imax = tmc_cell_i64(c[8]);
    a->samples = tmc_cell_i64(c[9]);
    a->first_ts = tmc_cell_i64(c[10]);
    a->last_ts = tmc_cell_i64(c[11]);
    return a->count < 0 || a->samples < 0 || a->ints < 0 ? IOT_EINTERNAL : IOT_OK;
}

/* ---- one bucket: read, merge, replace ----------------------------------------------------- */

/* TMC_SEL_BUCKET columns: name, start, writer, seq, 12 aggregate columns,
 * version, WRITETIME(n). */
#define BUCKET_AGG 4
#define BUCKET_VERSION 16
#define BUCKET_WRITETIME 17

struct partial_ref {
    int64_t writer, seq;
};

struct bucket_rows {
    struct tmc_agg merged, all, folded;
    bool has_merged;
    int32_t version;
    int64_t cutoff_us; /* fold partials written before this (INT64_MAX: all) */
    struct partial_ref *fold;
    size_t n_fold, cap_fold, rows;
    int rc;
};

static int on_bucket_row(void *ctx, const struct cql_value *c, size_t n)
{
    struct bucket_rows *b = ctx;
    if (n <= BUCKET_WRITETIME)
        return b->rc = IOT_EINTERNAL, 1;
    struct tmc_agg a;
    if ((b->rc = tmc_decode_agg(c + BUCKET_AGG, &a)) != IOT_OK)
        return 1;
    b->rows++;
    tmc_agg_merge(&b->all, &a);
    int64_t writer = tmc_cell_i64(c[2]), seq = tmc_cell_i64(c[3]);
    if (writer == 0 && seq == 0) {
        b->merged = a;
        b->has_merged = true;
        cql_decode_int(c[BUCKET_VERSION], &b->version);
        return 0;
    }
    if (tmc_cell_i64(c[BUCKET_WRITETIME]) >= b->cutoff_us || b->n_fold == MERGE_CHUNK)
        return 0;
    if (b->n_fold == b->cap_fold) {
        size_t cap = b->cap_fold ? 2 * b->cap_fold : 64;
        struct partial_ref *grown = realloc(b->fold, cap * sizeof *grown);
        if (!grown)
            return b->rc = IOT_ENOMEM, 1;
        b->fold = grown;
        b->cap_fold = cap;
    }
    b->fold[b->n_fold++] = (struct partial_ref){writer, seq};
    tmc_agg_merge(&b->folded, &a);
    return 0;
}

static int read_bucket(struct tmc *t, const struct tmc_bucket_key *k, struct bucket_rows *b)
{
    struct cql_buf v = {0};
    cql_encode_bigint(&v, k->device_id);
    cql_encode_bigint(&v, k->span);
    cql_encode_int(&v, k->width_h);
    cql_encode_text(&v, k->name, strlen(k->name));
    cql_encode_timestamp(&v, k->start);
    int rc = tmc_select(t, TMC_SEL_BUCKET, &v, 2000, on_bucket_row, b);
    cql_buf_free(&v);
    return rc ? rc : b->rc;
}

int tmc_bucket_read(struct tmc *t, const struct tmc_bucket_key *k, struct tmc_agg *out,
                    size_t *rows)
{
    struct bucket_rows b = {.cutoff_us = INT64_MIN};
    int rc = read_bucket(t, k, &b);
    *out = b.all;
    if (rows)
        *rows = b.rows;
    free(b.fold);
    return rc;
}

static int32_t bucket_ttl(const struct tmc *t, const struct tmc_bucket_key *k)
{
    if (k->width_h == TMC_WIDTH_LIFETIME)
        return 0;
    return tmc_ttl(k->start + (int64_t)k->width_h * IOT_TM_HOUR, t->rollup_ttl_ms, iot_now_ms());
}

/* The conditional batch: merged row := agg if its version is still the one
 * read, and the listed partials go. *applied tells whether it won. */
static int commit_merge(struct tmc *t, const struct tmc_bucket_key *k, const struct bucket_rows *b,
                        const struct tmc_agg *agg, bool *applied)
{
    size_t n = 1 + b->n_fold;
    struct cql_buf *vals = calloc(n, sizeof *vals);
    struct cql_batch_item *items = calloc(n, sizeof *items);
    int rc = vals && items ? IOT_OK : IOT_ENOMEM;
    if (rc == IOT_OK) {
        int32_t ttl = bucket_ttl(t, k);
        if (b->has_merged) {
            cql_encode_int(&vals[0], ttl);
            encode_agg(&vals[0], agg);
            cql_encode_int(&vals[0], b->version + 1);
            encode_key(&vals[0], k);
            cql_encode_int(&vals[0], b->version);
            items[0].prepared = t->ps[TMC_MERGE_UPDATE];
        } else {
            encode_key(&vals[0], k);
            encode_agg(&vals[0], agg);
            cql_encode_int(&vals[0], ttl);
            items[0].prepared = t->ps[TMC_MERGE_INSERT];
        }
        for (size_t i = 0; i < b->n_fold; i++) {
            encode_key(&vals[i + 1], k);
            cql_encode_bigint(&vals[i + 1], b->fold[i].writer);
            cql_encode_bigint(&vals[i + 1], b->fold[i].seq);
            items[i + 1].prepared = t->ps[TMC_MERGE_DELETE];
        }
        for (size_t i = 0; i < n; i++) {
            if (cql_buf_error(&vals[i]))
                rc = IOT_ENOMEM;
            items[i].values = (struct cql_slice){vals[i].data, vals[i].len};
        }
    }
    struct cql_reply *reply = NULL;
    if (rc == IOT_OK) {
        struct cql_opts o = {.serial_consistency = t->url.dc[0] ? CQL_CONSISTENCY_LOCAL_SERIAL
                                                                : CQL_CONSISTENCY_SERIAL};
        rc = tmc_err(cql_session_batch_sync(t->s, CQL_BATCH_LOGGED, items, n, t->url.consistency,
                                            &o, &reply));
    }
    *applied = false;
    if (rc == IOT_OK) {
        /* A conditional answer's first column is [applied]. */
        const struct cql_rows *rows = cql_reply_rows(reply);
        struct cql_row_iter it = cql_rows_iter(rows);
        struct cql_value cell;
        if (rows && cql_rows_next(&it, &cell, 1))
            cql_decode_boolean(cell, applied);
    } else {
        IOT_DEBUG("cassandra: merge of %s failed: %s", k->name, cql_reply_error_text(reply));
    }
    cql_reply_free(reply);
    for (size_t i = 0; vals && i < n; i++)
        cql_buf_free(&vals[i]);
    free(vals);
    free(items);
    return rc;
}

/* What a round does with the partials it read (at most MERGE_CHUNK). */
enum merge_mode {
    FOLD,    /* merged := merged + partials written before the cutoff */
    REPLACE, /* merged := the given aggregate; every partial read goes */
    DROP,    /* merged unchanged; every partial read goes (a REPLACE's rest) */
};

/* One bucket, in rounds of one conditional batch each, retried when
 * another merger won the race. */
static int merge_bucket(struct tmc *t, const struct tmc_bucket_key *k, int64_t cutoff_us,
                        enum merge_mode mode, const struct tmc_agg *replacement)
{
    for (int attempt = 0; attempt < MERGE_TRIES; attempt++) {
        struct bucket_rows b = {.cutoff_us = mode == FOLD ? cutoff_us : INT64_MAX};
        int rc = read_bucket(t, k, &b);
        bool more = b.n_fold == MERGE_CHUNK, applied = false;
        if (rc == IOT_OK && mode != REPLACE && b.n_fold == 0) {
            free(b.fold);
            return IOT_OK;
        }
        struct tmc_agg agg = b.merged;
        if (mode == REPLACE)
            agg = *replacement;
        else if (mode == FOLD)
            tmc_agg_merge(&agg, &b.folded);
        if (rc == IOT_OK)
            rc = commit_merge(t, k, &b, &agg, &applied);
        free(b.fold);
        if (rc)
            return rc;
        if (applied && !more)
            return IOT_OK;
        if (applied && mode == REPLACE) /* the partials past the first chunk */
            mode = DROP, attempt = 0;
    }
    return IOT_ETIMEOUT; /* lost the race every time: leave it for the next pass */
}

int tmc_bucket_replace(struct tmc *t, const struct tmc_bucket_key *k, const struct tmc_agg *agg)
{
    static const struct tmc_agg empty;
    return merge_bucket(t, k, INT64_MAX, REPLACE, agg ? agg : &empty);
}

/* ---- the merger ------------------------------------------------------------------------------ */

static bool same_bucket(const struct tmc_bucket_key *a, const struct tmc_bucket_key *b)
{
    return a->device_id == b->device_id && a->span == b->span && a->width_h == b->width_h &&
           a->start == b->start && strcmp(a->name, b->name) == 0;
}

void tmc_merge_note(struct tmc *t, const struct tmc_bucket_key *k)
{
    pthread_mutex_lock(&t->merge_lock);
    /* The newest notes are at the end and a commit notes its buckets in a
     * row: look back a little for the same bucket before adding. */
    size_t look = t->n_dirty < 64 ? t->n_dirty : 64;
    for (size_t i = t->n_dirty - look; i < t->n_dirty; i++) {
        if (same_bucket(&t->dirty[i], k)) {
            if (k->touched_ms > t->dirty[i].touched_ms)
                t->dirty[i].touched_ms = k->touched_ms;
            t->dirty[i].partials += k->partials;
            pthread_mutex_unlock(&t->merge_lock);
            return;
        }
    }
    if (t->n_dirty == t->cap_dirty && t->cap_dirty < DIRTY_MAX) {
        size_t cap = t->cap_dirty ? 2 * t->cap_dirty : 256;
        struct tmc_bucket_key *grown = realloc(t->dirty, cap * sizeof *grown);
        if (grown)
            t->dirty = grown, t->cap_dirty = cap;
    }
    if (t->n_dirty < t->cap_dirty)
        t->dirty[t->n_dirty++] = *k;
    pthread_mutex_unlock(&t->merge_lock);
}

static int cmp_key(const void *a, const void *b)
{
    const struct tmc_bucket_key *x = a, *y = b;
    if (x->device_id != y->device_id)
        return x->device_id < y->device_id ? -1 : 1;
    if (x->span != y->span)
        return x->span < y->span ? -1 : 1;
    if (x->width_h != y->width_h)
        return x->width_h < y->width_h ? -1 : 1;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Takes the dirty list, merges each distinct bucket once, and puts back
 * the ones still written to after the cutoff (they will have young
 * partials left). */
static void merge_pass(struct tmc *t)
{
    pthread_mutex_lock(&t->merge_lock);
    struct tmc_bucket_key *list = t->dirty;
    size_t n = t->n_dirty;
    t->dirty = NULL;
    t->n_dirty = t->cap_dirty = 0;
    pthread_mutex_unlock(&t->merge_lock);
    if (!n)
        return;
    qsort(list, n, sizeof *list, cmp_key);
    int64_t now = iot_now_ms(), cutoff_ms = now - MERGE_AGE_MS;
    size_t merged = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        struct tmc_bucket_key k = list[i];
        while (i + 1 < n && same_bucket(&list[i + 1], &k)) {
            if (list[i + 1].touched_ms > k.touched_ms)
                k.touched_ms = list[i + 1].touched_ms;
            k.partials += list[i + 1].partials;
            i++;
        }
        /* Worth a conditional batch: a bucket with many partials; or, once
         * nobody wrote it for MERGE_IDLE_MS, one with two or more — and a
         * lifetime bucket always, as it collects rows forever. Otherwise
         * the note waits for more partials, or goes when idle. */
        bool idle = k.touched_ms < now - MERGE_IDLE_MS;
        bool worth = k.partials >= MERGE_MIN_PARTIALS ||
                     (idle && (k.partials >= 2 || k.width_h == TMC_WIDTH_LIFETIME));
        if (!worth) {
            if (!idle)
                tmc_merge_note(t, &k);
            continue;
        }
        pthread_mutex_lock(&t->merge_lock);
        bool stopping = t->stopping;
        pthread_mutex_unlock(&t->merge_lock);
        int rc = stopping ? IOT_EUNAVAILABLE : merge_bucket(t, &k, cutoff_ms * 1000, FOLD, NULL);
        rc == IOT_OK ? merged++ : failed++;
        if (rc != IOT_OK || k.touched_ms >= cutoff_ms) {
            /* partials younger than the cutoff are left: count them again */
            k.partials = rc != IOT_OK ? k.partials : 1;
            tmc_merge_note(t, &k);
        }
    }
    free(list);
    if (failed)
        IOT_DEBUG("cassandra: merger: %zu buckets folded, %zu left for later", merged, failed);
}

static void *merger_main(void *arg)
{
    struct tmc *t = arg;
    pthread_setname_np(pthread_self(), "cass-merger");
    pthread_mutex_lock(&t->merge_lock);
    while (!t->stopping) {
        struct timespec deadline = iot_deadline_ms(CLOCK_MONOTONIC, MERGE_PERIOD_MS);
        pthread_cond_timedwait(&t->merge_wake, &t->merge_lock, &deadline);
        if (t->stopping)
            break;
        pthread_mutex_unlock(&t->merge_lock);
        merge_pass(t);
        pthread_mutex_lock(&t->merge_lock);
    }
    pthread_mutex_unlock(&t->merge_lock);
    return NULL;
}

int tmc_merger_start(struct tmc *t)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_destroy(&t->merge_wake);
    pthread_cond_init(&t->merge_wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&t->merger, NULL, merger_main, t) != 0)
        return IOT_ENOMEM;
    t->merger_running = true;
    return IOT_OK;
}

void tmc_merger_stop(struct tmc *t)
{
    if (!t->merger_running)
        return;
    pthread_mutex_lock(&t->merge_lock);
    t->stopping = true;
    pthread_cond_signal(&t->merge_wake);
    pthread_mutex_unlock(&t->merge_lock);
    pthread_join(t->merger, NULL);
    t->merger_running = false;
}
