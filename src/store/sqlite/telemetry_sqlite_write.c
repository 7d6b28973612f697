/* telemetry_sqlite_write.c — write_batch's validation, and the map of
 * derived deltas that a flush fills and applies.
 *
 * write_batch checks the whole batch, then stages it: one record of the
 * commit log that carries the messages (telemetry_sqlite_stage.c). The
 * messages reach `messages`, and
 * their derived rows — latest value, catalog, hourly and daily rollups,
 * device counts — their tables, in a later flush, aggregated over every
 * batch it takes: with single-message HTTP ingest every message of a batch
 * is another device, so nothing aggregates within a batch, while over a
 * tenth of a second a device's messages share their leaf page and its
 * series aggregate well. Every read flushes first (iot_tmsql_sync).
 *
 * The map: open addressing, keyed by device (message count, owner), by
 * device + name (latest value and catalog) and by device + name + bucket
 * (rollups). Each distinct key costs one upsert row at flush. It owns its
 * text (names, string values, units) in one buffer addressed by offsets, so
 * nothing points into the flushed batches, and it is reused flush to flush.
 * Only the holder of s->mu touches it. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/telemetry_sqlite_int.h"
#include "util/err.h"

enum {
    UNIT_MAX = 64,     /* bytes of a unit; longer ones are ignored */
    KEEP_ENTRIES = 1 << 16,  /* a map larger than this is freed at reset */
    KEEP_TEXT = 4 << 20,     /* bytes of text kept at reset */
    FIRST_CAP = 256,
};

/* ---- the map ------------------------------------------------------------ */

enum agg_kind { K_DEVICE, K_SERIES, K_HOUR, K_DAY };

/* A key as looked up: the name is the caller's. */
struct probe {
    int64_t device_id;
    int64_t start; /* bucket start for K_HOUR / K_DAY, else 0 */
    const char *name; /* NULL for K_DEVICE */
    uint32_t name_len;
    uint32_t kind;
};

/* A key as stored: the name is in the map's text. */
struct agg_key {
    int64_t device_id;
    int64_t start;
    uint32_t name_off, name_len;
    uint32_t kind;
};

struct agg_series {
    int64_t ts, seq; /* newest sample */
    double num;      /* its value when a number or a boolean (0/1) */
    int64_t inum;    /* its exact value when is_int */
    bool is_int;     /* a number given as an integer */
    uint32_t str_off, str_len, str_cap; /* its value when a string, in text */
    uint32_t type;
    int64_t first, last, count;
    int64_t unit_batch, unit_ts, unit_seq; /* message that gave the unit */
    uint32_t unit_off, unit_len;           /* a UNIT_MAX slot in text */
    bool has_unit;
};

/* The integer samples (integers, booleans) also exactly: ints of them,
 * summing to isum (isum_over: the sum left int64, isum_approx holds it). */
struct agg_rollup {
    int64_t count;
    double sum, min, max;
    int64_t ints, isum, imin, imax;
    bool isum_over;
    double isum_approx;
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
    char *text; /* names, string values, units */
    size_t text_len, text_cap;
};

static uint64_t key_hash(const struct probe *k)
{
    uint64_t h = (uint64_t)k->device_id * UINT64_C(0x9E3779B97F4A7C15);
    h ^= ((uint64_t)k->start + k->kind) * UINT64_C(0xC2B2AE3D27D4EB4F);
    for (uint32_t i = 0; i < k->name_len; i++)
        h = (h ^ (unsigned char)k->name[i]) * UINT64_C(0x100000001B3);
    h ^= h >> 29;
    h *= UINT64_C(0xBF58476D1CE4E5B9);
    return h ^ (h >> 32);
}

static bool key_eq(const struct iot_tmsql_agg *a, const struct agg_key *e, const struct probe *k)
{
    return e->device_id == k->device_id && e->start == k->start && e->kind == k->kind &&
           e->name_len == k->name_len &&
           (k->name_len == 0 || memcmp(a->text + e->name_off, k->name, k->name_len) == 0);
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
        if (cap > UINT32_MAX / 2)
            return IOT_ENOMEM;
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

/* Reserves `len` bytes of text; *off is where they start. */
static int text_alloc(struct iot_tmsql_agg *a, size_t len, uint32_t *off)
{
    if (a->text_len + len > a->text_cap) {
        size_t cap = a->text_cap ? a->text_cap : 4096;
        while (cap < a->text_len + len)
            cap *= 2;
        if (cap > UINT32_MAX)
            return IOT_ENOMEM;
        char *p = realloc(a->text, cap);
        if (!p)
            return IOT_ENOMEM;
        a->text = p;
        a->text_cap = cap;
    }
    *off = (uint32_t)a->text_len;
    a->text_len += len;
    return IOT_OK;
}

/* The entry for `k`, added zeroed (then *fresh is true) when missing. A new
 * entry's name is copied into the text, or is the text at `name_off` when
 * that is not negative (a rollup reuses its series' name). */
static struct agg_entry *agg_get(struct iot_tmsql_agg *a, const struct probe *k, int64_t name_off,
                                 bool *fresh)
{
    if (agg_reserve(a) != IOT_OK)
        return NULL;
    uint64_t h = key_hash(k);
    size_t mask = a->nslots - 1, j = h & mask;
    for (; a->slots[j]; j = (j + 1) & mask) {
        struct agg_entry *e = &a->e[a->slots[j] - 1];
        if (e->hash == h && key_eq(a, &e->k, k)) {
            *fresh = false;
            return e;
        }
    }
    uint32_t off = 0;
    if (name_off >= 0) {
        off = (uint32_t)name_off;
    } else if (k->name_len) {
        if (text_alloc(a, k->name_len, &off) != IOT_OK)
            return NULL;
        memcpy(a->text + off, k->name, k->name_len);
    }
    struct agg_entry *e = &a->e[a->n];
    memset(e, 0, sizeof *e);
    e->k = (struct agg_key){.device_id = k->device_id, .start = k->start, .name_off = off,
                            .name_len = k->name_len, .kind = k->kind};
    e->hash = h;
    a->slots[j] = (uint32_t)++a->n;
    *fresh = true;
    return e;
}

struct iot_tmsql_agg *iot_tmsql_agg_new(void) { return calloc(1, sizeof(struct iot_tmsql_agg)); }

void iot_tmsql_agg_free(struct iot_tmsql_agg *a)
{
    if (!a)
        return;
    free(a->e);
    free(a->slots);
    free(a->text);
    free(a);
}

/* Empties the map; storage that grew for an unusual load is given back. */
void iot_tmsql_agg_reset(struct iot_tmsql_agg *a)
{
    if (!a)
        return;
    if (a->cap > KEEP_ENTRIES) {
        free(a->e);
        free(a->slots);
        a->e = NULL;
        a->slots = NULL;
        a->cap = a->nslots = 0;
    }
    if (a->text_cap > KEEP_TEXT) {
        free(a->text);
        a->text = NULL;
        a->text_cap = 0;
    }
    a->n = 0;
    a->text_len = 0;
    if (a->nslots)
        memset(a->slots, 0, a->nslots * sizeof *a->slots);
}

/* ---- aggregation -------------------------------------------------------- */

static bool newer(int64_t ts, int64_t seq, int64_t than_ts, int64_t than_seq)
{
    return ts > than_ts || (ts == than_ts && seq > than_seq);
}

/* The owner is the one the latest written message gave. */
static int add_device(struct iot_tmsql_agg *a, const struct iot_tm_message *m)
{
    struct probe k = {.device_id = m->device_id, .kind = K_DEVICE};
    bool fresh;
    struct agg_entry *e = agg_get(a, &k, -1, &fresh);
    if (!e)
        return IOT_ENOMEM;
    e->v.dev.user_id = m->user_id;
    e->v.dev.messages++;
    return IOT_OK;
}

/* A sample's integer value, if it has one (booleans are 0/1). */
static bool int_value(const struct iot_tm_value *v, int64_t *out)
{
    if (v->type == IOT_TM_BOOL)
        return *out = v->boolean ? 1 : 0, true;
    return v->type == IOT_TM_NUMBER && v->is_int ? (*out = v->i, true) : false;
}

static void add_int(struct agg_rollup *r, int64_t i)
{
    if (r->ints == 0 || i < r->imin)
        r->imin = i;
    if (r->ints == 0 || i > r->imax)
        r->imax = i;
    r->ints++;
    r->isum_approx += (double)i;
    if (!r->isum_over && __builtin_add_overflow(r->isum, i, &r->isum))
        r->isum_over = true;
}

static int add_rollup(struct iot_tmsql_agg *a, const struct iot_tm_message *m,
                      const struct probe *series, uint32_t name_off, enum agg_kind kind,
                      const struct iot_tm_value *value)
{
    double v = value->type == IOT_TM_BOOL ? (value->boolean ? 1.0 : 0.0) : value->num;
    int64_t width = kind == K_HOUR ? IOT_TM_HOUR : IOT_TM_DAY;
    struct probe k = *series;
    k.start = iot_tmsql_bucket(m->ts, width);
    k.kind = kind;
    bool fresh;
    struct agg_entry *e = agg_get(a, &k, name_off, &fresh);
    if (!e)
        return IOT_ENOMEM;
    struct agg_rollup *r = &e->v.roll;
    if (fresh || v < r->min)
        r->min = v;
    if (fresh || v > r->max)
        r->max = v;
    r->count++;
    r->sum += v;
    int64_t i;
    if (int_value(value, &i))
        add_int(r, i);
    return IOT_OK;
}

/* The unit that metadata entry "<name>_unit" gives, if any (an empty one
 * gives none). */
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
    return *unit_len > 0 && *unit_len <= UNIT_MAX ? s : NULL;
}

/* The series' newest value becomes v (a string is copied into the text,
 * over the previous one when it fits). */
static int set_value(struct iot_tmsql_agg *a, struct agg_series *s, const struct iot_tm_value *v)
{
    s->type = (uint32_t)v->type;
    s->is_int = v->type == IOT_TM_NUMBER && v->is_int;
    s->inum = v->i;
    switch (v->type) {
    case IOT_TM_BOOL: s->num = v->boolean ? 1.0 : 0.0; return IOT_OK;
    case IOT_TM_STRING: break;
    default: s->num = v->num; return IOT_OK;
    }
    if (v->str_len > s->str_cap) {
        uint32_t off;
        if (text_alloc(a, v->str_len, &off) != IOT_OK)
            return IOT_ENOMEM;
        s->str_off = off;
        s->str_cap = (uint32_t)v->str_len;
    }
    if (v->str_len)
        memcpy(a->text + s->str_off, v->str, v->str_len);
    s->str_len = (uint32_t)v->str_len;
    return IOT_OK;
}

/* A unit given by a later batch replaces an earlier one whatever the
 * timestamps (units are metadata, not samples); within a batch the newest
 * message's wins. */
static int set_unit(struct iot_tmsql_agg *a, struct agg_series *s, const struct iot_tm_message *m,
                    int64_t batch, const char *unit, size_t len)
{
    if (s->has_unit && (batch < s->unit_batch ||
                        (batch == s->unit_batch && newer(s->unit_ts, s->unit_seq, m->ts, m->seq))))
        return IOT_OK;
    if (!s->has_unit && text_alloc(a, UNIT_MAX, &s->unit_off) != IOT_OK)
        return IOT_ENOMEM;
    memcpy(a->text + s->unit_off, unit, len);
    s->unit_len = (uint32_t)len;
    s->unit_batch = batch;
    s->unit_ts = m->ts;
    s->unit_seq = m->seq;
    s->has_unit = true;
    return IOT_OK;
}

static int add_point(struct iot_tmsql_agg *a, const struct iot_tm_message *m,
                     const struct iot_tm_point *p, json_t *meta, int64_t batch)
{
    uint32_t len = (uint32_t)strlen(p->name);
    struct probe k = {.device_id = m->device_id, .name = p->name, .name_len = len,
                      .kind = K_SERIES};
    bool fresh;
    struct agg_entry *e = agg_get(a, &k, -1, &fresh);
    if (!e)
        return IOT_ENOMEM;
    struct agg_series *s = &e->v.ser;
    if (fresh || newer(m->ts, m->seq, s->ts, s->seq)) {
        if (set_value(a, s, &p->value) != IOT_OK)
            return IOT_ENOMEM;
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
    if (unit && set_unit(a, s, m, batch, unit, ulen) != IOT_OK)
        return IOT_ENOMEM;
    if (p->value.type == IOT_TM_STRING)
        return IOT_OK; /* strings are not rolled up */
    uint32_t name_off = e->k.name_off; /* e may move when the map grows */
    int rc = add_rollup(a, m, &k, name_off, K_HOUR, &p->value);
    return rc ? rc : add_rollup(a, m, &k, name_off, K_DAY, &p->value);
}

/* The metadata object, parsed only when it may hold a unit: most messages
 * carry none, and parsing would double the cost of ingesting them. */
static json_t *meta_with_units(const struct iot_tm_message *m, int *rc)
{
    *rc = IOT_OK;
    if (!m->meta_json || m->meta_len < 5 || !memmem(m->meta_json, m->meta_len, "_unit", 5))
        return NULL;
    json_error_t err;
    json_t *j = json_loadb(m->meta_json, m->meta_len, JSON_ALLOW_NUL, &err);
    if (!j && json_error_code(&err) == json_error_out_of_memory)
        *rc = IOT_ENOMEM;
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

int iot_tmsql_agg_add(struct iot_tmsql_agg *a, const struct iot_tm_message *m, int64_t batch)
{
    int rc = add_device(a, m);
    json_t *meta = rc == IOT_OK ? meta_with_units(m, &rc) : NULL;
    for (size_t i = 0; i < m->n_points && rc == IOT_OK; i++)
        rc = add_point(a, m, &m->points[i], meta, batch);
    json_decref(meta);
    return rc;
}

/* ---- applying the map ----------------------------------------------------- */

/* The upserts of the derived rows, as "INSERT INTO <head> VALUES (row)…
 * <tail>": one statement carries up to MULTI_ROWS rows, which halves the
 * per-row cost of stepping, binding and resetting (measured: 1.8 → 1.4 us
 * a row for rollups with 32 rows a statement). The keys of one statement are
 * distinct (they come from the map), so no row updates another's. Each row
 * is a delta over any number of batches; merging it into the stored row
 * gives what applying the batches one by one would. */
enum upsert_kind { U_DEVICE, U_LATEST, U_CATALOG, U_ROLLUP, U__COUNT };
enum { MULTI_ROWS = 32 };

struct upsert_sql {
    const char *head;
    int ncols;
    const char *tail;
};

static const struct upsert_sql upsert_sql[U__COUNT] = {
    [U_DEVICE] = {"devices (device_id, user_id, messages)", 3,
                  " ON CONFLICT (device_id) DO UPDATE SET user_id = excluded.user_id,"
                  " messages = messages + excluded.messages"},
    [U_LATEST] = {"latest (device_id, name, type, num, str, ts, seq, val)", 8,
                  " ON CONFLICT (device_id, name) DO UPDATE SET type = excluded.type,"
                  " num = excluded.num, str = excluded.str, ts = excluded.ts,"
                  " seq = excluded.seq, val = excluded.val"
                  " WHERE (excluded.ts, excluded.seq) > (latest.ts, latest.seq)"},
    /* The stored type follows the newest sample; a unit given later
     * replaces an earlier one (units are metadata, not samples). */
    [U_CATALOG] = {"catalog (device_id, name, type, unit, first_seen, last_seen, count)", 7,
                   " ON CONFLICT (device_id, name) DO UPDATE SET"
                   " type = CASE WHEN excluded.last_seen >= catalog.last_seen"
                   " THEN excluded.type ELSE catalog.type END,"
                   " unit = CASE WHEN excluded.unit <> '' THEN excluded.unit"
                   " ELSE catalog.unit END,"
                   " first_seen = min(catalog.first_seen, excluded.first_seen),"
                   " last_seen = max(catalog.last_seen, excluded.last_seen),"
                   " count = catalog.count + excluded.count"},
    /* isum: SQLite turns an integer sum that overflows into a REAL, which
     * readers take as "not exact". imin/imax are NULL without integers. */
    [U_ROLLUP] = {"rollups (device_id, name, width, start, count, sum, vmin, vmax,"
                  " ints, isum, imin, imax)", 12,
                  " ON CONFLICT (device_id, name, width, start) DO UPDATE SET"
                  " count = count + excluded.count, sum = sum + excluded.sum,"
                  " vmin = min(vmin, excluded.vmin), vmax = max(vmax, excluded.vmax),"
                  " ints = ints + excluded.ints, isum = isum + excluded.isum,"
                  " imin = CASE WHEN imin IS NULL OR excluded.imin < imin"
                  " THEN excluded.imin ELSE imin END,"
                  " imax = CASE WHEN imax IS NULL OR excluded.imax > imax"
                  " THEN excluded.imax ELSE imax END"},
};

struct upsert_key {
    enum upsert_kind kind;
    int rows;
};

static int build_upsert(const void *arg, char *buf, size_t size)
{
    const struct upsert_key *k = arg;
    const struct upsert_sql *u = &upsert_sql[k->kind];
    size_t n = (size_t)snprintf(buf, size, "INSERT INTO %s VALUES ", u->head);
    for (int r = 0; r < k->rows && n < size; r++) {
        n += (size_t)snprintf(buf + n, size - n, "%s(?", r ? ", " : "");
        for (int c = 1; c < u->ncols && n < size; c++)
            n += (size_t)snprintf(buf + n, size - n, ", ?");
        if (n < size)
            n += (size_t)snprintf(buf + n, size - n, ")");
    }
    if (n < size)
        n += (size_t)snprintf(buf + n, size - n, "%s", u->tail);
    return n < size ? IOT_OK : IOT_EINTERNAL;
}

/* Dynamic slots: kind x {one row, MULTI_ROWS rows}. */
static int upsert_stmt(struct iot_sqldb_conn *c, enum upsert_kind kind, int rows,
                       sqlite3_stmt **out)
{
    struct upsert_key k = {.kind = kind, .rows = rows};
    int slot = (int)kind * 2 + (rows == MULTI_ROWS ? 1 : 0);
    return iot_sqldb_dyn_stmt(c, slot, build_upsert, &k, out);
}

/* Each binder fills one row's parameters, base + 1 onwards. Text is bound
 * SQLITE_STATIC from the map, which does not change while it is applied. */
static void bind_text(sqlite3_stmt *st, int i, const struct iot_tmsql_agg *a, uint32_t off,
                      uint32_t len)
{
    sqlite3_bind_text(st, i, len ? a->text + off : "", (int)len, SQLITE_STATIC);
}

static void bind_device(sqlite3_stmt *st, int base, const struct iot_tmsql_agg *a,
                        const struct agg_entry *e)
{
    sqlite3_bind_int64(st, base + 1, e->k.device_id);
    sqlite3_bind_int64(st, base + 2, e->v.dev.user_id);
    sqlite3_bind_int64(st, base + 3, e->v.dev.messages);
}

static void bind_latest(sqlite3_stmt *st, int base, const struct iot_tmsql_agg *a,
                        const struct agg_entry *e)
{
    const struct agg_series *s = &e->v.ser;
    sqlite3_bind_int64(st, base + 1, e->k.device_id);
    bind_text(st, base + 2, a, e->k.name_off, e->k.name_len);
    sqlite3_bind_int(st, base + 3, (int)s->type);
    if (s->type == IOT_TM_STRING) {
        sqlite3_bind_null(st, base + 4);
        bind_text(st, base + 5, a, s->str_off, s->str_len);
    } else {
        sqlite3_bind_double(st, base + 4, s->num);
        sqlite3_bind_null(st, base + 5);
    }
    sqlite3_bind_int64(st, base + 6, s->ts);
    sqlite3_bind_int64(st, base + 7, s->seq);
    if (s->type == IOT_TM_NUMBER && s->is_int)
        sqlite3_bind_int64(st, base + 8, s->inum);
    else if (s->type == IOT_TM_NUMBER)
        sqlite3_bind_double(st, base + 8, s->num); /* -0.0 survives in `val` */
    else
        sqlite3_bind_null(st, base + 8);
}

static void bind_catalog(sqlite3_stmt *st, int base, const struct iot_tmsql_agg *a,
                         const struct agg_entry *e)
{
    const struct agg_series *s = &e->v.ser;
    sqlite3_bind_int64(st, base + 1, e->k.device_id);
    bind_text(st, base + 2, a, e->k.name_off, e->k.name_len);
    sqlite3_bind_int(st, base + 3, (int)s->type);
    if (s->has_unit)
        bind_text(st, base + 4, a, s->unit_off, s->unit_len);
    else
        bind_text(st, base + 4, a, 0, 0);
    sqlite3_bind_int64(st, base + 5, s->first);
    sqlite3_bind_int64(st, base + 6, s->last);
    sqlite3_bind_int64(st, base + 7, s->count);
}

static void bind_rollup(sqlite3_stmt *st, int base, const struct iot_tmsql_agg *a,
                        const struct agg_entry *e)
{
    const struct agg_rollup *r = &e->v.roll;
    sqlite3_bind_int64(st, base + 1, e->k.device_id);
    bind_text(st, base + 2, a, e->k.name_off, e->k.name_len);
    sqlite3_bind_int64(st, base + 3, e->k.kind == K_HOUR ? IOT_TM_HOUR : IOT_TM_DAY);
    sqlite3_bind_int64(st, base + 4, e->k.start);
    sqlite3_bind_int64(st, base + 5, r->count);
    sqlite3_bind_double(st, base + 6, r->sum);
    sqlite3_bind_double(st, base + 7, r->min);
    sqlite3_bind_double(st, base + 8, r->max);
    sqlite3_bind_int64(st, base + 9, r->ints);
    if (r->isum_over)
        sqlite3_bind_double(st, base + 10, r->isum_approx);
    else
        sqlite3_bind_int64(st, base + 10, r->isum);
    if (r->ints) {
        sqlite3_bind_int64(st, base + 11, r->imin);
        sqlite3_bind_int64(st, base + 12, r->imax);
    } else {
        sqlite3_bind_null(st, base + 11);
        sqlite3_bind_null(st, base + 12);
    }
}

typedef void (*bind_fn)(sqlite3_stmt *st, int base, const struct iot_tmsql_agg *a,
                        const struct agg_entry *e);
static const bind_fn binders[U__COUNT] = {
    [U_DEVICE] = bind_device,
    [U_LATEST] = bind_latest,
    [U_CATALOG] = bind_catalog,
    [U_ROLLUP] = bind_rollup,
};

/* Upserts `n` (1 or MULTI_ROWS) entries with one statement. */
static int upsert_rows(struct iot_sqldb_conn *c, const struct iot_tmsql_agg *a,
                       enum upsert_kind kind, const struct agg_entry *const *e, int n)
{
    sqlite3_stmt *st;
    int rc = upsert_stmt(c, kind, n, &st);
    if (rc)
        return rc;
    for (int i = 0; i < n; i++)
        binders[kind](st, i * upsert_sql[kind].ncols, a, e[i]);
    return iot_sqldb_step_done(st);
}

/* Entries waiting for a full statement, per upsert kind. */
struct rows {
    const struct agg_entry *e[MULTI_ROWS];
    int n;
};

static int queue_row(struct iot_sqldb_conn *c, const struct iot_tmsql_agg *a, struct rows *q,
                     enum upsert_kind kind, const struct agg_entry *e)
{
    q[kind].e[q[kind].n++] = e;
    if (q[kind].n < MULTI_ROWS)
        return IOT_OK;
    q[kind].n = 0;
    return upsert_rows(c, a, kind, q[kind].e, MULTI_ROWS);
}

/* One upsert row per distinct key. */
int iot_tmsql_agg_apply(struct iot_sqldb_conn *c, const struct iot_tmsql_agg *a)
{
    struct rows q[U__COUNT];
    for (int k = 0; k < U__COUNT; k++)
        q[k].n = 0;
    int rc = IOT_OK;
    for (size_t i = 0; a && i < a->n && rc == IOT_OK; i++) {
        const struct agg_entry *e = &a->e[i];
        switch (e->k.kind) {
        case K_DEVICE: rc = queue_row(c, a, q, U_DEVICE, e); break;
        case K_SERIES:
            rc = queue_row(c, a, q, U_LATEST, e);
            if (rc == IOT_OK)
                rc = queue_row(c, a, q, U_CATALOG, e);
            break;
        default: rc = queue_row(c, a, q, U_ROLLUP, e); break;
        }
    }
    for (int k = 0; k < U__COUNT && rc == IOT_OK; k++)
        for (int i = 0; i < q[k].n && rc == IOT_OK; i++)
            rc = upsert_rows(c, a, (enum upsert_kind)k, &q[k].e[i], 1);
    return rc;
}

/* ---- write_batch ------------------------------------------------------------ */

/* Validates all of the batch, then stages it (telemetry_sqlite_stage.c). */
int iot_tmsql_write_batch(void *self, const struct iot_tm_message *msgs, size_t n)
{
    if (n == 0)
        return IOT_OK;
    int rc = iot_tm_check_batch(msgs, n);
    return rc ? rc : iot_tmsql_stage_write(self, msgs, n);
}
