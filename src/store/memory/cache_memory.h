/* cache_memory.h — the in-process cache backend ("memory").
 *
 * Every slot of struct iot_cache_ops inside one process, with the semantics
 * of the Redis backend: typed keys, TTLs against iot_now_ms(), rate limits,
 * sessions, presence, pub/sub. Nothing is shared between processes (caps:
 * IOT_CACHE_CAP_TTL only). Thread-safe; close() frees every subscription, so
 * handles must not be unsubscribed after it. */
#ifndef IOT_STORE_MEMORY_CACHE_MEMORY_H
#define IOT_STORE_MEMORY_CACHE_MEMORY_H

#include "store/cache.h"

extern const struct iot_cache_ops iot_cache_memory;

#endif
