/* telemetry_sqlite_log.c — the SQLite telemetry store's commit log at
 * open and at close.
 *
 * Open (crash recovery): the log beside the database file,
 * "<file>-log-NNNNNNNNNN" (src/store/commit_log.h), is replayed: records
 * newer than log_state.flushed_upto are staged again
 * (iot_tmsql_stage_replayed) and flushed, which yields what the flushes
 * would have; a record is applied at most once, since its flush and
 * flushed_upto commit together. Then the segments holding only applied
 * records are deleted and the flusher starts.
 * Close: the flusher stops, everything staged is flushed, and the log is
 * deleted — unless that last flush failed: then it stays for the next
 * open. A memory database has no log. */
#include <stdio.h>

#include "store/commit_log.h"
#include "store/sqlite/telemetry_sqlite_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

struct replay {
    struct iot_tmsql *s;
    int64_t applied; /* log_state.flushed_upto */
};

static int replay_record(void *ctx, uint64_t segment, uint64_t id, const unsigned char *data,
                         size_t len)
{
    struct replay *r = ctx;
    int64_t batch = (int64_t)id;
    if (batch <= r->applied)
        return IOT_OK; /* flushed before the crash */
    int rc = iot_tmsql_stage_replayed(r->s, batch, segment, data, len);
    if (rc == IOT_EINTERNAL) /* intact checksum, undecodable: a bug, not a torn write */
        IOT_ERROR("telemetry commit log: batch %lld does not decode", (long long)batch);
    return rc;
}

/* Opens the log and stages what no flush applied. */
static int replay_log(struct iot_tmsql *s)
{
    const char *path = iot_sqldb_path(s->db);
    if (!path)
        return IOT_OK; /* a memory database keeps nothing */
    int64_t applied = 0;
    struct iot_sqldb_conn *c = iot_sqldb_get(s->db);
    sqlite3_stmt *st;
    int rc = iot_sqldb_stmt(c, TMS_LOG_STATE_GET, &st);
    if (rc == IOT_OK)
        rc = iot_tmsql_step_ints(st, &applied, 1);
    iot_sqldb_put(s->db, c);
    if (rc)
        return rc;
    if (applied > s->last_batch)
        s->last_batch = applied;
    char base[4200];
    snprintf(base, sizeof base, "%s-log-", path);
    rc = iot_clog_open(base, s->durable, 0, &s->log);
    struct replay r = {s, applied};
    return rc ? rc : iot_clog_replay(s->log, replay_record, &r);
}

int iot_tmsql_log_open(struct iot_tmsql *s)
{
    int rc = iot_tmsql_stage_new(s);
    if (rc == IOT_OK)
        rc = replay_log(s);
    if (rc)
        return rc;
    s->last_flush_ms = iot_now_ms();
    pthread_mutex_lock(&s->mu);
    rc = atomic_load(&s->dirty) ? iot_tmsql_flush(s, true) : IOT_OK;
    pthread_mutex_unlock(&s->mu);
    if (rc)
        return rc;
    if (s->log) /* segments whose records were all applied before */
        iot_clog_release_before(s->log, iot_clog_current(s->log));
    return iot_tmsql_flusher_start(s);
}

void iot_tmsql_log_close(struct iot_tmsql *s)
{
    iot_tmsql_flusher_stop(s);
    pthread_mutex_lock(&s->mu);
    int rc = atomic_load(&s->dirty) ? iot_tmsql_flush(s, true) : IOT_OK;
    pthread_mutex_unlock(&s->mu);
    if (rc)
        IOT_ERROR("telemetry: the last flush failed (%s); the commit log is kept and replayed "
                  "at the next open", iot_strerror(rc));
    else if (s->log) /* everything is applied: the log is not needed any more */
        iot_clog_release_before(s->log, iot_clog_current(s->log) + 1);
    iot_clog_close(s->log);
    s->log = NULL;
}
