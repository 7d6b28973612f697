/* devconfig.h — versioned device configurations in the documents store
 * (IOT_DOCS_CONFIGS): every write stores a new version as a document of its
 * own, id "<device_id>:<version, 10 digits>", ts_ms = the version, so that
 * the newest is one find(limit 1) away and the history pages by version.
 *
 * The stored body is what the API answers, byte for byte:
 *   {"device_id":N,"version":V,"config":{...},"updated_at":"ISO","updated_by":"..."}
 * Pure logic on struct iot_docs, no HTTP; thread-safe as the store is;
 * bodies handed out are borrowed for the callback only. */
#ifndef IOT_CORE_DEVCONFIG_H
#define IOT_CORE_DEVCONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/cache.h"
#include "store/docs.h"

#define IOT_DEVCONFIG_MAX (64 * 1024) /* bytes of a configuration's compact JSON */
#define IOT_DEVCONFIG_VERSION_MAX INT64_C(9999999999) /* what 10 digits hold */

/* The compact JSON text of a configuration object (caller frees):
 * IOT_EINVAL when it is not an object, IOT_ELIMIT past IOT_DEVCONFIG_MAX,
 * IOT_ENOMEM. */
int iot_devconfig_encode(const json_t *config, char **text, size_t *len);

/* A new version to store. */
struct iot_devconfig_write {
    int64_t device_id;
    int64_t owner_id;       /* the device's owner (registry id): the documents' user_id */
    const char *config;     /* iot_devconfig_encode's text */
    size_t config_len;
    const char *updated_by; /* who: a user's public id, or "admin" */
    int64_t now_ms;
};

/* Stores the next version: reads the newest, inserts newest + 1 as a new
 * document, and when another writer took that version first (IOT_ECONFLICT)
 * reads again and retries, a few times, so that two concurrent writes
 * never share a version, on one instance or several. IOT_EAGAIN when every
 * retry lost. On success *version is the stored version and, when body is
 * not NULL, *body the stored document's text (caller frees). */
int iot_devconfig_put(struct iot_docs *d, const struct iot_devconfig_write *w, int64_t *version,
                      char **body, size_t *body_len);

/* Calls fn once with the newest version's document, or returns
 * IOT_ENOTFOUND when the device has none. One find(limit 1). */
int iot_devconfig_latest(struct iot_docs *d, int64_t device_id, iot_docs_fn fn, void *ctx);

/* Streams the device's versions newest first: those older than `before`
 * (0: from the newest), at most `limit` (0: all). */
int iot_devconfig_history(struct iot_docs *d, int64_t device_id, int64_t before, size_t limit,
                          iot_docs_fn fn, void *ctx);

/* The pub/sub channel on which a stored version is announced, so that the
 * MQTT listener of every instance sharing the cache can push it to the
 * device's subscribers. Payload: "<device id> <version>". */
#define IOT_DEVCONFIG_CHANNEL "devconfig:changed"
/* Announces version `version` of the device's configuration (best effort:
 * a subscriber that misses it sends the newest at its next subscribe). */
void iot_devconfig_announce(struct iot_cache *cache, int64_t device_id, int64_t version);
/* Parses an announcement; false for anything else. */
bool iot_devconfig_announcement(const char *msg, size_t len, int64_t *device_id,
                                int64_t *version);

#endif
