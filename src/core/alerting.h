/* alerting.h — alert rules evaluated on every ingested message.
 *
 * The ingest writer hands each committed batch to iot_alerting_after_commit
 * (so an alert never refers to data that was not stored), which copies the
 * messages' numeric values (booleans as 0/1) into a bounded queue and
 * returns: the writer never waits for a rule, a store read or an alert
 * write. One alerting thread takes the queue in order and, per message,
 * evaluates the rules that apply to its device, from memory: a device's
 * rules (its own, its groups', its owner's "all devices" ones) are loaded
 * on first use and kept, with the state of each (rule, device) pair — since
 * when the condition holds (duration), the open alert (auto-resolve), when
 * it last fired (cooldown).
 *
 * A device's rules are loaded again after iot_alerting_user_changed (a rule
 * of the owner or a group membership changed) or iot_alerting_device_changed
 * (an alert of it was acknowledged or resolved by hand), which act on this
 * instance at once and on its peers through the cache's pub/sub, after a
 * device-deleted notice ("device:notice", api/device_common.c: its state
 * is dropped), and, as a backstop, once per refresh period (5 min by
 * default). Times are the messages' timestamps: a condition "held for
 * duration_s" in the device's own data.
 *
 * When the queue is full a batch is dropped from evaluation (counted and
 * logged); its data is stored all the same. State is per instance: two
 * instances ingesting for one device each keep their own (each reads the
 * device's open alerts from the store when it loads the rules). */
#ifndef IOT_CORE_ALERTING_H
#define IOT_CORE_ALERTING_H

#include <stddef.h>
#include <stdint.h>

#include "store/cache.h"
#include "store/docs.h"
#include "store/registry.h"
#include "store/telemetry.h"

struct iot_events;
struct iot_alerting;

struct iot_alerting_config {
    size_t queue_max;   /* messages waiting for evaluation; 0: 65536 */
    int64_t refresh_ms; /* a device's rules are reloaded at least this often; 0: 5 min */
};

struct iot_alerting_stats {
    int64_t evaluated; /* messages */
    int64_t dropped;   /* messages not evaluated: queue full */
    int64_t raised, resolved;
    int64_t load_failures;
};

/* Allocates the engine; nothing runs until iot_alerting_start (messages
 * handed over before wait in the queue). NULL when out of memory. */
struct iot_alerting *iot_alerting_new(const struct iot_alerting_config *cfg, struct iot_docs *docs,
                                      struct iot_cache *cache, struct iot_registry *reg);
/* Subscribes to the invalidation channels and starts the thread; alerts
 * are announced to `events` (may be NULL). */
int iot_alerting_start(struct iot_alerting *a, struct iot_events *events);

/* The ingest pipeline's post-commit hook (its `after_commit`): runs on the
 * ingest writer thread, copies and queues. ctx is the engine. */
void iot_alerting_after_commit(void *ctx, const struct iot_tm_message *msgs, size_t n);

/* The rules that apply to devices of user `user_id` (internal id) may have
 * changed. Any thread; NULL engine is a no-op. */
void iot_alerting_user_changed(struct iot_alerting *a, int64_t user_id);
/* The open alerts of a device changed by hand. Any thread. */
void iot_alerting_device_changed(struct iot_alerting *a, int64_t device_id);

void iot_alerting_stats(struct iot_alerting *a, struct iot_alerting_stats *out);

/* Unsubscribes, evaluates what is queued and joins the thread (call after
 * the ingest pipeline stopped). Idempotent; NULL is a no-op. */
void iot_alerting_stop(struct iot_alerting *a);
void iot_alerting_free(struct iot_alerting *a);

#endif
