/* cache_memory.h — the in-process cache backend ("memory").
 *
 * Implements every slot of struct iot_cache_ops inside one process, with the
 * semantics the Redis backend has: TTLs against iot_now_ms(), typed keys,
 * sliding-window rate limits, sessions, presence, pub/sub. State is not
 * shared between processes (caps: IOT_CACHE_CAP_TTL only). Thread-safe. */
#ifndef IOT_STORE_MEMORY_CACHE_MEMORY_H
#define IOT_STORE_MEMORY_CACHE_MEMORY_H

#include "store/cache.h"

extern const struct iot_cache_ops iot_cache_memory;

#endif
