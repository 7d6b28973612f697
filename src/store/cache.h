/* cache.h — the cache store interface: short-lived shared state.
 *
 * Holds what several iotflowd instances must share but may lose: TTL keys
 * (API-key and device-info caches), counters and gauges, sliding-window rate
 * limits, user sessions, device presence (online set with last-seen times),
 * hashes (latest values), capped lists (alerts) and publish/subscribe.
 * Implementations: in-process (src/store/memory, embedded default) and
 * Redis (src/store/redis). Every op may be called from any thread. Keys and channels are
 * NUL-terminated strings of at most IOT_CACHE_KEY_MAX bytes; values are
 * byte slices of at most IOT_CACHE_VALUE_MAX bytes. Callers use the
 * iot_cache_* wrappers at the bottom. */
#ifndef IOT_STORE_CACHE_H
#define IOT_STORE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store_metrics.h"

#define IOT_CACHE_KEY_MAX 256
#define IOT_CACHE_VALUE_MAX (1024 * 1024)

/* A value returned by the cache: heap bytes plus a NUL after them (not
 * counted in len), owned by the caller, released with iot_cache_value_free. */
struct iot_cache_value {
    char *data;
    size_t len;
};

/* A field/value pair of a hash. */
struct iot_cache_field {
    const char *field;
    const char *value;
    size_t value_len;
};

/* Hash/list/pubsub callbacks; pointers are borrowed for the call only.
 * Return 0 to go on, non-zero to stop. */
typedef int (*iot_cache_field_fn)(void *ctx, const char *field, const char *value, size_t len);
typedef int (*iot_cache_item_fn)(void *ctx, const char *value, size_t len);
/* A message delivery. Runs on a thread of the backend (the publisher's in
 * process, a subscriber thread for Redis); it must not block and must not
 * call unsubscribe for its own subscription. */
typedef void (*iot_cache_msg_fn)(void *ctx, const char *channel, const char *msg, size_t len);

struct iot_cache_sub; /* opaque subscription handle */

/* One write of a batch (write_batch): the ingest path's fan-out after each
 * commit, sent to a server backend in one round trip (pipelined). */
enum iot_cache_write_kind {
    IOT_CACHE_W_HASH_SET,       /* key, fields, n_fields, ttl_ms, max_fields */
    IOT_CACHE_W_PRESENCE_TOUCH, /* device_id, seen_ms */
    IOT_CACHE_W_PUBLISH,        /* key = channel, msg, len */
    IOT_CACHE_W_DEL,            /* key */
};

struct iot_cache_write {
    enum iot_cache_write_kind kind;
    const char *key;
    const struct iot_cache_field *fields;
    size_t n_fields;
    int64_t ttl_ms;
    const char *msg;
    size_t len;
    int64_t device_id;
    int64_t seen_ms;
    /* HASH_SET: 0, or the most fields the hash may hold. A write that
     * leaves it with more deletes the key instead, so that a merge cannot
     * grow a hash without bound (a reader finds it missing, as after a
     * DEL, and goes to the durable store). The write still succeeds. */
    size_t max_fields;
};

#define IOT_CACHE_CAP_TTL 0x1u     /* keys expire */
#define IOT_CACHE_CAP_SHARED 0x2u  /* state is shared between processes */
#define IOT_CACHE_CAP_PUBSUB 0x4u  /* publish/subscribe works across processes */

/* The interface. Ops return IOT_OK or a negative IOT_E* code; a missing key
 * is IOT_ENOTFOUND for reads; a backend that cannot be reached returns
 * IOT_EUNAVAILABLE, and callers must then carry on from the durable stores.
 * A ttl_ms of 0 means "no expiry". `now_ms` arguments let tests inject a
 * clock; backends with their own clock (Redis) may use it or the server's.
 * New slots are appended, never reordered. */
struct iot_cache_ops {
    const char *name; /* "memory", "redis" */
    unsigned version; /* 1 */
    unsigned caps;    /* IOT_CACHE_CAP_* */

    /* `url` is REDIS_URL or NULL for in-process. */
    int (*open)(const char *url, void **self);
    void (*close)(void *self); /* NULL is a no-op; ends all subscriptions */
    int (*ping)(void *self);

    /* Plain keys. */
    int (*set)(void *self, const char *key, const char *val, size_t len, int64_t ttl_ms);
    int (*get)(void *self, const char *key, struct iot_cache_value *out);
    int (*del)(void *self, const char *key); /* IOT_OK even when absent */

    /* Counters: *out (may be NULL) receives the new value. A ttl_ms > 0 is
     * set when the counter is created. */
    int (*incr)(void *self, const char *key, int64_t delta, int64_t ttl_ms, int64_t *out);
    /* Gauges: a double under a key, no expiry. */
    int (*gauge_set)(void *self, const char *key, double value);
    int (*gauge_get)(void *self, const char *key, double *out);

    /* Sliding-window rate limit: records one hit at now_ms under key if fewer
     * than `limit` hits lie within (now_ms - window_ms, now_ms]. *allowed
     * tells which; when refused *retry_after_ms is how long until the oldest
     * hit leaves the window. Atomic with respect to other callers. */
    int (*rate_hit)(void *self, const char *key, int64_t limit, int64_t window_ms,
                    int64_t now_ms, bool *allowed, int64_t *retry_after_ms);

    /* Sessions: token_hash → user_id (32-hex public id), expiring after
     * ttl_ms; session_get writes user_id into a buffer of at least 33 bytes.
     * session_drop_user revokes every session of a user. */
    int (*session_put)(void *self, const char *token_hash, const char *user_id, int64_t ttl_ms);
    int (*session_get)(void *self, const char *token_hash, char *user_id_out);
    int (*session_del)(void *self, const char *token_hash);
    int (*session_drop_user)(void *self, const char *user_id);

    /* Presence: the online set scored by last-seen time (ms). presence_touch
     * keeps the larger of the old and new time. presence_count counts devices
     * seen at or after since_ms. */
    int (*presence_touch)(void *self, int64_t device_id, int64_t seen_ms);
    int (*presence_get)(void *self, int64_t device_id, int64_t *seen_ms);
    int (*presence_remove)(void *self, int64_t device_id);
    int (*presence_count)(void *self, int64_t since_ms, int64_t *count);

    /* Hashes (latest values per device): set several fields at once and
     * refresh the key's TTL; hash_get_all streams every field. */
    int (*hash_set)(void *self, const char *key, const struct iot_cache_field *fields, size_t n,
                    int64_t ttl_ms);
    int (*hash_get_all)(void *self, const char *key, iot_cache_field_fn fn, void *ctx);

    /* Capped lists (alerts): push at the head, keep at most max_len items,
     * refresh TTL; list_range streams items newest first, at most `count`. */
    int (*list_push)(void *self, const char *key, const char *val, size_t len, size_t max_len,
                     int64_t ttl_ms);
    int (*list_range)(void *self, const char *key, size_t count, iot_cache_item_fn fn, void *ctx);

    /* Publish/subscribe. publish delivers to every current subscriber of the
     * channel (in every process sharing the backend, if CAP_PUBSUB).
     * subscribe returns a handle; unsubscribe guarantees that no delivery to
     * that handle is running or will start once it returns. */
    int (*publish)(void *self, const char *channel, const char *msg, size_t len);
    int (*subscribe)(void *self, const char *channel, iot_cache_msg_fn fn, void *ctx,
                     struct iot_cache_sub **out);
    void (*unsubscribe)(void *self, struct iot_cache_sub *sub); /* NULL is a no-op */

    /* Applies n writes in order, each with the meaning of its single op
     * above; not atomic. Returns IOT_OK when all were applied, else the
     * first error (the others are still attempted). */
    int (*write_batch)(void *self, const struct iot_cache_write *w, size_t n);
};

struct iot_cache {
    const struct iot_cache_ops *ops;
    void *self;
};

/* Compiled-in backends: NULL/"" url → "memory", "redis://…" → redis. */
const struct iot_cache_ops *iot_cache_backend(const char *url);
const char *iot_cache_backend_names(void);
int iot_cache_open(const char *url, struct iot_cache *out);
void iot_cache_close(struct iot_cache *c);
void iot_cache_value_free(struct iot_cache_value *v);

/* ---- for backends ------------------------------------------------------------
 * Not for callers of the interface. The argument checks every backend runs at
 * the top of its ops, kept in one place so that all backends refuse the same
 * input; each returns IOT_OK or IOT_EINVAL. Thread-safe, no state. */

/* The longest user id a session holds: the 32-hex public id, so that
 * session_get's 33-byte buffer always fits it. */
#define IOT_CACHE_USER_ID_MAX 32
/* The largest rate_hit limit: a window holds at most `limit` timestamps, so
 * one window never outgrows the largest value the cache accepts. */
#define IOT_CACHE_RATE_LIMIT_MAX ((int64_t)(IOT_CACHE_VALUE_MAX / sizeof(int64_t)))

/* A key or channel: a non-empty string of at most IOT_CACHE_KEY_MAX bytes;
 * *len receives its length. */
int iot_cache_check_key(const char *key, size_t *len);
/* A value: at most IOT_CACHE_VALUE_MAX bytes, NULL only when len is 0. */
int iot_cache_check_value(const char *val, size_t len);
/* A TTL: 0 (no expiry) or more. */
int iot_cache_check_ttl(int64_t ttl_ms);
/* A session's user id: non-empty, at most IOT_CACHE_USER_ID_MAX bytes; *len
 * receives its length. */
int iot_cache_check_user_id(const char *user_id, size_t *len);
/* hash_set's fields: at least one, each name a valid key and each value a
 * valid value. */
int iot_cache_check_fields(const struct iot_cache_field *fields, size_t n);
/* rate_hit's numbers: 0 < limit <= IOT_CACHE_RATE_LIMIT_MAX, window_ms > 0,
 * now_ms >= 0. */
int iot_cache_check_rate(int64_t limit, int64_t window_ms, int64_t now_ms);

/* A gauge's text as gauge_get reads it: a finite double spanning all of
 * s[0..len) with no leading space (s must be NUL-terminated after len).
 * false if it is not one. */
bool iot_cache_parse_double(const char *s, size_t len, double *out);

/* write_batch for backends without pipelining: each write through its op.
 * A HASH_SET with max_fields is refused (IOT_EINVAL): no op takes it, so a
 * backend using this handles those writes itself. */
int iot_cache_write_batch_each(const struct iot_cache_ops *ops, void *self,
                               const struct iot_cache_write *w, size_t n);

static inline int iot_cache_ping(struct iot_cache *c) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->ping(c->self)); }
static inline int iot_cache_set(struct iot_cache *c, const char *k, const char *v, size_t n, int64_t ttl) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->set(c->self, k, v, n, ttl)); }
static inline int iot_cache_get(struct iot_cache *c, const char *k, struct iot_cache_value *o) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->get(c->self, k, o)); }
static inline int iot_cache_del(struct iot_cache *c, const char *k) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->del(c->self, k)); }
static inline int iot_cache_incr(struct iot_cache *c, const char *k, int64_t d, int64_t ttl, int64_t *o) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->incr(c->self, k, d, ttl, o)); }
static inline int iot_cache_gauge_set(struct iot_cache *c, const char *k, double v) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->gauge_set(c->self, k, v)); }
static inline int iot_cache_gauge_get(struct iot_cache *c, const char *k, double *o) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->gauge_get(c->self, k, o)); }
static inline int iot_cache_rate_hit(struct iot_cache *c, const char *k, int64_t limit, int64_t win, int64_t now, bool *ok, int64_t *retry) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->rate_hit(c->self, k, limit, win, now, ok, retry)); }
static inline int iot_cache_session_put(struct iot_cache *c, const char *h, const char *uid, int64_t ttl) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->session_put(c->self, h, uid, ttl)); }
static inline int iot_cache_session_get(struct iot_cache *c, const char *h, char *uid) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->session_get(c->self, h, uid)); }
static inline int iot_cache_session_del(struct iot_cache *c, const char *h) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->session_del(c->self, h)); }
static inline int iot_cache_session_drop_user(struct iot_cache *c, const char *uid) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->session_drop_user(c->self, uid)); }
static inline int iot_cache_presence_touch(struct iot_cache *c, int64_t id, int64_t t) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->presence_touch(c->self, id, t)); }
static inline int iot_cache_presence_get(struct iot_cache *c, int64_t id, int64_t *t) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->presence_get(c->self, id, t)); }
static inline int iot_cache_presence_remove(struct iot_cache *c, int64_t id) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->presence_remove(c->self, id)); }
static inline int iot_cache_presence_count(struct iot_cache *c, int64_t since, int64_t *n) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->presence_count(c->self, since, n)); }
static inline int iot_cache_hash_set(struct iot_cache *c, const char *k, const struct iot_cache_field *f, size_t n, int64_t ttl) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->hash_set(c->self, k, f, n, ttl)); }
static inline int iot_cache_hash_get_all(struct iot_cache *c, const char *k, iot_cache_field_fn fn, void *ctx) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->hash_get_all(c->self, k, fn, ctx)); }
static inline int iot_cache_list_push(struct iot_cache *c, const char *k, const char *v, size_t n, size_t max, int64_t ttl) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->list_push(c->self, k, v, n, max, ttl)); }
static inline int iot_cache_list_range(struct iot_cache *c, const char *k, size_t count, iot_cache_item_fn fn, void *ctx) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->list_range(c->self, k, count, fn, ctx)); }
static inline int iot_cache_publish(struct iot_cache *c, const char *ch, const char *m, size_t n) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->publish(c->self, ch, m, n)); }
static inline int iot_cache_subscribe(struct iot_cache *c, const char *ch, iot_cache_msg_fn fn, void *ctx, struct iot_cache_sub **o) { IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->subscribe(c->self, ch, fn, ctx, o)); }
static inline void iot_cache_unsubscribe(struct iot_cache *c, struct iot_cache_sub *s) { c->ops->unsubscribe(c->self, s); }
static inline int iot_cache_write_batch(struct iot_cache *c, const struct iot_cache_write *w, size_t n) { if (!n) return 0; IOT_STORE_TIMED(IOT_STORE_CACHE, c->ops, c->ops->write_batch(c->self, w, n)); }

#endif
