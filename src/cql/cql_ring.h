/* cql_ring.h — the token ring of a Murmur3 cluster, for token-aware routing:
 * every node's tokens sorted, the owner of a token (the first ring token >=
 * it, wrapping around) and the distinct hosts met walking on from there (the
 * replicas under SimpleStrategy, in order).
 * Ownership: a ring owns its sorted copy of the entries (cql_ring_free).
 * Threading: no global state; a ring is used by one thread at a time. */
#ifndef CQL_RING_H
#define CQL_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cql_ring_entry {
    int64_t token;
    uint32_t host; /* the caller's host index */
};

struct cql_ring {
    struct cql_ring_entry *entries; /* sorted by token */
    size_t n;
};

/* Replaces r's entries with a sorted copy of entries[0..n). On CQL_E_NOMEM
 * r is unchanged. */
int cql_ring_build(struct cql_ring *r, const struct cql_ring_entry *entries, size_t n);
void cql_ring_free(struct cql_ring *r);

/* Index of the entry owning token: the first with entry.token >= token, or 0
 * past the last (wrap around). r->n must be > 0. */
size_t cql_ring_find(const struct cql_ring *r, int64_t token);

/* Walks the ring from token's owner and writes to out (at most cap) each
 * host the first time it is met, skipping those for which usable() says
 * false. Returns how many were written. */
size_t cql_ring_replicas(const struct cql_ring *r, int64_t token,
                         bool (*usable)(uint32_t host, void *arg), void *arg, uint32_t *out,
                         size_t cap);

#endif
