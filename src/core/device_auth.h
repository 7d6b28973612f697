/* device_auth.h — who a device is and whether it may work, for every
 * transport: its API key checked through the process-local key cache
 * (core/devcache.h) then the registry, the statuses that refuse it,
 * first-use activation, and the per-device rate limits. The HTTP API
 * (api/authn.c, api/telemetry.c) and the MQTT listener (src/mqtt/) each
 * turn a verdict into their own answer (401/403/429; a CONNACK or PUBACK
 * reason code), so the rules live here once.
 *
 * Thread-safe: the gate is read-only after set-up and its stores are
 * thread-safe. Calls may block on the registry (a key-cache miss) or the
 * cache store (rate limits). */
#ifndef IOT_CORE_DEVICE_AUTH_H
#define IOT_CORE_DEVICE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/cache.h"
#include "store/registry.h"

struct iot_devcache;
struct iot_events;

/* What device checks need; built once at start-up (main.c). */
struct iot_device_gate {
    struct iot_registry *registry;
    struct iot_cache *cache;
    struct iot_devcache *devcache;
    struct iot_events *events; /* first-use activation is an event */
    int64_t rate_limit;        /* telemetry requests per device per minute; 0 = none */
    int64_t byte_rate_limit;   /* telemetry bytes per device per minute; 0 = none */
};

/* Every mode refuses a device whose owner is deactivated. */
enum iot_device_auth {
    /* to work (telemetry, heartbeat, status): a device an admin switched
     * off is refused; one in maintenance it set itself is refused; an
     * inactive one that is new or switched itself off becomes active
     * ("first use") */
    IOT_DEVICE_AUTH_ACTIVE,
    IOT_DEVICE_AUTH_ANY,  /* any status, nothing changed (config, credentials) */
    IOT_DEVICE_AUTH_READ, /* any status but switched off by an admin; nothing
                             changed (reading its telemetry, live streams) */
};

enum iot_device_verdict {
    IOT_DEVICE_OK = 0,
    IOT_DEVICE_UNKNOWN_KEY,    /* no device has this key (or it was rotated) */
    IOT_DEVICE_OWNER_INACTIVE, /* its owner's account is deactivated */
    IOT_DEVICE_HELD_OFF,       /* an admin switched it off; *out as stored */
    IOT_DEVICE_MAINTENANCE,    /* it set itself to maintenance */
    IOT_DEVICE_CHANGED,        /* an admin changed it while it activated itself: retry */
    IOT_DEVICE_STORE_ERROR,    /* the registry failed: *store_rc says how */
};

/* Longer keys are simply unknown (the HTTP layer's IOT_CREDENTIAL_MAX). */
#define IOT_DEVICE_KEY_MAX 256

/* The device whose API key is key[0..len) (any bytes), checked for `mode`. *out is
 * filled whenever the key is known. */
enum iot_device_verdict iot_device_authenticate(const struct iot_device_gate *g, const char *key,
                                                size_t len, enum iot_device_auth mode,
                                                struct iot_device *out, int *store_rc);
/* The same from the key's SHA-256 hex (iot_device.api_key_hash): a
 * long-lived connection checks its device again on every message without
 * keeping the key itself. */
enum iot_device_verdict iot_device_authenticate_hash(const struct iot_device_gate *g,
                                                     const char *key_hash,
                                                     enum iot_device_auth mode,
                                                     struct iot_device *out, int *store_rc);

/* The device's own write of its status and of the fields in `fields`
 * (IOT_REG_OWN_*) from *d, a copy that may be stale: IOT_DEVICE_OK;
 * HELD_OFF when an admin switched it off since (the stale key-cache entry
 * is dropped, *now is the stored row); CHANGED when it was switched back on
 * between the write and the read; STORE_ERROR. `now` may be NULL. Leaves the
 * key cache alone on success (the caller forgets or refreshes it). */
enum iot_device_verdict iot_device_write_own(const struct iot_device_gate *g,
                                             const struct iot_device *d, unsigned fields,
                                             struct iot_device *now, int *store_rc);

/* One telemetry request (an HTTP POST, an MQTT PUBLISH) of the device
 * against IOTFLOW_DEVICE_RATE_LIMIT per minute, counted in the cache store
 * (shared by the instances on it). false when over, with *retry_ms; fails
 * open when the cache fails (a cache outage must not stop ingest). */
bool iot_device_rate_take(const struct iot_device_gate *g, int64_t device_id, int64_t *retry_ms);
/* `bytes` of telemetry against IOTFLOW_DEVICE_BYTE_RATE_LIMIT per minute: a
 * fixed window (one counter per device and minute), so a device may send up
 * to twice the limit across a minute boundary. The request that crosses the
 * limit is still taken, so one body larger than the limit is not refused
 * forever. Fails open like iot_device_rate_take. */
bool iot_device_bytes_take(const struct iot_device_gate *g, int64_t device_id, int64_t bytes,
                           int64_t *retry_ms);

/* A fixed-window counter in the cache store (shared by every instance on
 * it), for limits that count amounts or only some events, which the
 * rate_hit log of timestamps cannot: adds `amount` to the counter of
 * `prefix` in the window of window_ms holding now (0 reads it without
 * creating it); *total is the window's sum after the add, *left_ms the time
 * to the window's end. Returns the cache's status; callers fail open. */
int iot_window_count(struct iot_cache *cache, const char *prefix, int64_t amount,
                     int64_t window_ms, int64_t *total, int64_t *left_ms);

/* The pub/sub channel on which every change that can refuse a device's
 * key is announced (api/device_common.c publishes; the key caches, live
 * streams, alerting and the MQTT listener of every instance listen).
 * Payloads: "<device id> <key hash> <1 if deleted, else 0>" for one device
 * (its key rotated, its status or owner changed, or deleted); "owner <user
 * id>" for every device of a user whose is_active changed. */
#define IOT_DEVICE_NOTICE_CHANNEL "device:notice"

struct iot_device_notice {
    bool owner;         /* the "owner" form: id is a user's registry id */
    int64_t id;         /* the device's (or the owner's) registry id */
    char key_hash[IOT_KEY_HASH_LEN + 1]; /* the device form: its key's hash then */
    bool deleted;
};
/* Parses a notice; false for anything else (ignored by listeners). */
bool iot_device_notice_parse(const char *msg, size_t len, struct iot_device_notice *out);

#endif
