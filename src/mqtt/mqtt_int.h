/* mqtt_int.h — the listener's insides, shared by its files:
 *   mqtt_server.c   start/stop, the event loops, accept, posts, timers;
 *   mqtt_conn.c     one connection: buffers, framing, CONNECT, SUBSCRIBE,
 *                   DISCONNECT, close;
 *   mqtt_publish.c  inbound PUBLISH → ingest, and the PUBACKs in order;
 *   mqtt_deliver.c  outbound: configurations, alerts, device notices;
 *   mqtt_session.c  persistent sessions (by device and client id).
 *
 * Threading: a connection, its pending messages and its buffers belong to
 * its loop's thread and are touched by no other; so are the loop's list of
 * connections and a connection's reference count. Other threads reach a
 * loop only through mqtt_loop_post (a mutex-guarded list and an eventfd),
 * and name a connection by its id, never by pointer (it may be gone by
 * the time the post is read). The session table has its own mutex, taken
 * briefly and never while holding another lock. */
#ifndef IOT_MQTT_INT_H
#define IOT_MQTT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/tm_message.h"
#include "mqtt/mqtt_codec.h"
#include "mqtt/mqtt_server.h"
#include "store/registry.h"
#include "util/hash_table.h"

#define MQTT_CLIENT_ID_MAX 256
#define MQTT_TOPIC_TELEMETRY "devices/me/telemetry"
#define MQTT_TOPIC_BATCH "devices/me/telemetry/batch"
#define MQTT_TOPIC_CONFIG "devices/me/config"
#define MQTT_TOPIC_ALERTS "devices/me/alerts"
#define MQTT_NO_SUBSCRIPTION 0xff /* mqtt_conn.sub_config/sub_alerts: not subscribed */

struct mqtt_loop;
struct mqtt_session;

/* Whether a (borrowed, unterminated) MQTT string is `name`. */
static inline bool mqtt_str_is(const struct mqtt_str *s, const char *name)
{
    size_t len = strlen(name);
    return s->len == len && memcmp(s->ptr, name, len) == 0;
}

/* Something for a loop to do, from another thread. */
enum mqtt_post_kind {
    MQTT_POST_COMMITTED, /* a pending message's job is done (the post is the pending) */
    MQTT_POST_NOTICE,    /* a device notice (core/device_auth.h) */
    MQTT_POST_CONFIG,    /* a device's configuration changed */
    MQTT_POST_ALERT,     /* an alert of a device changed; text is the message */
    MQTT_POST_KICK,      /* close connection conn_id: its session was taken over */
    MQTT_POST_QUIESCE,   /* accept no more connections */
    MQTT_POST_STOP,
};

struct mqtt_post {
    struct mqtt_post *next;
    enum mqtt_post_kind kind;
    int64_t device_id;  /* NOTICE (or owner id), CONFIG, ALERT */
    int64_t version;    /* CONFIG */
    uint64_t conn_id;   /* KICK */
    struct iot_device_notice notice;
    char *text;         /* ALERT, owned */
    size_t text_len;
};

/* One PUBLISH from a client on its way: handed to the ingest pipeline,
 * answered when its job is done. QoS 1 ones wait in their connection's
 * FIFO so that PUBACKs leave in the order the PUBLISHes came, whatever
 * order their answers are known in. */
struct mqtt_pending {
    struct mqtt_post post; /* first: the COMMITTED post is the pending */
    struct mqtt_pending *next; /* the connection's FIFO */
    struct mqtt_conn *conn;
    uint16_t packet_id;
    uint8_t qos;
    bool done;
    uint8_t reason;        /* the PUBACK's (v5) when done */
    char *reason_text;     /* its Reason String, owned, or NULL */
    struct iot_ingest_job job;
    struct iot_tm_parsed parsed;
};

/* Why a connection ends: the v5 DISCONNECT reason (0 = none sent) and
 * whether its will is stored. */
struct mqtt_close {
    uint8_t reason;
    bool send_disconnect;
    bool will;
    const char *text; /* Reason String of the DISCONNECT, or NULL */
};

struct mqtt_conn {
    struct mqtt_loop *loop;
    struct mqtt_conn *prev, *next; /* the loop's list */
    uint64_t id;
    int fd;
    int refs;       /* the loop's, plus one per job in the ingest pipeline */
    bool closed;    /* the socket is gone; waiting for its jobs only */
    bool connected; /* CONNACK 0 sent */
    bool want_write;   /* EPOLLOUT registered */
    bool reading;      /* EPOLLIN registered */
    bool dirty;        /* on the loop's flush list */
    struct mqtt_conn *dirty_next;
    struct mqtt_conn *grave_next; /* the loop's graveyard, once no reference is left */
    uint8_t version;
    bool problem_info; /* v5 Request Problem Information (default true) */
    char addr[64];     /* the peer, for logs */
    char bucket[64];   /* the peer as per-address limits count it (iot_ip_bucket_format) */
    bool pending_counted; /* still counted among its bucket's connections awaiting CONNECT */

    /* the device, as checked at CONNECT and again at each PUBLISH */
    struct iot_device device;
    char client_id[MQTT_CLIENT_ID_MAX + 1];
    uint32_t session_expiry; /* seconds its session outlives it; 0: it ends with it */

    /* subscriptions: the granted QoS, or MQTT_NO_SUBSCRIPTION */
    uint8_t sub_config, sub_alerts;
    int64_t config_version; /* the newest version sent */
    uint16_t next_packet_id;

    /* will (only telemetry topics are allowed) */
    bool has_will, will_batch;
    uint8_t *will_payload;
    size_t will_len;

    /* timing, in ms of the monotonic clock */
    int64_t deadline; /* CONNECT due by, then 1.5 × keep-alive after the last packet */
    uint32_t keepalive_ms;
    int64_t retry_at; /* c->stalled: the full ingest queue refused it; try again then */
    struct mqtt_pending *stalled;
    uint64_t refusals; /* messages refused, for log_refusal's pacing */

    uint32_t client_max_packet; /* v5 Maximum Packet Size of the client; 0 = none */
    uint16_t client_receive_max; /* v5 Receive Maximum of the client (65535 if not given) */
    uint16_t out_inflight;       /* our QoS 1 PUBLISHes it has not acknowledged */
    bool overflowed;             /* it does not read: its output passed the cap */

    /* QoS 1 messages from the client not yet acknowledged, oldest first */
    struct mqtt_pending *fifo_head, *fifo_tail;
    unsigned inflight;

    uint8_t *rbuf;
    size_t rlen, rcap;
    uint8_t *wbuf;
    size_t wlen, woff, wcap;
};

struct mqtt_loop {
    struct iot_mqtt_server *srv;
    unsigned index;
    int epfd, evfd, listen_fd;
    pthread_t thread;
    pthread_mutex_t lock; /* guards posts */
    struct mqtt_post *posts_head, *posts_tail;
    struct mqtt_conn *conns; /* this loop's connections */
    struct mqtt_conn *dirty; /* connections with bytes to flush */
    /* Connections without references, freed at the end of the loop's turn:
     * an event of the same epoll batch may still name one (closed by an
     * earlier event or post: a takeover's KICK), and must find it closed,
     * not freed. */
    struct mqtt_conn *graveyard;
    bool stopping;          /* the loop thread's own: set by stop_post */
    struct mqtt_post stop_post, quiesce_post;
    bool retrying;          /* a connection waits for room in the ingest queue */
    int64_t accept_again;   /* out of descriptors: accepting paused until then */
    int64_t next_sweep;
};

struct iot_mqtt_server {
    struct iot_mqtt_config cfg;
    struct iot_mqtt_env env;
    uint16_t port;
    struct mqtt_loop *loops;
    unsigned n_loops;
    struct iot_cache_sub *notice_sub, *config_sub, *alert_sub;
    atomic_uint_fast64_t next_conn_id;
    atomic_int_fast64_t n_conns, accepted, refused_connects, published, rejected, delivered;
    atomic_int_fast64_t alert_subscribers; /* connections subscribed to alerts */

    pthread_mutex_t pending_lock;
    struct iot_mtab pending; /* address bucket → connections not yet past CONNECT */

    pthread_mutex_t sessions_lock;
    struct iot_mtab sessions; /* "<device id>/<client id>" → struct mqtt_session */
    struct iot_mtab device_conns; /* "<device id>" → its attached and kept sessions */
};

/* ---- mqtt_server.c ---- */
/* Hands a post to a loop (any thread); the loop owns it from then on. */
void mqtt_loop_post(struct mqtt_loop *l, struct mqtt_post *p);
/* The same post, copied, to every loop. */
void mqtt_broadcast(struct iot_mqtt_server *s, const struct mqtt_post *p);
/* Registers what the connection wants to wait for (reading and/or writing). */
void mqtt_conn_update_events(struct mqtt_conn *c);
int64_t mqtt_now(void);

/* A connection of address `bucket` counted until its CONNECT (at accept,
 * up to pending_per_ip) has sent it or closed. */
void mqtt_pending_release(struct iot_mqtt_server *s, const char *bucket);

/* ---- mqtt_conn.c ---- */
struct mqtt_conn *mqtt_conn_new(struct mqtt_loop *l, int fd, const char *addr,
                                const char *bucket);
void mqtt_conn_on_readable(struct mqtt_conn *c);
void mqtt_conn_on_writable(struct mqtt_conn *c);
/* Goes on with the bytes already read (after a pause). */
void mqtt_conn_process(struct mqtt_conn *c);
/* Appends an encoded packet to the output (marks the connection dirty);
 * false if it cannot be encoded or the client's maximum size forbids it. */
bool mqtt_conn_send(struct mqtt_conn *c, const struct mqtt_packet *p);
/* Writes what is buffered; on a hard error, closes. */
void mqtt_conn_flush(struct mqtt_conn *c);
void mqtt_conn_close(struct mqtt_conn *c, const struct mqtt_close *how);
/* Drops the loop's reference / a job's; at zero the connection goes to
 * its loop's graveyard. */
void mqtt_conn_unref(struct mqtt_conn *c);
/* Frees the graveyard (the end of a loop's turn). */
void mqtt_conn_bury(struct mqtt_loop *l);
/* A protocol violation: DISCONNECT with `reason` (v5), no will withheld. */
void mqtt_conn_fail(struct mqtt_conn *c, uint8_t reason, const char *text);
/* Deadlines: connect timeout, keep-alive, retries. */
void mqtt_conn_tick(struct mqtt_conn *c, int64_t now);

/* ---- mqtt_publish.c ---- */
/* Handles one PUBLISH from the client. When the ingest queue is full the
 * parsed message waits in c->stalled and the connection reads no more
 * until mqtt_publish_retry, after c->retry_at, gets it in. */
void mqtt_publish_in(struct mqtt_conn *c, const struct mqtt_publish *p);
/* Submits c->stalled again; false while the queue is still full (or the
 * connection closed). */
bool mqtt_publish_retry(struct mqtt_conn *c);
/* A job's answer arrived on the loop (MQTT_POST_COMMITTED). */
void mqtt_publish_committed(struct mqtt_pending *pd);
/* Stores the connection's will as telemetry, unacknowledged. */
void mqtt_publish_will(struct mqtt_conn *c);
/* Frees the FIFO's answered and unsent entries of a closed connection. */
void mqtt_publish_forget(struct mqtt_conn *c);

/* ---- mqtt_deliver.c ---- */
/* Sends the device's newest configuration to c (subscribed to it): at a
 * SUBSCRIBE or a resume always, flagged retained; else only if newer than
 * the last one sent. */
void mqtt_deliver_config(struct mqtt_conn *c, bool at_subscribe);
/* Runs a NOTICE, CONFIG or ALERT post on a loop. */
void mqtt_deliver_post(struct mqtt_loop *l, struct mqtt_post *p);
/* Subscribes the server to the channels of those posts. */
int mqtt_deliver_subscribe(struct iot_mqtt_server *s);
void mqtt_deliver_unsubscribe(struct iot_mqtt_server *s);

/* ---- mqtt_session.c ---- */
/* Attaches c to the session of (its device, its client id), made if
 * missing: every connection has one, so that a second connection with the
 * same identity takes over (the first gets a KICK). With clean_start the
 * old session's state is dropped; otherwise its subscriptions are copied
 * into c. *resumed tells whether an old session was resumed. false when
 * the device already has max_per_device connections (a takeover is always
 * allowed). */
bool mqtt_session_attach(struct mqtt_conn *c, bool clean_start, bool *resumed);
/* The connection's subscriptions, saved for a later resume. */
void mqtt_session_save(struct mqtt_conn *c);
/* The connection ends: its session waits c->session_expiry seconds for a
 * resume, or goes at once (not if another connection took it over). */
void mqtt_session_detach(struct mqtt_conn *c);
/* Drops sessions whose wait is over. */
void mqtt_session_sweep(struct iot_mqtt_server *s, int64_t now);
void mqtt_session_init(struct iot_mqtt_server *s);
void mqtt_session_free_all(struct iot_mqtt_server *s);

#endif
