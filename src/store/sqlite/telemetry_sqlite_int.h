/* telemetry_sqlite_int.h — what the files of the SQLite telemetry store
 * share: the handle, the statement ids and a few helpers.
 *
 * Internal to src/store/sqlite/telemetry_sqlite*.c: core (schema, open,
 * stats), _write (validation and the map of derived deltas), _pending
 * (the commit log and the flusher: staging, flushing, crash recovery), _read (scans), _delete (deletes,
 * retention). The handle is thread-safe; everything after `mu` in it belongs
 * to whoever holds `mu`. */
#ifndef IOT_STORE_SQLITE_TELEMETRY_SQLITE_INT_H
#define IOT_STORE_SQLITE_TELEMETRY_SQLITE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/sqlite/sqlite_db.h"
#include "store/telemetry.h"

struct iot_tmsql_agg;   /* derived deltas of a flush, see telemetry_sqlite_write.c */
struct iot_tmsql_stage; /* staged batches, see telemetry_sqlite_pending.c */
struct iot_clog;        /* src/store/commit_log.h */

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
     * flushed batches). Guards `agg`, `flushed` and the flush scratch of
     * `stage`. */
    pthread_mutex_t mu;
    struct iot_tmsql_agg *agg; /* a flush's scratch */
    int64_t legacy_upto; /* version 2 pending rows up to this batch wait (0: none) */
    bool pending_rows;   /* rows of the `pending` table (versions 2-3) wait */
    bool flushed;        /* the open write transaction flushed (iot_tmsql_begin) */
    bool flush_again;    /* the last flush was bounded and left batches staged */
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
    TMS_MSG_GET,
    TMS_MSG_INSERT,
    TMS_LOG_STATE_GET,
    TMS_LOG_STATE_SET,
    TMS_PENDING_DEL,
    TMS_PENDING_SCAN,
    TMS_PENDING_ALL,
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

/* name matches [A-Za-z0-9_.-]{1,IOT_TM_NAME_MAX}. */
bool iot_tmsql_name_ok(const char *name, size_t len);
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
 * A flush (telemetry_sqlite_pending.c) adds the deltas of every message it
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

/* ---- the commit log and flushes (telemetry_sqlite_pending.c) ------------------ */

/* write_batch after validation: appends the batch to the commit log and
 * stages it in memory; the flusher thread applies it to the tables. */
int iot_tmsql_stage_write(struct iot_tmsql *s, const struct iot_tm_message *msgs, size_t n);
void iot_tmsql_stage_free(struct iot_tmsql_stage *g); /* NULL-safe */

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

/* At open, before any op: loads what a crash left staged (the commit log
 * past the last flush, and rows of the older `pending` table), flushes it,
 * and starts the flusher thread. */
int iot_tmsql_pending_open(struct iot_tmsql *s);
/* At close: stops the flusher and flushes everything; the commit log is
 * deleted when that worked (else it is replayed at the next open). */
void iot_tmsql_pending_close(struct iot_tmsql *s);

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
