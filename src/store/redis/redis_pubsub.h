/* redis_pubsub.h — the Redis backend's subscriber: one dedicated connection
 * driven by one thread, feeding local subscriptions.
 *
 * The thread is started by the first subscribe. Only channels with local
 * subscribers are SUBSCRIBEd (reference-counted); the last local unsubscribe
 * UNSUBSCRIBEs. Other threads never touch the connection: they change the
 * local table under its lock and wake the thread through an eventfd.
 * Callbacks run on the subscriber thread, one at a time, with no lock held.
 * After a disconnect the thread reconnects with backoff and re-subscribes
 * every channel that still has local subscribers; messages published
 * meanwhile are lost. Channels given and delivered here are unprefixed. */
#ifndef IOT_STORE_REDIS_REDIS_PUBSUB_H
#define IOT_STORE_REDIS_REDIS_PUBSUB_H

#include <stddef.h>

#include "store/cache.h"
#include "store/redis/redis_conn.h"

struct iot_redis_ps;

/* `cfg` is borrowed and must outlive the subscriber. */
int iot_redis_ps_new(const struct iot_redis_cfg *cfg, struct iot_redis_ps **out);
/* Stops and joins the thread and frees every subscription (handles become
 * invalid). Not from a delivery callback. NULL is a no-op. */
void iot_redis_ps_free(struct iot_redis_ps *ps);

/* Adds a local subscription. When this needs a new SUBSCRIBE, waits (up to
 * about two seconds) until the server has confirmed it, so a message
 * published after this returns is delivered; when the server is down it
 * returns at once and deliveries start once it is back. A callback calling
 * subscribe does not wait (that would wait for itself). */
int iot_redis_ps_subscribe(struct iot_redis_ps *ps, const char *channel, size_t len,
                           iot_cache_msg_fn fn, void *ctx, struct iot_cache_sub **out);
/* Once this returns no delivery to `sub` runs or starts, except the one
 * that is calling it from the subscriber thread. NULL is a no-op. */
void iot_redis_ps_unsubscribe(struct iot_redis_ps *ps, struct iot_cache_sub *sub);

#endif
