/* tmcass_write.c — write_batch on Cassandra: one round of concurrent
 * requests per batch, grouped by partition.
 *
 * 1. Identity. A message's identity is (device, ts, seq); writing it twice
 *    stores it once and the first data wins, as on SQLite. Duplicates
 *    inside the batch are dropped here; the rest are checked against the
 *    store with one read per (device, day) partition (`(ts, seq) IN ?`), at
 *    the write consistency, and the ones already there are skipped — so
 *    the derived rows below count each message once, also when a batch is
 *    written again after a failure.
 * 2. Rows. For the new messages: device_data rows in one UNLOGGED batch
 *    per (device, day) partition (a single-partition batch is one mutation),
 *    user_data the same per (user, day), the index rows this process has not
 *    written yet, per device the newest value of each measurement
 *    (latest_data: insert it, range-delete older ones) and the units, per
 *    (device, span) the commit's partial aggregates (tmcass_agg.c), and
 *    this writer's message count per day.
 * 3. All of it is sent at once over the session's streams, then waited
 *    for; write_batch returns IOT_OK only when every request reached the
 *    URL's consistency. On a failure nothing is acknowledged and a retry
 *    is harmless (every write is idempotent, step 1). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cql/cql_future.h"
#include "store/cassandra/tmcass_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

enum {
    BATCH_ROWS_MAX = 200,          /* rows per CQL batch */
    BATCH_BYTES_MAX = 1 << 20,     /* value bytes per CQL batch */
    BUNDLE_ROWS = 64,              /* rows of small partitions sent together */
    BUNDLE_BYTES = 12 * 1024,     /* value bytes; a mutation is larger than its values */
    IN_MAX = 100,                  /* identities per existence read */
    UNIT_MAX = 64,                 /* bytes of a unit (longer ones are ignored) */
    LATEST_PRUNE_EVERY = 8,        /* latest values written per range delete */
};

/* ---- the plan: rows to send, grouped into requests -------------------------------------------- */

/* A partition, as far as grouping goes: tables keyed by (device, day) —
 * device_data and the rollups of that day — and by (device, -1) — latest
 * values, units, lifetime totals — share key bytes, so Cassandra applies a
 * request's rows of one key as one mutation. */
enum part_kind { PART_DEVICE_DAY = 1, PART_USER_DAY, PART_INDEX, PART_COUNTS };

struct row {
    enum tmc_stmt st;
    size_t off, len; /* of its values in plan.vals */
    uint8_t kind;
    int64_t a, b;    /* the partition key */
    size_t order;    /* planning order, kept within a partition */
};

struct plan {
    struct cql_buf vals;
    struct row *rows;
    size_t n_rows, cap_rows;
    bool failed;
};

static bool grow(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t c = *cap ? 2 * *cap : 64;
    void *g = realloc(*v, c * size);
    if (!g)
        return false;
    *v = g;
    *cap = c;
    return true;
}

/* The values of the row start at `off` in p->vals (encoded by the caller
 * since then); (kind, a, b) names its partition. */
static void plan_row(struct plan *p, enum tmc_stmt st, size_t off, uint8_t kind, int64_t a,
                     int64_t b)
{
    if (!grow((void **)&p->rows, &p->cap_rows, p->n_rows, sizeof *p->rows)) {
        p->failed = true;
        return;
    }
    p->rows[p->n_rows] = (struct row){st, off, p->vals.len - off, kind, a, b, p->n_rows};
    p->n_rows++;
}

static void plan_free(struct plan *p)
{
    cql_buf_free(&p->vals);
    free(p->rows);
}

static int cmp_row(const void *x, const void *y)
{
    const struct row *a = x, *b = y;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->a != b->a)
        return a->a < b->a ? -1 : 1;
    if (a->b != b->b)
        return a->b < b->b ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static bool same_part(const struct row *a, const struct row *b)
{
    return a->kind == b->kind && a->a == b->a && a->b == b->b;
}

static void send_rows(struct tmc *t, struct plan *p, struct tmc_group *g, const struct row *rows,
                      size_t n)
{
    if (n == 1) {
        tmc_group_exec_slice(t, g, rows[0].st,
                             (struct cql_slice){p->vals.data + rows[0].off, rows[0].len}, 0);
        return;
    }
    struct cql_batch_item items[BATCH_ROWS_MAX];
    for (size_t i = 0; i < n; i++)
        items[i] = (struct cql_batch_item){
            .prepared = t->ps[rows[i].st],
            .values = {p->vals.data + rows[i].off, rows[i].len},
        };
    tmc_group_batch(t, g, items, n, 0);
}

/* Sends the plan: rows sorted by partition; a partition's rows go in one
 * UNLOGGED batch (cut at BATCH_ROWS_MAX / BATCH_BYTES_MAX), and small
 * partitions share a batch up to BUNDLE_ROWS / BUNDLE_BYTES — fewer
 * requests for the server to coordinate, and below its default refusal of
 * multi-partition batches over 50 KiB. */
static int plan_send(struct tmc *t, struct plan *p, struct tmc_group *g)
{
    if (p->failed || cql_buf_error(&p->vals))
        return IOT_ENOMEM;
    qsort(p->rows, p->n_rows, sizeof *p->rows, cmp_row);
    size_t first = 0, bytes = 0; /* the bundle being filled */
    for (size_t i = 0; i < p->n_rows;) {
        size_t j = i, part_bytes = 0;
        while (j < p->n_rows && same_part(&p->rows[j], &p->rows[i]))
            part_bytes += p->rows[j++].len;
        bool small = j - i <= BUNDLE_ROWS && part_bytes <= BUNDLE_BYTES;
        if (i > first && (!small || i - first + (j - i) > BUNDLE_ROWS ||
                          bytes + part_bytes > BUNDLE_BYTES)) {
            send_rows(t, p, g, p->rows + first, i - first);
            first = i, bytes = 0;
        }
        if (small) {
            bytes += part_bytes;
            i = j;
            continue;
        }
        for (size_t k = i; k < j;) { /* a big partition: its own batches */
            size_t m = k, b = 0;
            while (m < j && m - k < BATCH_ROWS_MAX && (m == k || b + p->rows[m].len <= BATCH_BYTES_MAX))
                b += p->rows[m++].len;
            send_rows(t, p, g, p->rows + k, m - k);
            k = m;
        }
        first = i = j;
    }
    if (p->n_rows > first)
        send_rows(t, p, g, p->rows + first, p->n_rows - first);
    return IOT_OK;
}

/* ---- step 1: which messages are new ---------------------------------------------------------- */

struct ref {
    const struct iot_tm_message *m;
    size_t index; /* in the caller's batch */
    int64_t day;
};

static int cmp_identity(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    if (x->m->device_id != y->m->device_id)
        return x->m->device_id < y->m->device_id ? -1 : 1;
    if (x->m->ts != y->m->ts)
        return x->m->ts < y->m->ts ? -1 : 1;
    if (x->m->seq != y->m->seq)
        return x->m->seq < y->m->seq ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Sorts by identity and keeps the first of each (the earliest in the
 * batch); returns how many are left. */
static size_t unique_identities(struct ref *refs, size_t n)
{
    qsort(refs, n, sizeof *refs, cmp_identity);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && refs[k - 1].m->device_id == refs[i].m->device_id &&
            refs[k - 1].m->ts == refs[i].m->ts && refs[k - 1].m->seq == refs[i].m->seq)
            continue;
        refs[k++] = refs[i];
    }
    return k;
}

struct existing {
    int64_t *keys; /* (ts, seq) pairs found */
    size_t n, cap;
    bool oom;
};

static int on_existing(void *ctx, const struct cql_value *c, size_t n)
{
    struct existing *e = ctx;
    int64_t ts = 0, seq = 0;
    if (n < 2 || cql_decode_bigint(c[0], &ts) || cql_decode_bigint(c[1], &seq))
        return 0;
    if (!grow((void **)&e->keys, &e->cap, e->n + 1, 2 * sizeof *e->keys)) {
        e->oom = true;
        return 1;
    }
    e->keys[2 * e->n] = ts;
    e->keys[2 * e->n + 1] = seq;
    e->n++;
    return 0;
}

/* The read of which identities of refs[0..n) (one device, one day) the
 * store has, sent now; its future is waited for by drop_existing. */
static struct cql_future *ask_existing(struct tmc *t, const struct ref *refs, size_t n)
{
    struct cql_buf v = {0};
    cql_encode_bigint(&v, refs[0].m->device_id);
    cql_encode_bigint(&v, refs[0].day);
    size_t mark = cql_encode_coll_begin(&v);
    for (size_t i = 0; i < n; i++) { /* a tuple<timestamp, bigint> element */
        cql_write_int(&v, 24);
        cql_encode_bigint(&v, refs[i].m->ts);
        cql_encode_bigint(&v, refs[i].m->seq);
    }
    cql_encode_coll_end(&v, mark, (int32_t)n);
    struct cql_opts o = {.page_size = IN_MAX + 1, .idempotent = true};
    struct cql_future *f = cql_buf_error(&v)
                               ? NULL
                               : cql_session_execute_async(t->s, t->ps[TMC_SEL_EXISTING],
                                                           (struct cql_slice){v.data, v.len},
                                                           t->url.consistency, &o);
    cql_buf_free(&v);
    return f;
}

/* The answer of ask_existing into e. */
static int take_existing(struct cql_future *f, struct existing *e)
{
    if (!f)
        return IOT_ENOMEM;
    struct cql_reply *reply = NULL;
    int rc = tmc_err(cql_future_get(f, &reply));
    const struct cql_rows *rows = cql_reply_rows(reply);
    if (rc == IOT_OK && !rows)
        rc = IOT_EINTERNAL;
    if (rc == IOT_OK) {
        struct cql_row_iter it = cql_rows_iter(rows);
        struct cql_value cells[2];
        while (!e->oom && cql_rows_next(&it, cells, 2))
            on_existing(e, cells, 2);
        if (e->oom)
            rc = IOT_ENOMEM;
    }
    cql_reply_free(reply);
    return rc;
}

static bool found(const struct existing *e, const struct iot_tm_message *m)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->keys[2 * i] == m->ts && e->keys[2 * i + 1] == m->seq)
            return true;
    return false;
}

/* Drops from refs (sorted by identity) the messages the store holds;
 * returns how many are left in *left. One read per (device, day) chunk,
 * all sent at once — unless every message is `fresh` (see telemetry.h). */
static int drop_existing(struct tmc *t, struct ref *refs, size_t n, size_t *left)
{
    bool all_fresh = true;
    for (size_t i = 0; i < n && all_fresh; i++)
        all_fresh = refs[i].m->fresh;
    if (all_fresh) /* new identities (the ingest path): nothing to look up */
        return *left = n, IOT_OK;
    size_t n_chunks = 0;
    for (size_t i = 0; i < n; n_chunks++) {
        size_t j = i + 1;
        while (j < n && j - i < IN_MAX && refs[j].m->device_id == refs[i].m->device_id &&
               refs[j].day == refs[i].day)
            j++;
        i = j;
    }
    struct cql_future **f = calloc(n_chunks ? n_chunks : 1, sizeof *f);
    size_t *ends = calloc(n_chunks ? n_chunks : 1, sizeof *ends);
    int rc = f && ends ? IOT_OK : IOT_ENOMEM;
    for (size_t i = 0, c = 0; rc == IOT_OK && i < n; c++) {
        size_t j = i + 1;
        while (j < n && j - i < IN_MAX && refs[j].m->device_id == refs[i].m->device_id &&
               refs[j].day == refs[i].day)
            j++;
        f[c] = ask_existing(t, refs + i, j - i);
        ends[c] = j;
        i = j;
    }
    size_t k = 0, i = 0;
    for (size_t c = 0; f && ends && c < n_chunks; c++) {
        struct existing e = {0};
        int r = f[c] ? take_existing(f[c], &e) : IOT_ENOMEM;
        if (rc == IOT_OK)
            rc = r;
        for (; rc == IOT_OK && i < ends[c]; i++)
            if (!e.n || !found(&e, refs[i].m))
                refs[k++] = refs[i];
        free(e.keys);
        cql_future_free(f[c]);
    }
    free(f);
    free(ends);
    *left = k;
    return rc;
}

/* ---- step 2: the rows ---------------------------------------------------------------------------- */

static int64_t index_keep(const struct tmc *t)
{
    if (!t->raw_ttl_ms || !t->rollup_ttl_ms)
        return 0;
    return t->raw_ttl_ms > t->rollup_ttl_ms ? t->raw_ttl_ms : t->rollup_ttl_ms;
}

static void encode_opt_text(struct cql_buf *b, const char *s, size_t n)
{
    if (s)
        cql_encode_text(b, s, n);
    else
        cql_encode_null(b);
}

/* device_data rows, one request per (device, day) (refs sorted by
 * identity, so a partition's rows are adjacent). */
static void plan_device_rows(struct tmc *t, struct plan *p, const struct ref *refs, size_t n,
                             int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        const struct iot_tm_message *m = refs[i].m;
        size_t off = p->vals.len;
        cql_encode_bigint(&p->vals, m->device_id);
        cql_encode_bigint(&p->vals, refs[i].day);
        cql_encode_timestamp(&p->vals, m->ts);
        cql_encode_bigint(&p->vals, m->seq);
        cql_encode_text(&p->vals, m->data_json, m->data_len);
        encode_opt_text(&p->vals, m->meta_json, m->meta_len);
        cql_encode_int(&p->vals, tmc_ttl(m->ts, t->raw_ttl_ms, now));
        plan_row(p, TMC_INS_DEVICE_DATA, off, PART_DEVICE_DAY, m->device_id, refs[i].day);
    }
}

static int cmp_user_day(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    if (x->m->user_id != y->m->user_id)
        return x->m->user_id < y->m->user_id ? -1 : 1;
    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    return cmp_identity(a, b);
}

/* user_data rows, one request per (user, day); refs is a scratch copy. */
static void plan_user_rows(struct tmc *t, struct plan *p, struct ref *refs, size_t n, int64_t now)
{
    qsort(refs, n, sizeof *refs, cmp_user_day);
    for (size_t i = 0; i < n; i++) {
        const struct iot_tm_message *m = refs[i].m;
        size_t off = p->vals.len;
        cql_encode_bigint(&p->vals, m->user_id);
        cql_encode_bigint(&p->vals, refs[i].day);
        cql_encode_timestamp(&p->vals, m->ts);
        cql_encode_bigint(&p->vals, m->seq);
        cql_encode_bigint(&p->vals, m->device_id);
        cql_encode_text(&p->vals, m->data_json, m->data_len);
        encode_opt_text(&p->vals, m->meta_json, m->meta_len);
        cql_encode_int(&p->vals, tmc_ttl(m->ts, t->raw_ttl_ms, now));
        plan_row(p, TMC_INS_USER_DATA, off, PART_USER_DAY, m->user_id, refs[i].day);
    }
}

/* The facts this batch writes, recorded in the known-set once it succeeded. */
struct fact {
    uint8_t kind;
    int64_t a, b;
};

struct facts {
    struct fact *v;
    size_t n, cap;
};

static void plan_fact(struct tmc *t, struct plan *p, struct facts *f, uint8_t kind, int64_t a,
                      int64_t b, int64_t user_id, int64_t now)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->v[i].kind == kind && f->v[i].a == a && f->v[i].b == b)
            return;
    if (tmc_known_has(t, kind, a, b))
        return;
    if (!grow((void **)&f->v, &f->cap, f->n, sizeof *f->v)) {
        p->failed = true;
        return;
    }
    f->v[f->n++] = (struct fact){kind, a, b};
    size_t off = p->vals.len;
    int64_t day_end = (b + 1) * IOT_TM_DAY;
    switch (kind) {
    case TMC_KNOWN_DEVICE_DAY:
        cql_encode_bigint(&p->vals, a);
        cql_encode_bigint(&p->vals, b);
        cql_encode_bigint(&p->vals, user_id);
        cql_encode_int(&p->vals, tmc_ttl(day_end, index_keep(t), now));
        plan_row(p, TMC_INS_DEVICE_DAY, off, PART_INDEX, kind, a);
        break;
    case TMC_KNOWN_USER_DAY:
        cql_encode_bigint(&p->vals, a);
        cql_encode_bigint(&p->vals, b);
        cql_encode_int(&p->vals, tmc_ttl(day_end, index_keep(t), now));
        plan_row(p, TMC_INS_USER_DAY, off, PART_INDEX, kind, a);
        break;
    case TMC_KNOWN_USER_DEVICE:
        cql_encode_bigint(&p->vals, a);
        cql_encode_bigint(&p->vals, b);
        plan_row(p, TMC_INS_USER_DEVICE, off, PART_INDEX, kind, a);
        break;
    case TMC_KNOWN_DEVICE_SEEN: /* a = device, b = day */
        cql_encode_bigint(&p->vals, a);
        cql_encode_int(&p->vals, tmc_ttl(day_end, t->raw_ttl_ms, now));
        plan_row(p, TMC_INS_DEVICE_SEEN, off, PART_INDEX, kind, 0);
        break;
    }
}

static void plan_facts(struct tmc *t, struct plan *p, struct facts *f, const struct ref *refs,
                       size_t n, int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        const struct iot_tm_message *m = refs[i].m;
        plan_fact(t, p, f, TMC_KNOWN_DEVICE_DAY, m->device_id, refs[i].day, m->user_id, now);
        plan_fact(t, p, f, TMC_KNOWN_USER_DAY, m->user_id, refs[i].day, 0, now);
        plan_fact(t, p, f, TMC_KNOWN_USER_DEVICE, m->user_id, m->device_id, 0, now);
        plan_fact(t, p, f, TMC_KNOWN_DEVICE_SEEN, m->device_id, refs[i].day, 0, now);
    }
}

/* ---- per measurement: latest values, units, partial aggregates ---------------------------------- */

struct point_ref {
    const struct iot_tm_message *m;
    const struct iot_tm_point *p;
    json_t *meta; /* the message's parsed metadata, or NULL */
};

static int cmp_point(const void *a, const void *b)
{
    const struct point_ref *x = a, *y = b;
    if (x->m->device_id != y->m->device_id)
        return x->m->device_id < y->m->device_id ? -1 : 1;
    int c = strcmp(x->p->name, y->p->name);
    if (c)
        return c;
    if (x->m->ts != y->m->ts)
        return x->m->ts < y->m->ts ? -1 : 1;
    return x->m->seq < y->m->seq ? -1 : x->m->seq > y->m->seq;
}

/* The unit metadata entry "<name>_unit" gives, if any (as on SQLite: a
 * string of 1..UNIT_MAX bytes). */
static const char *unit_of(json_t *meta, const char *name, size_t *len)
{
    if (!meta)
        return NULL;
    char key[IOT_TM_NAME_MAX + sizeof "_unit"];
    snprintf(key, sizeof key, "%s_unit", name);
    json_t *u = json_object_get(meta, key);
    const char *s = json_string_value(u);
    *len = s ? json_string_length(u) : 0;
    return s && *len > 0 && *len <= UNIT_MAX ? s : NULL;
}

static void encode_value(struct cql_buf *b, const struct iot_tm_value *v)
{
    cql_encode_tinyint(b, (int8_t)v->type);
    bool is_int = v->type == IOT_TM_BOOL || (v->type == IOT_TM_NUMBER && v->is_int);
    double num = v->type == IOT_TM_BOOL ? (v->boolean ? 1.0 : 0.0) : v->num;
    int64_t i = v->type == IOT_TM_BOOL ? (v->boolean ? 1 : 0) : v->i;
    if (v->type == IOT_TM_STRING)
        cql_encode_null(b);
    else
        cql_encode_double(b, num);
    if (is_int)
        cql_encode_bigint(b, i);
    else
        cql_encode_null(b);
    cql_encode_boolean(b, v->type == IOT_TM_NUMBER && v->is_int);
    if (v->type == IOT_TM_STRING)
        cql_encode_text(b, v->str ? v->str : "", v->str_len);
    else
        cql_encode_null(b);
}

/* Whether this round should range-delete the older latest rows of a
 * (device, name): every LATEST_PRUNE_EVERY-th value this process writes for
 * it (a direct-mapped table; a collision just prunes early). Between two
 * prunes a name keeps a few rows, of which readers take the newest — the
 * tombstones, not the rows, were a fifth of a round's cost. */
static bool latest_prune_due(struct tmc *t, int64_t device_id, const char *name)
{
    uint64_t h = (uint64_t)device_id * 0x9E3779B97F4A7C15u;
    for (const char *c = name; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001B3u;
    struct tmc_prune_slot *slot = &t->prune[h % TMC_PRUNE_SLOTS];
    pthread_mutex_lock(&t->count_lock);
    bool due = slot->hash != h || ++slot->writes >= LATEST_PRUNE_EVERY;
    if (due)
        slot->hash = h, slot->writes = 0;
    pthread_mutex_unlock(&t->count_lock);
    return due;
}

/* The newest point of a (device, name) run becomes its latest value;
 * now and then older latest rows of that name go (a range tombstone). */
static void plan_latest(struct tmc *t, struct plan *p, const struct point_ref *newest)
{
    const struct iot_tm_message *m = newest->m;
    size_t off = p->vals.len;
    cql_encode_bigint(&p->vals, m->device_id);
    cql_encode_bigint(&p->vals, TMC_SPAN_LIFETIME);
    cql_encode_text(&p->vals, newest->p->name, strlen(newest->p->name));
    cql_encode_timestamp(&p->vals, m->ts);
    cql_encode_bigint(&p->vals, m->seq);
    encode_value(&p->vals, &newest->p->value);
    plan_row(p, TMC_INS_LATEST, off, PART_DEVICE_DAY, m->device_id, TMC_SPAN_LIFETIME);
    if (!latest_prune_due(t, m->device_id, newest->p->name))
        return;
    off = p->vals.len;
    cql_encode_bigint(&p->vals, m->device_id);
    cql_encode_bigint(&p->vals, TMC_SPAN_LIFETIME);
    cql_encode_text(&p->vals, newest->p->name, strlen(newest->p->name));
    cql_encode_timestamp(&p->vals, m->ts);
    cql_encode_bigint(&p->vals, m->seq);
    plan_row(p, TMC_DEL_LATEST_OLDER, off, PART_DEVICE_DAY, m->device_id, TMC_SPAN_LIFETIME);
}

static void plan_unit(struct plan *p, const struct point_ref *run, size_t n)
{
    for (size_t i = n; i-- > 0;) { /* the newest message that gives one */
        size_t len;
        const char *unit = unit_of(run[i].meta, run[i].p->name, &len);
        if (!unit)
            continue;
        size_t off = p->vals.len;
        cql_encode_bigint(&p->vals, run[i].m->device_id);
        cql_encode_bigint(&p->vals, TMC_SPAN_LIFETIME);
        cql_encode_text(&p->vals, run[i].p->name, strlen(run[i].p->name));
        cql_encode_text(&p->vals, unit, len);
        plan_row(p, TMC_INS_UNIT, off, PART_DEVICE_DAY, run[i].m->device_id, TMC_SPAN_LIFETIME);
        return;
    }
}

/* One partial aggregate of this commit. */
struct partial {
    struct tmc_bucket_key k;
    struct tmc_agg a;
};

struct partials {
    struct partial *v;
    size_t n, cap;
    bool oom;
};

static void add_partial(struct partials *ps, const struct point_ref *run, size_t n,
                        int32_t width_h, int64_t start)
{
    if (!grow((void **)&ps->v, &ps->cap, ps->n, sizeof *ps->v)) {
        ps->oom = true;
        return;
    }
    struct partial *x = &ps->v[ps->n++];
    memset(x, 0, sizeof *x);
    x->k.device_id = run[0].m->device_id;
    x->k.width_h = width_h;
    x->k.start = start;
    x->k.span = width_h == TMC_WIDTH_LIFETIME ? TMC_SPAN_LIFETIME : tmc_span(start);
    snprintf(x->k.name, sizeof x->k.name, "%s", run[0].p->name);
    for (size_t i = 0; i < n; i++)
        tmc_agg_add_value(&x->a, run[i].m->ts, &run[i].p->value);
}

/* The buckets of one (device, name) run (sorted by ts): hourly and daily
 * for numbers and booleans, and the lifetime totals for every type. */
static void run_partials(struct partials *ps, const struct point_ref *run, size_t n)
{
    add_partial(ps, run, n, TMC_WIDTH_LIFETIME, 0);
    static const int32_t widths[] = {1, 24};
    for (size_t w = 0; w < 2; w++) {
        int64_t width = widths[w] * IOT_TM_HOUR;
        for (size_t i = 0; i < n;) {
            int64_t start = tmc_floor_div(run[i].m->ts, width) * width;
            size_t j = i;
            /* numeric points of this bucket (strings are not rolled up) */
            struct point_ref numeric[64];
            size_t k = 0;
            while (j < n && tmc_floor_div(run[j].m->ts, width) * width == start) {
                if (run[j].p->value.type != IOT_TM_STRING) {
                    numeric[k++] = run[j];
                    if (k == sizeof numeric / sizeof *numeric) {
                        add_partial(ps, numeric, k, widths[w], start);
                        k = 0;
                    }
                }
                j++;
            }
            if (k)
                add_partial(ps, numeric, k, widths[w], start);
            i = j;
        }
    }
}

static int cmp_partial(const void *a, const void *b)
{
    const struct partial *x = a, *y = b;
    if (x->k.device_id != y->k.device_id)
        return x->k.device_id < y->k.device_id ? -1 : 1;
    if (x->k.span != y->k.span)
        return x->k.span < y->k.span ? -1 : 1;
    if (x->k.width_h != y->k.width_h)
        return x->k.width_h < y->k.width_h ? -1 : 1;
    int c = strcmp(x->k.name, y->k.name);
    if (c)
        return c;
    return x->k.start < y->k.start ? -1 : x->k.start > y->k.start;
}

/* Partials of the same bucket (a bucket split above) are combined, then
 * one request per (device, span) partition. */
static void plan_partials(struct tmc *t, struct plan *p, struct partials *ps, int64_t seq,
                          int64_t now)
{
    qsort(ps->v, ps->n, sizeof *ps->v, cmp_partial);
    size_t k = 0;
    for (size_t i = 0; i < ps->n; i++) {
        if (k && cmp_partial(&ps->v[k - 1], &ps->v[i]) == 0)
            tmc_agg_merge(&ps->v[k - 1].a, &ps->v[i].a);
        else
            ps->v[k++] = ps->v[i];
    }
    ps->n = k;
    for (size_t i = 0; i < ps->n; i++) {
        const struct partial *x = &ps->v[i];
        int32_t ttl = x->k.width_h == TMC_WIDTH_LIFETIME
                          ? 0
                          : tmc_ttl(x->k.start + x->k.width_h * IOT_TM_HOUR, t->rollup_ttl_ms, now);
        size_t off = p->vals.len;
        tmc_encode_partial(&p->vals, &x->k, t->writer_id, seq, &x->a, ttl);
        plan_row(p, TMC_INS_PARTIAL, off, PART_DEVICE_DAY, x->k.device_id, x->k.span);
    }
}

/* Latest values and units (one request per device) and the partials. */
static int plan_points(struct tmc *t, struct plan *p, struct partials *ps,
                       const struct ref *refs, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += refs[i].m->n_points;
    struct point_ref *pts = malloc((total ? total : 1) * sizeof *pts);
    json_t **metas = calloc(n ? n : 1, sizeof *metas);
    if (!pts || !metas) {
        free(pts);
        free(metas);
        return IOT_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const struct iot_tm_message *m = refs[i].m;
        if (m->meta_json && m->meta_len)
            metas[i] = json_loadb(m->meta_json, m->meta_len, 0, NULL);
        for (size_t j = 0; j < m->n_points; j++)
            pts[k++] = (struct point_ref){m, &m->points[j], metas[i]};
    }
    qsort(pts, total, sizeof *pts, cmp_point);
    for (size_t i = 0; i < total;) {
        size_t j = i + 1;
        while (j < total && pts[j].m->device_id == pts[i].m->device_id &&
               strcmp(pts[j].p->name, pts[i].p->name) == 0)
            j++;
        plan_latest(t, p, &pts[j - 1]);
        plan_unit(p, pts + i, j - i);
        run_partials(ps, pts + i, j - i);
        i = j;
    }
    for (size_t i = 0; i < n; i++)
        json_decref(metas[i]);
    free(metas);
    free(pts);
    return ps->oom ? IOT_ENOMEM : IOT_OK;
}

/* ---- this writer's message count per day ----------------------------------------------------- */

static struct tmc_day_count *day_count(struct tmc *t, int64_t day)
{
    for (size_t i = 0; i < t->n_day_counts; i++)
        if (t->day_counts[i].day == day)
            return &t->day_counts[i];
    if (!grow((void **)&t->day_counts, &t->cap_day_counts, t->n_day_counts,
              sizeof *t->day_counts))
        return NULL;
    t->day_counts[t->n_day_counts] = (struct tmc_day_count){day, 0, false};
    return &t->day_counts[t->n_day_counts++];
}

/* Adds the batch's messages per day (refs sorted by device then day, so
 * equal days are not adjacent: count each) with sign +1, or takes them
 * back (-1) after a failure. With +1 the new totals are sent too, under
 * the lock, so that the session's increasing write timestamps follow the
 * totals' order and the newest total wins. */
static void count_days(struct tmc *t, struct tmc_group *g, const struct ref *refs, size_t n,
                       int sign, int64_t now)
{
    pthread_mutex_lock(&t->count_lock);
    for (size_t i = 0; i < n; i++) {
        struct tmc_day_count *c = day_count(t, refs[i].day);
        if (c)
            c->n += sign, c->dirty = sign > 0;
    }
    for (size_t d = 0; sign > 0 && d < t->n_day_counts; d++) {
        struct tmc_day_count *c = &t->day_counts[d];
        if (!c->dirty)
            continue;
        c->dirty = false;
        struct cql_buf v = {0};
        cql_encode_bigint(&v, c->day);
        cql_encode_bigint(&v, t->writer_id);
        cql_encode_bigint(&v, c->n);
        cql_encode_int(&v, tmc_ttl((c->day + 1) * IOT_TM_DAY, t->raw_ttl_ms, now));
        tmc_group_exec(t, g, TMC_INS_MSG_COUNT, &v, 0);
        cql_buf_free(&v);
    }
    pthread_mutex_unlock(&t->count_lock);
}

/* ---- write_batch ------------------------------------------------------------------------------ */

static void note_merges(struct tmc *t, const struct partials *ps, int64_t now)
{
    for (size_t i = 0; i < ps->n; i++) {
        struct tmc_bucket_key k = ps->v[i].k;
        k.touched_ms = now;
        k.partials = 1;
        tmc_merge_note(t, &k);
    }
}

static int write_new(struct tmc *t, struct ref *refs, size_t n)
{
    int64_t now = iot_now_ms(), seq = atomic_fetch_add(&t->commit_seq, 1) + 1;
    struct plan p = {0};
    struct partials ps = {0};
    struct facts facts = {0};
    struct ref *by_user = malloc(n * sizeof *by_user);
    int rc = by_user ? IOT_OK : IOT_ENOMEM;
    if (rc == IOT_OK) {
        memcpy(by_user, refs, n * sizeof *by_user);
        plan_device_rows(t, &p, refs, n, now);
        plan_user_rows(t, &p, by_user, n, now);
        plan_facts(t, &p, &facts, refs, n, now);
        rc = plan_points(t, &p, &ps, refs, n);
    }
    if (rc == IOT_OK)
        plan_partials(t, &p, &ps, seq, now);
    struct tmc_group g;
    tmc_group_init(&g);
    if (rc == IOT_OK)
        rc = plan_send(t, &p, &g);
    if (rc == IOT_OK)
        count_days(t, &g, refs, n, +1, now);
    int sent = tmc_group_wait(&g);
    if (rc == IOT_OK)
        rc = sent;
    if (rc == IOT_OK) {
        for (size_t i = 0; i < facts.n; i++)
            tmc_known_add(t, facts.v[i].kind, facts.v[i].a, facts.v[i].b);
        note_merges(t, &ps, now);
    } else if (sent != IOT_OK) {
        struct tmc_group none;
        tmc_group_init(&none);
        count_days(t, &none, refs, n, -1, now);
        tmc_group_wait(&none);
    }
    free(by_user);
    free(facts.v);
    free(ps.v);
    plan_free(&p);
    return rc;
}

int tmc_write_batch(void *self, const struct iot_tm_message *msgs, size_t n)
{
    struct tmc *t = self;
    int rc = iot_tm_check_batch(msgs, n);
    if (rc || n == 0)
        return rc;
    struct ref *refs = malloc(n * sizeof *refs);
    if (!refs)
        return IOT_ENOMEM;
    for (size_t i = 0; i < n; i++)
        refs[i] = (struct ref){&msgs[i], i, tmc_day(msgs[i].ts)};
    size_t left = unique_identities(refs, n);
    rc = drop_existing(t, refs, left, &left);
    if (rc == IOT_OK && left)
        rc = write_new(t, refs, left);
    free(refs);
    if (rc)
        IOT_WARN("cassandra: a batch of %zu messages was not written: %s", n, iot_strerror(rc));
    return rc;
}
