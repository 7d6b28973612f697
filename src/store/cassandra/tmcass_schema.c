/* tmcass_schema.c — the Cassandra telemetry store's keyspace, tables and
 * statements, and the start-up that creates them.
 *
 * Tables (every partition bounded in size):
 *   device_data   ((device_id, day), ts, seq)            a device's messages of one UTC day
 *   user_data     ((user_id, day), ts, seq, device_id)   the same messages seen per owner
 *   device_days   (device_id, day) → user_id             which days a device has (history,
 *   user_days     (user_id, day)                          deletes, copies walk these)
 *   user_devices  (user_id, device_id)                   for delete_user
 *   latest_data   ((device_id, -1), name, ts, seq) → value  newest value per measurement
 *   device_measurements ((device_id, -1), name) → unit   the catalog's units
 *   aggregated_data ((device_id, span), width, name, start, writer, seq)
 *                 partial aggregates: hourly (width 1) and daily (24) buckets in the
 *                 partition of their day (span = day), and lifetime totals (width 0)
 *                 in span -1, behind the catalog; see tmcass_agg.c
 * A device's rows of one day — its messages and that day's rollups — share
 * the partition key (device_id, day), and its lifetime rows — latest values,
 * units, totals — the key (device_id, -1): Cassandra applies the rows of a
 * write round with one key as one mutation, so rollups cost a round little
 * more than the messages themselves.
 *   message_counts (shard, day, writer) → messages       /telemetry/status totals
 *   devices_seen  (shard, device_id)                     devices holding data
 *   schema_version (component) → version                 the migrations applied
 *
 * Newest-first reads follow the clustering order (ts DESC), so a history
 * page is one slice per day partition. latest_data keeps a few rows per
 * measurement rather than one: each commit inserts the newest value and
 * range-deletes the older ones, so concurrent writers and late messages
 * never need a read-before-write, and a reader takes the newest row of
 * each name. Its tombstones are short-lived (gc_grace 3 h): a row that
 * comes back after a long outage is an older value, which readers skip.
 * Raw tables use TimeWindowCompactionStrategy (one window a day), as rows
 * expire by TTL (IOT_TM_CAP_TTL) and never need a scan to go. */
#include <stdio.h>
#include <string.h>

#include "store/cassandra/tmcass_int.h"
#include "util/err.h"
#include "util/log.h"

#define AGG_COLS "n, total, vmin, vmax, ints, isum, isum_hi, imin, imax, samples, first_ts, last_ts"
#define AGG_MARKS "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"

const char *const tmc_stmt_text[TMC_N_STMTS] = {
    [TMC_INS_DEVICE_DATA] = "INSERT INTO device_data (device_id, day, ts, seq, data, meta)"
                            " VALUES (?, ?, ?, ?, ?, ?) USING TTL ?",
    [TMC_INS_USER_DATA] = "INSERT INTO user_data (user_id, day, ts, seq, device_id, data, meta)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?) USING TTL ?",
    [TMC_INS_DEVICE_DAY] = "INSERT INTO device_days (device_id, day, user_id) VALUES (?, ?, ?)"
                           " USING TTL ?",
    [TMC_INS_USER_DAY] = "INSERT INTO user_days (user_id, day) VALUES (?, ?) USING TTL ?",
    [TMC_INS_USER_DEVICE] = "INSERT INTO user_devices (user_id, device_id) VALUES (?, ?)",
    [TMC_INS_LATEST] = "INSERT INTO latest_data (device_id, span, name, ts, seq, type, num, ival,"
                       " is_int, str) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [TMC_DEL_LATEST_OLDER] = "DELETE FROM latest_data WHERE device_id = ? AND span = ? AND name = ?"
                             " AND (ts, seq) < (?, ?)",
    [TMC_INS_UNIT] = "INSERT INTO device_measurements (device_id, span, name, unit)"
                    " VALUES (?, ?, ?, ?)",
    [TMC_INS_PARTIAL] = "INSERT INTO aggregated_data (device_id, span, width, name, start, writer,"
                        " seq, " AGG_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, " AGG_MARKS ")"
                        " USING TTL ?",
    [TMC_INS_MSG_COUNT] = "INSERT INTO message_counts (shard, day, writer, messages)"
                          " VALUES (0, ?, ?, ?) USING TTL ?",
    [TMC_INS_DEVICE_SEEN] = "INSERT INTO devices_seen (shard, device_id) VALUES (0, ?) USING TTL ?",

    [TMC_SEL_EXISTING] = "SELECT ts, seq FROM device_data WHERE device_id = ? AND day = ?"
                         " AND (ts, seq) IN ?",
    [TMC_SEL_DEVICE_DAYS] = "SELECT day, user_id FROM device_days WHERE device_id = ?"
                            " AND day >= ? AND day <= ?",
    [TMC_SEL_USER_DAYS] = "SELECT day FROM user_days WHERE user_id = ? AND day >= ? AND day <= ?",
    [TMC_SEL_DEVICE_PAGE] = "SELECT ts, seq, data, meta FROM device_data WHERE device_id = ?"
                            " AND day = ? AND (ts, seq) >= (?, ?) AND (ts, seq) < (?, ?) LIMIT ?",
    [TMC_SEL_DEVICE_PAGE_TO] = "SELECT ts, seq, data, meta FROM device_data WHERE device_id = ?"
                               " AND day = ? AND (ts, seq) >= (?, ?) AND (ts, seq) <= (?, ?)"
                               " LIMIT ?",
    [TMC_SEL_DEVICE_ASC] = "SELECT ts, seq, data FROM device_data WHERE device_id = ? AND day = ?"
                           " AND ts >= ? AND ts < ? ORDER BY ts ASC, seq ASC",
    [TMC_SEL_DEVICE_DESC] = "SELECT ts, seq, data FROM device_data WHERE device_id = ?"
                            " AND day = ? AND ts >= ? AND ts < ?",
    [TMC_SEL_USER_PAGE] = "SELECT ts, seq, device_id, data, meta FROM user_data WHERE user_id = ?"
                          " AND day = ? AND (ts, seq, device_id) >= (?, ?, ?)"
                          " AND (ts, seq, device_id) < (?, ?, ?) LIMIT ?",
    [TMC_SEL_USER_PAGE_TO] = "SELECT ts, seq, device_id, data, meta FROM user_data"
                             " WHERE user_id = ? AND day = ? AND (ts, seq, device_id) >= (?, ?, ?)"
                             " AND (ts, seq, device_id) <= (?, ?, ?) LIMIT ?",
    [TMC_COUNT_USER_DAY] = "SELECT COUNT(*) FROM user_data WHERE user_id = ? AND day = ?"
                           " AND ts >= ? AND ts <= ?",
    [TMC_SEL_LATEST] = "SELECT name, ts, seq, type, num, ival, is_int, str FROM latest_data"
                       " WHERE device_id = ? AND span = ?",
    [TMC_SEL_UNITS] = "SELECT name, unit FROM device_measurements WHERE device_id = ? AND span = ?",
    [TMC_SEL_PARTIALS] = "SELECT name, start, writer, seq, " AGG_COLS " FROM aggregated_data"
                         " WHERE device_id = ? AND span = ? AND width = ? AND name = ?"
                         " AND start >= ? AND start < ?",
    [TMC_SEL_LIFETIME] = "SELECT name, start, writer, seq, " AGG_COLS " FROM aggregated_data"
                         " WHERE device_id = ? AND span = ? AND width = ?",
    [TMC_SEL_BUCKET] = "SELECT name, start, writer, seq, " AGG_COLS ", version, WRITETIME(n)"
                       " FROM aggregated_data WHERE device_id = ? AND span = ? AND width = ?"
                       " AND name = ? AND start = ?",
    [TMC_SEL_MSG_COUNTS] = "SELECT day, writer, messages FROM message_counts WHERE shard = 0",
    [TMC_COUNT_DEVICES_SEEN] = "SELECT COUNT(*) FROM devices_seen WHERE shard = 0",
    [TMC_SEL_USER_DEVICES] = "SELECT device_id FROM user_devices WHERE user_id = ?",
    [TMC_SEL_DEVICE_RANGE_KEYS] = "SELECT ts, seq, data FROM device_data WHERE device_id = ?"
                                  " AND day = ? AND ts >= ? AND ts <= ?",

    [TMC_DEL_DEVICE_DAY_RANGE] = "DELETE FROM device_data WHERE device_id = ? AND day = ?"
                                 " AND ts >= ? AND ts <= ?",
    [TMC_DEL_USER_ROW] = "DELETE FROM user_data WHERE user_id = ? AND day = ? AND ts = ?"
                         " AND seq = ? AND device_id = ?",
    [TMC_DEL_DEVICE_PARTITION] = "DELETE FROM device_data WHERE device_id = ? AND day = ?",
    [TMC_DEL_USER_PARTITION] = "DELETE FROM user_data WHERE user_id = ? AND day = ?",
    [TMC_DEL_DEVICE_DAYS] = "DELETE FROM device_days WHERE device_id = ?",
    [TMC_DEL_USER_DAYS] = "DELETE FROM user_days WHERE user_id = ?",
    [TMC_DEL_USER_DEVICES] = "DELETE FROM user_devices WHERE user_id = ?",
    [TMC_DEL_USER_DEVICE] = "DELETE FROM user_devices WHERE user_id = ? AND device_id = ?",
    [TMC_DEL_LATEST_ALL] = "DELETE FROM latest_data WHERE device_id = ? AND span = ?",
    [TMC_DEL_LATEST_NAME_RANGE] = "DELETE FROM latest_data WHERE device_id = ? AND span = ?"
                                  " AND name = ? AND ts >= ? AND ts <= ?",
    [TMC_DEL_UNITS] = "DELETE FROM device_measurements WHERE device_id = ? AND span = ?",
    [TMC_DEL_AGG_PARTITION] = "DELETE FROM aggregated_data WHERE device_id = ? AND span = ?",
    [TMC_DEL_DEVICE_SEEN] = "DELETE FROM devices_seen WHERE shard = 0 AND device_id = ?",
    /* The merge (tmcass_agg.c): a conditional batch on one partition. */
    [TMC_MERGE_INSERT] = "INSERT INTO aggregated_data (device_id, span, width, name, start, writer,"
                         " seq, " AGG_COLS ", version) VALUES (?, ?, ?, ?, ?, 0, 0, " AGG_MARKS
                         ", 1) IF NOT EXISTS USING TTL ?",
    [TMC_MERGE_UPDATE] = "UPDATE aggregated_data USING TTL ? SET n = ?, total = ?, vmin = ?,"
                         " vmax = ?, ints = ?, isum = ?, isum_hi = ?, imin = ?, imax = ?,"
                         " samples = ?, first_ts = ?, last_ts = ?, version = ?"
                         " WHERE device_id = ? AND span = ? AND width = ? AND name = ?"
                         " AND start = ? AND writer = 0 AND seq = 0 IF version = ?",
    [TMC_MERGE_DELETE] = "DELETE FROM aggregated_data WHERE device_id = ? AND span = ?"
                         " AND width = ? AND name = ? AND start = ? AND writer = ? AND seq = ?",
    /* Reads and deletes (tmcass_read.c, tmcass_delete.c). */
    [TMC_SEL_DEVICE_DAYS_ASC] = "SELECT day, user_id FROM device_days WHERE device_id = ?"
                                " AND day >= ? AND day <= ? ORDER BY day ASC",
    [TMC_SEL_LATEST_NAME] = "SELECT ts, seq FROM latest_data WHERE device_id = ? AND span = ? AND name = ?"
                            " LIMIT 1",
    [TMC_SEL_DAY_KEYS] = "SELECT ts, seq FROM device_data WHERE device_id = ? AND day = ?",
    [TMC_SEL_USER_DAY_KEYS] = "SELECT ts, seq, device_id FROM user_data WHERE user_id = ?"
                              " AND day = ?",
    [TMC_DEL_UNIT] = "DELETE FROM device_measurements WHERE device_id = ? AND span = ?"
                     " AND name = ?",
    [TMC_DEL_DEVICE_ROW] = "DELETE FROM device_data WHERE device_id = ? AND day = ? AND ts = ?"
                           " AND seq = ?",
};

/* ---- migrations ----------------------------------------------------------------- */

#define TWCS "compaction = {'class': 'TimeWindowCompactionStrategy'," \
             " 'compaction_window_unit': 'DAYS', 'compaction_window_size': 1}"

/* Each step is a list of idempotent DDL statements (IF NOT EXISTS), so
 * that instances starting at once, or a step cut short, redo it safely. */
static const char *const step1[] = {
    "CREATE TABLE IF NOT EXISTS device_data (device_id bigint, day bigint, ts timestamp,"
    " seq bigint, data text, meta text, PRIMARY KEY ((device_id, day), ts, seq))"
    " WITH CLUSTERING ORDER BY (ts DESC, seq DESC) AND " TWCS,
    "CREATE TABLE IF NOT EXISTS user_data (user_id bigint, day bigint, ts timestamp, seq bigint,"
    " device_id bigint, data text, meta text,"
    " PRIMARY KEY ((user_id, day), ts, seq, device_id))"
    " WITH CLUSTERING ORDER BY (ts DESC, seq DESC, device_id DESC) AND " TWCS,
    "CREATE TABLE IF NOT EXISTS device_days (device_id bigint, day bigint, user_id bigint,"
    " PRIMARY KEY (device_id, day)) WITH CLUSTERING ORDER BY (day DESC)",
    "CREATE TABLE IF NOT EXISTS user_days (user_id bigint, day bigint,"
    " PRIMARY KEY (user_id, day)) WITH CLUSTERING ORDER BY (day DESC)",
    "CREATE TABLE IF NOT EXISTS user_devices (user_id bigint, device_id bigint,"
    " PRIMARY KEY (user_id, device_id))",
    "CREATE TABLE IF NOT EXISTS latest_data (device_id bigint, span bigint, name text,"
    " ts timestamp, seq bigint, type tinyint, num double, ival bigint, is_int boolean, str text,"
    " PRIMARY KEY ((device_id, span), name, ts, seq))"
    " WITH CLUSTERING ORDER BY (name ASC, ts DESC, seq DESC) AND gc_grace_seconds = 10800",
    "CREATE TABLE IF NOT EXISTS device_measurements (device_id bigint, span bigint,"
    " name text, unit text, PRIMARY KEY ((device_id, span), name))",
    "CREATE TABLE IF NOT EXISTS aggregated_data (device_id bigint, span bigint, width int,"
    " name text, start timestamp, writer bigint, seq bigint, n bigint, total double,"
    " vmin double, vmax double, ints bigint, isum bigint, isum_hi bigint, imin bigint,"
    " imax bigint, samples bigint, first_ts timestamp, last_ts timestamp, version int,"
    " PRIMARY KEY ((device_id, span), width, name, start, writer, seq))",
    "CREATE TABLE IF NOT EXISTS message_counts (shard int, day bigint, writer bigint,"
    " messages bigint, PRIMARY KEY (shard, day, writer))",
    "CREATE TABLE IF NOT EXISTS devices_seen (shard int, device_id bigint,"
    " PRIMARY KEY (shard, device_id))",
    NULL,
};

static const char *const *const steps[] = {step1};
#define N_STEPS ((int)(sizeof steps / sizeof steps[0]))
#define COMPONENT "telemetry"

static int create_keyspace(struct tmc *t)
{
    char cql[512];
    if (t->url.dc[0])
        snprintf(cql, sizeof cql,
                 "CREATE KEYSPACE IF NOT EXISTS \"%s\" WITH replication ="
                 " {'class': 'NetworkTopologyStrategy', '%s': %d}",
                 t->url.keyspace, t->url.dc, t->url.replication);
    else
        snprintf(cql, sizeof cql,
                 "CREATE KEYSPACE IF NOT EXISTS \"%s\" WITH replication ="
                 " {'class': 'SimpleStrategy', 'replication_factor': %d}",
                 t->url.keyspace, t->url.replication);
    return tmc_query(t, cql, CQL_CONSISTENCY_DEFAULT, NULL);
}

/* The version recorded in the keyspace, 0 when none. */
static int read_version(struct tmc *t, int *version)
{
    char cql[256];
    snprintf(cql, sizeof cql,
             "SELECT version FROM \"%s\".schema_version WHERE component = '" COMPONENT "'",
             t->url.keyspace);
    struct cql_reply *reply = NULL;
    int rc = tmc_query(t, cql, t->url.consistency, &reply);
    *version = 0;
    if (rc == IOT_OK) {
        const struct cql_rows *rows = cql_reply_rows(reply);
        struct cql_row_iter it = cql_rows_iter(rows);
        struct cql_value cell;
        int32_t v;
        if (rows && cql_rows_next(&it, &cell, 1) && cql_decode_int(cell, &v) == CQL_OK)
            *version = v;
    }
    cql_reply_free(reply);
    return rc;
}

static int run_step(struct tmc *t, int v)
{
    char cql[1024];
    for (const char *const *ddl = steps[v - 1]; *ddl; ddl++) {
        /* Tables are named unqualified above; the session's keyspace is
         * not set yet while the keyspace is being made, so qualify here. */
        const char *table = strstr(*ddl, "EXISTS ") + 7;
        snprintf(cql, sizeof cql, "%.*s\"%s\".%s", (int)(table - *ddl), *ddl, t->url.keyspace,
                 table);
        int rc = tmc_query(t, cql, CQL_CONSISTENCY_DEFAULT, NULL);
        if (rc)
            return rc;
    }
    snprintf(cql, sizeof cql,
             "INSERT INTO \"%s\".schema_version (component, version) VALUES ('" COMPONENT "', %d)",
             t->url.keyspace, v);
    return tmc_query(t, cql, t->url.consistency, NULL);
}

int tmc_schema_apply(struct tmc *t)
{
    int rc = create_keyspace(t);
    char cql[256];
    snprintf(cql, sizeof cql,
             "CREATE TABLE IF NOT EXISTS \"%s\".schema_version (component text PRIMARY KEY,"
             " version int)",
             t->url.keyspace);
    if (rc == IOT_OK)
        rc = tmc_query(t, cql, CQL_CONSISTENCY_DEFAULT, NULL);
    int version = 0;
    if (rc == IOT_OK)
        rc = read_version(t, &version);
    if (rc)
        return rc;
    if (version > N_STEPS) {
        IOT_ERROR("cassandra: keyspace %s has telemetry schema version %d; this build knows %d",
                  t->url.keyspace, version, N_STEPS);
        return IOT_EINVAL;
    }
    for (int v = version + 1; v <= N_STEPS && rc == IOT_OK; v++) {
        IOT_INFO("cassandra: telemetry schema of keyspace %s: applying step %d", t->url.keyspace,
                 v);
        rc = run_step(t, v);
    }
    return rc;
}

int tmc_prepare_all(struct tmc *t)
{
    for (int i = 0; i < TMC_N_STMTS; i++) {
        struct cql_reply *err = NULL;
        int rc = cql_session_prepare_sync(t->s, tmc_stmt_text[i], &t->ps[i], &err);
        if (rc) {
            IOT_ERROR("cassandra: cannot prepare statement %d: %s", i, cql_reply_error_text(err));
            cql_reply_free(err);
            return tmc_err(rc);
        }
    }
    return IOT_OK;
}
