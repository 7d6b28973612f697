#include "util/hash_table.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Smallest bucket array; also the size below which we never shrink. */
#define MTAB_MIN_BUCKETS 8u

static uint64_t mtab_hash(const struct iot_mtab *t, const void *key, size_t klen)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, key, klen, t->seed);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h;
}

void iot_mtab_init(struct iot_mtab *t, const unsigned char seed[IOT_MTAB_SEED_LEN])
{
    memset(t, 0, sizeof *t);
    memcpy(t->seed, seed, IOT_MTAB_SEED_LEN);
}

/* Moves every node into a new bucket array of `n` (a power of two). On
 * allocation failure the table keeps its old array: a higher load factor is
 * slower but still correct. */
static void mtab_resize(struct iot_mtab *t, size_t n)
{
    struct iot_mtab_node **nb = calloc(n, sizeof *nb);
    if (!nb)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct iot_mtab_node *node = t->buckets[i];
        while (node) {
            struct iot_mtab_node *next = node->next;
            size_t b = node->hash & (n - 1);
            node->next = nb[b];
            nb[b] = node;
            node = next;
        }
    }
    free(t->buckets);
    t->buckets = nb;
    t->nbuckets = n;
    t->cursor = 0;
}

/* After removals: halve the array size while fewer than one node in eight
 * buckets, so a burst of keys that later expire does not pin memory. */
static void mtab_maybe_shrink(struct iot_mtab *t)
{
    if (t->nbuckets <= MTAB_MIN_BUCKETS || t->count >= t->nbuckets / 8)
        return;
    size_t n = t->nbuckets;
    while (n > MTAB_MIN_BUCKETS && t->count < n / 4)
        n /= 2;
    mtab_resize(t, n);
}

void iot_mtab_clear(struct iot_mtab *t, iot_mtab_free_fn free_fn, void *ctx)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct iot_mtab_node *node = t->buckets[i];
        while (node) {
            struct iot_mtab_node *next = node->next;
            if (free_fn)
                free_fn(ctx, node);
            free(node);
            node = next;
        }
    }
    free(t->buckets);
    t->buckets = NULL;
    t->nbuckets = 0;
    t->count = 0;
    t->cursor = 0;
}

struct iot_mtab_node *iot_mtab_find(const struct iot_mtab *t, const void *key, size_t klen)
{
    if (t->count == 0)
        return NULL;
    uint64_t h = mtab_hash(t, key, klen);
    for (struct iot_mtab_node *n = t->buckets[h & (t->nbuckets - 1)]; n; n = n->next) {
        if (n->hash == h && n->klen == klen && memcmp(n->key, key, klen) == 0)
            return n;
    }
    return NULL;
}

struct iot_mtab_node *iot_mtab_add(struct iot_mtab *t, const void *key, size_t klen)
{
    if (t->nbuckets == 0) {
        mtab_resize(t, MTAB_MIN_BUCKETS);
        if (t->nbuckets == 0)
            return NULL;
    } else if (t->count >= t->nbuckets && t->nbuckets <= SIZE_MAX / 2 / sizeof(void *)) {
        mtab_resize(t, t->nbuckets * 2);
    }
    struct iot_mtab_node *n = malloc(sizeof *n + klen + 1);
    if (!n)
        return NULL;
    n->hash = mtab_hash(t, key, klen);
    n->val.ptr = NULL;
    n->val.i64 = 0;
    n->klen = klen;
    memcpy(n->key, key, klen);
    n->key[klen] = '\0';
    size_t b = n->hash & (t->nbuckets - 1);
    n->next = t->buckets[b];
    t->buckets[b] = n;
    t->count++;
    return n;
}

/* Unlinks n from its chain without freeing it or resizing. */
static void mtab_unlink(struct iot_mtab *t, struct iot_mtab_node *n)
{
    struct iot_mtab_node **pp = &t->buckets[n->hash & (t->nbuckets - 1)];
    while (*pp != n)
        pp = &(*pp)->next;
    *pp = n->next;
    t->count--;
}

void iot_mtab_remove(struct iot_mtab *t, struct iot_mtab_node *n)
{
    mtab_unlink(t, n);
    free(n);
    mtab_maybe_shrink(t);
}

void iot_mtab_sweep(struct iot_mtab *t, size_t nbuckets, iot_mtab_pred_fn pred,
                    iot_mtab_free_fn free_fn, void *ctx)
{
    if (t->count == 0)
        return;
    if (nbuckets > t->nbuckets)
        nbuckets = t->nbuckets;
    for (size_t i = 0; i < nbuckets; i++) {
        struct iot_mtab_node **pp = &t->buckets[t->cursor];
        while (*pp) {
            struct iot_mtab_node *n = *pp;
            if (!pred(ctx, n)) {
                pp = &n->next;
                continue;
            }
            *pp = n->next;
            t->count--;
            if (free_fn)
                free_fn(ctx, n);
            free(n);
        }
        t->cursor = (t->cursor + 1) & (t->nbuckets - 1);
    }
    mtab_maybe_shrink(t);
}

void iot_mtab_foreach(const struct iot_mtab *t, iot_mtab_visit_fn fn, void *ctx)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (const struct iot_mtab_node *n = t->buckets[i]; n; n = n->next)
            fn(ctx, n);
    }
}
