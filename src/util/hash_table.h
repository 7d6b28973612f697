/* hash_table.h — a chained hash table of byte-string keys (the in-process
 * cache's tables, the Redis subscriber's channel table).
 *
 * Keys are byte strings (they may hold NUL bytes) copied into the node;
 * values are a pointer or an int64 that the caller owns. Keys are hashed with
 * SipHash (libsodium crypto_shorthash) under a random seed, so client-chosen
 * keys cannot force collisions. The table grows and shrinks by whole rehash;
 * nodes never move, so a node pointer stays valid until it is removed.
 * Not thread-safe: the cache calls it under its own lock. */
#ifndef IOT_UTIL_HASH_TABLE_H
#define IOT_UTIL_HASH_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IOT_MTAB_SEED_LEN 16

union iot_mtab_val {
    void *ptr;
    int64_t i64;
};

struct iot_mtab_node {
    struct iot_mtab_node *next;
    uint64_t hash;
    union iot_mtab_val val;
    size_t klen;
    char key[]; /* klen bytes, then a NUL so string keys read as C strings */
};

struct iot_mtab {
    struct iot_mtab_node **buckets; /* NULL until the first insert */
    size_t nbuckets;                /* 0 or a power of two */
    size_t count;
    size_t cursor; /* next bucket the incremental sweep visits */
    unsigned char seed[IOT_MTAB_SEED_LEN];
};

/* Called for a node being freed by iot_mtab_clear or removed by a sweep:
 * releases what node->val owns (not the node itself). */
typedef void (*iot_mtab_free_fn)(void *ctx, struct iot_mtab_node *n);
/* Sweep predicate: true means "remove this node" (the table then calls the
 * free callback and frees the node). */
typedef bool (*iot_mtab_pred_fn)(void *ctx, const struct iot_mtab_node *n);
typedef void (*iot_mtab_visit_fn)(void *ctx, const struct iot_mtab_node *n);

/* An empty table hashing under `seed`; allocates nothing. */
void iot_mtab_init(struct iot_mtab *t, const unsigned char seed[IOT_MTAB_SEED_LEN]);
/* Frees every node (calling free_fn first, if not NULL) and the buckets;
 * the table is empty and reusable afterwards. */
void iot_mtab_clear(struct iot_mtab *t, iot_mtab_free_fn free_fn, void *ctx);

struct iot_mtab_node *iot_mtab_find(const struct iot_mtab *t, const void *key, size_t klen);
/* Inserts a node for a key that must be absent, val zeroed. NULL when out of
 * memory (the table is unchanged). */
struct iot_mtab_node *iot_mtab_add(struct iot_mtab *t, const void *key, size_t klen);
/* Unlinks and frees n; the caller has already released n->val. */
void iot_mtab_remove(struct iot_mtab *t, struct iot_mtab_node *n);

/* Visits the next `nbuckets` buckets from the sweep cursor (wrapping) and
 * removes the nodes `pred` selects, calling free_fn on each. */
void iot_mtab_sweep(struct iot_mtab *t, size_t nbuckets, iot_mtab_pred_fn pred,
                    iot_mtab_free_fn free_fn, void *ctx);
/* Calls fn on every node, in no particular order; fn must not modify t. */
void iot_mtab_foreach(const struct iot_mtab *t, iot_mtab_visit_fn fn, void *ctx);

#endif
