/* mem_cache.h — internals shared by the files of the in-process cache.
 *
 * Not a public interface: only src/store/memory/ (and the white-box part of
 * the contract test) includes it. c->lock guards the keyspace and the
 * per-user session index, c->presence_lock the presence table, ps.lock the
 * channels; no two are ever held together, and none while a callback runs.
 * Functions named *_locked expect the caller to hold c->lock. */
#ifndef IOT_STORE_MEMORY_MEM_CACHE_H
#define IOT_STORE_MEMORY_MEM_CACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/cache.h"
#include "util/hash_table.h"

/* What a keyspace entry holds. Types that model one Redis string (string,
 * counter, gauge) convert into each other as Redis would; the others are
 * exclusive: using them as another type is IOT_EINVAL (Redis WRONGTYPE). */
enum iot_mem_type {
    IOT_MEM_STRING,
    IOT_MEM_COUNTER,
    IOT_MEM_GAUGE,
    IOT_MEM_HASH,
    IOT_MEM_LIST,
    IOT_MEM_RATE,
    IOT_MEM_SESSION,
};

/* Owned bytes plus a trailing NUL (not counted in len). */
struct iot_mem_blob {
    size_t len;
    char data[];
};

struct iot_mem_list; /* capped list, cache_memory_types.c */
struct iot_mem_rate; /* sliding window, cache_memory_types.c */

/* A session: token → user. The user's id is the key of user_node in
 * c->users; idx is this session's slot in that user's index. */
struct iot_mem_session {
    struct iot_mtab_node *user_node;
    size_t idx;
};

/* The value of a keyspace node (node->val.ptr). */
struct iot_mem_entry {
    enum iot_mem_type type;
    int64_t expire_at; /* iot_now_ms() deadline; 0 = never expires */
    union {
        struct iot_mem_blob *str;
        int64_t counter;
        double gauge;
        struct iot_mtab *hash; /* field → struct iot_mem_blob */
        struct iot_mem_list *list;
        struct iot_mem_rate *rate;
        struct iot_mem_session *session;
    } u;
};

struct iot_mem_pubsub {
    pthread_mutex_t lock;
    pthread_cond_t idle;     /* broadcast when a dead subscription stops running */
    struct iot_mtab channels; /* channel → struct iot_mem_channel */
};

struct iot_mem_cache {
    pthread_mutex_t lock;  /* keys and users */
    struct iot_mtab keys;  /* key → struct iot_mem_entry */
    struct iot_mtab users; /* user_id → struct iot_mem_user (session index) */
    /* Presence shares no state with the keyspace; its own lock keeps the
     * linear presence_count scan from stalling key operations. */
    pthread_mutex_t presence_lock;
    struct iot_mtab presence; /* int64 device id bytes → last seen ms (val.i64) */
    unsigned char seed[IOT_MTAB_SEED_LEN];
    struct iot_mem_pubsub ps;
};

/* (Argument checks are the backends' shared iot_cache_check_*, cache.h.) */
/* now + ttl_ms, saturating; 0 ("never") when ttl_ms is 0. */
int64_t iot_mem_deadline(int64_t now, int64_t ttl_ms);

struct iot_mem_blob *iot_mem_blob_new(const char *data, size_t len);
/* Copies bytes into a caller-owned iot_cache_value (data NUL-terminated). */
int iot_mem_value_copy(const char *data, size_t len, struct iot_cache_value *out);

/* Keyspace primitives (caller holds c->lock). lookup deletes the key and
 * returns NULL if it has expired at `now`. */
struct iot_mtab_node *iot_mem_lookup_locked(struct iot_mem_cache *c, const char *key, size_t klen,
                                            int64_t now);
/* Like lookup, but IOT_ENOTFOUND when absent and IOT_EINVAL when the key
 * holds another type. */
int iot_mem_lookup_type_locked(struct iot_mem_cache *c, const char *key, size_t klen,
                               int64_t now, enum iot_mem_type type, struct iot_mtab_node **out);
/* Adds an absent key holding a zeroed entry of `type`; NULL when out of
 * memory. */
struct iot_mtab_node *iot_mem_create_locked(struct iot_mem_cache *c, const char *key,
                                            size_t klen, enum iot_mem_type type);
void iot_mem_delete_locked(struct iot_mem_cache *c, struct iot_mtab_node *n);
/* The incremental expiry sweep: called once per write. */
void iot_mem_sweep_locked(struct iot_mem_cache *c, int64_t now);
/* Frees what an entry owns (and unlinks a session from its user). */
void iot_mem_entry_release_locked(struct iot_mem_cache *c, struct iot_mem_entry *e);

/* The ops of cache_memory_types.c. */
int iot_mem_rate_hit(void *self, const char *key, int64_t limit, int64_t window_ms,
                     int64_t now_ms, bool *allowed, int64_t *retry_after_ms);
int iot_mem_session_put(void *self, const char *token_hash, const char *user_id, int64_t ttl_ms);
int iot_mem_session_get(void *self, const char *token_hash, char *user_id_out);
int iot_mem_session_del(void *self, const char *token_hash);
int iot_mem_session_drop_user(void *self, const char *user_id);
int iot_mem_presence_touch(void *self, int64_t device_id, int64_t seen_ms);
int iot_mem_presence_get(void *self, int64_t device_id, int64_t *seen_ms);
int iot_mem_presence_remove(void *self, int64_t device_id);
int iot_mem_presence_count(void *self, int64_t since_ms, int64_t *count);
int iot_mem_hash_set(void *self, const char *key, const struct iot_cache_field *fields, size_t n,
                     int64_t ttl_ms);
/* hash_set with struct iot_cache_write's max_fields (0: no bound). */
int iot_mem_hash_set_bounded(void *self, const char *key, const struct iot_cache_field *fields,
                             size_t n, int64_t ttl_ms, size_t max_fields);
int iot_mem_hash_get_all(void *self, const char *key, iot_cache_field_fn fn, void *ctx);
int iot_mem_list_push(void *self, const char *key, const char *val, size_t len, size_t max_len,
                      int64_t ttl_ms);
int iot_mem_list_range(void *self, const char *key, size_t count, iot_cache_item_fn fn,
                       void *ctx);

/* The ops and lifetime of cache_memory_pubsub.c. */
int iot_mem_pubsub_init(struct iot_mem_pubsub *ps, const unsigned char seed[IOT_MTAB_SEED_LEN]);
/* Ends every subscription; handles still held by callers become invalid. */
void iot_mem_pubsub_fini(struct iot_mem_pubsub *ps);
int iot_mem_publish(void *self, const char *channel, const char *msg, size_t len);
int iot_mem_subscribe(void *self, const char *channel, iot_cache_msg_fn fn, void *ctx,
                      struct iot_cache_sub **out);
void iot_mem_unsubscribe(void *self, struct iot_cache_sub *sub);

#endif
