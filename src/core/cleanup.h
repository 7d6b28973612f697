/* cleanup.h — removing the telemetry and the documents of deleted devices
 * and users, durably.
 *
 * A registry delete records a pending clean-up in its own transaction
 * (registry.h, ops version 3). The deleting request then calls
 * iot_cleaner_after_delete, which removes the telemetry and the documents
 * at once and marks the row done. A device's documents are those with its
 * device_id in every collection but the event log (its events stay with
 * the owner); a user's are those with its user_id in every collection,
 * events included. When either store fails the row stays, with the
 * attempt counted, and the cleaner's thread ("tm-cleanup") retries the whole
 * clean-up with exponential backoff — and also the rows a crash between
 * the delete and the removal left behind; a row is done only when both
 * stores are. Every instance sharing the registry runs a cleaner: every
 * removal is idempotent, and a row another instance finished is simply
 * gone. One failed attempt ends a pass (the store is probably down; the
 * rest waits for the next one). Logging: one warning when clean-ups start
 * failing, one line when they succeed again.
 *
 * Thread-safe. The registry, telemetry and documents stores must outlive
 * the cleaner. */
#ifndef IOT_CORE_CLEANUP_H
#define IOT_CORE_CLEANUP_H

#include <stddef.h>
#include <stdint.h>

#include "store/docs.h"
#include "store/registry.h"
#include "store/telemetry.h"

struct iot_cleaner_config {
    int64_t poll_ms;      /* how often the thread looks for due rows; 0: 10 s */
    int64_t retry_min_ms; /* wait after the first failed attempt; 0: 5 s */
    int64_t retry_max_ms; /* longest wait between attempts; 0: 10 min */
};

/* What one pass did. */
struct iot_cleaner_pass {
    size_t attempted, done, failed;
};

struct iot_cleaner;

/* A cleaner with no thread yet (NULL when out of memory). `docs` may be
 * NULL: then only telemetry is removed. */
struct iot_cleaner *iot_cleaner_new(const struct iot_cleaner_config *cfg,
                                    struct iot_registry *reg, struct iot_telemetry *tm,
                                    struct iot_docs *docs);
/* Starts the retry thread; IOT_OK or IOT_ENOMEM. */
int iot_cleaner_start(struct iot_cleaner *c);
/* Stops and joins the thread (a pass under way finishes first); no-op
 * when not running. iot_cleaner_after_delete still works afterwards. */
void iot_cleaner_stop(struct iot_cleaner *c);
void iot_cleaner_free(struct iot_cleaner *c); /* stops first; NULL is a no-op */

/* After the registry delete of a device (its id) or a user (internal id)
 * committed: removes its telemetry and documents now and marks the
 * pending row done. Returns IOT_OK, or the failing store's error: the row
 * then stays pending, due after the first retry delay. */
int iot_cleaner_after_delete(struct iot_cleaner *c, enum iot_cleanup_kind kind,
                             int64_t target_id);

/* One pass at time `now` (ms, the registry's clock): every row due by then,
 * a page at a time, until none is left or an attempt fails. The thread
 * runs it every poll_ms; tests call it with the time they want. Passes of
 * one cleaner run one at a time. Returns IOT_OK or the registry's error;
 * *out (may be NULL) says what it did. */
int iot_cleaner_pass(struct iot_cleaner *c, int64_t now, struct iot_cleaner_pass *out);

/* The wait before the next attempt of a row that has failed `attempts`
 * times: retry_min_ms doubled per earlier failure, at most retry_max_ms. */
int64_t iot_cleaner_retry_delay(const struct iot_cleaner *c, int64_t attempts);

#endif
