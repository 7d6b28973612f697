/* telemetry_sqlite_stage.c — staging: write_batch's half of the SQLite
 * telemetry store's commit path. A batch is encoded
 * (telemetry_sqlite_batch.c), appended to the commit log as one record —
 * from then on it is durable — and kept in memory, staged, until a flush
 * (telemetry_sqlite_flush.c) has applied it; replay at open stages what
 * the log held. Everything here runs under s->stage_mu, which write_batch
 * takes alone: it never waits for a flush. */
#include <stdlib.h>
#include <string.h>

#include "store/commit_log.h"
#include "store/sqlite/telemetry_sqlite_int.h"
#include "util/clock.h"
#include "util/err.h"

enum {
    STAGE_MAX_WORK = 1 << 20, /* staged messages + points before write_batch waits */
    STAGE_WAIT_MS = 2000,     /* ... for at most this long */
    KEEP_BLOB = 4 << 20,      /* bytes of write_batch's encoding buffer kept between calls */
};

int iot_tmsql_stage_new(struct iot_tmsql *s)
{
    s->stage = calloc(1, sizeof *s->stage);
    return s->stage ? IOT_OK : IOT_ENOMEM;
}

static void staged_free_list(struct iot_tmsql_staged *b)
{
    while (b) {
        struct iot_tmsql_staged *next = b->next;
        free(b->blob);
        free(b);
        b = next;
    }
}

void iot_tmsql_stage_free(struct iot_tmsql_stage *g)
{
    if (!g)
        return;
    staged_free_list(g->head);
    free(g->blob.p);
    free(g);
}

static void stage_append(struct iot_tmsql_stage *g, struct iot_tmsql_staged *b)
{
    if (g->tail)
        g->tail->next = b;
    else
        g->head = b;
    g->tail = b;
    g->n_msgs += b->n_msgs;
    g->n_work += b->n_msgs + b->n_points;
    g->n_bytes += b->len;
}

/* A staged batch holding a copy of blob[0..len). */
static struct iot_tmsql_staged *staged_new(int64_t batch, const unsigned char *blob, size_t len,
                                           uint32_t n_msgs, uint32_t n_points)
{
    struct iot_tmsql_staged *b = calloc(1, sizeof *b);
    unsigned char *copy = b ? malloc(len) : NULL;
    if (!copy) {
        free(b);
        return NULL;
    }
    memcpy(copy, blob, len);
    *b = (struct iot_tmsql_staged){.batch = batch, .blob = copy, .len = len, .n_msgs = n_msgs,
                                   .n_points = n_points};
    return b;
}

int iot_tmsql_stage_wait(struct iot_tmsql *s, int64_t ms)
{
    struct timespec until = iot_deadline_ms(CLOCK_MONOTONIC, ms);
    return pthread_cond_timedwait(&s->stage_cv, &s->stage_mu, &until);
}

/* ---- write_batch ------------------------------------------------------------------ */

/* Waits while the flusher is too far behind: ingest must slow down rather
 * than fill the memory. */
static int wait_for_room(struct iot_tmsql *s)
{
    int64_t deadline = iot_mono_us() + STAGE_WAIT_MS * 1000;
    while (s->stage->n_work >= STAGE_MAX_WORK) {
        if (s->stopping || iot_mono_us() >= deadline)
            return IOT_EUNAVAILABLE;
        pthread_cond_broadcast(&s->stage_cv); /* the flusher: a flush is due */
        (void)iot_tmsql_stage_wait(s, 50);
    }
    return IOT_OK;
}

/* Logs and stages one batch. */
static int stage_locked(struct iot_tmsql *s, const struct iot_tm_message *msgs, size_t n)
{
    struct iot_tmsql_stage *g = s->stage;
    int64_t batch = s->last_batch + 1;
    uint32_t n_msgs = 0, n_points = 0;
    int rc = wait_for_room(s);
    if (rc == IOT_OK)
        rc = iot_tmsql_batch_encode(&g->blob, msgs, n, &n_msgs, &n_points);
    if (rc || n_msgs == 0)
        return rc;
    /* allocated before the append: once logged, the batch must be staged */
    struct iot_tmsql_staged *b = staged_new(batch, g->blob.p, g->blob.len, n_msgs, n_points);
    if (!b)
        return IOT_ENOMEM;
    if (s->log && (rc = iot_clog_append(s->log, (uint64_t)batch, g->blob.p, g->blob.len,
                                        &b->segment)) != IOT_OK) {
        staged_free_list(b);
        return rc;
    }
    stage_append(g, b);
    s->last_batch = batch;
    atomic_store(&s->dirty, 1);
    if (g->n_work >= IOT_TMSQL_FLUSH_WORK || g->n_bytes >= IOT_TMSQL_FLUSH_BYTES)
        pthread_cond_broadcast(&s->stage_cv);
    return IOT_OK;
}

int iot_tmsql_stage_write(struct iot_tmsql *s, const struct iot_tm_message *msgs, size_t n)
{
    pthread_mutex_lock(&s->stage_mu);
    int rc = stage_locked(s, msgs, n);
    if (s->stage->blob.cap > KEEP_BLOB) {
        free(s->stage->blob.p);
        s->stage->blob = (struct iot_tmsql_blob){0};
    }
    pthread_mutex_unlock(&s->stage_mu);
    return rc;
}

/* ---- replay ------------------------------------------------------------------------- */

int iot_tmsql_stage_replayed(struct iot_tmsql *s, int64_t batch, uint64_t segment,
                             const unsigned char *blob, size_t len)
{
    uint32_t nm = 0, np = 0;
    int rc = iot_tmsql_batch_check(blob, len, &nm, &np);
    if (rc)
        return rc;
    struct iot_tmsql_staged *b = staged_new(batch, blob, len, nm, np);
    if (!b)
        return IOT_ENOMEM;
    b->segment = segment;
    pthread_mutex_lock(&s->stage_mu);
    stage_append(s->stage, b);
    if (batch > s->last_batch)
        s->last_batch = batch;
    atomic_store(&s->dirty, 1);
    pthread_mutex_unlock(&s->stage_mu);
    return IOT_OK;
}

/* ---- what a flush takes and releases ----------------------------------------------------- */

struct iot_tmsql_take iot_tmsql_stage_take(struct iot_tmsql *s, bool all)
{
    pthread_mutex_lock(&s->stage_mu);
    struct iot_tmsql_take t = {.first = s->stage->head, .upto = s->last_batch};
    /* behind, the flusher takes more at once: a transaction that inserts
     * more messages per dirtied page costs less per message */
    size_t half = s->stage->n_work / 2;
    size_t bound = half > IOT_TMSQL_FLUSH_MAX_WORK ? half : IOT_TMSQL_FLUSH_MAX_WORK;
    for (const struct iot_tmsql_staged *b = t.first; b; b = b->next) {
        if (!all && t.nb && t.nm + t.np >= bound) {
            t.rest = true;
            break;
        }
        t.nb++;
        t.nm += b->n_msgs;
        t.np += b->n_points;
        t.upto = b->batch;
    }
    pthread_mutex_unlock(&s->stage_mu);
    return t;
}

void iot_tmsql_stage_release(struct iot_tmsql *s, size_t nb)
{
    struct iot_tmsql_stage *g = s->stage;
    pthread_mutex_lock(&s->stage_mu);
    struct iot_tmsql_staged *done = NULL;
    if (nb) {
        struct iot_tmsql_staged *b = g->head, *last = NULL;
        done = g->head;
        for (size_t i = 0; i < nb; i++, b = b->next) {
            g->n_msgs -= b->n_msgs;
            g->n_work -= b->n_msgs + b->n_points;
            g->n_bytes -= b->len;
            last = b;
        }
        last->next = NULL;
        g->head = b;
        if (!g->head)
            g->tail = NULL;
    }
    if (s->log) /* the segments before the oldest batch still staged hold only applied ones */
        iot_clog_release_before(s->log, g->head ? g->head->segment : iot_clog_current(s->log));
    s->last_flush_ms = iot_now_ms();
    atomic_store(&s->dirty, g->head ? 1 : 0);
    pthread_cond_broadcast(&s->stage_cv); /* room for a waiting write_batch */
    pthread_mutex_unlock(&s->stage_mu);
    staged_free_list(done);
}
