/* events_presence.c — the online/offline watch of the event log (see
 * events_presence.h). One hash table of (device id, owner id) → last
 * sighting on this instance, under one mutex; the cache store is read
 * outside it. */
#include "core/events_presence.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/presence.h"
#include "util/err.h"
#include "util/hash_table.h"

#define SWEEP_MAX 4096 /* devices found quiet per sweep; the rest wait for the next */
#define SWEEP_CHUNK 1024 /* buckets visited per hold of the lock */

struct iot_presence_watch {
    int64_t window_ms;
    struct iot_cache *cache;
    pthread_mutex_t lock;
    struct iot_mtab seen; /* key: struct watch_key; val.i64: last sighting (ms) */
};

struct watch_key {
    int64_t device_id, user_id;
};

struct iot_presence_watch *iot_presence_watch_new(int64_t window_ms, struct iot_cache *cache)
{
    struct iot_presence_watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->window_ms = window_ms;
    w->cache = cache;
    pthread_mutex_init(&w->lock, NULL);
    unsigned char seed[IOT_MTAB_SEED_LEN];
    randombytes_buf(seed, sizeof seed);
    iot_mtab_init(&w->seen, seed);
    return w;
}

void iot_presence_watch_free(struct iot_presence_watch *w)
{
    if (!w)
        return;
    iot_mtab_clear(&w->seen, NULL, NULL);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

static bool online(const struct iot_presence_watch *w, int64_t last_seen, int64_t now)
{
    return last_seen > 0 && now - last_seen < w->window_ms;
}

/* The cache store's last sighting of a device, 0 when it has none or does
 * not answer. */
static int64_t cached_sighting(struct iot_presence_watch *w, int64_t device_id)
{
    int64_t t = 0;
    return iot_cache_presence_get(w->cache, device_id, &t) == IOT_OK ? t : 0;
}

bool iot_presence_watch_seen(struct iot_presence_watch *w, int64_t device_id, int64_t user_id,
                             int64_t known, int64_t now_ms, int64_t *prev)
{
    struct watch_key key = {device_id, user_id};
    int64_t local = 0;
    pthread_mutex_lock(&w->lock);
    struct iot_mtab_node *n = iot_mtab_find(&w->seen, &key, sizeof key);
    if (n) {
        local = n->val.i64;
        if (now_ms > n->val.i64)
            n->val.i64 = now_ms;
    } else if (w->seen.count < IOT_PRESENCE_WATCH_MAX &&
               (n = iot_mtab_add(&w->seen, &key, sizeof key))) {
        n->val.i64 = now_ms;
    }
    pthread_mutex_unlock(&w->lock);
    *prev = iot_presence_latest(local, known);
    if (online(w, *prev, now_ms))
        return false;
    /* Quiet as far as this instance knows: another one may have seen it. */
    *prev = iot_presence_latest(*prev, cached_sighting(w, device_id));
    return !online(w, *prev, now_ms);
}

void iot_presence_watch_forget(struct iot_presence_watch *w, int64_t device_id, int64_t user_id)
{
    struct watch_key key = {device_id, user_id};
    pthread_mutex_lock(&w->lock);
    struct iot_mtab_node *n = iot_mtab_find(&w->seen, &key, sizeof key);
    if (n)
        iot_mtab_remove(&w->seen, n);
    pthread_mutex_unlock(&w->lock);
}

struct quiet {
    struct watch_key key;
    int64_t last_seen;
};

struct sweep_ctx {
    const struct iot_presence_watch *w;
    int64_t now;
    struct quiet *found;
    size_t n;
};

/* Takes a quiet device out of the table into the sweep's list. */
static bool take_quiet(void *ctx, const struct iot_mtab_node *node)
{
    struct sweep_ctx *s = ctx;
    if (s->n == SWEEP_MAX || online(s->w, node->val.i64, s->now))
        return false;
    struct quiet *q = &s->found[s->n++];
    memcpy(&q->key, node->key, sizeof q->key);
    q->last_seen = node->val.i64;
    return true;
}

size_t iot_presence_watch_sweep(struct iot_presence_watch *w, int64_t now_ms,
                                iot_presence_offline_fn fn, void *ctx)
{
    struct sweep_ctx s = {.w = w, .now = now_ms, .found = malloc(SWEEP_MAX * sizeof *s.found)};
    if (!s.found)
        return 0;
    /* The table once round, a chunk of buckets per hold of the lock, so
     * that telemetry requests (which take it) never wait on a whole sweep. */
    pthread_mutex_lock(&w->lock);
    size_t total = w->seen.nbuckets;
    pthread_mutex_unlock(&w->lock);
    for (size_t done = 0; done < total && s.n < SWEEP_MAX; done += SWEEP_CHUNK) {
        pthread_mutex_lock(&w->lock);
        size_t chunk = total - done < SWEEP_CHUNK ? total - done : SWEEP_CHUNK;
        iot_mtab_sweep(&w->seen, chunk, take_quiet, NULL, &s);
        pthread_mutex_unlock(&w->lock);
    }
    size_t offline = 0;
    for (size_t i = 0; i < s.n; i++) {
        int64_t last = iot_presence_latest(s.found[i].last_seen,
                                           cached_sighting(w, s.found[i].key.device_id));
        if (online(w, last, now_ms))
            continue; /* talking to another instance: that one watches it */
        fn(ctx, s.found[i].key.device_id, s.found[i].key.user_id, last);
        offline++;
    }
    free(s.found);
    return offline;
}
