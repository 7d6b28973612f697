/* fanout.c — the ingest fan-out's write list and arena (see fanout.h). */
#include "core/fanout.h"

#include <stdlib.h>

#define CHUNK_BYTES 16384

struct iot_fanout_chunk {
    struct iot_fanout_chunk *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

void *iot_fanout_alloc(struct iot_fanout *f, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    struct iot_fanout_chunk *c = f->chunks;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > CHUNK_BYTES ? size : CHUNK_BYTES;
        if (!(c = malloc(sizeof *c + cap)))
            return NULL;
        *c = (struct iot_fanout_chunk){.next = f->chunks, .cap = cap};
        f->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

void iot_fanout_add(struct iot_fanout *f, struct iot_cache_write w)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 64;
        struct iot_cache_write *grown = realloc(f->w, cap * sizeof *grown);
        if (!grown)
            return; /* the write is lost: the cache is a cache */
        f->w = grown;
        f->cap = cap;
    }
    f->w[f->n++] = w;
}

/* Empties the fan-out for the next batch, keeping one chunk. */
static void fanout_reset(struct iot_fanout *f)
{
    f->n = 0;
    if (!f->chunks)
        return;
    struct iot_fanout_chunk *keep = f->chunks, *c = keep->next;
    while (c) {
        struct iot_fanout_chunk *next = c->next;
        free(c);
        c = next;
    }
    keep->next = NULL;
    keep->used = 0;
}

int iot_fanout_send(struct iot_fanout *f, struct iot_cache *cache)
{
    int rc = iot_cache_write_batch(cache, f->w, f->n);
    fanout_reset(f);
    return rc;
}

void iot_fanout_free(struct iot_fanout *f)
{
    fanout_reset(f);
    free(f->chunks);
    free(f->w);
    *f = (struct iot_fanout){0};
}
