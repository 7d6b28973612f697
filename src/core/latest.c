/* latest.c — the latest-value cache protocol (see latest.h).
 *
 * An entry is the cache hash "latest:<device id>": one field per
 * measurement name, valued "<ts ms>|<JSON value>" so that readers know each
 * value's age, plus the field LATEST_COMPLETE. Only a refill from the
 * telemetry store, which sees every measurement, writes that field (in the
 * same hash_set as the values); ingest only merges into an entry. So an
 * entry is trusted only when it holds the mark: a merge into an entry that
 * expired, or that the store never filled, leaves a partial entry that
 * readers pass over.
 *
 * Merge or drop. The writer merges a device's newest message of a batch
 * only when it is at least as new as what this process last put in the
 * entry; an older (catching-up) message, or the first one this process
 * sees of a device, drops the entry instead, and the next read refills it
 * from the store, which keeps the newest value by timestamp.
 *
 * A shared cache (IOT_CACHE_CAP_SHARED: Redis) outlives the process and is
 * read by other instances, which this writer's memory of timestamps knows
 * nothing of: there the writer only drops entries, never merges, and a
 * refill lives LATEST_SHARED_TTL_MS. The writer cannot drop an entry when
 * it crashes between commit and fan-out or when Redis is down, and a reader
 * that read the store just before a commit may write its entry just after
 * the drop; the short life bounds how long such an entry is served. */
#include "core/latest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "core/tm_message.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/json_out.h"

#define LATEST_COMPLETE ":complete"
#define LATEST_TTL_MS 600000        /* an entry, merged into or refilled, in-process */
#define LATEST_SHARED_TTL_MS 5000   /* a refill in a shared cache (above) */
#define KEY_MAX 64
#define NEWEST_SLOTS 4096 /* devices whose newest cached timestamp the writer remembers */
/* "<ts>|" of a field: an int64 in decimal, the bar and a NUL. */
#define TS_PREFIX_MAX 24
/* A field of a number or a boolean: the prefix and a real at its longest. */
#define SCALAR_FIELD_MAX (TS_PREFIX_MAX + IOT_JSON_REAL_MAX)

static void latest_key(int64_t device_id, char key[KEY_MAX])
{
    snprintf(key, KEY_MAX, "latest:%lld", (long long)device_id);
}

/* ---- the field encoding --------------------------------------------------- */

/* Writes the field "<ts>|<JSON value>" of a number or a boolean into buf
 * (SCALAR_FIELD_MAX bytes) and returns its length; -1 for anything else
 * (a string: string_field) or a real JSON cannot hold. Formatted here, as
 * iot_tm_value_json and iot_json_dumps would type and print it (an integer
 * exact, a real in its shortest round-trip form and still a real: 21.0,
 * -0.0): the writer runs this for every point ingested, and a JSON value
 * costs several allocations. */
static int scalar_field(int64_t ts, const struct iot_tm_value *v, char *buf)
{
    if (v->type == IOT_TM_BOOL)
        return snprintf(buf, SCALAR_FIELD_MAX, "%lld|%s", (long long)ts,
                        v->boolean ? "true" : "false");
    if (v->type == IOT_TM_NUMBER && v->is_int)
        return snprintf(buf, SCALAR_FIELD_MAX, "%lld|%lld", (long long)ts, (long long)v->i);
    if (v->type != IOT_TM_NUMBER)
        return -1;
    int n = snprintf(buf, TS_PREFIX_MAX, "%lld|", (long long)ts);
    int r = iot_json_real_text(v->num, buf + n);
    return r < 0 ? -1 : n + r;
}

/* The field of a string value, malloc'ed (jansson escapes it); NULL when
 * out of memory. */
static char *string_field(int64_t ts, const struct iot_tm_value *v, size_t *len)
{
    json_t *jv = iot_tm_value_json(v);
    char *text = json_dumps(jv, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(jv);
    size_t cap = text ? strlen(text) + TS_PREFIX_MAX : 0;
    char *field = text ? malloc(cap) : NULL;
    int n = field ? snprintf(field, cap, "%lld|%s", (long long)ts, text) : -1;
    free(text);
    if (n < 0) {
        free(field);
        return NULL;
    }
    *len = (size_t)n;
    return field;
}

/* A field's timestamp and JSON text; false when it is not "<ts>|<json>". */
static bool parse_field(const char *field, size_t len, int64_t *ts, const char **json,
                        size_t *json_len)
{
    const char *bar = memchr(field, '|', len);
    if (!bar || bar == field || bar - field >= TS_PREFIX_MAX)
        return false;
    char digits[TS_PREFIX_MAX];
    memcpy(digits, field, (size_t)(bar - field));
    digits[bar - field] = '\0';
    char *end;
    long long t = strtoll(digits, &end, 10);
    if (*end != '\0')
        return false;
    *ts = t;
    *json = bar + 1;
    *json_len = len - (size_t)(bar + 1 - field);
    return true;
}

/* ---- writer side ------------------------------------------------------------ */

struct iot_latest_writer {
    bool shared; /* IOT_CACHE_CAP_SHARED: drop only */
    /* Newest timestamp this process put in each device's entry
     * (direct-mapped by device id). */
    struct { int64_t device_id, ts; } newest[NEWEST_SLOTS];
};

struct iot_latest_writer *iot_latest_writer_new(const struct iot_cache *cache)
{
    struct iot_latest_writer *w = calloc(1, sizeof *w);
    if (w)
        w->shared = (cache->ops->caps & IOT_CACHE_CAP_SHARED) != 0;
    return w;
}

void iot_latest_writer_free(struct iot_latest_writer *w)
{
    free(w);
}

/* The field of one point in f's arena; NULL when out of memory or when the
 * value cannot be written. */
static const char *arena_field(struct iot_fanout *f, int64_t ts, const struct iot_tm_value *v,
                               size_t *len)
{
    if (v->type != IOT_TM_STRING) {
        char *field = iot_fanout_alloc(f, SCALAR_FIELD_MAX);
        int n = field ? scalar_field(ts, v, field) : -1;
        *len = (size_t)n;
        return n < 0 ? NULL : field;
    }
    char *heap = string_field(ts, v, len);
    char *field = heap ? iot_fanout_alloc(f, *len + 1) : NULL;
    if (field)
        memcpy(field, heap, *len + 1);
    free(heap);
    return field;
}

/* Whether m may be merged: it is at least as new as what this process last
 * put in the device's entry. Remembers m's timestamp either way, starting
 * to follow a device it did not know. */
static bool may_merge(struct iot_latest_writer *w, const struct iot_tm_message *m)
{
    size_t slot = (size_t)((uint64_t)m->device_id % NEWEST_SLOTS);
    bool known = w->newest[slot].device_id == m->device_id;
    if (!known) {
        w->newest[slot].device_id = m->device_id;
        w->newest[slot].ts = m->ts;
        return false;
    }
    if (m->ts < w->newest[slot].ts)
        return false;
    w->newest[slot].ts = m->ts;
    return true;
}

void iot_latest_after_commit(struct iot_latest_writer *w, struct iot_fanout *f,
                             const struct iot_tm_message *m)
{
    char *key = iot_fanout_alloc(f, KEY_MAX);
    if (!key)
        return;
    latest_key(m->device_id, key);
    if (w->shared || !may_merge(w, m)) {
        iot_fanout_add(f, (struct iot_cache_write){.kind = IOT_CACHE_W_DEL, .key = key});
        return;
    }
    struct iot_cache_field *fields = iot_fanout_alloc(f, m->n_points * sizeof *fields + 1);
    if (!fields)
        return;
    size_t n = 0;
    for (size_t i = 0; i < m->n_points; i++) {
        size_t len;
        const char *value = arena_field(f, m->ts, &m->points[i].value, &len);
        if (value)
            fields[n++] = (struct iot_cache_field){m->points[i].name, value, len};
    }
    /* + 1: a complete entry also holds LATEST_COMPLETE */
    iot_fanout_add(f, (struct iot_cache_write){.kind = IOT_CACHE_W_HASH_SET, .key = key,
                                               .fields = fields, .n_fields = n,
                                               .ttl_ms = LATEST_TTL_MS,
                                               .max_fields = IOT_LATEST_NAMES_MAX + 1});
}

/* ---- reader side ------------------------------------------------------------ */

/* Fields kept as text: names and values one after the other in `text`
 * (each NUL-terminated), found by offset since `text` may move as it grows.
 * Holds a cache entry until it is known to be trusted, or a store read
 * until it is written back. */
struct kept {
    struct iot_buf text;
    struct kept_field {
        size_t name, value, value_len; /* offsets into text, the value's length */
        int64_t ts;
        size_t json; /* offset of the value's JSON text */
    } *v;
    size_t n, cap;
    bool failed; /* out of memory: not all kept */
};

static void kept_add(struct kept *k, const char *name, int64_t ts, const char *value,
                     size_t len, size_t json_at)
{
    if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 16;
        struct kept_field *grown = realloc(k->v, cap * sizeof *grown);
        if (!grown) {
            k->failed = true;
            return;
        }
        k->v = grown;
        k->cap = cap;
    }
    struct kept_field *f = &k->v[k->n++];
    f->name = k->text.len;
    iot_buf_append(&k->text, name, strlen(name) + 1);
    f->value = k->text.len;
    f->value_len = len;
    f->json = f->value + json_at;
    f->ts = ts;
    iot_buf_append(&k->text, value, len);
    iot_buf_append(&k->text, "", 1);
    k->failed |= k->text.failed;
}

static void kept_free(struct kept *k)
{
    iot_buf_free(&k->text);
    free(k->v);
    *k = (struct kept){0};
}

static int kept_deliver(const struct kept *k, size_t i, iot_latest_fn fn, void *ctx)
{
    const struct kept_field *f = &k->v[i];
    struct iot_latest_value v = {.name = k->text.data + f->name, .ts = f->ts,
                                 .json = k->text.data + f->json,
                                 .len = f->value_len - (f->json - f->value)};
    return fn(ctx, &v);
}

/* A cache entry as read: trusted when `complete`, unless too large. */
struct cached {
    struct kept k;
    bool complete;
    bool too_many; /* more names than an entry may hold: not trusted */
};

static int collect_cached(void *ctx, const char *field, const char *value, size_t len)
{
    struct cached *c = ctx;
    if (strcmp(field, LATEST_COMPLETE) == 0) {
        c->complete = true;
        return 0;
    }
    if (c->k.n == IOT_LATEST_NAMES_MAX) {
        c->too_many = true;
        return 1;
    }
    int64_t ts;
    const char *json;
    size_t json_len;
    /* a field that is not a valid name holding "<ts>|<json>" is not ours:
     * skipped (readers print names unescaped) */
    if (iot_tm_name_valid(field) && parse_field(value, len, &ts, &json, &json_len))
        kept_add(&c->k, field, ts, value, len, (size_t)(json - value));
    return 0;
}

/* The entry, when it is trusted and holds values; false otherwise (the
 * store answers). */
static bool read_cached(struct iot_cache *cache, const char *key, struct cached *c)
{
    int rc = iot_cache_hash_get_all(cache, key, collect_cached, c);
    return rc == IOT_OK && c->complete && !c->too_many && !c->k.failed && c->k.n > 0;
}

/* A store read on its way to the caller and, when whole, back to the cache. */
struct refill {
    iot_latest_fn fn;
    void *ctx;
    struct kept k;
    size_t n;
    bool stopped; /* the caller's answer was full: not whole */
};

static int from_store(void *ctx, const struct iot_tm_latest *l)
{
    struct refill *r = ctx;
    char scalar[SCALAR_FIELD_MAX];
    char *heap = NULL;
    const char *field = scalar;
    size_t len = 0;
    if (l->value.type == IOT_TM_STRING) {
        field = heap = string_field(l->ts, &l->value, &len);
    } else {
        int n = scalar_field(l->ts, &l->value, scalar);
        field = n < 0 ? NULL : scalar;
        len = (size_t)n;
    }
    if (!field) { /* out of memory, or a real JSON cannot hold */
        r->k.failed |= l->value.type == IOT_TM_STRING; /* an entry without it is not whole */
        return 0;
    }
    const char *bar = memchr(field, '|', len);
    size_t json_at = (size_t)(bar + 1 - field);
    r->n++;
    if (r->n <= IOT_LATEST_NAMES_MAX)
        kept_add(&r->k, l->name, l->ts, field, len, json_at);
    struct iot_latest_value v = {.name = l->name, .ts = l->ts, .json = field + json_at,
                                 .len = len - json_at};
    r->stopped = r->fn(r->ctx, &v) != 0;
    free(heap);
    return r->stopped;
}

/* Writes the store's whole answer back as a trusted entry, in one write. */
static void refill(struct iot_cache *cache, const char *key, const struct kept *k)
{
    struct iot_cache_field *fields = malloc((k->n + 1) * sizeof *fields);
    if (!fields)
        return;
    for (size_t i = 0; i < k->n; i++)
        fields[i] = (struct iot_cache_field){k->text.data + k->v[i].name,
                                             k->text.data + k->v[i].value, k->v[i].value_len};
    fields[k->n] = (struct iot_cache_field){LATEST_COMPLETE, "1", 1};
    bool shared = (cache->ops->caps & IOT_CACHE_CAP_SHARED) != 0;
    iot_cache_hash_set(cache, key, fields, k->n + 1,
                       shared ? LATEST_SHARED_TTL_MS : LATEST_TTL_MS);
    free(fields);
}

int iot_latest_read(struct iot_cache *cache, struct iot_telemetry *tm, int64_t device_id,
                    iot_latest_fn fn, void *ctx, bool *from_cache)
{
    char key[KEY_MAX];
    latest_key(device_id, key);
    struct cached c = {.complete = false};
    *from_cache = read_cached(cache, key, &c);
    iot_metrics_cache_lookup(IOT_METRICS_CACHE_LATEST_VALUES, *from_cache);
    if (*from_cache) {
        for (size_t i = 0; i < c.k.n && !kept_deliver(&c.k, i, fn, ctx); i++)
            ;
        kept_free(&c.k);
        return IOT_OK;
    }
    kept_free(&c.k);
    struct refill r = {.fn = fn, .ctx = ctx};
    int rc = iot_tm_latest(tm, device_id, from_store, &r);
    if (rc == IOT_OK && !r.stopped && r.n > 0 && r.n <= IOT_LATEST_NAMES_MAX && !r.k.failed)
        refill(cache, key, &r.k);
    kept_free(&r.k);
    return rc;
}

void iot_latest_forget(struct iot_cache *cache, int64_t device_id)
{
    char key[KEY_MAX];
    latest_key(device_id, key);
    iot_cache_del(cache, key);
}
