/* The in-process cache's structured types: sliding-window rate limits,
 * sessions with their per-user index, presence, hashes and capped lists.
 * Callbacks (hash_get_all, list_range) run on a snapshot taken under the
 * lock and released before the first call, so they may call the cache. */
#include <stdlib.h>
#include <string.h>

#include "store/memory/mem_cache.h"
#include "util/clock.h"
#include "util/err.h"

/* Accepted hit times, oldest first, in a ring that grows up to the limit. */
struct iot_mem_rate {
    int64_t *ts;
    size_t head, count, cap;
};

/* Items in push order in a ring: oldest at head, newest at head+count-1. */
struct iot_mem_list {
    struct iot_mem_blob **items;
    size_t head, count, cap;
};

/* The keyspace nodes of one user's sessions (for session_drop_user). */
struct iot_mem_user {
    struct iot_mtab_node **sessions;
    size_t n, cap;
};

static void session_detach_locked(struct iot_mem_cache *c, struct iot_mem_session *s);

static void hash_field_free(void *ctx, struct iot_mtab_node *n) { free(n->val.ptr); }

void iot_mem_entry_release_locked(struct iot_mem_cache *c, struct iot_mem_entry *e)
{
    switch (e->type) {
    case IOT_MEM_STRING:
        free(e->u.str);
        break;
    case IOT_MEM_COUNTER:
    case IOT_MEM_GAUGE:
        break;
    case IOT_MEM_HASH:
        iot_mtab_clear(e->u.hash, hash_field_free, NULL);
        free(e->u.hash);
        break;
    case IOT_MEM_LIST:
        for (size_t i = 0; i < e->u.list->count; i++)
            free(e->u.list->items[(e->u.list->head + i) % e->u.list->cap]);
        free(e->u.list->items);
        free(e->u.list);
        break;
    case IOT_MEM_RATE:
        free(e->u.rate->ts);
        free(e->u.rate);
        break;
    case IOT_MEM_SESSION:
        session_detach_locked(c, e->u.session);
        break;
    }
    memset(&e->u, 0, sizeof e->u);
}

/* Finds `key` holding `type` (hash, list or rate), or creates it empty. */
static int get_or_create_locked(struct iot_mem_cache *c, const char *key, size_t klen,
                                int64_t now, enum iot_mem_type type,
                                struct iot_mtab_node **out)
{
    int rc = iot_mem_lookup_type_locked(c, key, klen, now, type, out);
    if (rc != IOT_ENOTFOUND)
        return rc;
    void *payload = NULL;
    switch (type) {
    case IOT_MEM_HASH:
        payload = malloc(sizeof(struct iot_mtab));
        if (payload)
            iot_mtab_init(payload, c->seed);
        break;
    case IOT_MEM_LIST:
        payload = calloc(1, sizeof(struct iot_mem_list));
        break;
    case IOT_MEM_RATE:
        payload = calloc(1, sizeof(struct iot_mem_rate));
        break;
    default:
        return IOT_EINTERNAL;
    }
    struct iot_mtab_node *n = payload ? iot_mem_create_locked(c, key, klen, type) : NULL;
    if (!n) {
        free(payload);
        return IOT_ENOMEM;
    }
    struct iot_mem_entry *e = n->val.ptr;
    if (type == IOT_MEM_HASH)
        e->u.hash = payload;
    else if (type == IOT_MEM_LIST)
        e->u.list = payload;
    else
        e->u.rate = payload;
    *out = n;
    return IOT_OK;
}

/* ---- rate limits ---- */

static int64_t rate_at(const struct iot_mem_rate *r, size_t i)
{
    return r->ts[(r->head + i) % r->cap];
}

/* Doubles the ring (at most to `limit` slots), unrolling it to head 0. */
static int rate_grow(struct iot_mem_rate *r, size_t limit)
{
    size_t ncap = r->cap ? r->cap * 2 : 4;
    if (ncap > limit)
        ncap = limit;
    int64_t *ts = malloc(ncap * sizeof *ts);
    if (!ts)
        return IOT_ENOMEM;
    for (size_t i = 0; i < r->count; i++)
        ts[i] = rate_at(r, i);
    free(r->ts);
    r->ts = ts;
    r->head = 0;
    r->cap = ncap;
    return IOT_OK;
}

/* The window decision itself. A refused hit leaves no trace. */
static int rate_record(struct iot_mem_rate *r, int64_t limit, int64_t window_ms, int64_t now_ms,
                       bool *allowed, int64_t *retry_after_ms)
{
    int64_t floor = now_ms - window_ms; /* hits at or before this are out */
    while (r->count > 0 && rate_at(r, 0) <= floor) {
        r->head = (r->head + 1) % r->cap;
        r->count--;
    }
    if ((int64_t)r->count >= limit) {
        /* When the limit shrank, count may exceed it: a slot frees up when
         * the (count - limit + 1)-th oldest hit leaves the window. */
        int64_t leaving = rate_at(r, r->count - (size_t)limit);
        int64_t wait = leaving + window_ms - now_ms;
        if (retry_after_ms)
            *retry_after_ms = wait < 1 ? 1 : wait;
        return IOT_OK;
    }
    if (r->count == r->cap && rate_grow(r, (size_t)limit) != IOT_OK)
        return IOT_ENOMEM;
    /* Callers race to the lock with times taken just before it; recording
     * the newest time instead of a slightly older one keeps the ring sorted
     * at the cost of at most that race's skew. */
    int64_t t = now_ms;
    if (r->count > 0 && rate_at(r, r->count - 1) > t)
        t = rate_at(r, r->count - 1);
    r->ts[(r->head + r->count) % r->cap] = t;
    r->count++;
    *allowed = true;
    return IOT_OK;
}

int iot_mem_rate_hit(void *self, const char *key, int64_t limit, int64_t window_ms,
                     int64_t now_ms, bool *allowed, int64_t *retry_after_ms)
{
    struct iot_mem_cache *c = self;
    size_t klen;
    if (!allowed || iot_cache_check_key(key, &klen) ||
        iot_cache_check_rate(limit, window_ms, now_ms))
        return IOT_EINVAL;
    *allowed = false;
    if (retry_after_ms)
        *retry_after_ms = 0;
    /* now_ms places hits in the window; the key's own expiry follows the
     * cache clock, like a PEXPIRE of window_ms after each accepted hit. */
    int64_t clock = iot_now_ms();
    pthread_mutex_lock(&c->lock);
    iot_mem_sweep_locked(c, clock);
    struct iot_mtab_node *n;
    int rc = get_or_create_locked(c, key, klen, clock, IOT_MEM_RATE, &n);
    if (rc == IOT_OK) {
        struct iot_mem_entry *e = n->val.ptr;
        rc = rate_record(e->u.rate, limit, window_ms, now_ms, allowed, retry_after_ms);
        /* Accepted hits push the deadline; a new, still empty window gets one
         * too so that a failed first hit cannot leave an immortal key. */
        if (*allowed || e->expire_at == 0)
            e->expire_at = iot_mem_deadline(clock, window_ms);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* ---- sessions ---- */

/* Sessions live in the keyspace (so expiry and the sweep apply) under the
 * token hash prefixed with a NUL byte: no caller key can be spelled so. */
static size_t session_key(const char *token_hash, size_t tlen, char *buf)
{
    buf[0] = '\0';
    memcpy(buf + 1, token_hash, tlen);
    return tlen + 1;
}

/* Frees a user's index once it holds no session. */
static void user_drop_if_empty(struct iot_mem_cache *c, struct iot_mtab_node *un)
{
    struct iot_mem_user *u = un->val.ptr;
    if (u->n > 0)
        return;
    free(u->sessions);
    free(u);
    iot_mtab_remove(&c->users, un);
}

static void session_detach_locked(struct iot_mem_cache *c, struct iot_mem_session *s)
{
    struct iot_mem_user *u = s->user_node->val.ptr;
    u->n--;
    if (s->idx != u->n) {
        /* Swap-remove: the last session takes the freed slot. */
        struct iot_mtab_node *moved = u->sessions[u->n];
        u->sessions[s->idx] = moved;
        struct iot_mem_entry *me = moved->val.ptr;
        me->u.session->idx = s->idx;
    }
    user_drop_if_empty(c, s->user_node);
    free(s);
}

/* Finds or creates the index of a user and makes room for one more session.
 * On failure nothing is left behind. */
static struct iot_mtab_node *user_reserve_locked(struct iot_mem_cache *c, const char *user_id,
                                                 size_t ulen)
{
    struct iot_mtab_node *un = iot_mtab_find(&c->users, user_id, ulen);
    if (!un) {
        struct iot_mem_user *nu = calloc(1, sizeof *nu);
        un = nu ? iot_mtab_add(&c->users, user_id, ulen) : NULL;
        if (!un) {
            free(nu);
            return NULL;
        }
        un->val.ptr = nu;
    }
    struct iot_mem_user *u = un->val.ptr;
    if (u->n < u->cap)
        return un;
    size_t ncap = u->cap ? u->cap * 2 : 4;
    struct iot_mtab_node **s = realloc(u->sessions, ncap * sizeof *s);
    if (!s) {
        user_drop_if_empty(c, un);
        return NULL;
    }
    u->sessions = s;
    u->cap = ncap;
    return un;
}

static int session_put_locked(struct iot_mem_cache *c, const char *key, size_t klen,
                              const char *user_id, size_t ulen, int64_t deadline)
{
    /* A token that already has a session (maybe of another user) starts
     * over: dropping it first also keeps the old user's index exact. */
    struct iot_mtab_node *n = iot_mtab_find(&c->keys, key, klen);
    if (n)
        iot_mem_delete_locked(c, n);
    struct iot_mem_session *s = malloc(sizeof *s);
    struct iot_mtab_node *un = s ? user_reserve_locked(c, user_id, ulen) : NULL;
    n = un ? iot_mem_create_locked(c, key, klen, IOT_MEM_SESSION) : NULL;
    if (!n) {
        if (un)
            user_drop_if_empty(c, un);
        free(s);
        return IOT_ENOMEM;
    }
    struct iot_mem_user *u = un->val.ptr;
    s->user_node = un;
    s->idx = u->n;
    u->sessions[u->n++] = n;
    struct iot_mem_entry *e = n->val.ptr;
    e->u.session = s;
    e->expire_at = deadline;
    return IOT_OK;
}

int iot_mem_session_put(void *self, const char *token_hash, const char *user_id, int64_t ttl_ms)
{
    struct iot_mem_cache *c = self;
    size_t tlen, ulen;
    if (iot_cache_check_key(token_hash, &tlen) || iot_cache_check_user_id(user_id, &ulen) ||
        iot_cache_check_ttl(ttl_ms))
        return IOT_EINVAL;
    char key[IOT_CACHE_KEY_MAX + 1];
    size_t klen = session_key(token_hash, tlen, key);
    int64_t now = iot_now_ms();
    pthread_mutex_lock(&c->lock);
    iot_mem_sweep_locked(c, now);
    int rc = session_put_locked(c, key, klen, user_id, ulen, iot_mem_deadline(now, ttl_ms));
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int iot_mem_session_get(void *self, const char *token_hash, char *user_id_out)
{
    struct iot_mem_cache *c = self;
    size_t tlen;
    if (!user_id_out || iot_cache_check_key(token_hash, &tlen))
        return IOT_EINVAL;
    char key[IOT_CACHE_KEY_MAX + 1];
    size_t klen = session_key(token_hash, tlen, key);
    int64_t now = iot_now_ms();
    pthread_mutex_lock(&c->lock);
    struct iot_mtab_node *n;
    int rc = iot_mem_lookup_type_locked(c, key, klen, now, IOT_MEM_SESSION, &n);
    if (rc == IOT_OK) {
        const struct iot_mem_entry *e = n->val.ptr;
        const struct iot_mtab_node *un = e->u.session->user_node;
        memcpy(user_id_out, un->key, un->klen + 1);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int iot_mem_session_del(void *self, const char *token_hash)
{
    struct iot_mem_cache *c = self;
    size_t tlen;
    if (iot_cache_check_key(token_hash, &tlen))
        return IOT_EINVAL;
    char key[IOT_CACHE_KEY_MAX + 1];
    size_t klen = session_key(token_hash, tlen, key);
    int64_t now = iot_now_ms();
    pthread_mutex_lock(&c->lock);
    iot_mem_sweep_locked(c, now);
    struct iot_mtab_node *n = iot_mtab_find(&c->keys, key, klen);
    if (n)
        iot_mem_delete_locked(c, n);
    pthread_mutex_unlock(&c->lock);
    return IOT_OK;
}

int iot_mem_session_drop_user(void *self, const char *user_id)
{
    struct iot_mem_cache *c = self;
    size_t ulen;
    if (iot_cache_check_user_id(user_id, &ulen))
        return IOT_EINVAL;
    int64_t now = iot_now_ms();
    pthread_mutex_lock(&c->lock);
    iot_mem_sweep_locked(c, now);
    struct iot_mtab_node *un = iot_mtab_find(&c->users, user_id, ulen);
    /* Deleting a session unlinks it from the index, and the last one frees
     * the index itself: read the count before each delete. */
    while (un) {
        struct iot_mem_user *u = un->val.ptr;
        bool last = u->n == 1;
        iot_mem_delete_locked(c, u->sessions[u->n - 1]);
        if (last)
            break;
    }
    pthread_mutex_unlock(&c->lock);
    return IOT_OK;
}

/* ---- presence ---- */

int iot_mem_presence_touch(void *self, int64_t device_id, int64_t seen_ms)
{
    struct iot_mem_cache *c = self;
    int rc = IOT_OK;
    pthread_mutex_lock(&c->presence_lock);
    struct iot_mtab_node *n = iot_mtab_find(&c->presence, &device_id, sizeof device_id);
    if (!n) {
        n = iot_mtab_add(&c->presence, &device_id, sizeof device_id);
        if (n)
            n->val.i64 = seen_ms;
        else
            rc = IOT_ENOMEM;
    } else if (seen_ms > n->val.i64) {
        n->val.i64 = seen_ms;
    }
    pthread_mutex_unlock(&c->presence_lock);
    return rc;
}

int iot_mem_presence_get(void *self, int64_t device_id, int64_t *seen_ms)
{
    struct iot_mem_cache *c = self;
    if (!seen_ms)
        return IOT_EINVAL;
    pthread_mutex_lock(&c->presence_lock);
    const struct iot_mtab_node *n = iot_mtab_find(&c->presence, &device_id, sizeof device_id);
    if (n)
        *seen_ms = n->val.i64;
    pthread_mutex_unlock(&c->presence_lock);
    return n ? IOT_OK : IOT_ENOTFOUND;
}

int iot_mem_presence_remove(void *self, int64_t device_id)
{
    struct iot_mem_cache *c = self;
    pthread_mutex_lock(&c->presence_lock);
    struct iot_mtab_node *n = iot_mtab_find(&c->presence, &device_id, sizeof device_id);
    if (n)
        iot_mtab_remove(&c->presence, n);
    pthread_mutex_unlock(&c->presence_lock);
    return IOT_OK;
}

struct count_ctx {
    int64_t since;
    int64_t count;
};

static void count_visit(void *ctx, const struct iot_mtab_node *n)
{
    struct count_ctx *cc = ctx;
    if (n->val.i64 >= cc->since)
        cc->count++;
}

/* A linear scan of every device, O(devices) under the presence lock (about a
 * millisecond per 100,000 devices). Presence has no index by time because
 * touches (every ingest batch) vastly outnumber counts (the dashboard). */
int iot_mem_presence_count(void *self, int64_t since_ms, int64_t *count)
{
    struct iot_mem_cache *c = self;
    if (!count)
        return IOT_EINVAL;
    struct count_ctx cc = {.since = since_ms, .count = 0};
    pthread_mutex_lock(&c->presence_lock);
    iot_mtab_foreach(&c->presence, count_visit, &cc);
    pthread_mutex_unlock(&c->presence_lock);
    *count = cc.count;
    return IOT_OK;
}

/* ---- snapshots streamed to callbacks outside the lock ---- */

struct snap_item {
    const char *name; /* hash field; NULL for list items */
    const char *value;
    size_t len;
};

/* Items and the bytes they point to, in one allocation. */
struct snap {
    struct snap_item *items;
    size_t n, cap;
    char *bytes;
    size_t used;
};

static int snap_alloc(struct snap *s, size_t n, size_t bytes)
{
    /* Both counts are bounded by data already in memory. */
    s->items = malloc(n * sizeof *s->items + bytes + 1);
    if (!s->items)
        return IOT_ENOMEM;
    s->bytes = (char *)(s->items + n);
    s->n = 0;
    s->cap = n;
    s->used = 0;
    return IOT_OK;
}

static const char *snap_copy(struct snap *s, const char *p, size_t len)
{
    char *dst = s->bytes + s->used;
    memcpy(dst, p, len);
    dst[len] = '\0';
    s->used += len + 1;
    return dst;
}

static void snap_add(struct snap *s, const char *name, size_t nlen, const struct iot_mem_blob *b)
{
    struct snap_item *it = &s->items[s->n++];
    it->name = name ? snap_copy(s, name, nlen) : NULL;
    it->value = snap_copy(s, b->data, b->len);
    it->len = b->len;
}

/* ---- hashes ---- */

static void hash_size_visit(void *ctx, const struct iot_mtab_node *n)
{
    const struct iot_mem_blob *b = n->val.ptr;
    *(size_t *)ctx += n->klen + 1 + b->len + 1;
}

static void hash_copy_visit(void *ctx, const struct iot_mtab_node *n)
{
    snap_add(ctx, n->key, n->klen, n->val.ptr);
}

/* Stores blobs[i] under fields[i].field, taking ownership; on failure the
 * blobs not yet stored are freed and the fields already stored stay. */
static int hash_store_locked(struct iot_mtab *h, const struct iot_cache_field *fields, size_t n,
                             struct iot_mem_blob **blobs)
{
    for (size_t i = 0; i < n; i++) {
        size_t flen = strlen(fields[i].field);
        struct iot_mtab_node *fn = iot_mtab_find(h, fields[i].field, flen);
        if (!fn)
            fn = iot_mtab_add(h, fields[i].field, flen);
        if (!fn) {
            for (size_t j = i; j < n; j++)
                free(blobs[j]);
            return IOT_ENOMEM;
        }
        free(fn->val.ptr);
        fn->val.ptr = blobs[i];
    }
    return IOT_OK;
}

/* max_fields: see struct iot_cache_write (0: no bound). */
static int hash_set_locked(struct iot_mem_cache *c, const char *key, size_t klen,
                           const struct iot_cache_field *fields, size_t n,
                           struct iot_mem_blob **blobs, int64_t now, int64_t ttl_ms,
                           size_t max_fields)
{
    struct iot_mtab_node *node;
    int rc = get_or_create_locked(c, key, klen, now, IOT_MEM_HASH, &node);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            free(blobs[i]);
        return rc;
    }
    struct iot_mem_entry *e = node->val.ptr;
    rc = hash_store_locked(e->u.hash, fields, n, blobs);
    if (e->u.hash->count == 0 || (max_fields && e->u.hash->count > max_fields)) {
        iot_mem_delete_locked(c, node); /* Redis has no empty hashes */
        return rc;
    }
    e->expire_at = iot_mem_deadline(now, ttl_ms);
    return rc;
}

int iot_mem_hash_set_bounded(void *self, const char *key, const struct iot_cache_field *fields,
                             size_t n, int64_t ttl_ms, size_t max_fields)
{
    struct iot_mem_cache *c = self;
    size_t klen;
    if (iot_cache_check_key(key, &klen) || iot_cache_check_ttl(ttl_ms) ||
        iot_cache_check_fields(fields, n))
        return IOT_EINVAL;
    if (n > SIZE_MAX / sizeof(struct iot_mem_blob *))
        return IOT_EINVAL;
    /* Copy the values before taking the lock. */
    struct iot_mem_blob **blobs = malloc(n * sizeof *blobs);
    if (!blobs)
        return IOT_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        blobs[i] = iot_mem_blob_new(fields[i].value, fields[i].value_len);
        if (!blobs[i]) {
            while (i > 0)
                free(blobs[--i]);
            free(blobs);
            return IOT_ENOMEM;
        }
    }
    int64_t now = iot_now_ms();
    pthread_mutex_lock(&c->lock);
    iot_mem_sweep_locked(c, now);
    int rc = hash_set_locked(c, key, klen, fields, n, blobs, now, ttl_ms, max_fields);
    pthread_mutex_unlock(&c->lock);
    free(blobs);
    return rc;
}

int iot_mem_hash_set(void *self, const char *key, const struct iot_cache_field *fields, size_t n,
                     int64_t ttl_ms)
{
    return iot_mem_hash_set_bounded(self, key, fields, n, ttl_ms, 0);
}

static int hash_snapshot_locked(struct iot_mem_cache *c, const char *key, size_t klen,
                                int64_t now, struct snap *s)
{
    struct iot_mtab_node *node;
    int rc = iot_mem_lookup_type_locked(c, key, klen, now, IOT_MEM_HASH, &node);
    if (rc)
        return rc;
    const struct iot_mem_entry *e = node->val.ptr;
    size_t bytes = 0;
    iot_mtab_foreach(e->u.hash, hash_size_visit, &bytes);
    rc = snap_alloc(s, e->u.hash->count, bytes);
    if (rc == IOT_OK)
        iot_mtab_foreach(e->u.hash, hash_copy_visit, s);
    return rc;
}

int iot_mem_hash_get_all(void *self, const char *key, iot_cache_field_fn fn, void *ctx)
{
    struct iot_mem_cache *c = self;
    size_t klen;
    if (!fn || iot_cache_check_key(key, &klen))
        return IOT_EINVAL;
    int64_t now = iot_now_ms();
    struct snap s;
    pthread_mutex_lock(&c->lock);
    int rc = hash_snapshot_locked(c, key, klen, now, &s);
    pthread_mutex_unlock(&c->lock);
    if (rc)
        return rc;
    for (size_t i = 0; i < s.n; i++) {
        if (fn(ctx, s.items[i].name, s.items[i].value, s.items[i].len) != 0)
            break;
    }
    free(s.items);
    return IOT_OK;
}

/* ---- capped lists ---- */

static struct iot_mem_blob *list_at(const struct iot_mem_list *l, size_t i)
{
    return l->items[(l->head + i) % l->cap];
}

/* Grows the ring (at most to max_len slots), unrolling it to head 0. */
static int list_grow(struct iot_mem_list *l, size_t max_len)
{
    size_t ncap = l->cap ? l->cap * 2 : 4;
    if (ncap > max_len || ncap < l->cap)
        ncap = max_len;
    struct iot_mem_blob **items = malloc(ncap * sizeof *items);
    if (!items)
        return IOT_ENOMEM;
    for (size_t i = 0; i < l->count; i++)
        items[i] = list_at(l, i);
    free(l->items);
    l->items = items;
    l->head = 0;
    l->cap = ncap;
    return IOT_OK;
}

/* Appends b as the newest item, dropping the oldest beyond max_len. */
static int list_append(struct iot_mem_list *l, struct iot_mem_blob *b, size_t max_len)
{
    while (l->count >= max_len) {
        free(list_at(l, 0));
        l->head = (l->head + 1) % l->cap;
        l->count--;
    }
    if (l->count == l->cap && list_grow(l, max_len) != IOT_OK)
        return IOT_ENOMEM;
    l->items[(l->head + l->count) % l->cap] = b;
    l->count++;
    return IOT_OK;
}

static int list_push_locked(struct iot_mem_cache *c, const char *key, size_t klen,
                            struct iot_mem_blob *b, size_t max_len, int64_t now, int64_t ttl_ms)
{
    struct iot_mtab_node *node;
    int rc = get_or_create_locked(c, key, klen, now, IOT_MEM_LIST, &node);
    if (rc)
        return rc;
    struct iot_mem_entry *e = node->val.ptr;
    rc = list_append(e->u.list, b, max_len);
    if (e->u.list->count == 0) {
        iot_mem_delete_locked(c, node); /* Redis has no empty lists */
        return rc;
    }
    e->expire_at = iot_mem_deadline(now, ttl_ms);
    return rc;
}

int iot_mem_list_push(void *self, const char *key, const char *val, size_t len, size_t max_len,
                      int64_t ttl_ms)
{
    struct iot_mem_cache *c = self;
    size_t klen;
    if (iot_cache_check_key(key, &klen) || iot_cache_check_value(val, len) ||
        iot_cache_check_ttl(ttl_ms) || max_len == 0)
        return IOT_EINVAL;
    struct iot_mem_blob *b = iot_mem_blob_new(val, len);
    if (!b)
        return IOT_ENOMEM;
    int64_t now = iot_now_ms();
    pthread_mutex_lock(&c->lock);
    iot_mem_sweep_locked(c, now);
    int rc = list_push_locked(c, key, klen, b, max_len, now, ttl_ms);
    pthread_mutex_unlock(&c->lock);
    if (rc)
        free(b);
    return rc;
}

static int list_snapshot_locked(struct iot_mem_cache *c, const char *key, size_t klen,
                                size_t count, int64_t now, struct snap *s)
{
    struct iot_mtab_node *node;
    int rc = iot_mem_lookup_type_locked(c, key, klen, now, IOT_MEM_LIST, &node);
    if (rc)
        return rc;
    const struct iot_mem_list *l = ((const struct iot_mem_entry *)node->val.ptr)->u.list;
    if (count > l->count)
        count = l->count;
    size_t bytes = 0;
    for (size_t i = 0; i < count; i++)
        bytes += list_at(l, l->count - 1 - i)->len + 1;
    rc = snap_alloc(s, count, bytes);
    for (size_t i = 0; rc == IOT_OK && i < count; i++)
        snap_add(s, NULL, 0, list_at(l, l->count - 1 - i));
    return rc;
}

int iot_mem_list_range(void *self, const char *key, size_t count, iot_cache_item_fn fn,
                       void *ctx)
{
    struct iot_mem_cache *c = self;
    size_t klen;
    if (!fn || iot_cache_check_key(key, &klen))
        return IOT_EINVAL;
    int64_t now = iot_now_ms();
    struct snap s;
    pthread_mutex_lock(&c->lock);
    int rc = list_snapshot_locked(c, key, klen, count, now, &s);
    pthread_mutex_unlock(&c->lock);
    if (rc)
        return rc;
    for (size_t i = 0; i < s.n; i++) {
        if (fn(ctx, s.items[i].value, s.items[i].len) != 0)
            break;
    }
    free(s.items);
    return IOT_OK;
}
