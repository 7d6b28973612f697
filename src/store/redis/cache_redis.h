/* cache_redis.h — the Redis cache backend ("redis"), selected by a
 * redis://[[user]:password@]host[:port][/db][?prefix=NS] URL (defaults:
 * port 6379, db 0, prefix "iotflow:"; every key and channel is prefixed).
 *
 * Every slot of struct iot_cache_ops with the memory backend's semantics,
 * shared by every process using the same server and prefix (caps: TTL,
 * SHARED, PUBSUB). Thread-safe: a pool of 8 connections serves the ops; one
 * dedicated connection and thread receive pub/sub messages and run the
 * delivery callbacks. While the server is down ops fail fast with
 * IOT_EUNAVAILABLE and the backend reconnects by itself with backoff;
 * messages published while the subscriber connection is down are lost (it
 * re-subscribes when it is back). The process must ignore SIGPIPE (iotflowd
 * does). close() ends all subscriptions; it must not run in a callback. */
#ifndef IOT_STORE_REDIS_CACHE_REDIS_H
#define IOT_STORE_REDIS_CACHE_REDIS_H

#include "store/cache.h"

extern const struct iot_cache_ops iot_cache_redis;

#endif
