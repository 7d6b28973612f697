/* telemetry.h — the telemetry store interface: time series of device
 * messages, latest value per measurement, hourly and daily rollups, the
 * measurement catalog, range deletion and retention.
 *
 * Shaped for Cassandra (partition by device and day so no partition grows
 * without bound; a second, user-centric table for per-user reads; no
 * ad-hoc filters), implemented first on SQLite (src/store/sqlite). A message
 * is stored whole: its measurements as the compact JSON object the server
 * built (so reads can splice it into responses without re-encoding), plus
 * typed per-measurement values for latest, rollups and the catalog. Every op
 * may be called from any thread. Callers use the iot_tm_* wrappers. */
#ifndef IOT_STORE_TELEMETRY_H
#define IOT_STORE_TELEMETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store_metrics.h"

#define IOT_TM_NAME_MAX 64        /* measurement name: [A-Za-z0-9_.-]{1,64} */
#define IOT_TM_STRING_MAX 1024    /* bytes of a string value */
#define IOT_TM_POINTS_MAX 100     /* measurements per message */
#define IOT_TM_DATA_JSON_MAX 131072 /* bytes of a message's measurements JSON */
#define IOT_TM_STORE_BATCH_MAX 65536 /* messages per write_batch (IOT_ELIMIT beyond) */
/* |ts| bound in ms: far beyond any real date (2^53 ms is 285,000 years), it
 * stays exact as a double and keeps bucket arithmetic from overflowing. */
#define IOT_TM_TS_LIMIT (INT64_C(1) << 53)

/* True (non-zero) for a valid measurement name, a NUL-terminated string of
 * 1 to IOT_TM_NAME_MAX characters of [A-Za-z0-9_.-]: the one rule the
 * parser of submissions (core/tm_message.c) and every backend apply. */
int iot_tm_name_valid(const char *name);

enum iot_tm_type { IOT_TM_NUMBER = 1, IOT_TM_BOOL = 2, IOT_TM_STRING = 3 };

/* One typed value. `str` is borrowed (not NUL-terminated necessarily).
 * A number that was a JSON integer has is_int set and its exact value in
 * `i` (`num` is then its nearest double): integers past 2^53 stay exact end
 * to end. A real keeps is_int false even when integral (21.0 stays 21.0). */
struct iot_tm_value {
    enum iot_tm_type type;
    double num;      /* IOT_TM_NUMBER */
    bool boolean;    /* IOT_TM_BOOL */
    const char *str; /* IOT_TM_STRING */
    size_t str_len;
    bool is_int;     /* (appended) IOT_TM_NUMBER given as an integer */
    int64_t i;       /* (appended) its exact value */
};

struct iot_tm_point {
    const char *name; /* NUL-terminated, validated */
    struct iot_tm_value value;
};

/* One device message as written. Identity is (device_id, ts, seq): writing
 * the same identity twice stores it once (idempotent retries). seq is
 * chosen by the server, unique among messages of a device with equal ts. */
struct iot_tm_message {
    int64_t device_id;
    int64_t user_id; /* owner's internal id, for the user-centric view */
    int64_t ts;      /* ms since the epoch, UTC */
    int64_t seq;
    const struct iot_tm_point *points;
    size_t n_points;
    const char *data_json; /* the measurements as a compact JSON object */
    size_t data_len;
    const char *meta_json; /* metadata object (strings) or NULL */
    size_t meta_len;
    /* (appended) The caller vouches that this identity was never written
     * before: its seq is new, made by this process for this message (the
     * ingest path). A store may then skip its duplicate check (Cassandra:
     * one read per partition per batch). A copy or a retry of a batch
     * leaves it false. */
    bool fresh;
};

/* One message as read; every pointer is borrowed for the callback only. */
struct iot_tm_record {
    int64_t device_id;
    int64_t ts;
    int64_t seq;
    const char *data_json;
    size_t data_len;
    const char *meta_json; /* NULL when the message had no metadata */
    size_t meta_len;
};

/* A latest value (also what the cache holds, 10 min TTL). */
struct iot_tm_latest {
    const char *name;
    struct iot_tm_value value;
    int64_t ts;
};

/* Count, sum, min and max of the numeric values of one measurement over
 * [start, start + width). Booleans count as 0/1; strings are not rolled up.
 *
 * (appended) The integer samples (integers and booleans) again, exactly:
 * `ints` of the `count` samples were integers, with exact sum isum (valid
 * only when isum_exact: it may overflow int64; 0 otherwise) and bounds
 * imin, imax. When ints == count the bucket's sum, min and max are exact
 * integers. A backend that does not keep them leaves ints at 0. */
struct iot_tm_rollup {
    int64_t start;
    int64_t width; /* IOT_TM_HOUR or IOT_TM_DAY */
    int64_t count;
    double sum, min, max;
    int64_t ints;
    int64_t isum, imin, imax;
    bool isum_exact;
};
#define IOT_TM_HOUR INT64_C(3600000)
#define IOT_TM_DAY INT64_C(86400000)

/* A measurement catalog entry. */
struct iot_tm_catalog_entry {
    const char *name;
    enum iot_tm_type type; /* type of the latest value */
    const char *unit;      /* "" when unknown */
    int64_t first_seen, last_seen;
    int64_t count; /* samples */
};

/* A page of a newest-first scan: at most `limit` records with
 * (ts, seq) < (before_ts, before_seq) — the cursor of the previous page,
 * or (INT64_MAX, INT64_MAX) for the first page — and ts in [from, to].
 *
 * max_bytes (appended; 0 = none) is the page's byte budget: the scan ends
 * after the record with which the sum of data_len + meta_len of the records
 * delivered reaches max_bytes, and the backend reads no further rows than
 * that (so a page of large messages never materialises `limit` of them).
 * The caller, summing the same lengths, knows the page ended early. */
struct iot_tm_range {
    int64_t from, to; /* inclusive, ms */
    int64_t limit;
    int64_t before_ts, before_seq;
    int64_t max_bytes;
};

/* (appended) One numeric sample with its integer-ness: `num` always, `i`
 * exact when is_int (an integer or a boolean as 0/1). */
struct iot_tm_sample {
    int64_t ts;
    double num;
    bool is_int;
    int64_t i;
};

typedef int (*iot_tm_record_fn)(void *ctx, const struct iot_tm_record *rec);
typedef int (*iot_tm_latest_fn)(void *ctx, const struct iot_tm_latest *l);
typedef int (*iot_tm_rollup_fn)(void *ctx, const struct iot_tm_rollup *r);
typedef int (*iot_tm_sample_fn)(void *ctx, int64_t ts, double value);
typedef int (*iot_tm_catalog_fn)(void *ctx, const struct iot_tm_catalog_entry *e);
typedef int (*iot_tm_typed_sample_fn)(void *ctx, const struct iot_tm_sample *s);
/* A message with its owner, for export_scan; borrowed for the callback. */
typedef int (*iot_tm_export_fn)(void *ctx, const struct iot_tm_record *rec, int64_t user_id);

struct iot_tm_stats {
    int64_t messages; /* raw messages held */
    int64_t devices;  /* devices with at least one message */
};

#define IOT_TM_CAP_TTL 0x1u           /* retention enforced by the store itself (Cassandra TTL) */
#define IOT_TM_CAP_ATOMIC_BATCH 0x2u  /* write_batch is all-or-nothing */

/* The interface. Ops return IOT_OK or a negative IOT_E*; callbacks return
 * 0 to go on, non-zero to stop early (the op then returns IOT_OK). New slots
 * are appended, never reordered. */
struct iot_telemetry_ops {
    const char *name; /* "sqlite", "cassandra" */
    unsigned version; /* 1, 2 or 3: which of the optional slots below it has */
    unsigned caps;    /* IOT_TM_CAP_* */

    /* `url` is a SQLite path/URL or a Cassandra contact list; `durable`
     * asks for fsync on every commit (power-loss safety) rather than only
     * process-crash safety. */
    int (*open)(const char *url, bool durable, void **self);
    void (*close)(void *self);
    int (*ping)(void *self);

    /* Writes the messages and, in the same commit, the latest values
     * (newer ts wins), hourly and daily rollups and the catalog (a
     * metadata entry "<name>_unit" sets a measurement's unit). Returns only
     * once the batch is durable; on failure nothing of it is visible
     * (ATOMIC_BATCH) or retrying the same batch is harmless (idempotent). */
    int (*write_batch)(void *self, const struct iot_tm_message *msgs, size_t n);

    /* Newest-first scans (see struct iot_tm_range). */
    int (*query_device)(void *self, int64_t device_id, const struct iot_tm_range *range,
                        iot_tm_record_fn fn, void *ctx);
    int (*query_user)(void *self, int64_t user_id, const struct iot_tm_range *range,
                      iot_tm_record_fn fn, void *ctx);
    /* Number of the user's messages with ts in [from, to]. */
    int (*count_user)(void *self, int64_t user_id, int64_t from, int64_t to, int64_t *count);

    /* Latest value of each measurement of a device (IOT_OK with no calls
     * when there is none). */
    int (*latest)(void *self, int64_t device_id, iot_tm_latest_fn fn, void *ctx);
    /* Rollups of one measurement with start in [from, to), ascending. */
    int (*rollups)(void *self, int64_t device_id, const char *name, int64_t width, int64_t from,
                   int64_t to, iot_tm_rollup_fn fn, void *ctx);
    /* Raw numeric samples (booleans as 0/1) of one measurement with ts in
     * [from, to), ascending by ts. */
    int (*samples)(void *self, int64_t device_id, const char *name, int64_t from, int64_t to,
                   iot_tm_sample_fn fn, void *ctx);
    int (*catalog)(void *self, int64_t device_id, iot_tm_catalog_fn fn, void *ctx);

    /* Deletes the device's messages with ts in [from, to] and recomputes
     * the rollups, latest values and catalog they touched. */
    int (*delete_range)(void *self, int64_t device_id, int64_t from, int64_t to, int64_t *deleted);
    /* Everything of one device / of every device of one user. */
    int (*delete_device)(void *self, int64_t device_id);
    int (*delete_user)(void *self, int64_t user_id);
    /* Retention: removes raw messages with ts < raw_before and rollups
     * with start < rollup_before. */
    int (*purge)(void *self, int64_t raw_before, int64_t rollup_before, int64_t *removed);
    int (*stats)(void *self, struct iot_tm_stats *out);

    /* ---- version 2 (optional: NULL in a version 1 backend; the wrappers
     * below then fall back on the version 1 slots) ---- */

    /* samples, each with its integer-ness (struct iot_tm_sample; borrowed
     * for the callback). Same range, order and filtering as samples. */
    int (*samples_typed)(void *self, int64_t device_id, const char *name, int64_t from,
                         int64_t to, iot_tm_typed_sample_fn fn, void *ctx);
    /* The oldest (last = false) or newest (last = true) numeric sample of
     * one measurement with ts in [from, to) into *out; IOT_ENOTFOUND when
     * there is none. Reads one sample where the store can seek to it (the
     * aggregations first and last, one call per window). */
    int (*sample_edge)(void *self, int64_t device_id, const char *name, int64_t from, int64_t to,
                       bool last, struct iot_tm_sample *out);

    /* ---- version 3 (optional: NULL in older backends) ---- */

    /* Retention the store enforces by itself (IOT_TM_CAP_TTL): a raw
     * message expires raw_ms after its ts, a rollup rollup_ms after its
     * bucket ends; 0 keeps forever. Called after open, before any write. */
    int (*set_retention)(void *self, int64_t raw_ms, int64_t rollup_ms);
    /* Every message of the store in ascending (device_id, ts, seq) order,
     * strictly after the cursor (after_device, after_ts, after_seq) — start
     * with (INT64_MIN, INT64_MIN, INT64_MIN) — at most `limit` of them, each
     * with its owner's user id: what a copy of the whole store reads. */
    int (*export_scan)(void *self, int64_t after_device, int64_t after_ts, int64_t after_seq,
                       int64_t limit, iot_tm_export_fn fn, void *ctx);
};

struct iot_telemetry {
    const struct iot_telemetry_ops *ops;
    void *self;
};

/* Compiled-in backends by URL scheme ("sqlite:", bare path). */
const struct iot_telemetry_ops *iot_telemetry_backend(const char *url);
const char *iot_telemetry_backend_names(void);
int iot_telemetry_open(const char *url, bool durable, struct iot_telemetry *out);
/* The database file of an embedded (SQLite) store's URL, into path, without
 * opening it (opening creates a missing one): IOT_OK; IOT_ENOTFOUND for a
 * server backend's URL or a memory database; IOT_EINVAL when it does not
 * fit or no backend takes the URL. */
int iot_telemetry_file(const char *url, char *path, size_t size);
void iot_telemetry_close(struct iot_telemetry *t);

static inline int iot_tm_ping(struct iot_telemetry *t) { IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops, t->ops->ping(t->self)); }
static inline int iot_tm_write_batch(struct iot_telemetry *t, const struct iot_tm_message *m, size_t n) { if (!n) return 0; IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops, t->ops->write_batch(t->self, m, n)); }
static inline int iot_tm_query_device(struct iot_telemetry *t, int64_t dev, const struct iot_tm_range *r, iot_tm_record_fn fn, void *ctx) { IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops, t->ops->query_device(t->self, dev, r, fn, ctx)); }
static inline int iot_tm_query_user(struct iot_telemetry *t, int64_t uid, const struct iot_tm_range *r, iot_tm_record_fn fn, void *ctx) { IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops, t->ops->query_user(t->self, uid, r, fn, ctx)); }
static inline int iot_tm_count_user(struct iot_telemetry *t, int64_t uid, int64_t from, int64_t to, int64_t *n) { IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops, t->ops->count_user(t->self, uid, from, to, n)); }
static inline int iot_tm_latest(struct iot_telemetry *t, int64_t dev, iot_tm_latest_fn fn, void *ctx) { IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops, t->ops->latest(t->self, dev, fn, ctx)); }
static inline int iot_tm_rollups(struct iot_telemetry *t, int64_t dev, const char *name, int64_t width, int64_t from, int64_t to, iot_tm_rollup_fn fn, void *ctx) { IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops, t->ops->rollups(t->self, dev, name, width, from, to, fn, ctx)); }
static inline int iot_tm_samples(struct iot_telemetry *t, int64_t dev, const char *name, int64_t from, int64_t to, iot_tm_sample_fn fn, void *ctx) { IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops, t->ops->samples(t->self, dev, name, from, to, fn, ctx)); }
static inline int iot_tm_catalog(struct iot_telemetry *t, int64_t dev, iot_tm_catalog_fn fn, void *ctx) { IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops, t->ops->catalog(t->self, dev, fn, ctx)); }
static inline int iot_tm_delete_range(struct iot_telemetry *t, int64_t dev, int64_t from, int64_t to, int64_t *n) { IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops, t->ops->delete_range(t->self, dev, from, to, n)); }
static inline int iot_tm_delete_device(struct iot_telemetry *t, int64_t dev) { IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops, t->ops->delete_device(t->self, dev)); }
static inline int iot_tm_delete_user(struct iot_telemetry *t, int64_t uid) { IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops, t->ops->delete_user(t->self, uid)); }
static inline int iot_tm_purge(struct iot_telemetry *t, int64_t raw_before, int64_t rollup_before, int64_t *n) { IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops, t->ops->purge(t->self, raw_before, rollup_before, n)); }
static inline int iot_tm_stats(struct iot_telemetry *t, struct iot_tm_stats *o) { IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops, t->ops->stats(t->self, o)); }
/* Version 2 slots, with fallbacks on version 1 ones (src/store/telemetry.c). */
int iot_tm_samples_typed(struct iot_telemetry *t, int64_t dev, const char *name, int64_t from,
                         int64_t to, iot_tm_typed_sample_fn fn, void *ctx);
int iot_tm_sample_edge(struct iot_telemetry *t, int64_t dev, const char *name, int64_t from,
                       int64_t to, bool last, struct iot_tm_sample *out);
/* What every backend's write_batch accepts (each refuses the whole batch
 * otherwise): IOT_EINVAL for a bad message (|ts| > IOT_TM_TS_LIMIT, no or
 * oversized data, too many points, a name iot_tm_name_valid refuses, a
 * non-finite number, an oversized string, an unknown type), IOT_ELIMIT
 * past IOT_TM_STORE_BATCH_MAX messages. */
int iot_tm_check_message(const struct iot_tm_message *m);
int iot_tm_check_batch(const struct iot_tm_message *msgs, size_t n);

/* Version 3 slots: IOT_OK doing nothing when the backend has no
 * set_retention; IOT_EINVAL (unsupported) without export_scan. */
int iot_tm_set_retention(struct iot_telemetry *t, int64_t raw_ms, int64_t rollup_ms);
int iot_tm_export_scan(struct iot_telemetry *t, int64_t after_device, int64_t after_ts,
                       int64_t after_seq, int64_t limit, iot_tm_export_fn fn, void *ctx);

/* On write_batch's "in the same commit" (appended note): a backend may
 * apply the derived rows — latest values, rollups, catalog, stats — after
 * write_batch has returned, provided that (1) they are recoverable from what
 * the batch's own commit made durable, so a crash loses none of them, and
 * (2) every read of them (and every delete, purge) that starts after
 * write_batch returned reflects the batch. Callers cannot tell the
 * difference. The SQLite store does this: it aggregates them in memory over
 * many batches and applies them a few times a second or before such a read
 * (the commit path in src/store/sqlite/telemetry_sqlite_int.h). */

/* (appended) The SQLite store goes further: write_batch appends the
 * batch's messages to a commit log of files beside the database and returns
 * once that record is written (fdatasynced when durable); both the messages
 * and their derived rows reach their tables in a later flush, a few times a
 * second (src/store/sqlite/telemetry_sqlite_int.h). Every read, delete
 * and purge flushes first, so callers still cannot tell the difference;
 * only tools reading the file with plain SQLite may not see the newest
 * ~100 ms of messages until the store flushes or closes. */

#endif
