/* stream.h — live telemetry as Server-Sent Events:
 * GET /api/v1/telemetry/{device_id}/stream.
 *
 * Each stream subscribes to its device's pub/sub channel on the cache
 * store. Deliveries append to the stream's bounded buffer and wake the
 * (suspended) connection; a consumer that falls more than the buffer
 * behind is dropped, so a slow reader never slows ingest. A ticker thread
 * sends keep-alive comments and, every second, checks whether the clients
 * of parked streams have hung up, so a closed stream frees its connection
 * and its slot within a second. */
#ifndef IOT_API_STREAM_H
#define IOT_API_STREAM_H

#include <stdint.h>

#include "store/cache.h"

#define IOT_STREAM_BUFFER (256 * 1024)

struct iot_streams;

/* At most max_streams at once (beyond: 503), keep-alive every heartbeat_s. */
struct iot_streams *iot_streams_new(struct iot_cache *cache, int64_t heartbeat_s, size_t max_streams);
/* Ends the streams of one device (it was deleted). */
void iot_streams_end_device(struct iot_streams *s, int64_t device_id);
/* Ends every stream (before the HTTP server stops). */
void iot_streams_close_all(struct iot_streams *s);
/* After the HTTP server has stopped. NULL is a no-op. */
void iot_streams_free(struct iot_streams *s);

#endif
