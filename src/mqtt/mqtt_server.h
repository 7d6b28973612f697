/* mqtt_server.h — the MQTT 3.1.1/5.0 listener of iotflowd: devices connect
 * with their API key as the password, publish telemetry to
 * devices/me/telemetry(/batch) and subscribe to devices/me/config and
 * devices/me/alerts. A QoS 1 PUBACK is sent only once the message is
 * committed to the telemetry store (the ingest pipeline's `done`), so an
 * acknowledged message is a stored one, as with HTTP's 201.
 *
 * Threads: `threads` event loops (epoll), each with its own listening
 * socket on the port (SO_REUSEPORT: the kernel spreads connections) and
 * owning its connections; a connection is only ever touched by its loop.
 * Other threads (the ingest writer, the cache's pub/sub thread) hand work
 * to a loop through its post queue and eventfd. The behaviour a device
 * maker sees is in docs/MQTT.md; the design in docs/ARCHITECTURE.md. */
#ifndef IOT_MQTT_SERVER_H
#define IOT_MQTT_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/device_auth.h"
#include "core/ingest.h"
#include "store/cache.h"
#include "store/docs.h"

struct iot_events;

struct iot_mqtt_config {
    const char *host;
    uint16_t port;             /* 0: any free port (tests) */
    unsigned threads;          /* event loops; 0 → 1 */
    unsigned max_connections;  /* over it a new socket is closed at once */
    size_t max_packet;         /* bytes of one packet, fixed header included */
    unsigned inflight;         /* QoS 1 PUBLISHes of a client awaiting their PUBACK */
    unsigned keepalive_max;    /* seconds; a client asking 0 or more gets this (v5) */
    unsigned session_expiry_max; /* seconds a persistent session outlives its connection */
    unsigned connect_timeout;  /* seconds from accept to CONNECT */
    unsigned pending_per_ip;   /* connections of one address awaiting CONNECT; 0 = no cap */
    unsigned per_device;       /* connections of one device; 0 = no cap */
};

/* What the listener works with; all must outlive it. */
struct iot_mqtt_env {
    const struct iot_device_gate *devices;
    struct iot_ingest *ingest;
    struct iot_docs *docs;   /* device configurations (core/devconfig.h) */
    struct iot_cache *cache; /* pub/sub: device notices, config and alert changes */
    struct iot_events *events;
};

struct iot_mqtt_stats {
    int64_t connections;      /* open now, CONNECT done or not */
    int64_t sessions;         /* persistent sessions held, attached or not */
    int64_t accepted;         /* connections accepted since start */
    int64_t refused_connects; /* CONNACK with a failure code */
    int64_t published;        /* telemetry PUBLISHes stored (QoS 0 and 1) */
    int64_t rejected;         /* PUBLISHes refused (payload, topic, status, rate) */
    int64_t delivered;        /* PUBLISHes sent to subscribers (config, alerts) */
};

struct iot_mqtt_server;

/* Binds, subscribes to the notice channels and starts the loops; NULL on
 * failure (logged). */
struct iot_mqtt_server *iot_mqtt_start(const struct iot_mqtt_config *cfg,
                                       const struct iot_mqtt_env *env);
/* The bound port (the chosen one when cfg->port was 0). */
uint16_t iot_mqtt_port(const struct iot_mqtt_server *s);
void iot_mqtt_stats(struct iot_mqtt_server *s, struct iot_mqtt_stats *out);
/* Stops accepting connections (before iot_ingest_stop, so that clients do
 * not reconnect only to be refused). Any thread; NULL is a no-op. */
void iot_mqtt_quiesce(struct iot_mqtt_server *s);
/* Stops listening, sends what is owed (PUBACKs of committed messages),
 * then DISCONNECT "server shutting down" to every client, and joins the
 * loops. Call after iot_ingest_stop, so that every queued message has
 * been committed and acknowledged. Frees the server; NULL is a no-op. */
void iot_mqtt_stop(struct iot_mqtt_server *s);

#endif
