/* presence.h — when a device counts as online: seen within the online
 * window. Pure functions; the last-seen times come from the cache store
 * (fresh) and the registry (persisted), whichever is later. */
#ifndef IOT_CORE_PRESENCE_H
#define IOT_CORE_PRESENCE_H

#include <stdbool.h>
#include <stdint.h>

/* The later of two last-seen times (0 = never). */
static inline int64_t iot_presence_latest(int64_t a, int64_t b) { return a > b ? a : b; }

/* True when last_seen (ms, 0 = never) lies within window_s seconds of now. */
static inline bool iot_presence_online(int64_t last_seen, int64_t now_ms, int64_t window_s)
{
    return last_seen > 0 && now_ms - last_seen < window_s * 1000;
}

#endif
