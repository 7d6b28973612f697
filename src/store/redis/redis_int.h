/* redis_int.h — internals shared by the files of the Redis cache backend.
 *
 * Not a public interface: only src/store/redis/ (and the white-box part of
 * the contract test) includes it. The handle is immutable after open except
 * for the atomic sequence; all mutable state lives in the pool and the
 * pub/sub module, which guard it themselves.
 *
 * Key layout under the prefix NS (the URL's ?prefix=, default "iotflow:"):
 *   NS<key>            caller keys: strings, counters, gauges (text),
 *                      hashes, lists, rate-limit windows (sorted sets)
 *   NS\0s:<token_hash> a session: the user id, with the session's TTL
 *   NS\0u:<user_id>    the set of that user's session tokens
 *   NS\0presence       device id → last seen ms (sorted set)
 *   channel NS<name>   pub/sub
 * A caller key holds no NUL byte, so the internal keys never collide with
 * one (the memory backend keeps its sessions apart the same way). */
#ifndef IOT_STORE_REDIS_REDIS_INT_H
#define IOT_STORE_REDIS_REDIS_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/cache.h"
#include "store/redis/redis_conn.h"

struct iot_redis_ps; /* redis_pubsub.h */

struct iot_redis_cache {
    struct iot_redis_pool *pool;
    const struct iot_redis_cfg *cfg; /* the pool's */
    struct iot_redis_ps *ps;
    /* Rate-limit hits are sorted-set members and must be unique across
     * every process: a random nonce per handle plus a counter. */
    char nonce[17];
    atomic_uint_fast64_t seq;
};

/* The Lua scripts, loaded on every connection (cache_redis_types.c). */
enum iot_redis_script_id {
    IOT_RS_HASH_SET,
    IOT_RS_LIST_PUSH,
    IOT_RS_RATE_HIT,
    IOT_RS_SESSION_PUT,
    IOT_RS_SESSION_DEL,
    IOT_RS_SESSION_DROP_USER,
    IOT_RS__COUNT,
};
extern const char *const iot_redis_scripts[IOT_RS__COUNT];

/* Internal key tags (each starts with a NUL; lengths without the C NUL). */
#define IOT_REDIS_TAG_SESSION "\0s:"
#define IOT_REDIS_TAG_USER "\0u:"
#define IOT_REDIS_TAG_PRESENCE "\0presence"
#define IOT_REDIS_TAG_LEN(t) (sizeof(t) - 1)

#define IOT_REDIS_KEY_BUF (IOT_REDIS_PREFIX_MAX + 16 + IOT_CACHE_KEY_MAX + 1)

/* A full Redis key: NS, then a tag and/or the caller's name. */
struct iot_redis_key {
    size_t len;
    char buf[IOT_REDIS_KEY_BUF];
};

/* (Argument checks are the backends' shared iot_cache_check_*, cache.h.) */

/* NS + key, after checking the key (IOT_EINVAL). */
int iot_redis_key(const struct iot_redis_cache *c, const char *key, struct iot_redis_key *out);
/* NS + tag + name[0..len); the name was checked by the caller. */
void iot_redis_key_tagged(const struct iot_redis_cache *c, const char *tag, size_t tag_len,
                          const char *name, size_t len, struct iot_redis_key *out);

/* Runs a command built by the caller and frees its argv; IOT_OK (with the
 * reply in *out when out is not NULL, the caller's to free), a transport
 * error, or the mapped error reply. */
int iot_redis_run(struct iot_redis_cache *c, struct iot_redis_argv *a, redisReply **out);
/* The same for a command started with iot_redis_argv_eval. */
int iot_redis_run_eval(struct iot_redis_cache *c, unsigned id, struct iot_redis_argv *a,
                       redisReply **out);

/* Commands that write_batch pipelines, built after the same checks as their
 * single ops (IOT_EINVAL). `k` holds the key the argv points into. */
int iot_redis_prep_hash_set(const struct iot_redis_cache *c, const char *key,
                            const struct iot_cache_field *fields, size_t n, int64_t ttl_ms,
                            size_t max_fields, struct iot_redis_key *k,
                            struct iot_redis_argv *a);
int iot_redis_prep_publish(const struct iot_redis_cache *c, const char *channel, const char *msg,
                           size_t len, struct iot_redis_key *k, struct iot_redis_argv *a);
int iot_redis_prep_del(const struct iot_redis_cache *c, const char *key,
                       struct iot_redis_key *k, struct iot_redis_argv *a);
void iot_redis_prep_presence_touch(const struct iot_redis_cache *c, int64_t device_id,
                                   int64_t seen_ms, struct iot_redis_key *k, char *member,
                                   size_t member_size, struct iot_redis_argv *a);

/* The ops of cache_redis_types.c. */
int iot_redis_rate_hit(void *self, const char *key, int64_t limit, int64_t window_ms,
                       int64_t now_ms, bool *allowed, int64_t *retry_after_ms);
int iot_redis_session_put(void *self, const char *token_hash, const char *user_id,
                          int64_t ttl_ms);
int iot_redis_session_get(void *self, const char *token_hash, char *user_id_out);
int iot_redis_session_del(void *self, const char *token_hash);
int iot_redis_session_drop_user(void *self, const char *user_id);
int iot_redis_presence_touch(void *self, int64_t device_id, int64_t seen_ms);
int iot_redis_presence_get(void *self, int64_t device_id, int64_t *seen_ms);
int iot_redis_presence_remove(void *self, int64_t device_id);
int iot_redis_presence_count(void *self, int64_t since_ms, int64_t *count);
int iot_redis_hash_set(void *self, const char *key, const struct iot_cache_field *fields,
                       size_t n, int64_t ttl_ms);
int iot_redis_hash_get_all(void *self, const char *key, iot_cache_field_fn fn, void *ctx);
int iot_redis_list_push(void *self, const char *key, const char *val, size_t len,
                        size_t max_len, int64_t ttl_ms);
int iot_redis_list_range(void *self, const char *key, size_t count, iot_cache_item_fn fn,
                         void *ctx);

/* write_batch (cache_redis_batch.c). */
int iot_redis_write_batch(void *self, const struct iot_cache_write *w, size_t n);

#endif
