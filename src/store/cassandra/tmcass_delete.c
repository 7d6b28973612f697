/* tmcass_delete.c — the deletes of the Cassandra telemetry store:
 * delete_range (with the repair of what it touched), delete_device and
 * delete_user, with the semantics of the SQLite store
 * (src/store/sqlite/telemetry_sqlite_delete.c).
 *
 * delete_range goes day partition by day partition (device_days lists
 * them), so its memory is bounded by a day: it reads the doomed rows (their
 * data says which measurements and hours they touched), deletes their
 * user_data twins row by row (batched per partition) and then the device
 * rows with one range tombstone, and repairs the derived rows exactly like
 * SQLite does:
 *  - rollups: every hourly and daily bucket that held a deleted numeric
 *    value is recomputed from the raw rows left in it and replaced
 *    (tmc_bucket_replace: the merged row becomes the new aggregate and the
 *    partials go);
 *  - catalog (the lifetime totals): the count drops by the values deleted;
 *    a first or last seen that fell in the range moves to the nearest
 *    remaining value; a name with no value left loses its entry and unit;
 *  - latest: a latest value whose message went falls back to the newest
 *    remaining value of that name, or goes.
 * The /telemetry/status totals get negative message_counts rows (a writer
 * id of their own per call, one row per day) and a device left without
 * messages leaves devices_seen.
 *
 * Nothing here is one transaction: a delete that fails half way leaves the
 * rows it had not reached, and a delete racing a write to the same bucket
 * can leave that bucket off (docs/ARCHITECTURE.md, "Telemetry on
 * Cassandra"). Retrying the delete finishes it. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "store/cassandra/tmcass_int.h"
#include "util/clock.h"
#include "util/err.h"

enum {
    ROWS_PAGE = 1000,        /* raw rows per page */
    ROW_BATCH = 100,         /* row deletes per UNLOGGED batch (one partition) */
    BATCHES_IN_FLIGHT = 16,  /* batches sent before waiting for them */
    HOURS = 24,
};

/* A writer id for this call's negative message counts: random, never 0
 * (the merged rows') and never a live writer's by any practical chance. */
static int64_t count_writer_id(void)
{
    int64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != sizeof id)
        id = iot_now_ms() * 7919 + (int64_t)(uintptr_t)&id;
    return id ? id : 1;
}

/* ---- row deletes, batched per partition --------------------------------------------- */

/* Deletes of rows of one partition at a time, sent as UNLOGGED batches
 * (one mutation each), a few in flight before they are waited for. */
struct row_deletes {
    struct tmc *t;
    enum tmc_stmt st;
    struct tmc_group g;
    struct cql_buf vals;
    size_t offs[ROW_BATCH + 1];
    size_t n, in_flight;
    int rc;
};

static void rd_init(struct row_deletes *d, struct tmc *t, enum tmc_stmt st)
{
    memset(d, 0, sizeof *d);
    d->t = t;
    d->st = st;
    tmc_group_init(&d->g);
}

static void rd_send(struct row_deletes *d)
{
    if (d->n == 0)
        return;
    if (cql_buf_error(&d->vals)) {
        d->rc = IOT_ENOMEM;
    } else {
        struct cql_batch_item items[ROW_BATCH];
        for (size_t i = 0; i < d->n; i++)
            items[i] = (struct cql_batch_item){
                .prepared = d->t->ps[d->st],
                .values = {d->vals.data + d->offs[i], d->offs[i + 1] - d->offs[i]},
            };
        tmc_group_batch(d->t, &d->g, items, d->n, 0);
        d->in_flight++;
    }
    cql_buf_reset(&d->vals);
    d->n = 0;
}

/* Sends what is collected and waits for everything sent. */
static int rd_flush(struct row_deletes *d)
{
    rd_send(d);
    int rc = tmc_group_wait(&d->g);
    tmc_group_init(&d->g);
    d->in_flight = 0;
    if (d->rc == IOT_OK)
        d->rc = rc;
    return d->rc;
}

/* The row's values were just appended to d->vals; ends the partition's
 * batch when `last` or full. */
static void rd_row_done(struct row_deletes *d)
{
    d->offs[++d->n] = d->vals.len;
    if (d->n == ROW_BATCH)
        rd_send(d);
    if (d->in_flight >= BATCHES_IN_FLIGHT)
        rd_flush(d);
}

static void rd_row_begin(struct row_deletes *d)
{
    d->offs[d->n] = d->vals.len;
}

static int rd_finish(struct row_deletes *d)
{
    int rc = rd_flush(d);
    tmc_group_wait(&d->g);
    cql_buf_free(&d->vals);
    return rc;
}

/* A user_data row of a device's message. */
static void rd_user_row(struct row_deletes *d, int64_t user_id, int64_t day, int64_t ts,
                        int64_t seq, int64_t device_id)
{
    rd_row_begin(d);
    cql_encode_bigint(&d->vals, user_id);
    cql_encode_bigint(&d->vals, day);
    cql_encode_timestamp(&d->vals, ts);
    cql_encode_bigint(&d->vals, seq);
    cql_encode_bigint(&d->vals, device_id);
    rd_row_done(d);
}

/* ---- small statements ----------------------------------------------------------------- */

/* A negative message count for a day (the /telemetry/status total). */
static void add_negative_count(struct tmc *t, struct tmc_group *g, int64_t writer, int64_t day,
                               int64_t n)
{
    struct cql_buf v = {0};
    cql_encode_bigint(&v, day);
    cql_encode_bigint(&v, writer);
    cql_encode_bigint(&v, -n);
    cql_encode_int(&v, tmc_ttl(tmc_day_start(day + 1), t->raw_ttl_ms, iot_now_ms()));
    tmc_group_exec(t, g, TMC_INS_MSG_COUNT, &v, 0);
    cql_buf_free(&v);
}

/* A statement whose values are a device id, then optionally one more
 * bigint (or a name when `name` is given). */
static void add_by_device(struct tmc *t, struct tmc_group *g, enum tmc_stmt st, int64_t device_id,
                          const int64_t *more, const char *name)
{
    struct cql_buf v = {0};
    cql_encode_bigint(&v, device_id);
    if (more)
        cql_encode_bigint(&v, *more);
    if (name)
        cql_encode_text(&v, name, strlen(name));
    tmc_group_exec(t, g, st, &v, 0);
    cql_buf_free(&v);
}

static int exec_one(struct tmc *t, enum tmc_stmt st, struct cql_buf *v)
{
    int rc = cql_buf_error(v) ? IOT_ENOMEM : tmc_exec(t, st, v, NULL, NULL);
    cql_buf_free(v);
    return rc;
}

/* ---- the measurements a delete touched -------------------------------------------------- */

struct touched {
    char name[IOT_TM_NAME_MAX + 1];
    int64_t deleted;  /* values deleted, every type (the catalog count) */
    uint32_t hours;   /* of the current day: hours that lost a numeric value */
};

/* A set of names (open addressing over indices into v). */
struct touched_set {
    struct touched *v;
    size_t n, cap;
    uint32_t *slots; /* index + 1; 0 = empty */
    size_t n_slots;
    bool oom;
};

static uint64_t name_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h;
}

static void set_reindex(struct touched_set *s)
{
    memset(s->slots, 0, s->n_slots * sizeof *s->slots);
    for (size_t i = 0; i < s->n; i++) {
        size_t j = name_hash(s->v[i].name, strlen(s->v[i].name)) & (s->n_slots - 1);
        while (s->slots[j])
            j = (j + 1) & (s->n_slots - 1);
        s->slots[j] = (uint32_t)(i + 1);
    }
}

static bool set_grow(struct touched_set *s)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 32;
        struct touched *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return false;
        s->v = v;
        s->cap = cap;
    }
    if ((s->n + 1) * 2 > s->n_slots) {
        size_t n_slots = s->n_slots ? 2 * s->n_slots : 64;
        uint32_t *slots = calloc(n_slots, sizeof *slots);
        if (!slots)
            return false;
        free(s->slots);
        s->slots = slots;
        s->n_slots = n_slots;
        set_reindex(s);
    }
    return true;
}

/* The entry of a name (added when new); NULL when out of memory. */
static struct touched *set_get(struct touched_set *s, const char *name, size_t len)
{
    if (s->n_slots) {
        size_t j = name_hash(name, len) & (s->n_slots - 1);
        for (; s->slots[j]; j = (j + 1) & (s->n_slots - 1)) {
            struct touched *e = &s->v[s->slots[j] - 1];
            if (strncmp(e->name, name, len) == 0 && e->name[len] == '\0')
                return e;
        }
    }
    if (!set_grow(s)) {
        s->oom = true;
        return NULL;
    }
    struct touched *e = &s->v[s->n];
    memset(e, 0, sizeof *e);
    memcpy(e->name, name, len);
    size_t j = name_hash(name, len) & (s->n_slots - 1);
    while (s->slots[j])
        j = (j + 1) & (s->n_slots - 1);
    s->slots[j] = (uint32_t)(++s->n);
    return e;
}

static void set_clear(struct touched_set *s)
{
    s->n = 0;
    if (s->slots)
        memset(s->slots, 0, s->n_slots * sizeof *s->slots);
}

static void set_free(struct touched_set *s)
{
    free(s->v);
    free(s->slots);
}

static bool json_numeric(const json_t *j)
{
    return json_is_number(j) || json_is_boolean(j);
}

/* ---- delete_range: one day ------------------------------------------------------------------ */

struct range_delete {
    struct tmc *t;
    int64_t device_id, from, to;
    int64_t writer;            /* of the negative counts */
    int64_t deleted;           /* messages, all days */
    struct touched_set names;  /* across days: values deleted per name */
    struct touched_set day;    /* the current day: hours touched per name */
    int64_t day_deleted, day_user, cur_day;
    struct row_deletes users;  /* the user_data twins */
    bool any_left;             /* forget_if_empty: a row is left */
    int rc;
};

/* Columns: ts, seq, data. Keys that are not valid measurement names were
 * never points (the catalog does not know them). */
static int on_doomed_row(void *ctx, const struct cql_value *c, size_t n)
{
    struct range_delete *d = ctx;
    if (n < 3)
        return 0;
    int64_t ts = tmc_cell_i64(c[0]), seq = tmc_cell_i64(c[1]);
    d->day_deleted++;
    rd_user_row(&d->users, d->day_user, d->cur_day, ts, seq, d->device_id);
    struct cql_str data = {0};
    cql_decode_text(c[2], &data);
    json_t *root = tmc_json_parse(data.ptr, data.len);
    const char *key;
    json_t *value;
    int hour = (int)((ts - tmc_day_start(d->cur_day)) / IOT_TM_HOUR);
    json_object_foreach(root, key, value) {
        if (!(key && iot_tm_name_valid(key)))
            continue;
        size_t len = strlen(key);
        struct touched *all = set_get(&d->names, key, len);
        if (all)
            all->deleted++;
        struct touched *day = json_numeric(value) ? set_get(&d->day, key, len) : NULL;
        if (day)
            day->hours |= UINT32_C(1) << hour;
    }
    json_decref(root);
    if (d->names.oom || d->day.oom || d->users.rc) {
        d->rc = d->users.rc ? d->users.rc : IOT_ENOMEM;
        return 1;
    }
    return 0;
}

/* A day's recomputed buckets: for each touched name, its 24 hours and the
 * day, from the rows that remain. */
struct day_repair {
    const struct touched_set *day;
    struct tmc_agg (*aggs)[HOURS + 1]; /* [name][hour], [name][HOURS] the day */
    int64_t day_start;
    struct tmc_json_scratch scratch;
    int rc;
};

/* Columns: ts, seq, data; numeric values only (strings are not rolled
 * up), in key order as ingest added them. */
static int on_remaining_row(void *ctx, const struct cql_value *c, size_t n)
{
    struct day_repair *r = ctx;
    if (n < 3)
        return 0;
    int64_t ts = tmc_cell_i64(c[0]);
    int hour = (int)((ts - r->day_start) / IOT_TM_HOUR);
    struct cql_str data = {0};
    cql_decode_text(c[2], &data);
    json_t *root = tmc_json_parse(data.ptr, data.len);
    for (size_t i = 0; root && i < r->day->n; i++) {
        const json_t *j = json_object_get(root, r->day->v[i].name);
        struct iot_tm_value v;
        if (!j || !json_numeric(j) || tmc_json_value(j, &v, &r->scratch) != IOT_OK)
            continue;
        tmc_agg_add_value(&r->aggs[i][HOURS], ts, &v);
        if (r->day->v[i].hours & (UINT32_C(1) << hour))
            tmc_agg_add_value(&r->aggs[i][hour], ts, &v);
    }
    json_decref(root);
    return 0;
}

static int replace_bucket(struct tmc *t, int64_t device_id, const char *name, int32_t width_h,
                          int64_t start, const struct tmc_agg *agg)
{
    struct tmc_bucket_key k = {.device_id = device_id, .span = tmc_span(start),
                               .width_h = width_h, .start = start};
    memcpy(k.name, name, strlen(name) + 1);
    return tmc_bucket_replace(t, &k, agg->count > 0 ? agg : NULL);
}

/* Recomputes every hourly bucket that lost a numeric value, and its day,
 * from one read of the day's remaining rows. */
static int repair_day_rollups(struct range_delete *d, int64_t day)
{
    size_t n_numeric = 0;
    for (size_t i = 0; i < d->day.n; i++)
        n_numeric += d->day.v[i].hours != 0;
    if (n_numeric == 0)
        return IOT_OK;
    struct day_repair r = {.day = &d->day, .day_start = tmc_day_start(day)};
    r.aggs = calloc(d->day.n, sizeof *r.aggs);
    if (!r.aggs)
        return IOT_ENOMEM;
    struct cql_buf v = {0};
    cql_encode_bigint(&v, d->device_id);
    cql_encode_bigint(&v, day);
    cql_encode_timestamp(&v, r.day_start);
    cql_encode_timestamp(&v, tmc_day_start(day + 1));
    int rc = tmc_select(d->t, TMC_SEL_DEVICE_ASC, &v, ROWS_PAGE, on_remaining_row, &r);
    cql_buf_free(&v);
    for (size_t i = 0; rc == IOT_OK && i < d->day.n; i++) {
        const struct touched *e = &d->day.v[i];
        for (int h = 0; rc == IOT_OK && h < HOURS; h++)
            if (e->hours & (UINT32_C(1) << h))
                rc = replace_bucket(d->t, d->device_id, e->name, 1,
                                    r.day_start + h * IOT_TM_HOUR, &r.aggs[i][h]);
        if (rc == IOT_OK && e->hours)
            rc = replace_bucket(d->t, d->device_id, e->name, 24, r.day_start, &r.aggs[i][HOURS]);
    }
    tmc_json_scratch_free(&r.scratch);
    free(r.aggs);
    return rc;
}

/* One day partition: read what goes, delete it (user twins first, so a
 * retry after a failure still finds the device rows), count it, repair
 * the day's buckets. */
static int range_day(void *ctx, int64_t day, int64_t user_id)
{
    struct range_delete *d = ctx;
    struct tmc *t = d->t;
    int64_t lo = tmc_max64(d->from, tmc_day_start(day));
    int64_t hi = tmc_min64(d->to, tmc_day_start(day + 1) - 1);
    set_clear(&d->day);
    d->day_deleted = 0;
    d->day_user = user_id;
    d->cur_day = day;
    struct cql_buf v = {0};
    cql_encode_bigint(&v, d->device_id);
    cql_encode_bigint(&v, day);
    cql_encode_timestamp(&v, lo);
    cql_encode_timestamp(&v, hi);
    int rc = tmc_select(t, TMC_SEL_DEVICE_RANGE_KEYS, &v, ROWS_PAGE, on_doomed_row, d);
    if (rc == IOT_OK)
        rc = d->rc;
    int sent = rd_flush(&d->users);
    if (rc == IOT_OK)
        rc = sent;
    if (rc == IOT_OK && d->day_deleted) {
        struct tmc_group g;
        tmc_group_init(&g);
        tmc_group_exec(t, &g, TMC_DEL_DEVICE_DAY_RANGE, &v, 0);
        add_negative_count(t, &g, d->writer, day, d->day_deleted);
        rc = tmc_group_wait(&g);
    }
    cql_buf_free(&v);
    if (rc == IOT_OK && d->day_deleted) {
        d->deleted += d->day_deleted;
        rc = repair_day_rollups(d, day);
    }
    return rc;
}

/* ---- delete_range: per measurement ---------------------------------------------------- */

static int lifetime_key(int64_t device_id, const char *name, struct tmc_bucket_key *k)
{
    memset(k, 0, sizeof *k);
    k->device_id = device_id;
    k->span = TMC_SPAN_LIFETIME;
    k->width_h = TMC_WIDTH_LIFETIME;
    memcpy(k->name, name, strlen(name) + 1);
    return IOT_OK;
}

/* The lifetime totals behind the catalog: the count drops by the values
 * deleted; a first or last seen in [from, to] moves to the nearest value
 * left (searched no further than the old bounds); *gone when none is
 * left. *first gets the old first seen (bounds the latest repair's search). */
static int repair_lifetime(struct range_delete *d, const struct touched *e, bool *gone,
                           int64_t *first)
{
    struct tmc_bucket_key k;
    lifetime_key(d->device_id, e->name, &k);
    struct tmc_agg life;
    int rc = tmc_bucket_read(d->t, &k, &life, NULL);
    if (rc)
        return rc;
    *first = life.samples > 0 ? life.first_ts : INT64_MIN;
    life.samples -= e->deleted;
    *gone = life.samples <= 0;
    if (*gone)
        return tmc_bucket_replace(d->t, &k, NULL);
    struct tmc_json_scratch scratch = {0};
    struct tmc_hit hit;
    int64_t old_first = life.first_ts, old_last = life.last_ts;
    if (old_first >= d->from && old_first <= d->to && d->to < INT64_MAX) {
        rc = tmc_find_sample(d->t, d->device_id, e->name, d->to + 1,
                             old_last > d->to && old_last < INT64_MAX ? old_last + 1 : INT64_MAX,
                             false, false, &hit, &scratch);
        if (rc == IOT_OK)
            life.first_ts = hit.ts;
    }
    if ((rc == IOT_OK || rc == IOT_ENOTFOUND) && old_last >= d->from && old_last <= d->to) {
        rc = tmc_find_sample(d->t, d->device_id, e->name,
                             old_first < d->from ? old_first : INT64_MIN, d->from, true, false,
                             &hit, &scratch);
        if (rc == IOT_OK)
            life.last_ts = hit.ts;
    }
    tmc_json_scratch_free(&scratch);
    if (rc != IOT_OK && rc != IOT_ENOTFOUND)
        return rc;
    return tmc_bucket_replace(d->t, &k, &life);
}

/* latest_data's values, as tmcass_write.c writes them. */
static void encode_latest(struct cql_buf *b, int64_t device_id, const char *name,
                          const struct tmc_hit *h)
{
    const struct iot_tm_value *v = &h->v;
    bool is_int = v->type == IOT_TM_BOOL || (v->type == IOT_TM_NUMBER && v->is_int);
    cql_encode_bigint(b, device_id);
    cql_encode_bigint(b, TMC_SPAN_LIFETIME);
    cql_encode_text(b, name, strlen(name));
    cql_encode_timestamp(b, h->ts);
    cql_encode_bigint(b, h->seq);
    cql_encode_tinyint(b, (int8_t)v->type);
    if (v->type == IOT_TM_STRING)
        cql_encode_null(b);
    else
        cql_encode_double(b, v->type == IOT_TM_BOOL ? (v->boolean ? 1.0 : 0.0) : v->num);
    if (is_int)
        cql_encode_bigint(b, v->type == IOT_TM_BOOL ? (v->boolean ? 1 : 0) : v->i);
    else
        cql_encode_null(b);
    cql_encode_boolean(b, v->type == IOT_TM_NUMBER && v->is_int);
    if (v->type == IOT_TM_STRING)
        cql_encode_text(b, v->str, v->str_len);
    else
        cql_encode_null(b);
}

static void add_latest_range_delete(struct tmc *t, struct tmc_group *g, int64_t device_id,
                                    const char *name, int64_t from, int64_t to)
{
    struct cql_buf v = {0};
    cql_encode_bigint(&v, device_id);
    cql_encode_bigint(&v, TMC_SPAN_LIFETIME);
    cql_encode_text(&v, name, strlen(name));
    cql_encode_timestamp(&v, from);
    cql_encode_timestamp(&v, to);
    tmc_group_exec(t, g, TMC_DEL_LATEST_NAME_RANGE, &v, 0);
    cql_buf_free(&v);
}

/* A latest value whose message went falls back to the newest value left
 * (older than `from`: the deleted one was the newest), or goes with every
 * row of its name. */
static int repair_latest(struct range_delete *d, const struct touched *e, bool gone,
                         int64_t first)
{
    struct tmc *t = d->t;
    struct cql_buf v = {0};
    cql_encode_bigint(&v, d->device_id);
    cql_encode_bigint(&v, TMC_SPAN_LIFETIME);
    cql_encode_text(&v, e->name, strlen(e->name));
    struct cql_reply *reply = NULL;
    int rc = cql_buf_error(&v) ? IOT_ENOMEM : tmc_exec(t, TMC_SEL_LATEST_NAME, &v, NULL, &reply);
    cql_buf_free(&v);
    const struct cql_rows *rows = rc == IOT_OK ? cql_reply_rows(reply) : NULL;
    struct cql_row_iter it = cql_rows_iter(rows);
    struct cql_value c[2];
    bool in_range = false;
    if (rows && cql_rows_next(&it, c, 2)) {
        int64_t ts = tmc_cell_i64(c[0]);
        in_range = ts >= d->from && ts <= d->to;
    }
    cql_reply_free(reply);
    if (rc)
        return rc;
    if (!in_range) {
        /* The newest stays, but a name keeps a few older rows between two
         * prunes (tmcass_write.c): those of deleted messages go too, or a
         * later fallback could land on one. */
        struct tmc_group g;
        tmc_group_init(&g);
        add_latest_range_delete(t, &g, d->device_id, e->name, d->from, d->to);
        return tmc_group_wait(&g);
    }
    struct tmc_json_scratch scratch = {0};
    struct tmc_hit hit;
    rc = gone ? IOT_ENOTFOUND
              : tmc_find_sample(t, d->device_id, e->name, first, d->from, true, false, &hit,
                                &scratch);
    struct tmc_group g;
    tmc_group_init(&g);
    if (rc == IOT_OK) {
        struct cql_buf ins = {0};
        encode_latest(&ins, d->device_id, e->name, &hit);
        tmc_group_exec(t, &g, TMC_INS_LATEST, &ins, 0);
        cql_buf_free(&ins);
        add_latest_range_delete(t, &g, d->device_id, e->name, d->from, d->to);
    } else if (rc == IOT_ENOTFOUND) {
        add_latest_range_delete(t, &g, d->device_id, e->name, INT64_MIN, INT64_MAX);
        rc = IOT_OK;
    }
    int sent = tmc_group_wait(&g);
    tmc_json_scratch_free(&scratch);
    return rc ? rc : sent;
}

/* The catalog and latest value of every name the deleted rows held. */
static int repair_names(struct range_delete *d)
{
    int rc = IOT_OK;
    for (size_t i = 0; i < d->names.n && rc == IOT_OK; i++) {
        const struct touched *e = &d->names.v[i];
        bool gone = false;
        int64_t first = INT64_MIN;
        rc = repair_lifetime(d, e, &gone, &first);
        if (rc == IOT_OK)
            rc = repair_latest(d, e, gone, first);
        if (rc == IOT_OK && gone) { /* the catalog entry goes, its unit with it */
            struct cql_buf v = {0};
            cql_encode_bigint(&v, d->device_id);
            cql_encode_bigint(&v, TMC_SPAN_LIFETIME);
            cql_encode_text(&v, e->name, strlen(e->name));
            rc = exec_one(d->t, TMC_DEL_UNIT, &v);
        }
    }
    return rc;
}

/* ---- devices_seen ------------------------------------------------------------------------- */

static int on_any_row(void *ctx, const struct cql_value *c, size_t n)
{
    (void)c, (void)n;
    *(bool *)ctx = true;
    return 1;
}

/* Stops at the first day still holding a row. */
static int probe_day(void *ctx, int64_t day, int64_t user_id)
{
    (void)user_id;
    struct range_delete *d = ctx;
    struct cql_buf v = {0};
    cql_encode_bigint(&v, d->device_id);
    cql_encode_bigint(&v, day);
    int rc = tmc_select(d->t, TMC_SEL_DAY_KEYS, &v, 1, on_any_row, &d->any_left);
    cql_buf_free(&v);
    return rc ? rc : d->any_left;
}

/* A device whose last message went no longer counts as a device holding
 * data (SQLite: its `devices` row at zero messages). Its device_days rows
 * stay: another instance that wrote those days would not write them again. */
static int forget_if_empty(struct range_delete *d)
{
    d->any_left = false;
    int rc = tmc_each_device_day(d->t, d->device_id, INT64_MIN, INT64_MAX, false, probe_day, d);
    if (rc || d->any_left)
        return rc;
    struct cql_buf v = {0};
    cql_encode_bigint(&v, d->device_id);
    rc = exec_one(d->t, TMC_DEL_DEVICE_SEEN, &v);
    if (rc == IOT_OK)
        tmc_known_forget(d->t, TMC_KNOWN_DEVICE_SEEN, d->device_id);
    return rc;
}

int tmc_delete_range(void *self, int64_t device_id, int64_t from, int64_t to, int64_t *deleted)
{
    struct tmc *t = self;
    if (deleted)
        *deleted = 0;
    if (from > to)
        return IOT_OK;
    struct range_delete d = {.t = t, .device_id = device_id, .from = from, .to = to,
                             .writer = count_writer_id()};
    rd_init(&d.users, t, TMC_DEL_USER_ROW);
    int rc = tmc_each_device_day(t, device_id, tmc_day(from), tmc_day(to), true, range_day, &d);
    int sent = rd_finish(&d.users);
    if (rc == IOT_OK)
        rc = sent;
    if (rc == IOT_OK)
        rc = repair_names(&d);
    if (rc == IOT_OK && d.deleted)
        rc = forget_if_empty(&d);
    set_free(&d.names);
    set_free(&d.day);
    if (deleted)
        *deleted = rc == IOT_OK ? d.deleted : 0;
    return rc;
}

/* ---- delete_device ------------------------------------------------------------------------ */

struct id_list {
    int64_t *v;
    size_t n, cap;
    bool oom;
};

static bool id_has(const struct id_list *l, int64_t id)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == id)
            return true;
    return false;
}

static int id_add(struct id_list *l, int64_t id)
{
    if (id_has(l, id))
        return IOT_OK;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        int64_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return IOT_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = id;
    return IOT_OK;
}

struct device_delete {
    struct tmc *t;
    int64_t device_id, writer;
    struct id_list spans, users;   /* of its days: rollup partitions, owners */
    struct id_list sole, shared;   /* owners for whom this is the only device, or not */
    struct row_deletes user_rows;
    int64_t cur_day, cur_user, day_rows;
    bool cur_sole;
    /* delete_user: that user's user_data days go whole afterwards, so
     * the device's rows in them are left alone here */
    bool skip_user;
    int64_t skip_user_id;
    bool cur_skip;
};

static int on_other_device(void *ctx, const struct cql_value *c, size_t n)
{
    struct device_delete *d = ctx;
    if (n >= 1 && tmc_cell_i64(c[0]) != d->device_id) {
        d->cur_sole = false;
        return 1;
    }
    return 0;
}

/* Whether the device is the user's only one: its user_data days can then
 * go whole instead of row by row. */
static int check_sole_owner(struct device_delete *d, int64_t user_id)
{
    if (id_has(&d->sole, user_id) || id_has(&d->shared, user_id)) {
        d->cur_sole = id_has(&d->sole, user_id);
        return IOT_OK;
    }
    d->cur_sole = true;
    struct cql_buf v = {0};
    cql_encode_bigint(&v, user_id);
    int rc = tmc_select(d->t, TMC_SEL_USER_DEVICES, &v, 1000, on_other_device, d);
    cql_buf_free(&v);
    if (rc == IOT_OK)
        rc = id_add(d->cur_sole ? &d->sole : &d->shared, user_id);
    return rc;
}

/* Columns: ts, seq. */
static int on_device_key(void *ctx, const struct cql_value *c, size_t n)
{
    struct device_delete *d = ctx;
    if (n < 2)
        return 0;
    d->day_rows++;
    if (!d->cur_sole && !d->cur_skip)
        rd_user_row(&d->user_rows, d->cur_user, d->cur_day, tmc_cell_i64(c[0]), tmc_cell_i64(c[1]),
                    d->device_id);
    return d->user_rows.rc != IOT_OK;
}

/* One day partition: counted, its user twins deleted (row by row, or the
 * owner's whole day when it has no other device), then the partition. */
static int device_day(void *ctx, int64_t day, int64_t user_id)
{
    struct device_delete *d = ctx;
    struct tmc *t = d->t;
    int rc = id_add(&d->spans, tmc_span(tmc_day_start(day)));
    if (rc == IOT_OK)
        rc = id_add(&d->users, user_id);
    d->cur_skip = d->skip_user && user_id == d->skip_user_id;
    d->cur_sole = false;
    if (rc == IOT_OK && !d->cur_skip)
        rc = check_sole_owner(d, user_id);
    if (rc)
        return rc;
    d->cur_day = day;
    d->cur_user = user_id;
    d->day_rows = 0;
    struct cql_buf v = {0};
    cql_encode_bigint(&v, d->device_id);
    cql_encode_bigint(&v, day);
    rc = tmc_select(t, TMC_SEL_DAY_KEYS, &v, ROWS_PAGE, on_device_key, d);
    int sent = rd_flush(&d->user_rows);
    if (rc == IOT_OK)
        rc = sent;
    if (rc == IOT_OK) {
        struct tmc_group g;
        tmc_group_init(&g);
        tmc_group_exec(t, &g, TMC_DEL_DEVICE_PARTITION, &v, 0);
        if (d->cur_sole) {
            struct cql_buf u = {0};
            cql_encode_bigint(&u, user_id);
            cql_encode_bigint(&u, day);
            tmc_group_exec(t, &g, TMC_DEL_USER_PARTITION, &u, 0);
            cql_buf_free(&u);
        }
        if (d->day_rows)
            add_negative_count(t, &g, d->writer, day, d->day_rows);
        rc = tmc_group_wait(&g);
    }
    cql_buf_free(&v);
    return rc;
}

/* Everything derived, then the index of its days (last: a delete cut
 * short is finished by the next one, which still finds the days). */
static int delete_device_rest(struct device_delete *d)
{
    struct tmc *t = d->t;
    struct tmc_group g;
    tmc_group_init(&g);
    int64_t lifetime = TMC_SPAN_LIFETIME;
    for (size_t i = 0; i < d->spans.n; i++)
        add_by_device(t, &g, TMC_DEL_AGG_PARTITION, d->device_id, &d->spans.v[i], NULL);
    add_by_device(t, &g, TMC_DEL_AGG_PARTITION, d->device_id, &lifetime, NULL);
    add_by_device(t, &g, TMC_DEL_LATEST_ALL, d->device_id, &lifetime, NULL);
    add_by_device(t, &g, TMC_DEL_UNITS, d->device_id, &lifetime, NULL);
    add_by_device(t, &g, TMC_DEL_DEVICE_SEEN, d->device_id, NULL, NULL);
    for (size_t i = 0; i < d->users.n; i++) {
        struct cql_buf v = {0};
        cql_encode_bigint(&v, d->users.v[i]);
        cql_encode_bigint(&v, d->device_id);
        tmc_group_exec(t, &g, TMC_DEL_USER_DEVICE, &v, 0);
        cql_buf_free(&v);
    }
    int rc = tmc_group_wait(&g);
    if (rc == IOT_OK) {
        struct cql_buf v = {0};
        cql_encode_bigint(&v, d->device_id);
        rc = exec_one(t, TMC_DEL_DEVICE_DAYS, &v);
    }
    if (rc == IOT_OK) { /* so that this process writes its index rows again */
        tmc_known_forget(t, TMC_KNOWN_DEVICE_DAY, d->device_id);
        tmc_known_forget(t, TMC_KNOWN_DEVICE_SEEN, d->device_id);
        for (size_t i = 0; i < d->users.n; i++)
            tmc_known_forget(t, TMC_KNOWN_USER_DEVICE, d->users.v[i]);
    }
    return rc;
}

static int delete_device(struct tmc *t, int64_t device_id, const int64_t *skip_user)
{
    struct device_delete d = {.t = t, .device_id = device_id, .writer = count_writer_id(),
                              .skip_user = skip_user != NULL,
                              .skip_user_id = skip_user ? *skip_user : 0};
    rd_init(&d.user_rows, t, TMC_DEL_USER_ROW);
    int rc = tmc_each_device_day(t, device_id, INT64_MIN, INT64_MAX, false, device_day, &d);
    int sent = rd_finish(&d.user_rows);
    if (rc == IOT_OK)
        rc = sent;
    if (rc == IOT_OK)
        rc = delete_device_rest(&d);
    free(d.spans.v);
    free(d.users.v);
    free(d.sole.v);
    free(d.shared.v);
    return rc;
}

int tmc_delete_device(void *self, int64_t device_id)
{
    return delete_device(self, device_id, NULL);
}

/* ---- delete_user ----------------------------------------------------------------------------- */

/* Columns: device_id (unique, in order: no id_add scan needed). */
static int on_device_id(void *ctx, const struct cql_value *c, size_t n)
{
    struct id_list *l = ctx;
    if (n < 1)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        int64_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return l->oom = true, 1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = tmc_cell_i64(c[0]);
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

struct user_delete {
    struct tmc *t;
    int64_t user_id, writer;
    const struct id_list *devices; /* the user's (user_devices) */
    int64_t cur_day, day_rows;
    int rc;
};

struct key_probe {
    int64_t seq;
    bool found;
};

/* Columns: ts, seq, data. */
static int on_key_match(void *ctx, const struct cql_value *c, size_t n)
{
    struct key_probe *p = ctx;
    p->found = n >= 2 && tmc_cell_i64(c[1]) == p->seq;
    return p->found;
}

/* Whether a device still holds the message (ts, seq) of a day. */
static int device_row_exists(struct tmc *t, int64_t device_id, int64_t day, int64_t ts,
                             int64_t seq, bool *exists)
{
    struct key_probe p = {.seq = seq};
    struct cql_buf v = {0};
    cql_encode_bigint(&v, device_id);
    cql_encode_bigint(&v, day);
    cql_encode_timestamp(&v, ts);
    cql_encode_timestamp(&v, ts);
    int rc = tmc_select(t, TMC_SEL_DEVICE_RANGE_KEYS, &v, 100, on_key_match, &p);
    cql_buf_free(&v);
    *exists = p.found;
    return rc;
}

/* Columns: ts, seq, device_id. A message of a device the user does not
 * own (any more) goes from device_data too, as SQLite deletes every
 * message carrying the user's id, and is counted if it was still there.
 * The user's own devices go whole afterwards. */
static int on_user_row(void *ctx, const struct cql_value *c, size_t n)
{
    struct user_delete *u = ctx;
    if (n < 3)
        return 0;
    int64_t ts = tmc_cell_i64(c[0]), seq = tmc_cell_i64(c[1]), device_id = tmc_cell_i64(c[2]);
    if (bsearch(&device_id, u->devices->v, u->devices->n, sizeof device_id, cmp_id))
        return 0;
    bool exists = false;
    int rc = device_row_exists(u->t, device_id, u->cur_day, ts, seq, &exists);
    if (rc == IOT_OK && exists) {
        u->day_rows++;
        struct cql_buf v = {0};
        cql_encode_bigint(&v, device_id);
        cql_encode_bigint(&v, u->cur_day);
        cql_encode_timestamp(&v, ts);
        cql_encode_bigint(&v, seq);
        rc = exec_one(u->t, TMC_DEL_DEVICE_ROW, &v);
    }
    if (rc)
        u->rc = rc;
    return rc != IOT_OK;
}

/* One user day: the messages of devices it no longer owns, then the
 * whole partition. */
static int user_day(void *ctx, int64_t day, int64_t unused)
{
    (void)unused;
    struct user_delete *u = ctx;
    u->cur_day = day;
    u->day_rows = 0;
    struct cql_buf v = {0};
    cql_encode_bigint(&v, u->user_id);
    cql_encode_bigint(&v, day);
    int rc = tmc_select(u->t, TMC_SEL_USER_DAY_KEYS, &v, ROWS_PAGE, on_user_row, u);
    if (rc == IOT_OK)
        rc = u->rc;
    if (rc == IOT_OK) {
        struct tmc_group g;
        tmc_group_init(&g);
        tmc_group_exec(u->t, &g, TMC_DEL_USER_PARTITION, &v, 0);
        if (u->day_rows)
            add_negative_count(u->t, &g, u->writer, day, u->day_rows);
        rc = tmc_group_wait(&g);
    }
    cql_buf_free(&v);
    return rc;
}

/* Stops at the newest day: its writer's user is the device's owner now. */
static int newest_owner(void *ctx, int64_t day, int64_t user_id)
{
    (void)day;
    *(int64_t *)ctx = user_id;
    return 1;
}

/* Keeps in `devices` those the user owns now (as SQLite's `devices` row
 * says, as of the newest writes); a device that went to another user keeps
 * its messages of that user, and loses the ones carrying this user's id
 * with the user's days. A device with no days left goes too. */
static int keep_owned(struct tmc *t, int64_t user_id, struct id_list *devices)
{
    size_t k = 0;
    for (size_t i = 0; i < devices->n; i++) {
        int64_t owner = user_id;
        int rc = tmc_each_device_day(t, devices->v[i], INT64_MIN, INT64_MAX, false, newest_owner,
                                     &owner);
        if (rc)
            return rc;
        if (owner == user_id)
            devices->v[k++] = devices->v[i];
    }
    devices->n = k;
    return IOT_OK;
}

/* The user's days first (the messages it holds of devices it does not
 * own, then each partition whole), then every device it owns as
 * delete_device (leaving its rows in those partitions alone), then its
 * index rows: a delete cut short is finished by the next one, which still
 * finds them. */
int tmc_delete_user(void *self, int64_t user_id)
{
    struct tmc *t = self;
    struct id_list devices = {0};
    struct cql_buf v = {0};
    cql_encode_bigint(&v, user_id);
    int rc = tmc_select(t, TMC_SEL_USER_DEVICES, &v, 1000, on_device_id, &devices);
    if (rc == IOT_OK && devices.oom)
        rc = IOT_ENOMEM;
    if (rc == IOT_OK)
        rc = keep_owned(t, user_id, &devices);
    if (devices.n) /* clustered by device_id already; sorted to be sure */
        qsort(devices.v, devices.n, sizeof *devices.v, cmp_id);
    struct user_delete u = {.t = t, .user_id = user_id, .writer = count_writer_id(),
                            .devices = &devices};
    if (rc == IOT_OK)
        rc = tmc_each_user_day(t, user_id, INT64_MIN, INT64_MAX, user_day, &u);
    for (size_t i = 0; rc == IOT_OK && i < devices.n; i++)
        rc = delete_device(t, devices.v[i], &user_id);
    free(devices.v);
    if (rc == IOT_OK) {
        struct tmc_group g;
        tmc_group_init(&g);
        tmc_group_exec(t, &g, TMC_DEL_USER_DAYS, &v, 0);
        tmc_group_exec(t, &g, TMC_DEL_USER_DEVICES, &v, 0);
        rc = tmc_group_wait(&g);
    }
    cql_buf_free(&v);
    if (rc == IOT_OK) {
        tmc_known_forget(t, TMC_KNOWN_USER_DAY, user_id);
        tmc_known_forget(t, TMC_KNOWN_USER_DEVICE, user_id);
    }
    return rc;
}
