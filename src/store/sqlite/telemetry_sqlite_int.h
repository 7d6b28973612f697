/* telemetry_sqlite_int.h — what the files of the SQLite telemetry store
 * share: the handle, the statement ids and a few helpers.
 *
 * Internal to src/store/sqlite/telemetry_sqlite*.c: core (schema, open,
 * stats), _write (write_batch), _read (scans), _delete (deletes, retention).
 * The handle is thread-safe; `agg` belongs to whoever holds the writer lock. */
#ifndef IOT_STORE_SQLITE_TELEMETRY_SQLITE_INT_H
#define IOT_STORE_SQLITE_TELEMETRY_SQLITE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/sqlite/sqlite_db.h"
#include "store/telemetry.h"

struct iot_tmsql_agg; /* write_batch scratch, see telemetry_sqlite_write.c */

struct iot_tmsql {
    struct iot_sqldb *db;
    struct iot_tmsql_agg *agg; /* reused batch to batch, under the writer lock */
};

/* Statement ids; the SQL is in telemetry_sqlite.c. */
enum iot_tmsql_stmt {
    TMS_PING,
    TMS_STATS,
    /* write_batch */
    TMS_MSG_INSERT,
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

/* The ops, by file. */
int iot_tmsql_write_batch(void *self, const struct iot_tm_message *msgs, size_t n);
void iot_tmsql_agg_free(struct iot_tmsql_agg *a);

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

int iot_tmsql_delete_range(void *self, int64_t device_id, int64_t from, int64_t to,
                           int64_t *deleted);
int iot_tmsql_delete_device(void *self, int64_t device_id);
int iot_tmsql_delete_user(void *self, int64_t user_id);
int iot_tmsql_purge(void *self, int64_t raw_before, int64_t rollup_before, int64_t *removed);

#endif
