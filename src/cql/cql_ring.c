/* cql_ring.c — sorted token ring, owner lookup by binary search and the
 * clockwise walk over distinct hosts (see cql_ring.h). */
#include "cql/cql_ring.h"

#include <stdlib.h>
#include <string.h>

#include "cql/cql_error.h"

static int cmp_entry(const void *a, const void *b)
{
    const struct cql_ring_entry *x = a, *y = b;
    if (x->token != y->token)
        return x->token < y->token ? -1 : 1;
    return x->host < y->host ? -1 : x->host > y->host;
}

int cql_ring_build(struct cql_ring *r, const struct cql_ring_entry *entries, size_t n)
{
    struct cql_ring_entry *copy = NULL;
    if (n > 0) {
        copy = malloc(n * sizeof *copy);
        if (!copy)
            return CQL_E_NOMEM;
        memcpy(copy, entries, n * sizeof *copy);
        qsort(copy, n, sizeof *copy, cmp_entry);
    }
    free(r->entries);
    r->entries = copy;
    r->n = n;
    return CQL_OK;
}

void cql_ring_free(struct cql_ring *r)
{
    if (!r)
        return;
    free(r->entries);
    r->entries = NULL;
    r->n = 0;
}

size_t cql_ring_find(const struct cql_ring *r, int64_t token)
{
    size_t lo = 0, hi = r->n; /* the answer is in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->entries[mid].token < token)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == r->n ? 0 : lo;
}

static bool already_out(const uint32_t *out, size_t n, uint32_t host)
{
    for (size_t i = 0; i < n; i++)
        if (out[i] == host)
            return true;
    return false;
}

size_t cql_ring_replicas(const struct cql_ring *r, int64_t token,
                         bool (*usable)(uint32_t host, void *arg), void *arg, uint32_t *out,
                         size_t cap)
{
    if (r->n == 0 || cap == 0)
        return 0;
    size_t start = cql_ring_find(r, token), n = 0;
    for (size_t k = 0; k < r->n && n < cap; k++) {
        uint32_t host = r->entries[(start + k) % r->n].host;
        if (!already_out(out, n, host) && (!usable || usable(host, arg)))
            out[n++] = host;
    }
    return n;
}
