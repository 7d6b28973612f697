/* tmcass_read.c — the reads of the Cassandra telemetry store: history pages
 * (query_device, query_user), count_user, latest, rollups, samples,
 * sample_edge and the catalog, with the semantics of the SQLite store
 * (src/store/sqlite/telemetry_sqlite_read.c).
 *
 * Raw reads walk the day partitions the index tables list (device_days,
 * user_days) instead of probing empty days. A history page reads each day
 * newest first in chunks that continue after the last row delivered
 * (keyset, never an offset); a chunk asks only for the rows still wanted,
 * and, once row sizes are known, only for as many as the byte budget still
 * allows, so a page of large messages never materialises `limit` of them.
 * Rows reach the caller's callback straight from the reply that holds them,
 * on the caller's thread: a callback may call back into the store.
 *
 * Derived reads: latest takes each name's newest row of latest_data;
 * rollups combine the partial aggregates of each bucket (tmcass_agg.c);
 * the catalog joins latest_data, the units and the lifetime totals, all
 * three clustered by name, as one streaming merge. */
#include <stdlib.h>
#include <string.h>

#include "cql/cql_future.h"
#include "store/cassandra/tmcass_int.h"
#include "util/err.h"

enum {
    DAYS_PAGE = 200,          /* index rows per page of device_days / user_days */
    SCAN_PAGE = 1000,         /* raw rows per page of a samples scan */
    FIND_PAGE = 200,          /* raw rows per page of a search that stops at the first hit */
    QUERY_FIRST_ROWS = 32,    /* a history page's first chunk, row sizes unknown yet */
    QUERY_ASSUMED_ROW = 2 * IOT_TM_DATA_JSON_MAX, /* a row's bytes until some are seen */
    QUERY_CHUNK_ROWS = 1000,
    QUERY_CHUNK_BYTES = 256 << 10, /* a reply frame stays small: workers keep what they touched */
    COUNT_PARALLEL = 32,      /* COUNT(*) of user days in flight at once */
    DERIVED_PAGE = 1000,      /* rows of latest_data, units, partial aggregates */
    MERGE_HINT_ROWS = 16,     /* a bucket read with more rows is handed to the merger */
    CLAMP_SPANS = 4,          /* wider rollup ranges are first cut to the name's lifetime */
    MAX_CELLS = 24,
};

/* false for a null cell. */
static bool cell_text(struct cql_value v, const char **p, size_t *len)
{
    struct cql_str s;
    if (cql_decode_text(v, &s) != CQL_OK) {
        *p = NULL;
        *len = 0;
        return false;
    }
    *p = s.ptr ? s.ptr : "";
    *len = s.len;
    return true;
}

/* Copies a name cell (NUL-terminated); false when null or too long. */
static bool cell_name(struct cql_value v, char out[IOT_TM_NAME_MAX + 1])
{
    const char *p;
    size_t len;
    if (!cell_text(v, &p, &len) || len == 0 || len > IOT_TM_NAME_MAX)
        return false;
    memcpy(out, p, len);
    out[len] = '\0';
    return true;
}

/* ---- day partitions ------------------------------------------------------------------ */

struct day_walk {
    tmc_day_fn fn;
    void *ctx;
    bool with_user;
    int rc;
};

static int on_day_row(void *ctx, const struct cql_value *c, size_t n)
{
    struct day_walk *w = ctx;
    int64_t day;
    if (n < 1 || cql_decode_bigint(c[0], &day) != CQL_OK)
        return 0;
    int r = w->fn(w->ctx, day, w->with_user && n >= 2 ? tmc_cell_i64(c[1]) : 0);
    if (r < 0)
        w->rc = r;
    return r != 0;
}

static int each_day(struct tmc *t, enum tmc_stmt st, int64_t id, int64_t day_lo, int64_t day_hi,
                    bool with_user, tmc_day_fn fn, void *ctx)
{
    if (day_lo > day_hi)
        return IOT_OK;
    struct cql_buf v = {0};
    cql_encode_bigint(&v, id);
    cql_encode_bigint(&v, day_lo);
    cql_encode_bigint(&v, day_hi);
    struct day_walk w = {.fn = fn, .ctx = ctx, .with_user = with_user};
    int rc = tmc_select(t, st, &v, DAYS_PAGE, on_day_row, &w);
    cql_buf_free(&v);
    return rc ? rc : w.rc;
}

int tmc_each_device_day(struct tmc *t, int64_t device_id, int64_t day_lo, int64_t day_hi,
                        bool oldest_first, tmc_day_fn fn, void *ctx)
{
    return each_day(t, oldest_first ? TMC_SEL_DEVICE_DAYS_ASC : TMC_SEL_DEVICE_DAYS, device_id,
                    day_lo, day_hi, true, fn, ctx);
}

int tmc_each_user_day(struct tmc *t, int64_t user_id, int64_t day_lo, int64_t day_hi,
                      tmc_day_fn fn, void *ctx)
{
    return each_day(t, TMC_SEL_USER_DAYS, user_id, day_lo, day_hi, false, fn, ctx);
}

/* ---- query_device / query_user ---------------------------------------------------------- */

/* One history page being read. Rows come newest first below the cursor:
 * (c_ts, c_seq[, c_dev]) exclusive, or, before the first row when the
 * caller's cursor lies above `to`, up to (to, MAX[, MAX]) inclusive. */
struct qscan {
    struct tmc *t;
    bool user;
    int64_t id, from, to;
    int64_t left, budget; /* rows and bytes still wanted (budget INT64_MAX: none) */
    int64_t c_ts, c_seq, c_dev;
    bool top_inclusive;
    int64_t seen_rows, seen_bytes; /* sizes the chunks */
    int64_t hint_avg;              /* the last page's average row size, 0: none */
    iot_tm_record_fn fn;
    void *ctx;
    bool done;
};

/* Rows to ask for next: what is still wanted, no more than the byte budget
 * (or a chunk's bytes) allows at the average size seen so far. */
static int64_t chunk_rows(const struct qscan *q)
{
    int64_t want = tmc_min64(q->left, QUERY_CHUNK_ROWS);
    int64_t bytes = tmc_min64(q->budget, QUERY_CHUNK_BYTES);
    int64_t est;
    if (q->seen_rows) {
        int64_t avg = tmc_max64(1, q->seen_bytes / q->seen_rows);
        est = (bytes + avg - 1) / avg;
    } else if (q->hint_avg) {
        est = tmc_max64(1, bytes / (2 * q->hint_avg));
    } else { /* nothing known: as if rows were as large as a message may be */
        est = tmc_min64(QUERY_FIRST_ROWS, tmc_max64(1, bytes / QUERY_ASSUMED_ROW));
    }
    return tmc_max64(1, tmc_min64(want, est));
}

static void deliver_record(struct qscan *q, const struct cql_value *c)
{
    int di = q->user ? 3 : 2; /* ts, seq[, device_id], data, meta */
    struct iot_tm_record r = {
        .ts = tmc_cell_i64(c[0]),
        .seq = tmc_cell_i64(c[1]),
        .device_id = q->user ? tmc_cell_i64(c[2]) : q->id,
    };
    if (!cell_text(c[di], &r.data_json, &r.data_len))
        r.data_json = "";
    cell_text(c[di + 1], &r.meta_json, &r.meta_len); /* NULL stays NULL */
    q->c_ts = r.ts;
    q->c_seq = r.seq;
    q->c_dev = r.device_id;
    q->top_inclusive = false;
    int64_t bytes = (int64_t)(r.data_len + r.meta_len);
    q->left--;
    q->budget -= bytes;
    q->seen_rows++;
    q->seen_bytes += bytes;
    if (q->fn(q->ctx, &r) != 0 || q->left <= 0 || q->budget <= 0)
        q->done = true;
}

/* One chunk of one day; *day_done when the day has no more rows. */
static int query_chunk(struct qscan *q, int64_t day, bool *day_done)
{
    int64_t want = chunk_rows(q);
    struct cql_buf v = {0};
    cql_encode_bigint(&v, q->id);
    cql_encode_bigint(&v, day);
    cql_encode_timestamp(&v, q->from);
    cql_encode_bigint(&v, INT64_MIN);
    if (q->user)
        cql_encode_bigint(&v, INT64_MIN);
    cql_encode_timestamp(&v, q->top_inclusive ? q->to : q->c_ts);
    cql_encode_bigint(&v, q->top_inclusive ? INT64_MAX : q->c_seq);
    if (q->user)
        cql_encode_bigint(&v, q->top_inclusive ? INT64_MAX : q->c_dev);
    cql_encode_int(&v, (int32_t)want);
    enum tmc_stmt st = q->user ? (q->top_inclusive ? TMC_SEL_USER_PAGE_TO : TMC_SEL_USER_PAGE)
                               : (q->top_inclusive ? TMC_SEL_DEVICE_PAGE_TO : TMC_SEL_DEVICE_PAGE);
    struct cql_opts o = {.page_size = (int32_t)want};
    struct cql_reply *reply = NULL;
    int rc = tmc_exec(q->t, st, &v, &o, &reply);
    cql_buf_free(&v);
    const struct cql_rows *rows = rc == IOT_OK ? cql_reply_rows(reply) : NULL;
    if (rc == IOT_OK && !rows)
        rc = IOT_EINTERNAL;
    int64_t got = 0;
    if (rc == IOT_OK) {
        struct cql_row_iter it = cql_rows_iter(rows);
        struct cql_value c[MAX_CELLS];
        while (!q->done && cql_rows_next(&it, c, MAX_CELLS)) {
            got++;
            deliver_record(q, c);
        }
    }
    cql_reply_free(reply);
    *day_done = got < want;
    return rc;
}

static int query_day(void *ctx, int64_t day, int64_t user_id)
{
    (void)user_id;
    struct qscan *q = ctx;
    bool day_done = false;
    while (!q->done && !day_done) {
        int rc = query_chunk(q, day, &day_done);
        if (rc)
            return rc;
    }
    return q->done ? 1 : 0;
}

static int run_query(struct tmc *t, bool user, int64_t id, const struct iot_tm_range *range,
                     iot_tm_record_fn fn, void *ctx)
{
    if (!range || !fn || range->limit < 0 || range->max_bytes < 0)
        return IOT_EINVAL;
    int64_t top = tmc_min64(range->to, range->before_ts);
    if (range->limit == 0 || range->from > top)
        return IOT_OK;
    /* The caller's cursor is (ts, seq): device_id INT64_MIN makes
     * (ts, seq, dev) < (bts, bseq, MIN) mean exactly (ts, seq) < (bts, bseq). */
    struct qscan q = {.t = t, .user = user, .id = id, .from = range->from, .to = range->to,
                      .left = range->limit,
                      .budget = range->max_bytes > 0 ? range->max_bytes : INT64_MAX,
                      .c_ts = range->before_ts, .c_seq = range->before_seq, .c_dev = INT64_MIN,
                      .top_inclusive = range->before_ts > range->to, .fn = fn, .ctx = ctx};
    /* The first chunk's size follows this device's (user's) last page:
     * one round trip for a page of small rows, and still no more than
     * the budget allows for large ones. */
    int64_t key = user ? -id - 1 : id;
    struct tmc_size_slot *slot = &t->row_size[(uint64_t)key % TMC_PRUNE_SLOTS];
    pthread_mutex_lock(&t->count_lock);
    q.hint_avg = slot->id == key ? slot->avg : 0;
    pthread_mutex_unlock(&t->count_lock);
    int64_t lo = tmc_day(range->from), hi = tmc_day(top);
    int rc = user ? tmc_each_user_day(t, id, lo, hi, query_day, &q)
                  : tmc_each_device_day(t, id, lo, hi, false, query_day, &q);
    if (q.seen_rows) {
        pthread_mutex_lock(&t->count_lock);
        *slot = (struct tmc_size_slot){key, tmc_max64(1, q.seen_bytes / q.seen_rows)};
        pthread_mutex_unlock(&t->count_lock);
    }
    return rc;
}

int tmc_query_device(void *self, int64_t device_id, const struct iot_tm_range *range,
                     iot_tm_record_fn fn, void *ctx)
{
    return run_query(self, false, device_id, range, fn, ctx);
}

int tmc_query_user(void *self, int64_t user_id, const struct iot_tm_range *range,
                   iot_tm_record_fn fn, void *ctx)
{
    return run_query(self, true, user_id, range, fn, ctx);
}

/* ---- count_user ------------------------------------------------------------------------ */

struct count_walk {
    struct tmc *t;
    int64_t user_id, from, to;
    int64_t days[COUNT_PARALLEL];
    size_t n;
    int64_t total;
};

/* Counts the collected days, all in flight at once. */
static int count_flush(struct count_walk *w)
{
    struct cql_future *f[COUNT_PARALLEL];
    struct cql_opts o = {.idempotent = true};
    for (size_t i = 0; i < w->n; i++) {
        struct cql_buf v = {0};
        cql_encode_bigint(&v, w->user_id);
        cql_encode_bigint(&v, w->days[i]);
        cql_encode_timestamp(&v, w->from);
        cql_encode_timestamp(&v, w->to);
        f[i] = cql_buf_error(&v) ? NULL
                                 : cql_session_execute_async(w->t->s, w->t->ps[TMC_COUNT_USER_DAY],
                                                             (struct cql_slice){v.data, v.len},
                                                             w->t->url.consistency, &o);
        cql_buf_free(&v);
    }
    int rc = IOT_OK;
    for (size_t i = 0; i < w->n; i++) {
        struct cql_reply *reply = NULL;
        int r = f[i] ? tmc_err(cql_future_get(f[i], &reply)) : IOT_ENOMEM;
        const struct cql_rows *rows = r == IOT_OK ? cql_reply_rows(reply) : NULL;
        if (r == IOT_OK && !rows)
            r = IOT_EINTERNAL;
        if (r == IOT_OK) {
            struct cql_row_iter it = cql_rows_iter(rows);
            struct cql_value cell;
            if (cql_rows_next(&it, &cell, 1))
                w->total += tmc_cell_i64(cell);
        }
        if (rc == IOT_OK)
            rc = r;
        cql_reply_free(reply);
        cql_future_free(f[i]);
    }
    w->n = 0;
    return rc;
}

static int count_day(void *ctx, int64_t day, int64_t user_id)
{
    (void)user_id;
    struct count_walk *w = ctx;
    w->days[w->n++] = day;
    return w->n == COUNT_PARALLEL ? count_flush(w) : 0;
}

int tmc_count_user(void *self, int64_t user_id, int64_t from, int64_t to, int64_t *count)
{
    struct tmc *t = self;
    if (!count)
        return IOT_EINVAL;
    *count = 0;
    if (from > to)
        return IOT_OK;
    struct count_walk w = {.t = t, .user_id = user_id, .from = from, .to = to};
    int rc = tmc_each_user_day(t, user_id, tmc_day(from), tmc_day(to), count_day, &w);
    if (rc == IOT_OK && w.n)
        rc = count_flush(&w);
    if (rc == IOT_OK)
        *count = w.total;
    return rc;
}

/* ---- latest ---------------------------------------------------------------------------- */

/* A latest_data row's value: columns type, num, ival, is_int, str (as
 * tmcass_write.c writes them). false for an unknown type. */
static bool latest_value(const struct cql_value *c, struct iot_tm_value *v)
{
    int8_t type = 0;
    double num = 0;
    memset(v, 0, sizeof *v);
    cql_decode_tinyint(c[0], &type);
    cql_decode_double(c[1], &num);
    switch (type) {
    case IOT_TM_NUMBER: {
        bool is_int = false;
        int64_t i;
        v->type = IOT_TM_NUMBER;
        v->num = num;
        cql_decode_boolean(c[3], &is_int);
        if (is_int && cql_decode_bigint(c[2], &i) == CQL_OK) {
            v->is_int = true;
            v->i = i;
        }
        return true;
    }
    case IOT_TM_BOOL:
        v->type = IOT_TM_BOOL;
        v->boolean = num != 0.0;
        return true;
    case IOT_TM_STRING:
        v->type = IOT_TM_STRING;
        if (!cell_text(c[4], &v->str, &v->str_len))
            v->str = "";
        return true;
    default: return false;
    }
}

struct latest_walk {
    char name[IOT_TM_NAME_MAX + 1]; /* the last name delivered */
    iot_tm_latest_fn fn;
    void *ctx;
};

/* Columns: name, ts, seq, type, num, ival, is_int, str; by name, newest
 * first within a name: the first row of each name is its latest value. */
static int on_latest_row(void *ctx, const struct cql_value *c, size_t n)
{
    struct latest_walk *w = ctx;
    char name[IOT_TM_NAME_MAX + 1];
    if (n < 8 || !cell_name(c[0], name) || strcmp(name, w->name) == 0)
        return 0;
    memcpy(w->name, name, sizeof name);
    struct iot_tm_latest l = {.name = w->name, .ts = tmc_cell_i64(c[1])};
    if (!latest_value(c + 3, &l.value))
        return 0;
    return w->fn(w->ctx, &l) != 0;
}

int tmc_latest(void *self, int64_t device_id, iot_tm_latest_fn fn, void *ctx)
{
    struct tmc *t = self;
    if (!fn)
        return IOT_EINVAL;
    struct latest_walk w = {.fn = fn, .ctx = ctx};
    struct cql_buf v = {0};
    cql_encode_bigint(&v, device_id);
    cql_encode_bigint(&v, TMC_SPAN_LIFETIME);
    int rc = tmc_select(t, TMC_SEL_LATEST, &v, DERIVED_PAGE, on_latest_row, &w);
    cql_buf_free(&v);
    return rc;
}

/* ---- rollups --------------------------------------------------------------------------- */

struct rollup_walk {
    struct tmc *t;
    struct tmc_bucket_key k; /* start: of the bucket being combined */
    int64_t width;
    bool open;
    struct tmc_agg agg;
    size_t rows;
    iot_tm_rollup_fn fn;
    void *ctx;
    bool stopped;
    int rc;
};

static void emit_rollup(struct rollup_walk *w)
{
    const struct tmc_agg *a = &w->agg;
    bool exact = a->isum >= INT64_MIN && a->isum <= INT64_MAX;
    struct iot_tm_rollup r = {.start = w->k.start, .width = w->width, .count = a->count,
                              .sum = a->sum, .min = a->min, .max = a->max, .ints = a->ints,
                              .isum = exact ? (int64_t)a->isum : 0,
                              .imin = a->ints ? a->imin : 0, .imax = a->ints ? a->imax : 0,
                              .isum_exact = exact};
    w->stopped = w->fn(w->ctx, &r) != 0;
}

/* Ends the bucket being combined: emitted when it holds numeric samples
 * (a repaired bucket may be an empty merged row); one read as many rows
 * is worth a fold by the merger. */
static void rollup_flush(struct rollup_walk *w)
{
    if (!w->open)
        return;
    w->open = false;
    if (w->rows > MERGE_HINT_ROWS) {
        w->k.partials = (uint32_t)w->rows;
        tmc_merge_note(w->t, &w->k);
    }
    if (w->agg.count > 0)
        emit_rollup(w);
}

/* Columns: name, start, writer, seq, then the aggregate; by start. */
static int on_partial_row(void *ctx, const struct cql_value *c, size_t n)
{
    struct rollup_walk *w = ctx;
    if (n < 16)
        return 0;
    int64_t start = tmc_cell_i64(c[1]);
    if (w->open && start != w->k.start)
        rollup_flush(w);
    if (w->stopped)
        return 1;
    if (!w->open) {
        w->open = true;
        w->k.start = start;
        w->rows = 0;
        memset(&w->agg, 0, sizeof w->agg);
    }
    struct tmc_agg part;
    int rc = tmc_decode_agg(c + 4, &part);
    if (rc) {
        w->rc = rc;
        return 1;
    }
    tmc_agg_merge(&w->agg, &part);
    w->rows++;
    return 0;
}

/* Cuts [*lo, *hi) to the buckets between the name's first and last sample
 * (its lifetime totals); false when it has none. */
static int clamp_to_lifetime(struct tmc *t, int64_t device_id, const char *name, int64_t width,
                             int64_t *lo, int64_t *hi, bool *any)
{
    struct tmc_bucket_key k = {.device_id = device_id, .span = TMC_SPAN_LIFETIME,
                               .width_h = TMC_WIDTH_LIFETIME};
    memcpy(k.name, name, strlen(name) + 1);
    struct tmc_agg life;
    int rc = tmc_bucket_read(t, &k, &life, NULL);
    *any = rc == IOT_OK && life.samples > 0;
    if (*any) {
        *lo = tmc_max64(*lo, tmc_floor_div(life.first_ts, width) * width);
        *hi = tmc_min64(*hi, tmc_floor_div(life.last_ts, width) * width + 1);
    }
    return rc;
}

int tmc_rollups(void *self, int64_t device_id, const char *name, int64_t width, int64_t from,
                int64_t to, iot_tm_rollup_fn fn, void *ctx)
{
    struct tmc *t = self;
    if (!fn || !(name && iot_tm_name_valid(name)) || (width != IOT_TM_HOUR && width != IOT_TM_DAY))
        return IOT_EINVAL;
    int64_t lo = from, hi = to;
    if (lo >= hi)
        return IOT_OK;
    if (tmc_span(hi - 1) - tmc_span(lo) >= CLAMP_SPANS) {
        bool any;
        int rc = clamp_to_lifetime(t, device_id, name, width, &lo, &hi, &any);
        if (rc || !any || lo >= hi)
            return rc;
    }
    struct rollup_walk w = {.t = t, .width = width, .fn = fn, .ctx = ctx,
                            .k = {.device_id = device_id, .width_h = (int32_t)(width / IOT_TM_HOUR)}};
    memcpy(w.k.name, name, strlen(name) + 1);
    int rc = IOT_OK;
    for (int64_t span = tmc_span(lo); span <= tmc_span(hi - 1) && rc == IOT_OK; span++) {
        w.k.span = span;
        struct cql_buf v = {0};
        cql_encode_bigint(&v, device_id);
        cql_encode_bigint(&v, span);
        cql_encode_int(&v, w.k.width_h);
        cql_encode_text(&v, name, strlen(name));
        cql_encode_timestamp(&v, lo);
        cql_encode_timestamp(&v, hi);
        rc = tmc_select(t, TMC_SEL_PARTIALS, &v, DERIVED_PAGE, on_partial_row, &w);
        cql_buf_free(&v);
        if (rc == IOT_OK)
            rc = w.rc;
        if (rc == IOT_OK)
            rollup_flush(&w);
        if (w.stopped)
            break;
    }
    return rc;
}

/* ---- samples and searches in the raw rows ---------------------------------------------- */

/* A walk over the raw rows of one measurement with ts in [from, to), day
 * by day: delivering every numeric sample, or stopping at the first hit. */
struct raw_walk {
    struct tmc *t;
    int64_t device_id;
    const char *name;
    int64_t from, to;
    bool newest_first;
    bool numeric_only;
    int32_t page;
    iot_tm_sample_fn plain;
    iot_tm_typed_sample_fn typed;
    void *ctx;
    struct tmc_hit *hit; /* a search: the first match goes here */
    struct tmc_json_scratch *scratch;
    bool done;
    int rc;
};

static struct iot_tm_sample sample_of(int64_t ts, const struct iot_tm_value *v)
{
    struct iot_tm_sample s = {.ts = ts};
    if (v->type == IOT_TM_BOOL) { /* as SQLite's ->> gives it: the integer 0 or 1 */
        s.num = v->boolean ? 1.0 : 0.0;
        s.is_int = true;
        s.i = v->boolean ? 1 : 0;
    } else {
        s.num = v->num;
        s.is_int = v->is_int;
        s.i = v->is_int ? v->i : 0;
    }
    return s;
}

/* Columns: ts, seq, data. */
static int on_raw_row(void *ctx, const struct cql_value *c, size_t n)
{
    struct raw_walk *w = ctx;
    const char *data;
    size_t len;
    if (n < 3 || !cell_text(c[2], &data, &len))
        return 0;
    struct iot_tm_value v;
    int rc = tmc_value_of(data, len, w->name, &v, w->scratch);
    if (rc == IOT_ENOMEM) {
        w->rc = rc;
        return 1;
    }
    if (rc || (w->numeric_only && v.type == IOT_TM_STRING))
        return 0;
    int64_t ts = tmc_cell_i64(c[0]);
    if (w->hit) {
        *w->hit = (struct tmc_hit){.ts = ts, .seq = tmc_cell_i64(c[1]), .v = v};
        w->done = true;
    } else if (w->typed) {
        struct iot_tm_sample s = sample_of(ts, &v);
        w->done = w->typed(w->ctx, &s) != 0;
    } else {
        w->done = w->plain(w->ctx, ts, sample_of(ts, &v).num) != 0;
    }
    return w->done;
}

static int raw_day(void *ctx, int64_t day, int64_t user_id)
{
    (void)user_id;
    struct raw_walk *w = ctx;
    struct cql_buf v = {0};
    cql_encode_bigint(&v, w->device_id);
    cql_encode_bigint(&v, day);
    cql_encode_timestamp(&v, tmc_max64(w->from, tmc_day_start(day)));
    cql_encode_timestamp(&v, tmc_min64(w->to, tmc_day_start(day + 1)));
    int rc = tmc_select(w->t, w->newest_first ? TMC_SEL_DEVICE_DESC : TMC_SEL_DEVICE_ASC, &v,
                        w->page, on_raw_row, w);
    cql_buf_free(&v);
    if (rc == IOT_OK)
        rc = w->rc;
    return rc ? rc : w->done;
}

static int raw_walk_run(struct raw_walk *w)
{
    if (w->from >= w->to)
        return IOT_OK;
    return tmc_each_device_day(w->t, w->device_id, tmc_day(w->from), tmc_day(w->to - 1),
                               !w->newest_first, raw_day, w);
}

static int samples_walk(struct tmc *t, int64_t device_id, const char *name, int64_t from,
                        int64_t to, iot_tm_sample_fn plain, iot_tm_typed_sample_fn typed,
                        void *ctx)
{
    if ((!plain && !typed) || !(name && iot_tm_name_valid(name)))
        return IOT_EINVAL;
    struct tmc_json_scratch scratch = {0};
    struct raw_walk w = {.t = t, .device_id = device_id, .name = name, .from = from, .to = to,
                         .numeric_only = true, .page = SCAN_PAGE, .plain = plain, .typed = typed,
                         .ctx = ctx, .scratch = &scratch};
    int rc = raw_walk_run(&w);
    tmc_json_scratch_free(&scratch);
    return rc;
}

int tmc_samples(void *self, int64_t device_id, const char *name, int64_t from, int64_t to,
                iot_tm_sample_fn fn, void *ctx)
{
    return fn ? samples_walk(self, device_id, name, from, to, fn, NULL, ctx) : IOT_EINVAL;
}

int tmc_samples_typed(void *self, int64_t device_id, const char *name, int64_t from, int64_t to,
                      iot_tm_typed_sample_fn fn, void *ctx)
{
    return fn ? samples_walk(self, device_id, name, from, to, NULL, fn, ctx) : IOT_EINVAL;
}

int tmc_find_sample(struct tmc *t, int64_t device_id, const char *name, int64_t from, int64_t to,
                    bool newest, bool numeric_only, struct tmc_hit *hit,
                    struct tmc_json_scratch *scratch)
{
    struct raw_walk w = {.t = t, .device_id = device_id, .name = name, .from = from, .to = to,
                         .newest_first = newest, .numeric_only = numeric_only,
                         .page = FIND_PAGE, .hit = hit, .scratch = scratch};
    int rc = raw_walk_run(&w);
    return rc ? rc : w.done ? IOT_OK : IOT_ENOTFOUND;
}

/* The raw rows are the truth (rollups may expire before them, or lag a
 * repair): the days of [from, to) are walked from the asked end and the
 * walk stops at the first numeric value. */
int tmc_sample_edge(void *self, int64_t device_id, const char *name, int64_t from, int64_t to,
                    bool last, struct iot_tm_sample *out)
{
    struct tmc *t = self;
    if (!out || !(name && iot_tm_name_valid(name)))
        return IOT_EINVAL;
    struct tmc_json_scratch scratch = {0};
    struct tmc_hit hit;
    int rc = tmc_find_sample(t, device_id, name, from, to, last, true, &hit, &scratch);
    if (rc == IOT_OK)
        *out = sample_of(hit.ts, &hit.v);
    tmc_json_scratch_free(&scratch);
    return rc;
}

/* ---- catalog ----------------------------------------------------------------------------- */

/* The rows of one read, row by row across pages: several can be merged. */
struct cursor {
    struct tmc *t;
    struct cql_reply *page;
    struct cql_row_iter it;
    struct cql_value c[MAX_CELLS];
    bool has_row;
    int rc;
};

static void cursor_next(struct cursor *k)
{
    k->has_row = false;
    while (k->rc == IOT_OK) {
        if (cql_rows_next(&k->it, k->c, MAX_CELLS)) {
            k->has_row = true;
            return;
        }
        if (!cql_reply_has_more_pages(k->page))
            return;
        struct cql_reply *next = NULL;
        int crc = cql_session_next_page_sync(k->t->s, k->page, &next);
        cql_reply_free(k->page);
        k->page = next;
        k->rc = tmc_err(crc);
        const struct cql_rows *rows = k->rc == IOT_OK ? cql_reply_rows(next) : NULL;
        if (k->rc == IOT_OK && !rows)
            k->rc = IOT_EINTERNAL;
        if (rows)
            k->it = cql_rows_iter(rows);
    }
}

static void cursor_open(struct cursor *k, struct tmc *t, enum tmc_stmt st, struct cql_buf *v)
{
    memset(k, 0, sizeof *k);
    k->t = t;
    struct cql_opts o = {.page_size = DERIVED_PAGE};
    k->rc = tmc_exec(t, st, v, &o, &k->page);
    const struct cql_rows *rows = k->rc == IOT_OK ? cql_reply_rows(k->page) : NULL;
    if (k->rc == IOT_OK && !rows)
        k->rc = IOT_EINTERNAL;
    if (rows)
        k->it = cql_rows_iter(rows);
    cursor_next(k);
}

static void cursor_close(struct cursor *k)
{
    cql_reply_free(k->page);
    k->page = NULL;
}

/* Orders a name cell against a name as Cassandra orders text: bytes. */
static int cmp_name(struct cql_value cell, const char *name)
{
    const char *p;
    size_t len, n = strlen(name);
    if (!cell_text(cell, &p, &len))
        return -1;
    int c = memcmp(p, name, len < n ? len : n);
    return c ? c : (len > n) - (len < n);
}

/* Moves k past the rows whose name (column 0) sorts before `name`. */
static void cursor_skip_to(struct cursor *k, const char *name)
{
    while (k->has_row && cmp_name(k->c[0], name) < 0)
        cursor_next(k);
}

struct catalog_join {
    struct cursor latest, units, life;
};

/* The unit of `name` (units: name, unit), "" when none. */
static void join_unit(struct catalog_join *j, const char *name, char *unit, size_t cap)
{
    unit[0] = '\0';
    cursor_skip_to(&j->units, name);
    const char *p;
    size_t len;
    if (j->units.has_row && cmp_name(j->units.c[0], name) == 0 &&
        cell_text(j->units.c[1], &p, &len)) {
        len = len < cap - 1 ? len : cap - 1;
        memcpy(unit, p, len);
        unit[len] = '\0';
    }
}

/* The lifetime totals of `name` (name, start, writer, seq, aggregate): its
 * rows combined. */
static int join_lifetime(struct catalog_join *j, const char *name, struct tmc_agg *out)
{
    memset(out, 0, sizeof *out);
    cursor_skip_to(&j->life, name);
    while (j->life.has_row && cmp_name(j->life.c[0], name) == 0) {
        struct tmc_agg part;
        int rc = tmc_decode_agg(j->life.c + 4, &part);
        if (rc)
            return rc;
        tmc_agg_merge(out, &part);
        cursor_next(&j->life);
    }
    return IOT_OK;
}

static int catalog_join_run(struct catalog_join *j, iot_tm_catalog_fn fn, void *ctx)
{
    char prev[IOT_TM_NAME_MAX + 1] = "", name[IOT_TM_NAME_MAX + 1], unit[256];
    for (; j->latest.has_row; cursor_next(&j->latest)) {
        int8_t type = 0;
        if (!cell_name(j->latest.c[0], name) || strcmp(name, prev) == 0)
            continue; /* not the newest row of its name */
        memcpy(prev, name, sizeof name);
        cql_decode_tinyint(j->latest.c[3], &type);
        join_unit(j, name, unit, sizeof unit);
        struct tmc_agg life;
        int rc = join_lifetime(j, name, &life);
        if (rc == IOT_OK)
            rc = j->units.rc ? j->units.rc : j->life.rc;
        if (rc)
            return rc;
        struct iot_tm_catalog_entry e = {.name = name, .type = (enum iot_tm_type)type,
                                         .unit = unit, .first_seen = life.first_ts,
                                         .last_seen = life.last_ts, .count = life.samples};
        if (fn(ctx, &e) != 0)
            return IOT_OK;
    }
    return j->latest.rc;
}

/* Names and types from latest_data, units from device_measurements,
 * first/last seen and counts from the lifetime totals: three reads
 * clustered by name, merged as they stream. */
int tmc_catalog(void *self, int64_t device_id, iot_tm_catalog_fn fn, void *ctx)
{
    struct tmc *t = self;
    if (!fn)
        return IOT_EINVAL;
    struct catalog_join j;
    struct cql_buf v = {0};
    cql_encode_bigint(&v, device_id);
    cql_encode_bigint(&v, TMC_SPAN_LIFETIME);
    cursor_open(&j.latest, t, TMC_SEL_LATEST, &v);
    cursor_open(&j.units, t, TMC_SEL_UNITS, &v);
    cql_encode_int(&v, TMC_WIDTH_LIFETIME);
    cursor_open(&j.life, t, TMC_SEL_LIFETIME, &v);
    cql_buf_free(&v);
    int rc = j.latest.rc ? j.latest.rc : j.units.rc ? j.units.rc : j.life.rc;
    if (rc == IOT_OK)
        rc = catalog_join_run(&j, fn, ctx);
    cursor_close(&j.latest);
    cursor_close(&j.units);
    cursor_close(&j.life);
    return rc;
}
