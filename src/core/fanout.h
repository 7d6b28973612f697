/* fanout.h — the cache writes the ingest writer makes after a commit
 * (latest values, presence, published messages), gathered into one batch
 * that goes to the cache store in one write_batch (one round trip to a
 * server cache), and the arena their keys, fields and messages live in.
 *
 * A fan-out makes several strings per message, and a malloc and free for
 * each was a fifth of the writer's time: the arena's chunks and the write
 * list are kept from one batch to the next. One fan-out per ingest writer;
 * only that thread touches it. Zero-initialised is empty. */
#ifndef IOT_CORE_FANOUT_H
#define IOT_CORE_FANOUT_H

#include <stddef.h>

#include "store/cache.h"

struct iot_fanout_chunk; /* arena memory, fanout.c */

struct iot_fanout {
    struct iot_cache_write *w;
    size_t n, cap;
    struct iot_fanout_chunk *chunks; /* newest first */
};

/* size bytes (16-aligned) that live until the next send or free; NULL when
 * out of memory (the caller then skips that write: the cache is a cache). */
void *iot_fanout_alloc(struct iot_fanout *f, size_t size);
/* Queues one write; its pointers must stay valid until the send (arena
 * memory, or static). Out of memory drops the write. */
void iot_fanout_add(struct iot_fanout *f, struct iot_cache_write w);
/* Sends every queued write in one batch and empties the fan-out, keeping
 * one chunk of the arena. Returns the cache's status (IOT_OK also when
 * nothing was queued). */
int iot_fanout_send(struct iot_fanout *f, struct iot_cache *cache);
/* Releases everything; the fan-out is empty again. */
void iot_fanout_free(struct iot_fanout *f);

#endif
