/* devcache.h — the process-local cache of API-key → device, the first
 * stop of every device-authenticated request (the telemetry hot path: a
 * hit costs no registry round trip; see docs/ARCHITECTURE.md). A cached
 * device carries its owner's is_active (iot_device.owner_active), so that
 * is checked for free too.
 *
 * Direct-mapped by the key's hash (a slot holds one device; a colliding key
 * simply replaces it), so memory is fixed at creation and every operation is
 * O(1). Entries expire after a short TTL, which bounds how long another
 * iotflowd instance's change can go unseen; changes made here are applied
 * at once with iot_devcache_forget. Thread-safe (striped locks). */
#ifndef IOT_CORE_DEVCACHE_H
#define IOT_CORE_DEVCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/registry.h"

struct iot_devcache;

struct iot_devcache *iot_devcache_new(size_t slots, int64_t ttl_ms);
void iot_devcache_free(struct iot_devcache *c); /* NULL is a no-op */

/* Copies the cached device for key_hash into *out; false on a miss. */
bool iot_devcache_get(struct iot_devcache *c, const char *key_hash, struct iot_device *out);
void iot_devcache_put(struct iot_devcache *c, const struct iot_device *d);
/* Drops the entry of one key (after an update, delete or key rotation). */
void iot_devcache_forget(struct iot_devcache *c, const char *key_hash);
/* Drops every entry of the devices of one owner (iot_device.user_id): after
 * the owner is deactivated or activated. Walks every slot, one stripe lock
 * at a time: O(slots), for rare account changes, not for requests. */
void iot_devcache_forget_owner(struct iot_devcache *c, int64_t owner_id);

#endif
