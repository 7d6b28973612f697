/* events.h — the event log: every state change of a user, a device or an
 * alert appends an event document (IOT_DOCS_EVENTS), written off the
 * request path by one thread in batches, so that a handler never waits on
 * the documents store to record what it did.
 *
 * An event is {type, at, user_id, device_id, details}: `type` is one of the
 * IOT_EV_* names below, user_id the owner's registry id (the user itself
 * for user events), device_id 0 for user events. Thread-safe. */
#ifndef IOT_CORE_EVENTS_H
#define IOT_CORE_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/cache.h"
#include "store/docs.h"
#include "store/registry.h"

#define IOT_EV_USER_REGISTERED "user.registered"
#define IOT_EV_USER_UPDATED "user.updated"
#define IOT_EV_USER_DELETED "user.deleted"
#define IOT_EV_USER_ACTIVATED "user.activated"
#define IOT_EV_USER_DEACTIVATED "user.deactivated"
#define IOT_EV_DEVICE_REGISTERED "device.registered"
#define IOT_EV_DEVICE_UPDATED "device.updated"
#define IOT_EV_DEVICE_DELETED "device.deleted"
#define IOT_EV_DEVICE_KEY_ROTATED "device.key_rotated"
#define IOT_EV_DEVICE_CONFIG_CHANGED "device.config_changed"
#define IOT_EV_DEVICE_METADATA_CHANGED "device.metadata_changed"
#define IOT_EV_DEVICE_STATUS_CHANGED "device.status_changed"
#define IOT_EV_DEVICE_ONLINE "device.online"
#define IOT_EV_DEVICE_OFFLINE "device.offline"
#define IOT_EV_ALERT_RAISED "alert.raised"
#define IOT_EV_ALERT_ACKNOWLEDGED "alert.acknowledged"
#define IOT_EV_ALERT_RESOLVED "alert.resolved"

struct iot_events;

/* The writer's settings; 0 picks the default named beside each field. */
struct iot_events_config {
    size_t queue_max;       /* events waiting to be written; 65,536 */
    size_t batch_max;       /* events per insert_many; 512 */
    int64_t retry_min_ms;   /* wait after a failed write; 100 ms, doubled per failure */
    int64_t retry_max_ms;   /* longest wait between attempts; 30 s */
    int64_t drain_ms;       /* how long stop keeps writing what is queued; 5 s */
    int64_t retention_ms;   /* events older than this are deleted; 0 = kept forever */
    int64_t purge_every_ms; /* between retention passes; 1 hour */
    int64_t warn_every_ms;  /* at most one "queue full" warning per interval; 10 s */
    int64_t online_window_ms; /* seen within it = online (IOTFLOW_ONLINE_WINDOW); 300 s */
    int64_t offline_sweep_ms; /* between looks for devices gone quiet; window / 10, <= 30 s */
};

/* Starts the writer thread ("events"). `docs`, `reg` (the public user id
 * of each event's owner is read from it, cached) and `cache` (presence,
 * below) must outlive the writer. IOT_OK, IOT_EINVAL (negative periods)
 * or IOT_ENOMEM. */
int iot_events_start(const struct iot_events_config *cfg, struct iot_docs *docs,
                     struct iot_registry *reg, struct iot_cache *cache,
                     struct iot_events **out);
/* Stops taking events, writes what is queued (for at most drain_ms, then
 * drops and logs the rest) and joins the thread. Idempotent; NULL is a
 * no-op. Emits after stop are dropped silently. */
void iot_events_stop(struct iot_events *ev);
/* Stops and frees. NULL is a no-op. */
void iot_events_free(struct iot_events *ev);

/* Counters since start, for health and tests. */
struct iot_events_stats {
    uint64_t emitted, written, dropped, failed_writes;
    size_t queued;
};
void iot_events_stats(struct iot_events *ev, struct iot_events_stats *out);

/* One retention pass now (the thread runs it every purge_every_ms):
 * removes the events older than `before_ms`. IOT_OK or the store's error;
 * *deleted (may be NULL) receives how many. */
int iot_events_purge(struct iot_events *ev, int64_t before_ms, int64_t *deleted);

/* Online/offline transitions. Call when a device is seen (telemetry, a
 * heartbeat, ...), before the sighting reaches the cache store; `known` is
 * the last sighting the caller has at hand (the registry's, 0 = never).
 * Emits device.online when the device had not been seen within the online
 * window. A local lookup; the cache store is read only when this instance
 * has not seen the device within the window. The writer thread emits
 * device.offline for a device this instance saw that has gone quiet
 * (seen by no instance within the window), within offline_sweep_ms of the
 * window's end. Online/offline events of one transition seen by two
 * instances share an id, so the log keeps one. NULL ev is a no-op. */
void iot_events_device_seen(struct iot_events *ev, int64_t device_id, int64_t user_id,
                            int64_t known);
/* iot_events_device_seen in two steps, for a sighting that may yet be
 * refused (telemetry the ingest queue may not take): _arriving() before
 * the sighting can reach the cache store (the ingest writer records it
 * there, and would hide the transition from the check) says whether the
 * device comes online, with its previous sighting in *prev; once the
 * sighting is taken, _online() records the transition. */
bool iot_events_device_arriving(struct iot_events *ev, int64_t device_id, int64_t user_id,
                                int64_t known, int64_t *prev);
void iot_events_device_online(struct iot_events *ev, int64_t device_id, int64_t user_id,
                              int64_t prev);
/* Stops watching a device: a deleted one (no offline event follows), or
 * one whose arriving sighting was refused. */
void iot_events_device_gone(struct iot_events *ev, int64_t device_id, int64_t user_id);

#define IOT_EVENT_ID_LEN 32 /* random lowercase hex */
#define IOT_EVENT_TYPE_MAX 48 /* bytes of a type name: [a-z0-9._] */

/* A well-formed type name (1..IOT_EVENT_TYPE_MAX bytes of [a-z0-9._]). */
bool iot_event_type_valid(const char *type);

/* Records one event at the current time. `details` (may be NULL) is a JSON
 * object the log keeps as the event's details; the reference is stolen.
 * Never blocks on the store: when the queue is full the event is dropped
 * and counted (a warning is logged), so that a slow store cannot stall the
 * API. `ev` may be NULL (no event log): details are released. A type
 * that is not a short [a-z0-9._] name is refused (logged, dropped). */
void iot_events_emit(struct iot_events *ev, const char *type, int64_t user_id, int64_t device_id,
                     json_t *details);

#endif
