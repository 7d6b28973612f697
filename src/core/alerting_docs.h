/* alerting_docs.h — alert documents (IOT_DOCS_ALERTS) and what each change
 * of one sets off: the alert is published on pub/sub (live streams on every
 * instance), its event is emitted (core/events.h), and the owner's cache
 * of active alerts is made stale.
 *
 * An alert's body: {"id", "rule_id" (or null), "device_id", "measurement",
 * "value", "operator", "threshold", "severity", "status", "message",
 * "raised_at", "acknowledged_at", "acknowledged_by", "resolved_at",
 * "resolved_by"}, times ISO 8601; header k1 = status, k2 = severity, ts_ms
 * = raised time. Its life: active → acknowledged → resolved, or active →
 * resolved; a change is a get and a put at exactly the rev read, retried
 * when someone else changed it in between.
 *
 * The active-alert cache: per user, a hash in the cache store under a key
 * that names a generation ("alerts:active:<user>:<gen>"), the generation
 * itself under "alerts:gen:<user>". A change sets a new random generation
 * after the store write, so a reader who filled the hash from an older
 * read of the store filled a key no one reads any more: a stale list can
 * never be trusted, whatever the interleaving. Thread-safe; every call does
 * store I/O. */
#ifndef IOT_CORE_ALERTING_DOCS_H
#define IOT_CORE_ALERTING_DOCS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/alerting_rule.h"
#include "store/cache.h"
#include "store/docs.h"

struct iot_events;

/* The stores a change touches. */
struct iot_alert_env {
    struct iot_docs *docs;
    struct iot_cache *cache;
    struct iot_events *events; /* NULL: no event log */
};

#define IOT_ALERT_STATUS_ACTIVE "active"
#define IOT_ALERT_STATUS_ACKNOWLEDGED "acknowledged"
#define IOT_ALERT_STATUS_RESOLVED "resolved"
/* The most active alerts of one user the cache holds; past this, readers
 * go to the documents store. */
#define IOT_ALERT_CACHE_MAX 1000

/* A new alert, from a rule or by hand. */
struct iot_alert_new {
    int64_t user_id, device_id;
    const char *rule_id;     /* NULL: raised by hand */
    const char *measurement; /* NULL: none */
    json_t *value;           /* borrowed; NULL: none */
    const char *op;          /* NULL: none */
    bool has_threshold;
    double threshold;
    enum iot_alert_severity severity;
    const char *message;
    int64_t raised_ms;
};

/* A stored alert as read: the body (owned: json_decref), its owner and rev. */
struct iot_alert_doc {
    json_t *body;
    int64_t user_id, device_id, rev;
};

enum iot_alert_action { IOT_ALERT_ACKNOWLEDGE, IOT_ALERT_RESOLVE };

/* Stores a new alert with a fresh id (written to id_out) and announces it.
 * *body_out (may be NULL) receives the body (owned). */
int iot_alert_raise(const struct iot_alert_env *env, const struct iot_alert_new *a,
                    char id_out[IOT_ALERT_ID_LEN + 1], json_t **body_out);

/* Reads one alert; IOT_ENOTFOUND when absent. */
int iot_alert_load(const struct iot_alert_env *env, const char *id, struct iot_alert_doc *out);
void iot_alert_doc_clear(struct iot_alert_doc *d);

/* Applies `action` to the alert in *doc (as iot_alert_load read it), by
 * `by` (a user's public id, "admin" or "system"), and announces it.
 * Returns IOT_OK with *doc now the new state; IOT_ECONFLICT when the
 * action is not allowed from the alert's status (*doc the current state);
 * IOT_ENOTFOUND when it was deleted meanwhile; or a store error. */
int iot_alert_apply(const struct iot_alert_env *env, enum iot_alert_action action, const char *by,
                    struct iot_alert_doc *doc);

/* Every active alert of a user as a JSON array of bodies in no set order
 * (owned), from the cache when it holds a complete list, else from the
 * store (then cached). *from_cache tells which. IOT_ELIMIT when the user
 * has more than IOT_ALERT_CACHE_MAX (the caller pages the store). */
int iot_alert_active_of_user(const struct iot_alert_env *env, int64_t user_id, json_t **out,
                             bool *from_cache);

/* The pub/sub channels of alert changes: one per owner, one with all. */
#define IOT_ALERT_CHANNEL_ALL "alerts:all"
void iot_alert_channel_of_user(int64_t user_id, char *buf, size_t size);

#endif
