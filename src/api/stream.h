/* stream.h — live streams as Server-Sent Events: telemetry
 * (GET /api/v1/telemetry/{device_id}/stream) and, through iot_streams_open,
 * any pub/sub channel (the alerts of api/alerts.c).
 *
 * Each stream subscribes to its pub/sub channel (a device's) on the cache
 * store. Deliveries append to the stream's bounded buffer and wake the
 * (suspended) connection; a consumer that falls more than the buffer
 * behind is dropped, so a slow reader never slows ingest. A ticker thread
 * sends keep-alive comments and, every second, checks whether the clients
 * of parked streams have hung up, so a closed stream frees its connection
 * and its slot within a second.
 *
 * Every stream remembers the credential it was opened with
 * (api/stream_access.h); the ticker re-checks all of them every
 * IOTFLOW_STREAM_RECHECK seconds, in one batch, and at once for a device
 * that a peer's device notice names. A stream whose credential no longer
 * holds (logout, session expiry, password change, deactivation, deletion,
 * key rotation) gets a last event `event: revoked` with data
 * {"reason": "<IOT_REVOKED_*>"} and ends. Slots: at most max_streams on
 * the instance (beyond: 503), IOTFLOW_STREAMS_PER_USER per user and
 * IOTFLOW_STREAMS_PER_DEVICE per device (beyond: 429).
 *
 * All functions are thread-safe. */
#ifndef IOT_API_STREAM_H
#define IOT_API_STREAM_H

#include <stddef.h>
#include <stdint.h>

#define IOT_STREAM_BUFFER (256 * 1024)

struct iot_app;
struct iot_streams;

/* Reads its settings from app->cfg and uses app's stores from its ticker
 * thread; app must outlive the streams. At most max_streams at once. */
struct iot_streams *iot_streams_new(struct iot_app *app, size_t max_streams);
/* Ends the streams of one device (it was deleted), each with a last
 * `revoked` event. NULL is a no-op. */
void iot_streams_end_device(struct iot_streams *s, int64_t device_id);
/* Re-checks the credentials of one device's streams now rather than at the
 * next periodic pass (its key or status changed). NULL is a no-op. */
void iot_streams_recheck_device(struct iot_streams *s, int64_t device_id);
struct iot_req;
struct iot_stream_grant;
/* Answers r with a stream of what is published on `channel`, each message
 * an event named `event` (`event: <event>\ndata: <message>`), for the
 * holder of `grant` (api/stream_access.h: re-checked like every stream's),
 * counting for user cap_user (0: none) and, when grant->device_id is set,
 * for that device. Or answers 429/503 when a limit refuses it. */
void iot_streams_open(struct iot_req *r, const struct iot_stream_grant *grant, int64_t cap_user,
                      const char *channel, const char *event);
/* Ends every stream (before the HTTP server stops). */
void iot_streams_close_all(struct iot_streams *s);
/* After the HTTP server has stopped. NULL is a no-op. */
void iot_streams_free(struct iot_streams *s);

#endif
