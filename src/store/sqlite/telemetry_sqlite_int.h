/* telemetry_sqlite_int.h — what the files of the SQLite telemetry store
 * share: the handle, the statement ids, a few helpers, and the commit path
 * (described below, before its functions).
 *
 * Internal to src/store/sqlite/telemetry_sqlite*.c: core (schema, open,
 * stats), _write (validation and the map of derived deltas), the commit
 * path — _batch (the encoding of a staged batch), _stage (write_batch's
 * append to the commit log and the staged batches), _flush (staged batches
 * into the tables), _flusher (its thread, WAL checkpoints), _log (replay at
 * open, the last flush at close) — _read (scans), _delete (deletes,
 * retention). The handle is thread-safe; everything after `mu` in it
 * belongs to whoever holds `mu`. */
#ifndef IOT_STORE_SQLITE_TELEMETRY_SQLITE_INT_H
#define IOT_STORE_SQLITE_TELEMETRY_SQLITE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/sqlite/sqlite_db.h"
#include "store/telemetry.h"

struct iot_tmsql_agg;     /* derived deltas of a flush, see telemetry_sqlite_write.c */
struct iot_tmsql_scratch; /* a flush's decoded messages, see telemetry_sqlite_flush.c */
struct iot_tmsql_stage;   /* staged batches, below */
struct iot_clog;          /* src/store/commit_log.h */

struct iot_tmsql {
    struct iot_sqldb *db;
    bool durable; /* fsync: the commit log and synchronous=FULL */
    /* 1 while batches are staged (in the commit log, not yet in the
     * tables): every read checks it without a lock, and flushes when it is
     * set. */
    atomic_int dirty;
    /* WAL frames after the last commit (a WAL hook keeps it). */
    atomic_int wal_pages;
    /* The store's writer lock, taken before the pool's: held around every
     * write transaction of the database (flushes, deletes, purge) and the
     * work after its COMMIT that must not interleave with another (forgetting
     * flushed batches). Guards the fields down to stage_mu. */
    pthread_mutex_t mu;
    struct iot_tmsql_agg *agg;         /* a flush's derived deltas */
    struct iot_tmsql_scratch *scratch; /* a flush's decoded messages */
    bool flushed;     /* the open write transaction flushed (iot_tmsql_begin) */
    size_t flushing;  /* ... that many staged batches, released at its commit */
    bool flush_again; /* the last flush was bounded and left batches staged */
    /* The stage lock, taken after mu when both are: guards the staged
     * batches in `stage`, the commit log and
     * everything below. write_batch takes only this one, so it never waits
     * for a flush. */
    pthread_mutex_t stage_mu;
    pthread_cond_t stage_cv; /* the flusher waits for work, write_batch for room */
    struct iot_tmsql_stage *stage;
    struct iot_clog *log; /* NULL for a memory database */
    int64_t last_batch;   /* newest batch id staged or applied (0: none yet) */
    int64_t last_flush_ms;
    bool stopping;        /* the flusher is asked to end */
    bool flusher_started;
    pthread_t flusher;
};

/* Statement ids; the SQL is in telemetry_sqlite.c. */
enum iot_tmsql_stmt {
    TMS_PING,
    TMS_STATS,
    /* flush, recovery */
    TMS_MSG_INSERT,
    TMS_LOG_STATE_GET,
    TMS_LOG_STATE_SET,
    /* scans */
    TMS_Q_DEVICE,
    TMS_Q_USER,
    TMS_COUNT_USER,
    TMS_LATEST_SCAN,
    TMS_ROLLUP_SCAN,
    TMS_SAMPLE_SCAN,
    TMS_CATALOG_SCAN,
    /* delete_range */
    TMS_DR_TOUCHED,
    TMS_DR_DELETE,
    TMS_DEV_SUB,
    TMS_CATALOG_SUB,
    TMS_BUCKET_CALC,
    TMS_ROLLUP_PUT,
    TMS_ROLLUP_DEL,
    TMS_LATEST_GET,
    TMS_NEWEST_WITH,
    TMS_LATEST_PUT,
    TMS_LATEST_DEL,
    TMS_CATALOG_GET,
    TMS_FIRST_WITH,
    TMS_LAST_WITH,
    TMS_CATALOG_SET,
    TMS_CATALOG_DEL,
    /* delete_device, delete_user, purge */
    TMS_DEL_DEV_MSG,
    TMS_DEL_DEV_LATEST,
    TMS_DEL_DEV_ROLLUPS,
    TMS_DEL_DEV_CATALOG,
    TMS_DEL_DEV_ROW,
    TMS_USER_DEVICES,
    TMS_DEL_USER_MSG,
    TMS_DEVICES_AFTER,
    TMS_PURGE_MSG,
    TMS_PURGE_ROLLUPS,
    /* sample_edge */
    TMS_EDGE_FIRST,
    TMS_EDGE_LAST,
    /* export_scan (version 3) */
    TMS_EXPORT_SCAN,
    TMS__COUNT
};

/* Dynamic statement slots: write_batch's upserts (4 kinds x 2 sizes). */
#define IOT_TMSQL_N_DYN 8

/* A JSON path '$."<name>"' (names never hold a quote), NUL-terminated. */
#define IOT_TMSQL_PATH_MAX (IOT_TM_NAME_MAX + 6)

/* (Measurement names are checked with iot_tm_name_valid, store/telemetry.h.) */
void iot_tmsql_json_path(const char *name, size_t len, char buf[IOT_TMSQL_PATH_MAX]);

/* Start of the width-wide bucket holding ts (floor, also before 1970). */
static inline int64_t iot_tmsql_bucket(int64_t ts, int64_t width)
{
    int64_t r = ts % width;
    return r < 0 ? ts - r - width : ts - r;
}

/* Steps a statement that returns one row of integers into out[0..n-1]
 * (no row → IOT_ENOTFOUND), then resets it. */
int iot_tmsql_step_ints(sqlite3_stmt *st, int64_t *out, int n);

/* ---- derived deltas (telemetry_sqlite_write.c) ----------------------------
 *
 * A flush (telemetry_sqlite_flush.c) adds the deltas of every message it
 * really inserted to the map (latest, catalog, hour/day rollups, devices),
 * then applies the map with aggregated upserts. Under s->mu. */

/* Adds one inserted message of pending batch `batch` (later batches' units
 * win). IOT_ENOMEM leaves the map missing part of it. */
int iot_tmsql_agg_add(struct iot_tmsql_agg *a, const struct iot_tm_message *m, int64_t batch);
/* Applies every delta with multi-row upserts, in the caller's transaction. */
int iot_tmsql_agg_apply(struct iot_sqldb_conn *c, const struct iot_tmsql_agg *a);
void iot_tmsql_agg_reset(struct iot_tmsql_agg *a);        /* NULL-safe */
struct iot_tmsql_agg *iot_tmsql_agg_new(void);
void iot_tmsql_agg_free(struct iot_tmsql_agg *a);

/* ---- the commit path ----------------------------------------------------------
 *
 * write_batch appends a batch to a commit log (src/store/commit_log.h) and
 * stages it in memory; a flusher thread later moves the staged messages
 * into `messages` and applies their derived rows; open replays the log
 * after a crash.
 *
 * Why. With single-message HTTP ingest a commit holds 8-32 messages of as
 * many devices. Inserting them into `messages` dirties one leaf of the
 * messages B-tree and one of messages_by_user per device, ~70 pages a
 * commit, and those pages are what the WAL, the checkpoints and their
 * fsyncs pay for. Logged, the commit is one write(2) of contiguous bytes.
 * A flush then inserts thousands of messages at once, in (device_id, ts,
 * seq) order, so each device's leaf is dirtied once per flush instead of
 * once per commit, and applies the derived rows (latest, rollups, catalog,
 * devices) aggregated over the whole flush. And because the log is not the
 * database, a flush (a SQLite write transaction of ~10 ms) and a commit (an
 * append) run at the same time on two threads: the ingest writer never
 * waits for a flush, a checkpoint or their fsyncs.
 *
 * The parts, each in its file:
 *  - the batch encoding, one commit-log record per batch, its id the batch
 *    number (_batch.c);
 *  - write_batch, under stage_mu only (_stage.c): appends one record; the
 *    batch is durable once that returns (in the page cache, safe from a
 *    crash of the process; with `durable`, fdatasynced); keeps the encoded
 *    batch in memory, staged, which is all a flush needs; waits (up to 2 s,
 *    then IOT_EUNAVAILABLE) while more than 2^20 messages + points are
 *    staged;
 *  - a flush, one transaction under mu (_flush.c), whenever the flusher
 *    finds one due (_flusher.c), before every read (query_device,
 *    query_user, count_user, latest, rollups, samples, catalog, stats: one
 *    atomic load when nothing is staged, iot_tmsql_sync), inside the
 *    transaction of delete_range, delete_device, delete_user and purge
 *    before they change anything (iot_tmsql_begin), at open (what the log
 *    held) and at close (_log.c). So a read sees every message whose
 *    write_batch returned.
 * If the process dies in between, the log survives and open replays it.
 *
 * One process per database file: a second process opening the file would
 * replay the log too. (iotflowd opens its telemetry file once; tools may
 * read it with plain SQLite, which is harmless — but they do not see staged
 * messages.) */

/* When a flush is due (the flusher; write_batch wakes it on size). */
enum {
    IOT_TMSQL_FLUSH_AFTER_MS = 100,       /* after the last flush, when anything is staged */
    IOT_TMSQL_FLUSH_WORK = 32768,         /* messages + points staged */
    IOT_TMSQL_FLUSH_BYTES = 32 << 20,     /* bytes of staged batches */
    IOT_TMSQL_FLUSH_MAX_WORK = 16384,     /* per flusher transaction (whole batches, at least one) */
};
/* Tuned with 100 devices x 3 measurements, batches of 16 (see the notes in
 * telemetry_sqlite_write.c): a flush costs ~1 us per message + point. */

/* The encoding (telemetry_sqlite_batch.c). An encoded batch starts with
 * its message count, IOT_TMSQL_BATCH_HEAD bytes. */
#define IOT_TMSQL_BATCH_HEAD 4

struct iot_tmsql_blob {
    unsigned char *p;
    size_t len, cap;
};

/* Encodes msgs[0..n) into b (emptied first), counting what it wrote. */
int iot_tmsql_batch_encode(struct iot_tmsql_blob *b, const struct iot_tm_message *msgs, size_t n,
                           uint32_t *n_msgs, uint32_t *n_points);
/* The message count of an encoded batch; IOT_EINTERNAL when too short. */
int iot_tmsql_batch_count(const unsigned char *blob, size_t len, uint32_t *n_msgs);
/* Decodes the message at *pos of blob[0..len) into *m, its points into
 * points[0..] (room for IOT_TM_POINTS_MAX), and advances *pos. Pointers
 * point into the blob. IOT_EINTERNAL for anything write_batch would not
 * have written. */
int iot_tmsql_batch_decode_msg(const unsigned char *blob, size_t len, size_t *pos,
                               struct iot_tm_message *m, struct iot_tm_point *points);
/* Counts a blob's messages and points, checking that it decodes whole. */
int iot_tmsql_batch_check(const unsigned char *blob, size_t len, uint32_t *n_msgs,
                          uint32_t *n_points);

/* Staging (telemetry_sqlite_stage.c). A staged batch: logged, not yet
 * applied. */
struct iot_tmsql_staged {
    struct iot_tmsql_staged *next;
    int64_t batch;
    uint64_t segment;    /* of the commit log, holding its record (0: none) */
    unsigned char *blob; /* owned */
    size_t len;
    uint32_t n_msgs, n_points;
};

/* Under stage_mu. A flush reads the batches it took without stage_mu:
 * write_batch only ever appends after them, and only the flush's release
 * removes them. */
struct iot_tmsql_stage {
    struct iot_tmsql_staged *head, *tail;
    size_t n_msgs, n_work, n_bytes; /* n_work: messages + points */
    struct iot_tmsql_blob blob;     /* write_batch's encoding */
};

int iot_tmsql_stage_new(struct iot_tmsql *s);
void iot_tmsql_stage_free(struct iot_tmsql_stage *g); /* NULL-safe */
/* write_batch after validation: appends the batch to the commit log and
 * stages it. */
int iot_tmsql_stage_write(struct iot_tmsql *s, const struct iot_tm_message *msgs, size_t n);
/* At open: stages a batch read back from the log, checking it decodes. */
int iot_tmsql_stage_replayed(struct iot_tmsql *s, int64_t batch, uint64_t segment,
                             const unsigned char *blob, size_t len);
/* Waits on stage_cv for at most ms (monotonic clock). Under stage_mu. */
int iot_tmsql_stage_wait(struct iot_tmsql *s, int64_t ms);

/* The batches a flush takes: the oldest ones, all of them or whole batches
 * up to IOT_TMSQL_FLUSH_MAX_WORK messages + points (half the backlog when
 * that is more). */
struct iot_tmsql_take {
    const struct iot_tmsql_staged *first;
    size_t nb, nm, np; /* batches, messages, points */
    int64_t upto;      /* the last one's batch */
    bool rest;         /* more batches are staged after them */
};
struct iot_tmsql_take iot_tmsql_stage_take(struct iot_tmsql *s, bool all);
/* After a flush's COMMIT: the nb oldest batches leave memory, the log
 * segments holding only applied records are deleted, write_batch calls
 * waiting for room are woken. */
void iot_tmsql_stage_release(struct iot_tmsql *s, size_t nb);

/* Flushes (telemetry_sqlite_flush.c). One flush transaction of everything
 * (all) or of the oldest batches; under mu. */
int iot_tmsql_flush(struct iot_tmsql *s, bool all);
void iot_tmsql_scratch_free(struct iot_tmsql_scratch *x); /* NULL-safe */

/* A write transaction of delete_*, purge: takes s->mu and the pool's writer,
 * BEGIN IMMEDIATE, and flushes every staged batch first (in the same
 * transaction), so the operation sees and repairs every written message.
 * iot_tmsql_end commits (rc == IOT_OK) or rolls back, forgets the batches
 * it flushed once they are committed, and releases both locks. */
int iot_tmsql_begin(struct iot_tmsql *s, struct iot_sqldb_conn **c);
int iot_tmsql_end(struct iot_tmsql *s, struct iot_sqldb_conn *c, int rc);

/* Every read calls this first: if batches are staged, flushes them all, so
 * a read sees every message whose write_batch returned. Cheap (one atomic
 * load) when nothing is staged. */
int iot_tmsql_sync(struct iot_tmsql *s);

/* The flusher thread (telemetry_sqlite_flusher.c); stop is idempotent. */
int iot_tmsql_flusher_start(struct iot_tmsql *s);
void iot_tmsql_flusher_stop(struct iot_tmsql *s);

/* At open, before any op (telemetry_sqlite_log.c): replays what a crash
 * left in the commit log past the last flush, flushes it, and starts the
 * flusher thread. */
int iot_tmsql_log_open(struct iot_tmsql *s);
/* At close: stops the flusher and flushes everything; the commit log is
 * deleted when that worked (else it is replayed at the next open). */
void iot_tmsql_log_close(struct iot_tmsql *s);

/* ---- the ops, by file ------------------------------------------------------ */
int iot_tmsql_write_batch(void *self, const struct iot_tm_message *msgs, size_t n);

int iot_tmsql_query_device(void *self, int64_t device_id, const struct iot_tm_range *range,
                           iot_tm_record_fn fn, void *ctx);
int iot_tmsql_query_user(void *self, int64_t user_id, const struct iot_tm_range *range,
                         iot_tm_record_fn fn, void *ctx);
int iot_tmsql_count_user(void *self, int64_t user_id, int64_t from, int64_t to, int64_t *count);
int iot_tmsql_latest(void *self, int64_t device_id, iot_tm_latest_fn fn, void *ctx);
int iot_tmsql_rollups(void *self, int64_t device_id, const char *name, int64_t width,
                      int64_t from, int64_t to, iot_tm_rollup_fn fn, void *ctx);
int iot_tmsql_samples(void *self, int64_t device_id, const char *name, int64_t from, int64_t to,
                      iot_tm_sample_fn fn, void *ctx);
int iot_tmsql_catalog(void *self, int64_t device_id, iot_tm_catalog_fn fn, void *ctx);
int iot_tmsql_samples_typed(void *self, int64_t device_id, const char *name, int64_t from,
                            int64_t to, iot_tm_typed_sample_fn fn, void *ctx);
int iot_tmsql_sample_edge(void *self, int64_t device_id, const char *name, int64_t from,
                          int64_t to, bool last, struct iot_tm_sample *out);
int iot_tmsql_export_scan(void *self, int64_t after_device, int64_t after_ts, int64_t after_seq,
                          int64_t limit, iot_tm_export_fn fn, void *ctx);

int iot_tmsql_delete_range(void *self, int64_t device_id, int64_t from, int64_t to,
                           int64_t *deleted);
int iot_tmsql_delete_device(void *self, int64_t device_id);
int iot_tmsql_delete_user(void *self, int64_t user_id);
int iot_tmsql_purge(void *self, int64_t raw_before, int64_t rollup_before, int64_t *removed);

#endif
