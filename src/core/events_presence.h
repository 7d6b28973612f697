/* events_presence.h — online/offline transitions for the event log
 * (internal to core/events.c): which devices this instance has seen and
 * when, so that "was it offline?" is a local lookup on the request path,
 * and a periodic sweep finds the devices that went quiet.
 *
 * The local table is what this instance saw; the cache store's presence
 * (shared by every instance) is asked only when the table suggests a
 * transition: before calling a device online again, and before calling a
 * quiet one offline (it may be talking to another instance). Thread-safe. */
#ifndef IOT_CORE_EVENTS_PRESENCE_H
#define IOT_CORE_EVENTS_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/cache.h"

#define IOT_PRESENCE_WATCH_MAX 1000000 /* devices tracked; more are not watched */

struct iot_presence_watch;

/* NULL when out of memory. `cache` must outlive the watch. */
struct iot_presence_watch *iot_presence_watch_new(int64_t window_ms, struct iot_cache *cache);
void iot_presence_watch_free(struct iot_presence_watch *w);

/* Notes that the device (owned by user_id) is seen at now_ms; `known` is
 * the last sighting the caller knows of (the registry's, 0 = never). Call
 * before the sighting reaches the cache store. True when the device was
 * offline (not seen within the window) until now; *prev then holds its
 * previous sighting (0 = never). */
bool iot_presence_watch_seen(struct iot_presence_watch *w, int64_t device_id, int64_t user_id,
                             int64_t known, int64_t now_ms, int64_t *prev);
/* Stops watching a device (deleted). */
void iot_presence_watch_forget(struct iot_presence_watch *w, int64_t device_id, int64_t user_id);

/* A device found offline by a sweep: last seen at last_seen (ms). */
typedef void (*iot_presence_offline_fn)(void *ctx, int64_t device_id, int64_t user_id,
                                        int64_t last_seen);
/* Calls fn for each watched device not seen (here, nor by another instance
 * as the cache says) within the window as of now_ms, and stops watching it.
 * Devices seen elsewhere stop being watched here without a call. Returns
 * how many were found offline. */
size_t iot_presence_watch_sweep(struct iot_presence_watch *w, int64_t now_ms,
                                iot_presence_offline_fn fn, void *ctx);

#endif
