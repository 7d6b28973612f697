/* telemetry_sqlite.c — the telemetry store on SQLite: schema, statements,
 * open/close/ping/stats and the ops table. write_batch is in
 * telemetry_sqlite_write.c, the scans in _read.c, deletes and retention in
 * _delete.c; pooling, transactions and migrations in sqlite_db.c.
 *
 * Tables, shaped like the Cassandra tables that will replace them (one
 * partition key, clustering order = the order reads want, no joins on the
 * hot paths):
 *   messages (device_id, ts, seq)            one row per message, data/meta
 *                                            JSON text exactly as written
 *     + index (user_id, ts, seq)             the per-user view
 *   latest   (device_id, name)               newest value per measurement
 *   rollups  (device_id, name, width, start) hourly and daily count/sum/min/max,
 *                                            and of the integer samples exactly
 *                                            (a unique index: see migrations)
 *   catalog  (device_id, name)               type, unit, first/last seen, count
 *   devices  (device_id)                     owner and message count: stats,
 *                                            delete_user and purge walk it
 *                                            instead of scanning messages
 *   totals   (id = 1)                        sum and count of `devices` rows, kept
 *                                            by triggers: stats reads one row
 *   log_state (id = 1)                       the newest commit-log batch a
 *                                            flush applied (replay skips it)
 *   pending  (batch)                         versions 2-3 of the store (never
 *                                            released) staged batches here; no
 *                                            code reads or writes it any more
 *
 * Durability: a batch is committed as one record of the commit log beside
 * the database (the commit path, telemetry_sqlite_int.h): write(2) returns, so it
 * survives kill -9 of the process; with durable = true the record is also
 * fdatasynced, so it survives power loss. Its messages and derived rows
 * (latest, rollups, catalog, devices) reach their tables later, in a flush,
 * recoverable from the log, and every read flushes first. The database
 * itself is always WAL: synchronous=NORMAL (a flush survives a crash of the
 * process), FULL when durable (a flush survives power loss, so the log
 * segments it empties may be deleted). */
#include "store/sqlite/telemetry_sqlite.h"

#include <stdlib.h>
#include <string.h>

#include "store/commit_log.h"
#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/telemetry_sqlite_int.h"
#include "util/err.h"

/* ---- schema ------------------------------------------------------------ */

/* Append-only: never edit a shipped step, add a new one. Times are INTEGER
 * ms. WITHOUT ROWID where a table is read by its primary key prefix: the
 * rows live in the key's B-tree (one lookup instead of two). latest keeps seq
 * so that the newest of two values with equal ts is well defined.
 *
 * rollups is the exception, a rowid table with a unique index as its key.
 * Its rows are updated in place for as long as their bucket is current, so
 * every batch rewrites "the current hour and day" of every series it holds.
 * Clustered by (device_id, name, ...) those rows would sit on a page per
 * series once the history grows; in rowid (creation, i.e. time) order they
 * share a few pages, and the index only changes when a bucket row is born. */
static const char *const migrations[] = {
    /* 1: initial schema */
    "CREATE TABLE messages ("
    " device_id INTEGER NOT NULL,"
    " ts INTEGER NOT NULL,"
    " seq INTEGER NOT NULL,"
    " user_id INTEGER NOT NULL,"
    " data TEXT NOT NULL,"
    " meta TEXT,"
    " PRIMARY KEY (device_id, ts, seq)) WITHOUT ROWID;"
    "CREATE INDEX messages_by_user ON messages (user_id, ts, seq);"
    "CREATE TABLE latest ("
    " device_id INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " type INTEGER NOT NULL,"
    " num REAL,"
    " str TEXT,"
    " ts INTEGER NOT NULL,"
    " seq INTEGER NOT NULL,"
    " PRIMARY KEY (device_id, name)) WITHOUT ROWID;"
    "CREATE TABLE rollups ("
    " device_id INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " width INTEGER NOT NULL,"
    " start INTEGER NOT NULL,"
    " count INTEGER NOT NULL,"
    " sum REAL NOT NULL,"
    " vmin REAL NOT NULL,"
    " vmax REAL NOT NULL);"
    "CREATE UNIQUE INDEX rollups_key ON rollups (device_id, name, width, start);"
    "CREATE TABLE catalog ("
    " device_id INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " type INTEGER NOT NULL,"
    " unit TEXT NOT NULL DEFAULT '',"
    " first_seen INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL,"
    " count INTEGER NOT NULL,"
    " PRIMARY KEY (device_id, name)) WITHOUT ROWID;"
    "CREATE TABLE devices ("
    " device_id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL,"
    " messages INTEGER NOT NULL);"
    "CREATE INDEX devices_by_user ON devices (user_id);",
    /* 2: batches whose derived rows are not applied yet; keys holds the
     * (device_id, ts, seq) of the messages the batch inserted, 3 x 8 bytes
     * little-endian each */
    "CREATE TABLE pending ("
    " batch INTEGER PRIMARY KEY,"
    " keys BLOB NOT NULL);",
    /* 3: the pending log carries the messages themselves (encoded), which
     * are not in `messages` yet; keys is then empty. (Steps 2 and 3 only
     * served development builds before step 4; they stay so that the
     * schema's numbering does not change.) */
    "ALTER TABLE pending ADD COLUMN msgs BLOB;",
    /* 4: batches are staged in a commit log of files beside the database
     * (telemetry_sqlite_stage.c), not in `pending`; a flush records the
     * newest batch it applied here, in its own transaction, so that replay
     * after a crash skips what is applied already */
    "CREATE TABLE log_state ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " flushed_upto INTEGER NOT NULL);"
    "INSERT INTO log_state VALUES (1, 0);",
    /* 5: numbers stay exact. latest.val holds a number as given: an
     * INTEGER for an integer (num, a REAL column, rounds past 2^53), a REAL
     * for a real (a REAL column stores an integral real as an integer on
     * disk, and -0.0 comes back as 0.0). Older values that were integral
     * keep printing as integers, as they did. rollups keep the integer
     * samples apart: how many (ints), their sum (a REAL once it overflowed:
     * not exact), min and max. New columns have no type, so SQLite keeps
     * each value as given. */
    "ALTER TABLE latest ADD COLUMN val;"
    "UPDATE latest SET val = CASE WHEN num = CAST(num AS INTEGER)"
    " AND abs(num) < 9007199254740992 THEN CAST(num AS INTEGER) ELSE num END WHERE type = 1;"
    "ALTER TABLE rollups ADD COLUMN ints INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE rollups ADD COLUMN isum NOT NULL DEFAULT 0;"
    "ALTER TABLE rollups ADD COLUMN imin;"
    "ALTER TABLE rollups ADD COLUMN imax;",
    /* 6: stats without scanning `devices` (GET /telemetry/status is
     * public): one row of totals that triggers keep equal to
     * sum(messages) and count(messages > 0) of `devices`, in the same
     * transaction as every change to it (flush upserts, deletes, purge). */
    "CREATE TABLE totals ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " messages INTEGER NOT NULL,"
    " devices INTEGER NOT NULL);"
    "INSERT INTO totals SELECT 1, coalesce(sum(messages), 0), coalesce(sum(messages > 0), 0)"
    " FROM devices;"
    "CREATE TRIGGER totals_ins AFTER INSERT ON devices BEGIN"
    " UPDATE totals SET messages = messages + NEW.messages,"
    " devices = devices + (NEW.messages > 0); END;"
    "CREATE TRIGGER totals_upd AFTER UPDATE OF messages ON devices BEGIN"
    " UPDATE totals SET messages = messages + NEW.messages - OLD.messages,"
    " devices = devices + (NEW.messages > 0) - (OLD.messages > 0); END;"
    "CREATE TRIGGER totals_del AFTER DELETE ON devices BEGIN"
    " UPDATE totals SET messages = messages - OLD.messages,"
    " devices = devices - (OLD.messages > 0); END;",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

/* Per connection:
 *  - a 16 MB page cache instead of 2 MB: a batch touches the tail page of
 *    every device it holds, plus latest/catalog/rollup rows, and those pages
 *    must stay hot from one batch to the next;
 *  - a checkpoint every 4096 WAL pages (16 MB) instead of 1000: a page that
 *    several batches rewrite is copied back to the database once, not once
 *    per 1000 pages. Measured with 100 devices x batches of 1000 messages:
 *    1000 → ~78k msgs/s, 4096 → ~120k, 16384 → ~88k (longer checkpoint
 *    stalls, bigger WAL index);
 *  - temp B-trees (delete_range's GROUP BY) in memory.
 * (Write transactions install a WAL hook on their connection, which turns
 * its automatic checkpoint off: the store checkpoints after its commits
 * instead, see telemetry_sqlite_flusher.c.) */
static const char conn_sql[] = "PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 4096;"
                               " PRAGMA temp_store = MEMORY";

/* ---- statements -------------------------------------------------------- */

/* Numeric JSON types: what rollups and samples take (true/false read as 1/0). */
#define NUMERIC_TYPES "('integer', 'real', 'true', 'false')"

static const char *const stmt_sql[TMS__COUNT] = {
    [TMS_PING] = "SELECT 1",
    [TMS_STATS] = "SELECT messages, devices FROM totals",

    /* flush and crash recovery: OR IGNORE makes a retried identity a no-op;
     * the flush reads sqlite3_changes() to aggregate only what was
     * inserted. The upserts of the derived rows are built in
     * telemetry_sqlite_write.c. */
    [TMS_MSG_INSERT] = "INSERT OR IGNORE INTO messages (device_id, ts, seq, user_id, data, meta)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [TMS_LOG_STATE_GET] = "SELECT flushed_upto FROM log_state",
    [TMS_LOG_STATE_SET] = "UPDATE log_state SET flushed_upto = ?1 WHERE flushed_upto < ?1",

    /* Scans: keyset continuation (the last row seen is bound), never OFFSET. */
    [TMS_Q_DEVICE] = "SELECT ts, seq, data, meta FROM messages"
                     " WHERE device_id = ?1 AND ts >= ?2 AND ts <= ?3 AND (ts, seq) < (?4, ?5)"
                     " ORDER BY ts DESC, seq DESC LIMIT ?6",
    /* The index holds device_id after (user_id, ts, seq), so this order is
     * the index order and device_id breaks (ts, seq) ties between devices. */
    [TMS_Q_USER] = "SELECT ts, seq, data, meta, device_id FROM messages"
                   " WHERE user_id = ?1 AND ts >= ?2 AND ts <= ?3"
                   " AND (ts, seq, device_id) < (?4, ?5, ?6)"
                   " ORDER BY ts DESC, seq DESC, device_id DESC LIMIT ?7",
    [TMS_COUNT_USER] = "SELECT count(*) FROM messages WHERE user_id = ?1 AND ts >= ?2 AND ts <= ?3",
    [TMS_LATEST_SCAN] = "SELECT name, type, num, str, ts, val FROM latest"
                        " WHERE device_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
    [TMS_ROLLUP_SCAN] = "SELECT start, count, sum, vmin, vmax, ints, isum, imin, imax FROM rollups"
                        " WHERE device_id = ?1 AND name = ?2 AND width = ?3"
                        " AND start >= ?4 AND start < ?5 ORDER BY start LIMIT ?6",
    /* Non-numeric and missing values come back too (as text or NULL) and
     * are skipped in C, so that the keyset still advances past them. */
    [TMS_SAMPLE_SCAN] = "SELECT ts, seq, data ->> ?2 FROM messages"
                        " WHERE device_id = ?1 AND ts >= ?3 AND ts < ?4 AND (ts, seq) > (?5, ?6)"
                        " ORDER BY ts, seq LIMIT ?7",
    /* The type comes from latest when it is there: it follows (ts, seq) exactly. */
    [TMS_CATALOG_SCAN] = "SELECT c.name, coalesce(l.type, c.type), c.unit, c.first_seen,"
                         " c.last_seen, c.count FROM catalog c LEFT JOIN latest l"
                         " ON l.device_id = c.device_id AND l.name = c.name"
                         " WHERE c.device_id = ?1 AND c.name > ?2 ORDER BY c.name LIMIT ?3",

    /* delete_range: per (name, hour) of the doomed messages, whether the
     * values are numeric and how many there are. */
    [TMS_DR_TOUCHED] = "SELECT j.key, m.ts - ((m.ts % 3600000) + 3600000) % 3600000,"
                       " j.type IN " NUMERIC_TYPES ", count(*)"
                       " FROM messages m, json_each(m.data) j"
                       " WHERE m.device_id = ?1 AND m.ts >= ?2 AND m.ts <= ?3"
                       " GROUP BY 1, 2, 3 ORDER BY 1, 2",
    [TMS_DR_DELETE] = "DELETE FROM messages WHERE device_id = ?1 AND ts >= ?2 AND ts <= ?3",
    [TMS_DEV_SUB] = "UPDATE devices SET messages = messages - ?2 WHERE device_id = ?1",
    [TMS_CATALOG_SUB] = "UPDATE catalog SET count = count - ?3 WHERE device_id = ?1 AND name = ?2",
    /* The bucket's numeric values, one row each, summed up in C
     * (telemetry_sqlite_delete.c): SQL's sum() fails on an int64 overflow
     * and abs(INT64_MIN) does too, where ingest's checked sum goes REAL.
     * In key order, as ingest added them. */
    [TMS_BUCKET_CALC] = "SELECT data ->> ?2 FROM messages"
                        " WHERE device_id = ?1 AND ts >= ?3 AND ts < ?4"
                        " AND json_type(data, ?2) IN " NUMERIC_TYPES " ORDER BY ts, seq",
    [TMS_ROLLUP_PUT] = "INSERT OR REPLACE INTO rollups (device_id, name, width, start, count,"
                       " sum, vmin, vmax, ints, isum, imin, imax)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [TMS_ROLLUP_DEL] = "DELETE FROM rollups WHERE device_id = ?1 AND name = ?2 AND width = ?3"
                       " AND start = ?4",
    [TMS_LATEST_GET] = "SELECT ts FROM latest WHERE device_id = ?1 AND name = ?2",
    [TMS_NEWEST_WITH] = "SELECT ts, seq, data ->> ?2, json_type(data, ?2) FROM messages"
                        " WHERE device_id = ?1"
                        " AND json_type(data, ?2) IN ('integer', 'real', 'true', 'false', 'text')"
                        " ORDER BY ts DESC, seq DESC LIMIT 1",
    [TMS_LATEST_PUT] = "INSERT OR REPLACE INTO latest (device_id, name, type, num, str, ts, seq,"
                       " val) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [TMS_LATEST_DEL] = "DELETE FROM latest WHERE device_id = ?1 AND name = ?2",
    [TMS_CATALOG_GET] = "SELECT count, first_seen, last_seen FROM catalog"
                        " WHERE device_id = ?1 AND name = ?2",
    [TMS_FIRST_WITH] = "SELECT ts FROM messages WHERE device_id = ?1 AND ts > ?3"
                       " AND json_type(data, ?2) IS NOT NULL ORDER BY ts, seq LIMIT 1",
    [TMS_LAST_WITH] = "SELECT ts FROM messages WHERE device_id = ?1 AND ts < ?3"
                      " AND json_type(data, ?2) IS NOT NULL ORDER BY ts DESC, seq DESC LIMIT 1",
    [TMS_CATALOG_SET] = "UPDATE catalog SET first_seen = ?3, last_seen = ?4"
                        " WHERE device_id = ?1 AND name = ?2",
    [TMS_CATALOG_DEL] = "DELETE FROM catalog WHERE device_id = ?1 AND name = ?2",

    [TMS_DEL_DEV_MSG] = "DELETE FROM messages WHERE device_id = ?1",
    [TMS_DEL_DEV_LATEST] = "DELETE FROM latest WHERE device_id = ?1",
    [TMS_DEL_DEV_ROLLUPS] = "DELETE FROM rollups WHERE device_id = ?1",
    [TMS_DEL_DEV_CATALOG] = "DELETE FROM catalog WHERE device_id = ?1",
    [TMS_DEL_DEV_ROW] = "DELETE FROM devices WHERE device_id = ?1",
    [TMS_USER_DEVICES] = "SELECT device_id FROM devices WHERE user_id = ?1",
    [TMS_DEL_USER_MSG] = "DELETE FROM messages WHERE user_id = ?1",
    [TMS_DEVICES_AFTER] = "SELECT device_id FROM devices WHERE device_id > ?1"
                          " ORDER BY device_id LIMIT ?2",
    [TMS_PURGE_MSG] = "DELETE FROM messages WHERE device_id = ?1 AND ts < ?2",
    [TMS_PURGE_ROLLUPS] = "DELETE FROM rollups WHERE device_id = ?1 AND start < ?2",
    /* sample_edge: one seek on the primary key per window */
    [TMS_EDGE_FIRST] = "SELECT ts, data ->> ?2 FROM messages WHERE device_id = ?1 AND ts >= ?3"
                       " AND ts < ?4 AND json_type(data, ?2) IN " NUMERIC_TYPES
                       " ORDER BY ts, seq LIMIT 1",
    [TMS_EDGE_LAST] = "SELECT ts, data ->> ?2 FROM messages WHERE device_id = ?1 AND ts >= ?3"
                      " AND ts < ?4 AND json_type(data, ?2) IN " NUMERIC_TYPES
                      " ORDER BY ts DESC, seq DESC LIMIT 1",
    /* export_scan: the whole table in primary key order, keyset on it */
    [TMS_EXPORT_SCAN] = "SELECT device_id, ts, seq, user_id, data, meta FROM messages"
                        " WHERE (device_id, ts, seq) > (?1, ?2, ?3)"
                        " ORDER BY device_id, ts, seq LIMIT ?4",
};

static const struct iot_sqldb_schema telemetry_schema = {
    .migrations = migrations,
    .n_migrations = N_MIGRATIONS,
    .stmts = stmt_sql,
    .n_stmts = TMS__COUNT,
    .n_dyn = IOT_TMSQL_N_DYN,
    .conn_sql = conn_sql,
};


/* ---- helpers shared by the other files ----------------------------------- */

/* Quoted member syntax, because names may hold '.' and '-'. */
void iot_tmsql_json_path(const char *name, size_t len, char buf[IOT_TMSQL_PATH_MAX])
{
    memcpy(buf, "$.\"", 3);
    memcpy(buf + 3, name, len);
    buf[3 + len] = '"';
    buf[4 + len] = '\0';
}

int iot_tmsql_step_ints(sqlite3_stmt *st, int64_t *out, int n)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        for (int i = 0; i < n; i++)
            out[i] = sqlite3_column_int64(st, i);
        rc = IOT_OK;
    } else {
        rc = rc == SQLITE_DONE ? IOT_ENOTFOUND : iot_sqldb_map(rc);
    }
    iot_sqldb_done(st);
    return rc;
}

/* ---- open / close / ping / stats --------------------------------------- */

static void tm_free(struct iot_tmsql *s)
{
    iot_clog_close(s->log);
    iot_sqldb_close(s->db);
    iot_tmsql_agg_free(s->agg);
    iot_tmsql_scratch_free(s->scratch);
    iot_tmsql_stage_free(s->stage);
    pthread_cond_destroy(&s->stage_cv);
    pthread_mutex_destroy(&s->stage_mu);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* stage_cv waits on the monotonic clock: setting the date must not stall
 * the flusher. */
static void init_locks(struct iot_tmsql *s)
{
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->stage_mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->stage_cv, &attr);
    pthread_condattr_destroy(&attr);
}

/* Opens, migrates, and applies what a crash left pending. */
static int tm_open(const char *url, bool durable, void **self)
{
    if (!self || !url)
        return IOT_EINVAL;
    *self = NULL;
    struct iot_tmsql *s = calloc(1, sizeof *s);
    if (!s)
        return IOT_ENOMEM;
    init_locks(s);
    s->durable = durable;
    atomic_init(&s->dirty, 0);
    atomic_init(&s->wal_pages, 0);
    int rc = iot_sqldb_open_ex(url, &telemetry_schema, durable, &s->db);
    if (rc == IOT_OK)
        rc = iot_tmsql_log_open(s);
    if (rc) {
        tm_free(s);
        return rc;
    }
    *self = s;
    return IOT_OK;
}

/* Flushes first; if that fails the commit log stays, for the next open. */
static void tm_close(void *self)
{
    struct iot_tmsql *s = self;
    if (!s)
        return;
    iot_tmsql_log_close(s);
    tm_free(s);
}

/* Runs the single-row integer query `id` (no parameters) into out[0..n-1]. */
static int read_ints(struct iot_tmsql *s, enum iot_tmsql_stmt id, int64_t *out, int n)
{
    struct iot_sqldb_conn *c = iot_sqldb_get(s->db);
    sqlite3_stmt *st;
    int rc = iot_sqldb_stmt(c, id, &st);
    if (rc == IOT_OK)
        rc = iot_tmsql_step_ints(st, out, n);
    iot_sqldb_put(s->db, c);
    return rc;
}

static int tm_ping(void *self)
{
    int64_t one = 0;
    return read_ints(self, TMS_PING, &one, 1);
}

static int tm_stats(void *self, struct iot_tm_stats *out)
{
    if (!out)
        return IOT_EINVAL;
    int64_t v[2] = {0, 0};
    int rc = iot_tmsql_sync(self);
    if (rc == IOT_OK)
        rc = read_ints(self, TMS_STATS, v, 2);
    if (rc == IOT_OK) {
        out->messages = v[0];
        out->devices = v[1];
    }
    return rc;
}

const struct iot_telemetry_ops iot_telemetry_sqlite = {
    .name = "sqlite",
    .version = 3,
    .caps = IOT_TM_CAP_ATOMIC_BATCH,
    .open = tm_open,
    .close = tm_close,
    .ping = tm_ping,
    .write_batch = iot_tmsql_write_batch,
    .query_device = iot_tmsql_query_device,
    .query_user = iot_tmsql_query_user,
    .count_user = iot_tmsql_count_user,
    .latest = iot_tmsql_latest,
    .rollups = iot_tmsql_rollups,
    .samples = iot_tmsql_samples,
    .catalog = iot_tmsql_catalog,
    .delete_range = iot_tmsql_delete_range,
    .delete_device = iot_tmsql_delete_device,
    .delete_user = iot_tmsql_delete_user,
    .purge = iot_tmsql_purge,
    .stats = tm_stats,
    .samples_typed = iot_tmsql_samples_typed,
    .sample_edge = iot_tmsql_sample_edge,
    .set_retention = NULL, /* retention is the server's hourly purge */
    .export_scan = iot_tmsql_export_scan,
};
