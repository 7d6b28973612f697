/* The in-process cache: lifetime, the keyspace core (lookup, lazy expiry,
 * incremental sweep), plain keys, counters and gauges, and the ops table.
 * The other data types live in cache_memory_types.c, pub/sub in
 * cache_memory_pubsub.c. */
#include "store/memory/cache_memory.h"

#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/memory/mem_cache.h"
#include "util/clock.h"
#include "util/err.h"

/* Buckets the expiry sweep visits per write. The keyspace keeps about one key
 * per bucket and a write adds at most one key, so a full pass over the table
 * completes within nbuckets / SWEEP_BUCKETS writes: keys that expire and are
 * never read again stay a bounded fraction of the keyspace. */
#define SWEEP_BUCKETS 16

/* Long enough for any int64 or "%.17g" double, plus the NUL. */
#define NUMBER_TEXT_MAX 32

/* ---- small helpers (argument checks: iot_cache_check_* in store/cache.c) ---- */

int64_t iot_mem_deadline(int64_t now, int64_t ttl_ms)
{
    if (ttl_ms == 0)
        return 0;
    if (now > INT64_MAX - ttl_ms)
        return INT64_MAX;
    return now + ttl_ms;
}

struct iot_mem_blob *iot_mem_blob_new(const char *data, size_t len)
{
    struct iot_mem_blob *b = malloc(sizeof *b + len + 1);
    if (!b)
        return NULL;
    b->len = len;
    if (len)
        memcpy(b->data, data, len);
    b->data[len] = '\0';
    return b;
}

int iot_mem_value_copy(const char *data, size_t len, struct iot_cache_value *out)
{
    char *p = malloc(len + 1);
    if (!p)
        return IOT_ENOMEM;
    if (len)
        memcpy(p, data, len);
    p[len] = '\0';
    out->data = p;
    out->len = len;
    return IOT_OK;
}

/* ---- keyspace core ---- */

static bool entry_expired(const struct iot_mem_entry *e, int64_t now)
{
    return e->expire_at != 0 && now >= e->expire_at;
}

struct iot_mtab_node *iot_mem_lookup_locked(struct iot_mem_cache *c, const char *key, size_t klen,
                                            int64_t now)
{
    struct iot_mtab_node *n = iot_mtab_find(&c->keys, key, klen);
    if (n && entry_expired(n->val.ptr, now)) {
        iot_mem_delete_locked(c, n);
        return NULL;
    }
    return n;
}

int iot_mem_lookup_type_locked(struct iot_mem_cache *c, const char *key, size_t klen,
                               int64_t now, enum iot_mem_type type, struct iot_mtab_node **out)
{
    struct iot_mtab_node *n = iot_mem_lookup_locked(c, key, klen, now);
    if (!n)
        return IOT_ENOTFOUND;
    const struct iot_mem_entry *e = n->val.ptr;
    if (e->type != type)
        return IOT_EINVAL;
    *out = n;
    return IOT_OK;
}

struct iot_mtab_node *iot_mem_create_locked(struct iot_mem_cache *c, const char *key,
                                            size_t klen, enum iot_mem_type type)
{
    struct iot_mem_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->type = type;
    struct iot_mtab_node *n = iot_mtab_add(&c->keys, key, klen);
    if (!n) {
        free(e);
        return NULL;
    }
    n->val.ptr = e;
    return n;
}

void iot_mem_delete_locked(struct iot_mem_cache *c, struct iot_mtab_node *n)
{
    struct iot_mem_entry *e = n->val.ptr;
    iot_mem_entry_release_locked(c, e);
    free(e);
    iot_mtab_remove(&c->keys, n);
}

struct sweep_ctx {
    struct iot_mem_cache *c;
    int64_t now;
};

static bool sweep_pred(void *ctx, const struct iot_mtab_node *n)
{
    const struct sweep_ctx *s = ctx;
    return entry_expired(n->val.ptr, s->now);
}

static void keys_free(void *ctx, struct iot_mtab_node *n)
{
    const struct sweep_ctx *s = ctx;
    iot_mem_entry_release_locked(s->c, n->val.ptr);
    free(n->val.ptr);
}

void iot_mem_sweep_locked(struct iot_mem_cache *c, int64_t now)
{
    struct sweep_ctx s = {.c = c, .now = now};
    iot_mtab_sweep(&c->keys, SWEEP_BUCKETS, sweep_pred, keys_free, &s);
}

/* The key, emptied and retyped, whatever it held before (Redis SET
 * semantics); NULL when out of memory. The entry's TTL is cleared. */
static struct iot_mtab_node *replace_locked(struct iot_mem_cache *c, const char *key, size_t klen,
                                            enum iot_mem_type type)
{
    struct iot_mtab_node *n = iot_mtab_find(&c->keys, key, klen);
    if (!n)
        return iot_mem_create_locked(c, key, klen, type);
    struct iot_mem_entry *e = n->val.ptr;
    iot_mem_entry_release_locked(c, e);
    memset(e, 0, sizeof *e);
    e->type = type;
    return n;
}

/* ---- string-like values: string, counter, gauge ---- */

/* The Redis string an entry of a string-like type stands for; numbers are
 * formatted into buf. IOT_EINVAL for the other types. */
static int entry_text(const struct iot_mem_entry *e, char buf[NUMBER_TEXT_MAX], const char **p,
                      size_t *len)
{
    int n;
    switch (e->type) {
    case IOT_MEM_STRING:
        *p = e->u.str->data;
        *len = e->u.str->len;
        return IOT_OK;
    case IOT_MEM_COUNTER:
        n = snprintf(buf, NUMBER_TEXT_MAX, "%" PRId64, e->u.counter);
        break;
    case IOT_MEM_GAUGE:
        n = snprintf(buf, NUMBER_TEXT_MAX, "%.17g", e->u.gauge);
        break;
    default:
        return IOT_EINVAL;
    }
    if (n < 0 || n >= NUMBER_TEXT_MAX)
        return IOT_EINTERNAL;
    *p = buf;
    *len = (size_t)n;
    return IOT_OK;
}

/* Parses an int64 the way Redis INCR accepts one: optional '-', digits, no
 * '+', no spaces, no leading zeros. */
static bool parse_int64(const char *s, size_t len, int64_t *out)
{
    size_t i = s[0] == '-' ? 1 : 0;
    if (len == i || len > 20 || (s[i] == '0' && len > 1))
        return false;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (s[0] == '-') {
        if (v > (uint64_t)INT64_MAX + 1)
            return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v;
    }
    return true;
}

/* Reads a string-like entry as an integer and turns it into a counter, as
 * INCR does with a string that holds one. The TTL is kept. */
static int entry_to_counter(struct iot_mem_cache *c, struct iot_mem_entry *e)
{
    if (e->type == IOT_MEM_COUNTER)
        return IOT_OK;
    char buf[NUMBER_TEXT_MAX];
    const char *p;
    size_t len;
    int64_t v;
    int rc = entry_text(e, buf, &p, &len);
    if (rc)
        return rc;
    if (len == 0 || !parse_int64(p, len, &v))
        return IOT_EINVAL;
    iot_mem_entry_release_locked(c, e);
    e->type = IOT_MEM_COUNTER;
    e->u.counter = v;
    return IOT_OK;
}

/* ---- lifetime ---- */

static int mem_open(const char *url, void **self)
{
    if (!self)
        return IOT_EINVAL;
    *self = NULL;
    if (url && url[0] && strcmp(url, "memory") != 0 && strcmp(url, "memory://") != 0)
        return IOT_EINVAL;
    if (sodium_init() < 0)
        return IOT_EINTERNAL;
    struct iot_mem_cache *c = calloc(1, sizeof *c);
    if (!c)
        return IOT_ENOMEM;
    randombytes_buf(c->seed, sizeof c->seed);
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return IOT_EINTERNAL;
    }
    if (pthread_mutex_init(&c->presence_lock, NULL) != 0) {
        pthread_mutex_destroy(&c->lock);
        free(c);
        return IOT_EINTERNAL;
    }
    int rc = iot_mem_pubsub_init(&c->ps, c->seed);
    if (rc) {
        pthread_mutex_destroy(&c->presence_lock);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return rc;
    }
    iot_mtab_init(&c->keys, c->seed);
    iot_mtab_init(&c->users, c->seed);
    iot_mtab_init(&c->presence, c->seed);
    *self = c;
    return IOT_OK;
}

static void mem_close(void *self)
{
    struct iot_mem_cache *c = self;
    if (!c)
        return;
    iot_mem_pubsub_fini(&c->ps);
    /* Freeing a session entry unlinks it from c->users, so clear keys first. */
    struct sweep_ctx s = {.c = c, .now = 0};
    iot_mtab_clear(&c->keys, keys_free, &s);
    iot_mtab_clear(&c->users, NULL, NULL);
    iot_mtab_clear(&c->presence, NULL, NULL);
    pthread_mutex_destroy(&c->presence_lock);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static int mem_ping(void *self) { return self ? IOT_OK : IOT_EINVAL; }

/* ---- plain keys ---- */

static int mem_set(void *self, const char *key, const char *val, size_t len, int64_t ttl_ms)
{
    struct iot_mem_cache *c = self;
    size_t klen;
    if (iot_cache_check_key(key, &klen) || iot_cache_check_value(val, len) ||
        iot_cache_check_ttl(ttl_ms))
        return IOT_EINVAL;
    /* Copy the value before taking the lock: it may be a megabyte. */
    struct iot_mem_blob *b = iot_mem_blob_new(val, len);
    if (!b)
        return IOT_ENOMEM;
    int64_t now = iot_now_ms();
    pthread_mutex_lock(&c->lock);
    iot_mem_sweep_locked(c, now);
    struct iot_mtab_node *n = replace_locked(c, key, klen, IOT_MEM_STRING);
    if (n) {
        struct iot_mem_entry *e = n->val.ptr;
        e->u.str = b;
        e->expire_at = iot_mem_deadline(now, ttl_ms);
    }
    pthread_mutex_unlock(&c->lock);
    if (!n) {
        free(b);
        return IOT_ENOMEM;
    }
    return IOT_OK;
}

static int mem_get(void *self, const char *key, struct iot_cache_value *out)
{
    struct iot_mem_cache *c = self;
    size_t klen;
    if (!out)
        return IOT_EINVAL;
    out->data = NULL;
    out->len = 0;
    if (iot_cache_check_key(key, &klen))
        return IOT_EINVAL;
    int64_t now = iot_now_ms();
    pthread_mutex_lock(&c->lock);
    struct iot_mtab_node *n = iot_mem_lookup_locked(c, key, klen, now);
    int rc = IOT_ENOTFOUND;
    if (n) {
        char buf[NUMBER_TEXT_MAX];
        const char *p;
        size_t len;
        rc = entry_text(n->val.ptr, buf, &p, &len);
        if (rc == IOT_OK)
            rc = iot_mem_value_copy(p, len, out);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static int mem_del(void *self, const char *key)
{
    struct iot_mem_cache *c = self;
    size_t klen;
    if (iot_cache_check_key(key, &klen))
        return IOT_EINVAL;
    int64_t now = iot_now_ms();
    pthread_mutex_lock(&c->lock);
    iot_mem_sweep_locked(c, now);
    struct iot_mtab_node *n = iot_mtab_find(&c->keys, key, klen);
    if (n)
        iot_mem_delete_locked(c, n);
    pthread_mutex_unlock(&c->lock);
    return IOT_OK;
}

/* ---- counters and gauges ---- */

static bool add_overflows(int64_t a, int64_t b)
{
    return (b > 0 && a > INT64_MAX - b) || (b < 0 && a < INT64_MIN - b);
}

static int incr_locked(struct iot_mem_cache *c, const char *key, size_t klen, int64_t delta,
                       int64_t ttl_ms, int64_t now, int64_t *out)
{
    struct iot_mtab_node *n = iot_mem_lookup_locked(c, key, klen, now);
    if (!n) {
        n = iot_mem_create_locked(c, key, klen, IOT_MEM_COUNTER);
        if (!n)
            return IOT_ENOMEM;
        struct iot_mem_entry *fresh = n->val.ptr;
        fresh->expire_at = iot_mem_deadline(now, ttl_ms);
    }
    struct iot_mem_entry *e = n->val.ptr;
    int rc = entry_to_counter(c, e);
    if (rc)
        return rc;
    if (add_overflows(e->u.counter, delta))
        return IOT_EINVAL;
    e->u.counter += delta;
    if (out)
        *out = e->u.counter;
    return IOT_OK;
}

static int mem_incr(void *self, const char *key, int64_t delta, int64_t ttl_ms, int64_t *out)
{
    struct iot_mem_cache *c = self;
    size_t klen;
    if (iot_cache_check_key(key, &klen) || iot_cache_check_ttl(ttl_ms))
        return IOT_EINVAL;
    int64_t now = iot_now_ms();
    pthread_mutex_lock(&c->lock);
    iot_mem_sweep_locked(c, now);
    int rc = incr_locked(c, key, klen, delta, ttl_ms, now, out);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static int mem_gauge_set(void *self, const char *key, double value)
{
    struct iot_mem_cache *c = self;
    size_t klen;
    /* NaN and infinities have no JSON form and Redis would not parse them
     * back as numbers. */
    if (iot_cache_check_key(key, &klen) || !isfinite(value))
        return IOT_EINVAL;
    int64_t now = iot_now_ms();
    pthread_mutex_lock(&c->lock);
    iot_mem_sweep_locked(c, now);
    struct iot_mtab_node *n = replace_locked(c, key, klen, IOT_MEM_GAUGE);
    if (n) {
        struct iot_mem_entry *e = n->val.ptr;
        e->u.gauge = value;
    }
    pthread_mutex_unlock(&c->lock);
    return n ? IOT_OK : IOT_ENOMEM;
}

/* A string-like entry read as a double (what GET + strtod would give). */
static int entry_double(const struct iot_mem_entry *e, double *out)
{
    switch (e->type) {
    case IOT_MEM_GAUGE:
        *out = e->u.gauge;
        return IOT_OK;
    case IOT_MEM_COUNTER:
        *out = (double)e->u.counter;
        return IOT_OK;
    case IOT_MEM_STRING:
        return iot_cache_parse_double(e->u.str->data, e->u.str->len, out) ? IOT_OK : IOT_EINVAL;
    default:
        return IOT_EINVAL;
    }
}

static int mem_gauge_get(void *self, const char *key, double *out)
{
    struct iot_mem_cache *c = self;
    size_t klen;
    if (!out || iot_cache_check_key(key, &klen))
        return IOT_EINVAL;
    int64_t now = iot_now_ms();
    pthread_mutex_lock(&c->lock);
    struct iot_mtab_node *n = iot_mem_lookup_locked(c, key, klen, now);
    int rc = n ? entry_double(n->val.ptr, out) : IOT_ENOTFOUND;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

const struct iot_cache_ops iot_cache_memory;

/* In process there is no round trip to save: one op after another; a
 * hash write through the bounded set, which the op table has no slot for. */
static int mem_write_batch(void *self, const struct iot_cache_write *w, size_t n)
{
    int first = IOT_OK;
    for (size_t i = 0; i < n; i++) {
        int rc = w[i].kind == IOT_CACHE_W_HASH_SET
                     ? iot_mem_hash_set_bounded(self, w[i].key, w[i].fields, w[i].n_fields,
                                                w[i].ttl_ms, w[i].max_fields)
                     : iot_cache_write_batch_each(&iot_cache_memory, self, &w[i], 1);
        if (first == IOT_OK)
            first = rc;
    }
    return first;
}

const struct iot_cache_ops iot_cache_memory = {
    .name = "memory",
    .version = 1,
    /* Keys expire, but nothing is shared with other processes: neither
     * IOT_CACHE_CAP_SHARED nor IOT_CACHE_CAP_PUBSUB. */
    .caps = IOT_CACHE_CAP_TTL,
    .open = mem_open,
    .close = mem_close,
    .ping = mem_ping,
    .set = mem_set,
    .get = mem_get,
    .del = mem_del,
    .incr = mem_incr,
    .gauge_set = mem_gauge_set,
    .gauge_get = mem_gauge_get,
    .rate_hit = iot_mem_rate_hit,
    .session_put = iot_mem_session_put,
    .session_get = iot_mem_session_get,
    .session_del = iot_mem_session_del,
    .session_drop_user = iot_mem_session_drop_user,
    .presence_touch = iot_mem_presence_touch,
    .presence_get = iot_mem_presence_get,
    .presence_remove = iot_mem_presence_remove,
    .presence_count = iot_mem_presence_count,
    .hash_set = iot_mem_hash_set,
    .hash_get_all = iot_mem_hash_get_all,
    .list_push = iot_mem_list_push,
    .list_range = iot_mem_list_range,
    .publish = iot_mem_publish,
    .subscribe = iot_mem_subscribe,
    .unsubscribe = iot_mem_unsubscribe,
    .write_batch = mem_write_batch,
};
