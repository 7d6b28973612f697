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
#include <stdint.h>

#include "store/docs.h"

#define IOT_EV_USER_REGISTERED "user.registered"
#define IOT_EV_USER_UPDATED "user.updated"
#define IOT_EV_USER_DELETED "user.deleted"
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

/* Records one event at the current time. `details` (may be NULL) is a JSON
 * object the log keeps as the event's details; the reference is stolen.
 * Never blocks on the store: when the queue is full the event is dropped
 * and counted (a warning is logged), so that a slow store cannot stall the
 * API. `ev` may be NULL (no event log): details are released. */
void iot_events_emit(struct iot_events *ev, const char *type, int64_t user_id, int64_t device_id,
                     json_t *details);

#endif
