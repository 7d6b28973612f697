/* tmcass_int.h — what the files of the Cassandra telemetry store share: the
 * store's state, its schema and statements, and the helpers every op uses.
 * The design (tables, partitioning, partial aggregates, TTLs) is described
 * in tmcass_schema.c and in docs/ARCHITECTURE.md "Telemetry on Cassandra".
 *
 * Files: telemetry_cassandra.c (ops table, open/close, ping, retention,
 * stats), tmcass_url.c (the URL), tmcass_schema.c (keyspace, tables,
 * migrations, statements), tmcass_exec.c (running statements: blocking
 * helpers, a group of concurrent requests, error mapping), tmcass_write.c
 * (write_batch), tmcass_agg.c (partial aggregates: combining and merging),
 * tmcass_read.c (history, latest, rollups, samples, catalog), tmcass_json.c
 * (a measurement out of a message's JSON),
 * tmcass_delete.c (delete_range, delete_device, delete_user). */
#ifndef IOT_STORE_CASSANDRA_TMCASS_INT_H
#define IOT_STORE_CASSANDRA_TMCASS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cql/cql_buf.h"
#include "cql/cql_session.h"
#include "cql/cql_types.h"
#include "store/telemetry.h"

/* ---- the URL --------------------------------------------------------------- */

#define TMC_KEYSPACE_MAX 48 /* Cassandra's limit */
#define TMC_HOSTS_MAX 1024

struct tmc_url {
    char hosts[TMC_HOSTS_MAX]; /* "host:port,host:port" */
    char user[128];
    char password[128];
    char keyspace[TMC_KEYSPACE_MAX + 1];
    char dc[64];           /* NetworkTopologyStrategy's data centre; "" = SimpleStrategy */
    int replication;       /* replication factor of a keyspace we create */
    uint16_t consistency;  /* of every read and write */
    uint32_t timeout_ms;   /* request timeout (retries included) */
};

/* Parses cassandra://[user:pass@]host[:port][,host[:port]…]/keyspace
 * [?replication=N&consistency=one|quorum|local_quorum|all&dc=NAME&timeout_ms=N].
 * IOT_EINVAL with a reason in err (never the password). */
int tmc_url_parse(const char *url, struct tmc_url *out, char *err, size_t err_size);

/* ---- time layout -------------------------------------------------------------- */

/* A raw partition holds one UTC day of a device (device_data) or of a
 * user (user_data). A device's rollups of a day live in the partition of
 * that day (span = day, the same key as its device_data rows); the
 * lifetime totals behind the catalog, the latest values and the units in
 * span TMC_SPAN_LIFETIME. */
#define TMC_SPAN_MS IOT_TM_DAY
#define TMC_SPAN_LIFETIME INT64_C(-1)
#define TMC_WIDTH_LIFETIME 0

static inline int64_t tmc_floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}
static inline int64_t tmc_day(int64_t ts) { return tmc_floor_div(ts, IOT_TM_DAY); }
static inline int64_t tmc_span(int64_t start) { return tmc_floor_div(start, TMC_SPAN_MS); }

static inline int64_t tmc_min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t tmc_max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* A cell of a row; a null one (an older row, a column never set) reads as 0. */
static inline int64_t tmc_cell_i64(struct cql_value v)
{
    int64_t x = 0;
    cql_decode_bigint(v, &x);
    return x;
}

static inline double tmc_cell_f64(struct cql_value v)
{
    double x = 0;
    cql_decode_double(v, &x);
    return x;
}

/* ---- statements ------------------------------------------------------------------ */

enum tmc_stmt {
    /* writes */
    TMC_INS_DEVICE_DATA,
    TMC_INS_USER_DATA,
    TMC_INS_DEVICE_DAY,
    TMC_INS_USER_DAY,
    TMC_INS_USER_DEVICE,
    TMC_INS_LATEST,
    TMC_DEL_LATEST_OLDER,
    TMC_INS_UNIT,
    TMC_INS_PARTIAL,
    TMC_INS_MSG_COUNT,
    TMC_INS_DEVICE_SEEN,
    /* reads */
    TMC_SEL_EXISTING,        /* which (ts, seq) of a device day exist */
    TMC_SEL_DEVICE_DAYS,
    TMC_SEL_USER_DAYS,
    TMC_SEL_DEVICE_PAGE,     /* a day of a device, newest first, below a cursor */
    TMC_SEL_DEVICE_PAGE_TO,  /* the same, up to an inclusive (ts, seq) */
    TMC_SEL_DEVICE_ASC,      /* a day of a device, oldest first, ts in [from, to) */
    TMC_SEL_DEVICE_DESC,     /* a day of a device, newest first, ts in [from, to) */
    TMC_SEL_USER_PAGE,
    TMC_SEL_USER_PAGE_TO,
    TMC_COUNT_USER_DAY,
    TMC_SEL_LATEST,
    TMC_SEL_UNITS,
    TMC_SEL_PARTIALS,        /* one name's buckets of one width in [from, to) */
    TMC_SEL_LIFETIME,        /* every name's lifetime rows */
    TMC_SEL_BUCKET,          /* every row of one bucket (merge, repair) */
    TMC_SEL_MSG_COUNTS,
    TMC_COUNT_DEVICES_SEEN,
    TMC_SEL_USER_DEVICES,
    TMC_SEL_DEVICE_RANGE_KEYS, /* (ts, seq, data) of a device day in [from, to] */
    /* deletes */
    TMC_DEL_DEVICE_DAY_RANGE,  /* device_data rows of a day with ts in [from, to] */
    TMC_DEL_USER_ROW,
    TMC_DEL_DEVICE_PARTITION,  /* a whole (device, day) partition */
    TMC_DEL_USER_PARTITION,
    TMC_DEL_DEVICE_DAYS,
    TMC_DEL_USER_DAYS,
    TMC_DEL_USER_DEVICES,
    TMC_DEL_USER_DEVICE,
    TMC_DEL_LATEST_ALL,
    TMC_DEL_LATEST_NAME_RANGE,
    TMC_DEL_UNITS,
    TMC_DEL_AGG_PARTITION,
    TMC_DEL_DEVICE_SEEN,
    /* merging partial aggregates (a conditional batch) */
    TMC_MERGE_INSERT,
    TMC_MERGE_UPDATE,
    TMC_MERGE_DELETE,
    /* reads and deletes (tmcass_read.c, tmcass_delete.c) */
    TMC_SEL_DEVICE_DAYS_ASC,   /* TMC_SEL_DEVICE_DAYS oldest first */
    TMC_SEL_LATEST_NAME,       /* (ts, seq) of one name's newest latest row */
    TMC_SEL_DAY_KEYS,          /* (ts, seq) of a whole device day */
    TMC_SEL_USER_DAY_KEYS,     /* (ts, seq, device_id) of a whole user day */
    TMC_DEL_UNIT,              /* one name's unit */
    TMC_DEL_DEVICE_ROW,        /* one device_data row */
    TMC_N_STMTS
};

/* The CQL text of each statement (tmcass_schema.c), prepared at open. */
extern const char *const tmc_stmt_text[TMC_N_STMTS];

#define TMC_PRUNE_SLOTS 4096

/* ---- the store ----------------------------------------------------------------- */

/* Facts written once per process: which (device, day), (user, day) and
 * (user, device) index rows exist already (a small open-addressing set). */
struct tmc_known {
    pthread_mutex_t lock;
    struct tmc_known_slot { uint8_t kind; int64_t a, b; } *slots;
    size_t cap, used;
};

struct tmc {
    struct cql_session *s;
    struct tmc_url url;
    const struct cql_prepared_stmt *ps[TMC_N_STMTS];

    int64_t raw_ttl_ms, rollup_ttl_ms; /* 0: keep forever */

    /* This process's writer id (random at open) and its commit counter:
     * the key of the partial aggregates each commit writes. */
    int64_t writer_id;
    atomic_int_fast64_t commit_seq;

    struct tmc_known known;

    /* Messages this writer stored per day, written as absolute values
     * (tmcass_write.c), under count_lock. */
    pthread_mutex_t count_lock;
    struct tmc_day_count { int64_t day; int64_t n; bool dirty; } *day_counts;
    size_t n_day_counts, cap_day_counts;
    /* Latest values written per (device, name) since its last prune
     * (tmcass_write.c), also under count_lock. */
    struct tmc_prune_slot { uint64_t hash; uint32_t writes; } prune[TMC_PRUNE_SLOTS];
    /* The average row size the last history page of a device (or user,
     * id negated - 1) met, to size the next page's first chunk
     * (tmcass_read.c), also under count_lock. */
    struct tmc_size_slot { int64_t id; int64_t avg; } row_size[TMC_PRUNE_SLOTS];

    /* The merger (tmcass_agg.c): buckets with partials to fold. */
    pthread_mutex_t merge_lock;
    pthread_cond_t merge_wake;
    pthread_t merger;
    bool merger_running, stopping;
    struct tmc_bucket_key *dirty;
    size_t n_dirty, cap_dirty;
};

/* One bucket of aggregated_data: (device, span) partition, then width,
 * name, start. */
struct tmc_bucket_key {
    int64_t device_id;
    int64_t span;
    int32_t width_h; /* width in hours: 1, 24, or 0 (lifetime) */
    char name[IOT_TM_NAME_MAX + 1];
    int64_t start;
    int64_t touched_ms; /* when this writer last wrote a partial of it */
    uint32_t partials;  /* rows noted since its last merge (tmc_merge_note adds them) */
};

/* An aggregate: of a bucket's partial, or of several combined. */
struct tmc_agg {
    int64_t count;   /* numeric samples (numbers, booleans) */
    double sum, min, max;
    int64_t ints, imin, imax;
    __int128 isum;   /* exact: no sum of int64 samples overflows it */
    int64_t samples; /* every sample, strings included */
    int64_t first_ts, last_ts;
};

void tmc_agg_add_value(struct tmc_agg *a, int64_t ts, const struct iot_tm_value *v);
void tmc_agg_merge(struct tmc_agg *into, const struct tmc_agg *from);

/* ---- running statements (tmcass_exec.c) --------------------------------------------- */

/* The IOT_E* for a CQL status: timeouts and overload IOT_ETIMEOUT or
 * IOT_EUNAVAILABLE (the API answers 503 + Retry-After), bad requests
 * IOT_EINTERNAL. */
int tmc_err(int cql_rc);

/* One prepared statement, blocking, at the store's consistency; *out (if
 * given) gets the reply to free with cql_reply_free. */
int tmc_exec(struct tmc *t, enum tmc_stmt st, const struct cql_buf *values,
             const struct cql_opts *opts, struct cql_reply **out);
/* Unprepared text (schema), blocking. */
int tmc_query(struct tmc *t, const char *cql, uint16_t consistency, struct cql_reply **out);

/* A group of requests sent at once over many streams and waited for
 * together: the result is the first failure, or IOT_OK once every one
 * succeeded. Each request's values are copied when it is added. */
struct tmc_group {
    pthread_mutex_t lock;
    pthread_cond_t done;
    size_t pending;
    int first_error;
    char error_text[256];
};
void tmc_group_init(struct tmc_group *g);
/* Adds a prepared statement (idempotent writes only: it may be retried). */
void tmc_group_exec(struct tmc *t, struct tmc_group *g, enum tmc_stmt st,
                    const struct cql_buf *values, int64_t timestamp_us);
void tmc_group_exec_slice(struct tmc *t, struct tmc_group *g, enum tmc_stmt st,
                          struct cql_slice values, int64_t timestamp_us);
/* Adds an UNLOGGED batch of items (prepared, values) — one partition's rows. */
void tmc_group_batch(struct tmc *t, struct tmc_group *g, const struct cql_batch_item *items,
                     size_t n, int64_t timestamp_us);
/* Waits for every request; returns the group's result and destroys it. */
int tmc_group_wait(struct tmc_group *g);

/* Pages of one read: calls fn for each row of every page until fn returns
 * non-zero or the rows run out. page_size 0: 1000. */
typedef int (*tmc_row_fn)(void *ctx, const struct cql_value *cells, size_t n_cells);
int tmc_select(struct tmc *t, enum tmc_stmt st, const struct cql_buf *values, int32_t page_size,
               tmc_row_fn fn, void *ctx);

/* The TTL in seconds that makes a row written now expire `keep_ms` after
 * `base_ms` (a message's ts, a bucket's end); 0 = no TTL (keep forever);
 * at least 1 (a row already past its life still lands, then expires). */
int32_t tmc_ttl(int64_t base_ms, int64_t keep_ms, int64_t now_ms);

/* ---- the known-facts set (telemetry_cassandra.c) ------------------------------------- */

enum { TMC_KNOWN_DEVICE_DAY = 1, TMC_KNOWN_USER_DAY, TMC_KNOWN_USER_DEVICE, TMC_KNOWN_DEVICE_SEEN };
/* True when (kind, a, b) is recorded already; else false (not recorded). */
bool tmc_known_has(struct tmc *t, uint8_t kind, int64_t a, int64_t b);
void tmc_known_add(struct tmc *t, uint8_t kind, int64_t a, int64_t b);
/* Forgets every fact about a device / a user (after a delete). */
void tmc_known_forget(struct tmc *t, uint8_t kind, int64_t a);

/* ---- the ops (one file each) ----------------------------------------------------------- */

int tmc_schema_apply(struct tmc *t);
int tmc_prepare_all(struct tmc *t);

int tmc_write_batch(void *self, const struct iot_tm_message *msgs, size_t n);

int tmc_query_device(void *self, int64_t device_id, const struct iot_tm_range *range,
                     iot_tm_record_fn fn, void *ctx);
int tmc_query_user(void *self, int64_t user_id, const struct iot_tm_range *range,
                   iot_tm_record_fn fn, void *ctx);
int tmc_count_user(void *self, int64_t user_id, int64_t from, int64_t to, int64_t *count);
int tmc_latest(void *self, int64_t device_id, iot_tm_latest_fn fn, void *ctx);
int tmc_rollups(void *self, int64_t device_id, const char *name, int64_t width, int64_t from,
                int64_t to, iot_tm_rollup_fn fn, void *ctx);
int tmc_samples(void *self, int64_t device_id, const char *name, int64_t from, int64_t to,
                iot_tm_sample_fn fn, void *ctx);
int tmc_samples_typed(void *self, int64_t device_id, const char *name, int64_t from, int64_t to,
                      iot_tm_typed_sample_fn fn, void *ctx);
int tmc_sample_edge(void *self, int64_t device_id, const char *name, int64_t from, int64_t to,
                    bool last, struct iot_tm_sample *out);
int tmc_catalog(void *self, int64_t device_id, iot_tm_catalog_fn fn, void *ctx);
int tmc_stats(void *self, struct iot_tm_stats *out);

int tmc_delete_range(void *self, int64_t device_id, int64_t from, int64_t to, int64_t *deleted);
int tmc_delete_device(void *self, int64_t device_id);
int tmc_delete_user(void *self, int64_t user_id);

/* Partial aggregates (tmcass_agg.c). */
/* Reads one bucket's rows (merged + partials) combined into *out;
 * *rows gets how many rows it read. */
int tmc_bucket_read(struct tmc *t, const struct tmc_bucket_key *k, struct tmc_agg *out,
                    size_t *rows);
/* Replaces every row of a bucket by one holding *agg (NULL: none), e.g.
 * after delete_range recomputed it. */
int tmc_bucket_replace(struct tmc *t, const struct tmc_bucket_key *k, const struct tmc_agg *agg);
/* Remembers that this writer wrote a partial of the bucket (for the merger). */
void tmc_merge_note(struct tmc *t, const struct tmc_bucket_key *k);
int tmc_merger_start(struct tmc *t);
void tmc_merger_stop(struct tmc *t);
/* Appends a partial row's values (the TMC_INS_PARTIAL bind order). */
void tmc_encode_partial(struct cql_buf *b, const struct tmc_bucket_key *k, int64_t writer,
                        int64_t seq, const struct tmc_agg *a, int32_t ttl_s);
/* Decodes one row of TMC_SEL_PARTIALS / TMC_SEL_BUCKET / TMC_SEL_LIFETIME
 * (the columns from `count` on, see tmc_stmt_text) into *a. */
int tmc_decode_agg(const struct cql_value *cells, struct tmc_agg *a);

/* Extracts one measurement from a message's data JSON: IOT_OK with *v
 * (strings point into a scratch buffer valid until the next call with it),
 * IOT_ENOTFOUND when the message does not hold it. */
struct tmc_json_scratch {
    char *buf;
    size_t cap;
};
int tmc_value_of(const char *data, size_t len, const char *name, struct iot_tm_value *v,
                 struct tmc_json_scratch *scratch);
/* The same from a parsed value (jansson's json_t; tmcass_json.c): IOT_ENOTFOUND
 * for null, an object or an array. */
struct json_t;
int tmc_json_value(const struct json_t *j, struct iot_tm_value *v,
                   struct tmc_json_scratch *scratch);
/* A message's data parsed (free with json_decref), NULL unless an object. */
struct json_t *tmc_json_parse(const char *data, size_t len);
void tmc_json_scratch_free(struct tmc_json_scratch *s);

/* ---- walking raw partitions (tmcass_read.c, shared with tmcass_delete.c) ------------ */

static inline int64_t tmc_day_start(int64_t day) { return day * IOT_TM_DAY; }

/* Called per day partition: 0 goes on, > 0 stops (IOT_OK), < 0 stops with
 * that error. user_id is device_days' (0 for user days). */
typedef int (*tmc_day_fn)(void *ctx, int64_t day, int64_t user_id);
/* The device's days in [day_lo, day_hi] from device_days, oldest or newest
 * first, paged. */
int tmc_each_device_day(struct tmc *t, int64_t device_id, int64_t day_lo, int64_t day_hi,
                        bool oldest_first, tmc_day_fn fn, void *ctx);
/* The user's days in [day_lo, day_hi] from user_days, newest first. */
int tmc_each_user_day(struct tmc *t, int64_t user_id, int64_t day_lo, int64_t day_hi,
                      tmc_day_fn fn, void *ctx);

/* One stored value of a measurement found in the raw rows. */
struct tmc_hit {
    int64_t ts, seq;
    struct iot_tm_value v; /* a string points into the scratch given */
};
/* The oldest (newest = false) or newest value of `name` with ts in
 * [from, to) — numbers and booleans only, or any type — walking the
 * device's days from that end and stopping at the first; IOT_ENOTFOUND
 * when there is none. */
int tmc_find_sample(struct tmc *t, int64_t device_id, const char *name, int64_t from, int64_t to,
                    bool newest, bool numeric_only, struct tmc_hit *hit,
                    struct tmc_json_scratch *scratch);

#endif
