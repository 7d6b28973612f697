/* telemetry_sqlite_write.c — write_batch of the SQLite telemetry store.
 *
 * One BEGIN IMMEDIATE … COMMIT per batch: the messages (INSERT OR IGNORE,
 * so a retried identity is a no-op), then the derived rows. Those are
 * aggregated in C first, over the messages this batch really inserted, in
 * a small open-addressing hash map keyed by device (message counts), by
 * device + name (latest value and catalog) and by device + name + bucket
 * (hourly and daily rollups); then each distinct key costs one upsert, so a
 * batch where a device reports 10 times writes its rollup row once, not 10
 * times. The map and its arrays live on the store and are reused batch to
 * batch: only the writer (holding the writer lock) touches them, and a
 * steady ingest allocates nothing per message. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/telemetry_sqlite_int.h"
#include "util/err.h"
#include "util/clock.h"
#include <stdio.h>
int64_t EXP_t[8]; long EXP_n[8];

enum {
    BATCH_MAX = 65536, /* messages per write_batch (IOT_ELIMIT beyond) */
    UNIT_MAX = 64,     /* bytes of a unit; longer ones are ignored */
    KEEP_ENTRIES = 1 << 16, /* scratch larger than this is freed after the batch */
    FIRST_CAP = 256,
};

enum agg_kind { K_DEVICE, K_SERIES, K_HOUR, K_DAY };

struct agg_key {
    int64_t device_id;
    int64_t start;    /* bucket start for K_HOUR / K_DAY, else 0 */
    const char *name; /* borrowed from the batch; NULL for K_DEVICE */
    uint32_t name_len;
    uint32_t kind;
};

struct agg_series {
    const struct iot_tm_value *val; /* newest sample, borrowed from the batch */
    int64_t ts, seq;
    int64_t first, last, count;
    int64_t unit_ts, unit_seq; /* message that gave the unit */
    uint32_t unit_off, unit_len;
    bool has_unit;
};

struct agg_rollup {
    int64_t count;
    double sum, min, max;
};

struct agg_entry {
    struct agg_key k;
    uint64_t hash;
    union {
        struct {
            int64_t user_id, messages;
        } dev;
        struct agg_series ser;
        struct agg_rollup roll;
    } v;
};

struct iot_tmsql_agg {
    struct agg_entry *e; /* in first-seen order */
    size_t n, cap;
    uint32_t *slots; /* index + 1 into e, 0 = empty; power-of-two size */
    size_t nslots;
    char *units; /* unit strings of this batch (meta JSON is freed per message) */
    size_t units_len, units_cap;
};

/* ---- validation -------------------------------------------------------- */

static int check_value(const struct iot_tm_value *v)
{
    switch (v->type) {
    case IOT_TM_NUMBER: return isfinite(v->num) ? IOT_OK : IOT_EINVAL;
    case IOT_TM_BOOL: return IOT_OK;
    case IOT_TM_STRING:
        return v->str_len <= IOT_TM_STRING_MAX && (v->str || v->str_len == 0) ? IOT_OK
                                                                              : IOT_EINVAL;
    default: return IOT_EINVAL;
    }
}

static int check_message(const struct iot_tm_message *m)
{
    if (!m->data_json || m->data_len == 0 || m->data_len > IOT_TM_DATA_JSON_MAX)
        return IOT_EINVAL;
    if (m->meta_json && m->meta_len > IOT_TM_DATA_JSON_MAX)
        return IOT_EINVAL;
    if (m->n_points > IOT_TM_POINTS_MAX || (m->n_points && !m->points))
        return IOT_EINVAL;
    for (size_t i = 0; i < m->n_points; i++) {
        const struct iot_tm_point *p = &m->points[i];
        if (!p->name || !iot_tmsql_name_ok(p->name, strnlen(p->name, IOT_TM_NAME_MAX + 1)))
            return IOT_EINVAL;
        int rc = check_value(&p->value);
        if (rc)
            return rc;
    }
    return IOT_OK;
}

/* All of the batch is checked before anything is written. */
static int check_batch(const struct iot_tm_message *msgs, size_t n)
{
    if (!msgs)
        return IOT_EINVAL;
    if (n > BATCH_MAX)
        return IOT_ELIMIT;
    for (size_t i = 0; i < n; i++) {
        int rc = check_message(&msgs[i]);
        if (rc)
            return rc;
    }
    return IOT_OK;
}

/* ---- the map ------------------------------------------------------------ */

static uint64_t key_hash(const struct agg_key *k)
{
    uint64_t h = (uint64_t)k->device_id * UINT64_C(0x9E3779B97F4A7C15);
    h ^= ((uint64_t)k->start + k->kind) * UINT64_C(0xC2B2AE3D27D4EB4F);
    for (uint32_t i = 0; i < k->name_len; i++)
        h = (h ^ (unsigned char)k->name[i]) * UINT64_C(0x100000001B3);
    h ^= h >> 29;
    h *= UINT64_C(0xBF58476D1CE4E5B9);
    return h ^ (h >> 32);
}

static bool key_eq(const struct agg_key *a, const struct agg_key *b)
{
    return a->device_id == b->device_id && a->start == b->start && a->kind == b->kind &&
           a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0;
}

static void slots_fill(struct iot_tmsql_agg *a)
{
    size_t mask = a->nslots - 1;
    memset(a->slots, 0, a->nslots * sizeof *a->slots);
    for (size_t i = 0; i < a->n; i++) {
        size_t j = a->e[i].hash & mask;
        while (a->slots[j])
            j = (j + 1) & mask;
        a->slots[j] = (uint32_t)i + 1;
    }
}

/* Makes room for one more entry, keeping the load factor <= 1/2. */
static int agg_reserve(struct iot_tmsql_agg *a)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : FIRST_CAP;
        struct agg_entry *e = realloc(a->e, cap * sizeof *e);
        if (!e)
            return IOT_ENOMEM;
        a->e = e;
        a->cap = cap;
    }
    if (2 * (a->n + 1) > a->nslots) {
        size_t ns = a->nslots ? 2 * a->nslots : 2 * FIRST_CAP;
        uint32_t *sl = malloc(ns * sizeof *sl);
        if (!sl)
            return IOT_ENOMEM;
        free(a->slots);
        a->slots = sl;
        a->nslots = ns;
        slots_fill(a);
    }
    return IOT_OK;
}

/* The entry for `k`, added zeroed (then *fresh is true) when missing. */
static struct agg_entry *agg_get(struct iot_tmsql_agg *a, const struct agg_key *k, bool *fresh)
{
    if (agg_reserve(a) != IOT_OK)
        return NULL;
    uint64_t h = key_hash(k);
    size_t mask = a->nslots - 1, j = h & mask;
    for (; a->slots[j]; j = (j + 1) & mask) {
        struct agg_entry *e = &a->e[a->slots[j] - 1];
        if (e->hash == h && key_eq(&e->k, k)) {
            *fresh = false;
            return e;
        }
    }
    struct agg_entry *e = &a->e[a->n];
    memset(e, 0, sizeof *e);
    e->k = *k;
    e->hash = h;
    a->slots[j] = (uint32_t)++a->n;
    *fresh = true;
    return e;
}

static void agg_reset(struct iot_tmsql_agg *a)
{
    a->n = 0;
    a->units_len = 0;
    if (a->nslots)
        memset(a->slots, 0, a->nslots * sizeof *a->slots);
}

void iot_tmsql_agg_free(struct iot_tmsql_agg *a)
{
    static const char *nm[] = {"insert", "device", "latest", "catalog", "rollup", "agg", "commit"};
    for (int i = 0; i < 7; i++) if (EXP_n[i]) fprintf(stderr, "EXP %-8s n=%ld total=%.2fs per=%.2fus\n", nm[i], EXP_n[i], EXP_t[i]/1e6, (double)EXP_t[i]/EXP_n[i]);
    if (!a)
        return;
    free(a->e);
    free(a->slots);
    free(a->units);
    free(a);
}

/* Copies a unit string into the batch's unit buffer. */
static int units_add(struct iot_tmsql_agg *a, const char *s, size_t len, uint32_t *off)
{
    if (a->units_len + len > a->units_cap) {
        size_t cap = a->units_cap ? a->units_cap : 1024;
        while (cap < a->units_len + len)
            cap *= 2;
        char *p = realloc(a->units, cap);
        if (!p)
            return IOT_ENOMEM;
        a->units = p;
        a->units_cap = cap;
    }
    memcpy(a->units + a->units_len, s, len);
    *off = (uint32_t)a->units_len;
    a->units_len += len;
    return IOT_OK;
}

/* ---- aggregation -------------------------------------------------------- */

static bool newer(int64_t ts, int64_t seq, int64_t than_ts, int64_t than_seq)
{
    return ts > than_ts || (ts == than_ts && seq > than_seq);
}

static int add_device(struct iot_tmsql_agg *a, const struct iot_tm_message *m)
{
    struct agg_key k = {.device_id = m->device_id, .kind = K_DEVICE};
    bool fresh;
    struct agg_entry *e = agg_get(a, &k, &fresh);
    if (!e)
        return IOT_ENOMEM;
    e->v.dev.user_id = m->user_id;
    e->v.dev.messages++;
    return IOT_OK;
}

static int add_rollup(struct iot_tmsql_agg *a, const struct iot_tm_message *m, const char *name,
                      uint32_t len, enum agg_kind kind, double v)
{
    int64_t width = kind == K_HOUR ? IOT_TM_HOUR : IOT_TM_DAY;
    struct agg_key k = {.device_id = m->device_id, .start = iot_tmsql_bucket(m->ts, width),
                        .name = name, .name_len = len, .kind = kind};
    bool fresh;
    struct agg_entry *e = agg_get(a, &k, &fresh);
    if (!e)
        return IOT_ENOMEM;
    struct agg_rollup *r = &e->v.roll;
    if (fresh || v < r->min)
        r->min = v;
    if (fresh || v > r->max)
        r->max = v;
    r->count++;
    r->sum += v;
    return IOT_OK;
}

/* The unit that metadata entry "<name>_unit" gives, if any. */
static const char *unit_of(json_t *meta, const char *name, size_t len, size_t *unit_len)
{
    char key[IOT_TM_NAME_MAX + sizeof "_unit"];
    memcpy(key, name, len);
    memcpy(key + len, "_unit", sizeof "_unit");
    json_t *u = json_object_get(meta, key);
    const char *s = json_string_value(u);
    if (!s)
        return NULL;
    *unit_len = json_string_length(u);
    return *unit_len <= UNIT_MAX ? s : NULL;
}

static int add_point(struct iot_tmsql_agg *a, const struct iot_tm_message *m,
                     const struct iot_tm_point *p, json_t *meta)
{
    uint32_t len = (uint32_t)strlen(p->name);
    struct agg_key k = {.device_id = m->device_id, .name = p->name, .name_len = len,
                        .kind = K_SERIES};
    bool fresh;
    struct agg_entry *e = agg_get(a, &k, &fresh);
    if (!e)
        return IOT_ENOMEM;
    struct agg_series *s = &e->v.ser;
    if (fresh || newer(m->ts, m->seq, s->ts, s->seq)) {
        s->val = &p->value;
        s->ts = m->ts;
        s->seq = m->seq;
    }
    if (fresh || m->ts < s->first)
        s->first = m->ts;
    if (fresh || m->ts > s->last)
        s->last = m->ts;
    s->count++;
    size_t ulen;
    const char *unit = meta ? unit_of(meta, p->name, len, &ulen) : NULL;
    if (unit && (!s->has_unit || !newer(s->unit_ts, s->unit_seq, m->ts, m->seq))) {
        if (units_add(a, unit, ulen, &s->unit_off) != IOT_OK)
            return IOT_ENOMEM;
        s->unit_len = (uint32_t)ulen;
        s->unit_ts = m->ts;
        s->unit_seq = m->seq;
        s->has_unit = true;
    }
    if (p->value.type == IOT_TM_STRING)
        return IOT_OK; /* strings are not rolled up */
    double v = p->value.type == IOT_TM_BOOL ? (p->value.boolean ? 1.0 : 0.0) : p->value.num;
    int rc = add_rollup(a, m, p->name, len, K_HOUR, v);
    return rc ? rc : add_rollup(a, m, p->name, len, K_DAY, v);
}

/* The metadata object, parsed only when it may hold a unit: most messages
 * carry none, and parsing would double the cost of ingesting them. */
static json_t *meta_with_units(const struct iot_tm_message *m)
{
    if (!m->meta_json || m->meta_len < 5 || !memmem(m->meta_json, m->meta_len, "_unit", 5))
        return NULL;
    json_t *j = json_loadb(m->meta_json, m->meta_len, 0, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

static int add_message(struct iot_tmsql_agg *a, const struct iot_tm_message *m)
{
    int rc = add_device(a, m);
    json_t *meta = rc == IOT_OK ? meta_with_units(m) : NULL;
    for (size_t i = 0; i < m->n_points && rc == IOT_OK; i++)
        rc = add_point(a, m, &m->points[i], meta);
    json_decref(meta);
    return rc;
}

/* ---- statements ---------------------------------------------------------- */

static int insert_message(struct iot_sqldb_conn *c, sqlite3_stmt *st,
                          const struct iot_tm_message *m, bool *inserted)
{
    sqlite3_bind_int64(st, 1, m->device_id);
    sqlite3_bind_int64(st, 2, m->ts);
    sqlite3_bind_int64(st, 3, m->seq);
    sqlite3_bind_int64(st, 4, m->user_id);
    sqlite3_bind_text(st, 5, m->data_json, (int)m->data_len, SQLITE_STATIC);
    if (m->meta_json)
        sqlite3_bind_text(st, 6, m->meta_json, (int)m->meta_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    int rc = iot_sqldb_step_done(st);
    *inserted = rc == IOT_OK && sqlite3_changes(iot_sqldb_handle(c)) > 0;
    return rc;
}

static void bind_name(sqlite3_stmt *st, int i, const struct agg_key *k)
{
    sqlite3_bind_text(st, i, k->name, (int)k->name_len, SQLITE_STATIC);
}

static int put_device(sqlite3_stmt *st, const struct agg_entry *e)
{
    sqlite3_bind_int64(st, 1, e->k.device_id);
    sqlite3_bind_int64(st, 2, e->v.dev.user_id);
    sqlite3_bind_int64(st, 3, e->v.dev.messages);
    return iot_sqldb_step_done(st);
}

static int put_latest(sqlite3_stmt *st, const struct agg_entry *e)
{
    const struct agg_series *s = &e->v.ser;
    const struct iot_tm_value *v = s->val;
    sqlite3_bind_int64(st, 1, e->k.device_id);
    bind_name(st, 2, &e->k);
    sqlite3_bind_int(st, 3, (int)v->type);
    if (v->type == IOT_TM_STRING) {
        sqlite3_bind_null(st, 4);
        sqlite3_bind_text(st, 5, v->str_len ? v->str : "", (int)v->str_len, SQLITE_STATIC);
    } else {
        sqlite3_bind_double(st, 4, v->type == IOT_TM_BOOL ? (v->boolean ? 1.0 : 0.0) : v->num);
        sqlite3_bind_null(st, 5);
    }
    sqlite3_bind_int64(st, 6, s->ts);
    sqlite3_bind_int64(st, 7, s->seq);
    return iot_sqldb_step_done(st);
}

static int put_catalog(sqlite3_stmt *st, const struct iot_tmsql_agg *a, const struct agg_entry *e)
{
    const struct agg_series *s = &e->v.ser;
    sqlite3_bind_int64(st, 1, e->k.device_id);
    bind_name(st, 2, &e->k);
    sqlite3_bind_int(st, 3, (int)s->val->type);
    if (s->has_unit)
        sqlite3_bind_text(st, 4, a->units + s->unit_off, (int)s->unit_len, SQLITE_STATIC);
    else
        sqlite3_bind_text(st, 4, "", 0, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, s->first);
    sqlite3_bind_int64(st, 6, s->last);
    sqlite3_bind_int64(st, 7, s->count);
    return iot_sqldb_step_done(st);
}

static int put_rollup(sqlite3_stmt *st, const struct agg_entry *e)
{
    const struct agg_rollup *r = &e->v.roll;
    sqlite3_bind_int64(st, 1, e->k.device_id);
    bind_name(st, 2, &e->k);
    sqlite3_bind_int64(st, 3, e->k.kind == K_HOUR ? IOT_TM_HOUR : IOT_TM_DAY);
    sqlite3_bind_int64(st, 4, e->k.start);
    sqlite3_bind_int64(st, 5, r->count);
    sqlite3_bind_double(st, 6, r->sum);
    sqlite3_bind_double(st, 7, r->min);
    sqlite3_bind_double(st, 8, r->max);
    return iot_sqldb_step_done(st);
}

struct flush_stmts {
    sqlite3_stmt *dev, *latest, *catalog, *rollup;
};

static int flush_stmts(struct iot_sqldb_conn *c, struct flush_stmts *f)
{
    int rc = iot_sqldb_stmt(c, TMS_DEV_ADD, &f->dev);
    if (rc == IOT_OK)
        rc = iot_sqldb_stmt(c, TMS_LATEST_ADD, &f->latest);
    if (rc == IOT_OK)
        rc = iot_sqldb_stmt(c, TMS_CATALOG_ADD, &f->catalog);
    if (rc == IOT_OK)
        rc = iot_sqldb_stmt(c, TMS_ROLLUP_ADD, &f->rollup);
    return rc;
}

/* One upsert per distinct key of the batch. */
static int flush(struct iot_sqldb_conn *c, const struct iot_tmsql_agg *a)
{
    struct flush_stmts f;
    int rc = flush_stmts(c, &f);
    for (size_t i = 0; i < a->n && rc == IOT_OK; i++) {
        const struct agg_entry *e = &a->e[i];
        int64_t t0 = iot_mono_us();
        switch (e->k.kind) {
        case K_DEVICE: rc = put_device(f.dev, e); EXP_t[1] += iot_mono_us()-t0; EXP_n[1]++; break;
        case K_SERIES:
            rc = put_latest(f.latest, e);
            EXP_t[2] += iot_mono_us()-t0; EXP_n[2]++; t0 = iot_mono_us();
            if (rc == IOT_OK)
                rc = put_catalog(f.catalog, a, e);
            EXP_t[3] += iot_mono_us()-t0; EXP_n[3]++;
            break;
        default: rc = put_rollup(f.rollup, e); EXP_t[4] += iot_mono_us()-t0; EXP_n[4]++; break;
        }
    }
    return rc;
}

/* Inserts the messages, aggregating the ones that were new. */
static int insert_all(struct iot_sqldb_conn *c, struct iot_tmsql_agg *a,
                      const struct iot_tm_message *msgs, size_t n)
{
    sqlite3_stmt *st;
    int rc = iot_sqldb_stmt(c, TMS_MSG_INSERT, &st);
    for (size_t i = 0; i < n && rc == IOT_OK; i++) {
        bool inserted;
        int64_t t0 = iot_mono_us();
        rc = insert_message(c, st, &msgs[i], &inserted);
        EXP_t[0] += iot_mono_us()-t0; EXP_n[0]++; t0 = iot_mono_us();
        if (rc == IOT_OK && inserted)
            rc = add_message(a, &msgs[i]);
        EXP_t[5] += iot_mono_us()-t0; EXP_n[5]++;
    }
    return rc;
}

/* Scratch that grew for an unusual batch is not kept for ever. */
static void agg_trim(struct iot_tmsql *s)
{
    if (s->agg && s->agg->cap > KEEP_ENTRIES) {
        iot_tmsql_agg_free(s->agg);
        s->agg = NULL;
    }
}

int iot_tmsql_write_batch(void *self, const struct iot_tm_message *msgs, size_t n)
{
    struct iot_tmsql *s = self;
    if (n == 0)
        return IOT_OK;
    int rc = check_batch(msgs, n);
    if (rc)
        return rc;
    struct iot_sqldb_conn *c;
    rc = iot_sqldb_write_begin(s->db, &c);
    if (rc)
        return rc;
    /* from here on the writer lock is held: s->agg is ours */
    if (!s->agg)
        s->agg = calloc(1, sizeof *s->agg);
    if (!s->agg)
        rc = IOT_ENOMEM;
    if (rc == IOT_OK) {
        agg_reset(s->agg);
        rc = insert_all(c, s->agg, msgs, n);
    }
    if (rc == IOT_OK)
        rc = flush(c, s->agg);
    agg_trim(s);
    int64_t t0 = iot_mono_us();
    rc = iot_sqldb_write_end(s->db, c, rc);
    EXP_t[6] += iot_mono_us()-t0; EXP_n[6]++;
    return rc;
}
