/* latest.h — the latest-value cache: how a device's latest values live in
 * the cache store, who writes them, when a reader may trust them and how
 * it refills them from the telemetry store. The whole protocol is in
 * latest.c; the ingest writer and the /latest handler only call it.
 *
 * Writer side: the ingest writer thread, after each commit, once per
 * device of the batch (its newest message), through the fan-out's cache
 * batch: it merges the message's values into the device's entry, or drops
 * the entry when a merge could be wrong (an older message, a device this
 * process has not cached, a cache other processes share). A merge never
 * makes an entry trusted.
 * Reader side: any request thread. A trusted entry answers; otherwise the
 * telemetry store does, and its whole answer is written back as a trusted
 * entry (briefly, when the cache is shared: see latest.c).
 *
 * Entries hold at most IOT_LATEST_NAMES_MAX measurement names: a merge that
 * would exceed it deletes the entry and a reader does not refill one that
 * large, so such a device is read from the telemetry store every time
 * (bounded by the caller's page budget) rather than its entry growing with
 * every new name and each read copying all of it under the in-process
 * cache's lock. */
#ifndef IOT_CORE_LATEST_H
#define IOT_CORE_LATEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/fanout.h"
#include "store/cache.h"
#include "store/telemetry.h"

#define IOT_LATEST_NAMES_MAX 1000

/* ---- writer side (the ingest writer thread only) ---------------------- */

/* What the writer remembers between commits: the newest timestamp it put
 * in each device's entry, and whether the cache is shared. */
struct iot_latest_writer;

/* NULL when out of memory. The cache's capabilities are read here, once. */
struct iot_latest_writer *iot_latest_writer_new(const struct iot_cache *cache);
void iot_latest_writer_free(struct iot_latest_writer *w); /* NULL is a no-op */

/* After the commit of a batch, for the newest message `m` of one of its
 * devices: adds to `f` the merge of m's values into the device's entry, or
 * the entry's drop. Strings go into f's arena; nothing is sent here. */
void iot_latest_after_commit(struct iot_latest_writer *w, struct iot_fanout *f,
                             const struct iot_tm_message *m);

/* ---- reader side (any thread) ------------------------------------------ */

/* One latest value as the reader hands it over, borrowed for the call. */
struct iot_latest_value {
    const char *name; /* a valid measurement name: [A-Za-z0-9_.-], safe to print unescaped */
    int64_t ts;
    const char *json; /* the value as JSON text (reals shortest, integers exact) */
    size_t len;
};

/* Returns non-zero to stop: the caller's answer is full. */
typedef int (*iot_latest_fn)(void *ctx, const struct iot_latest_value *v);

/* Hands fn every latest value of a device, in no particular order: from
 * its cache entry when that is trusted (*from_cache = true), else from the
 * telemetry store, then refilling the entry unless fn stopped the read or
 * the device has more than IOT_LATEST_NAMES_MAX names. IOT_OK with no call
 * when the device has no value; else the telemetry store's error. */
int iot_latest_read(struct iot_cache *cache, struct iot_telemetry *tm, int64_t device_id,
                    iot_latest_fn fn, void *ctx, bool *from_cache);

/* Drops the device's entry: its values changed in the telemetry store
 * (delete_range recomputed them, the device is gone). */
void iot_latest_forget(struct iot_cache *cache, int64_t device_id);

#endif
