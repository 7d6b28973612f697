/* alerting_events_stub.c — a stand-in for iot_events_emit until the event
 * log (core/events.c, another branch) is merged: a weak definition that
 * only releases the details, so that the real, strong one replaces it at
 * link time without a change here. Delete this file once events.c is in. */
#include "core/events.h"

__attribute__((weak)) void iot_events_emit(struct iot_events *ev, const char *type, int64_t user_id,
                                           int64_t device_id, json_t *details)
{
    (void)ev;
    (void)type;
    (void)user_id;
    (void)device_id;
    json_decref(details);
}
