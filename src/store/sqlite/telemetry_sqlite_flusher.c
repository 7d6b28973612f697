/* telemetry_sqlite_flusher.c — the SQLite telemetry store's thread,
 * `tm-flusher`: it flushes (telemetry_sqlite_flush.c) whenever one is due
 * and checkpoints the WAL after.
 *
 * A flush is due IOT_TMSQL_FLUSH_AFTER_MS after the last one when anything
 * is staged, or as soon as IOT_TMSQL_FLUSH_WORK messages + points or
 * IOT_TMSQL_FLUSH_BYTES are staged. The flusher's flushes are bounded (whole
 * batches up to IOT_TMSQL_FLUSH_MAX_WORK, or half the backlog when that is
 * more) so that reads and deletes, which wait for s->mu, wait a few ms; a
 * bounded flush that left batches behind goes on at once.
 *
 * WAL checkpoints. SQLite's automatic checkpoint runs inside the COMMIT of
 * whichever write crosses wal_autocheckpoint pages. The store's write
 * connections carry a WAL hook instead (which switches the automatic
 * checkpoint off there) that records the WAL's size, and the flusher runs
 * a PASSIVE checkpoint after its flush, outside any transaction, once the
 * WAL has grown past CKPT_PAGES. */
#include "store/sqlite/telemetry_sqlite_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

enum { CKPT_PAGES = 4096 };

/* Under s->mu, outside a transaction. A failed or partial checkpoint (a
 * reader holds an old snapshot) is retried after a later write. */
static void checkpoint(struct iot_tmsql *s)
{
    if (atomic_load(&s->wal_pages) < CKPT_PAGES)
        return;
    struct iot_sqldb_conn *c = iot_sqldb_get(s->db);
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(iot_sqldb_handle(c), NULL, SQLITE_CHECKPOINT_PASSIVE,
                                       &log, &done);
    iot_sqldb_put(s->db, c);
    if (rc == SQLITE_OK && log >= 0 && done == log)
        atomic_store(&s->wal_pages, 0); /* the next commit restarts the WAL */
}

/* Is a flush due (age, size)? Under stage_mu. */
static bool due(struct iot_tmsql *s)
{
    const struct iot_tmsql_stage *g = s->stage;
    if (!g->head)
        return false;
    int64_t now = iot_now_ms();
    if (now < s->last_flush_ms)
        s->last_flush_ms = now; /* the clock was set back */
    return now - s->last_flush_ms >= IOT_TMSQL_FLUSH_AFTER_MS ||
           g->n_work >= IOT_TMSQL_FLUSH_WORK || g->n_bytes >= IOT_TMSQL_FLUSH_BYTES;
}

/* A failed flush is retried IOT_TMSQL_FLUSH_AFTER_MS later (everything
 * stays staged meanwhile). */
static void *flusher_main(void *arg)
{
    struct iot_tmsql *s = arg;
    bool failed = false, again = false;
    pthread_setname_np(pthread_self(), "tm-flusher");
    pthread_mutex_lock(&s->stage_mu);
    while (!s->stopping) {
        if (failed || (!again && !due(s))) {
            (void)iot_tmsql_stage_wait(s, IOT_TMSQL_FLUSH_AFTER_MS);
            failed = false;
            continue;
        }
        pthread_mutex_unlock(&s->stage_mu);
        pthread_mutex_lock(&s->mu);
        int rc = iot_tmsql_flush(s, false);
        again = rc == IOT_OK && s->flush_again;
        if (rc == IOT_OK)
            checkpoint(s);
        pthread_mutex_unlock(&s->mu);
        if (rc) {
            IOT_WARN("telemetry: a flush failed (%s); the staged batches stay in the commit "
                     "log and are retried", iot_strerror(rc));
            failed = true;
        }
        pthread_mutex_lock(&s->stage_mu);
    }
    pthread_mutex_unlock(&s->stage_mu);
    return NULL;
}

int iot_tmsql_flusher_start(struct iot_tmsql *s)
{
    if (pthread_create(&s->flusher, NULL, flusher_main, s) != 0)
        return IOT_ENOMEM;
    s->flusher_started = true;
    return IOT_OK;
}

void iot_tmsql_flusher_stop(struct iot_tmsql *s)
{
    if (!s->flusher_started)
        return;
    pthread_mutex_lock(&s->stage_mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->stage_cv);
    pthread_mutex_unlock(&s->stage_mu);
    pthread_join(s->flusher, NULL);
    s->flusher_started = false;
}
