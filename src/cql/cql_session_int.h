/* cql_session_int.h — internals shared by the session's source files
 * (cql_session.c: I/O thread, dispatch, completion, retries; cql_api.c:
 * building requests on the caller's thread; cql_cluster.c: hosts, pools,
 * control connection, ring; cql_prepared.c; cql_reply.c). Not a public API.
 * Threading: fields marked [io] are touched only by the I/O thread; [lock]
 * names the mutex that guards the others. */
#ifndef CQL_SESSION_INT_H
#define CQL_SESSION_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "cql/cql_conn.h"
#include "cql/cql_loop.h"
#include "cql/cql_ring.h"
#include "cql/cql_session.h"

#define CQL_PLAN_MAX 16    /* hosts a request may try */
#define CQL_MAX_HOSTS 1024 /* contact points + peers */
#define CQL_MAX_POOL 64    /* connections per host */
#define CQL_MAX_PK 16      /* partition-key components used for routing */

enum req_kind { RK_QUERY, RK_EXECUTE, RK_BATCH, RK_PREPARE, RK_CONTROL };

/* What a request sends, kept so that it can be re-sent (retries, re-prepare)
 * or continued (paging). The frame is built once, with stream 0. */
struct cql_spec {
    uint8_t kind;                       /* enum req_kind */
    const struct cql_prepared_stmt *ps; /* EXECUTE; PREPARE when cached */
    struct cql_buf frame;
    size_t text_off, text_len;     /* QUERY/PREPARE text inside frame */
    size_t values_off, values_len; /* QUERY/EXECUTE values inside frame */
    uint16_t consistency, serial;
    int32_t page_size;
    bool idempotent, tracing, explicit_ts;
    int64_t timestamp;
    uint32_t timeout_ms;
};

struct reprepare;
struct schema_wait;

/* One request from submission to completion. [io] once dequeued. */
struct cql_req {
    struct cql_conn_req creq;
    struct cql_session *s;
    struct cql_spec spec;
    cql_callback cb;
    void *ctx;
    struct cql_req *qnext; /* submission queue [qlock] */
    bool internal;         /* control query: not counted, pinned connection */
    struct cql_conn *pinned;
    uint64_t deadline_ns;
    struct cql_timer timer;
    bool has_token;
    int64_t token;
    uint32_t plan[CQL_PLAN_MAX];
    uint8_t plan_len, plan_pos;
    bool plan_built;
    uint8_t retries;
    uint8_t reprepares_left; /* UNPREPARED answers still handled by re-preparing */
    struct cql_host *host;   /* last host tried */
    struct cql_conn *conn;   /* while the connection holds it */
    struct reprepare *child;
    struct cql_reply *last_error; /* the last attempt's failure */
};

struct cql_reply {
    int rc;
    uint8_t *frame; /* owned; msg points into it */
    size_t frame_len;
    struct cql_message msg;
    bool decoded;
    char host[64];
    char *text;            /* NUL-terminated error text, owned */
    struct cql_spec *next; /* paging continuation, owned */
    const struct cql_prepared_stmt *prepared;
};

struct cql_prepared_stmt {
    struct cql_prepared_stmt *next; /* hash chain [prep_lock] */
    uint64_t hash;
    char *query;
    size_t query_len;
    uint8_t *frame; /* the PREPARED result, owned; msg points into it */
    struct cql_message msg;
};

struct pool_slot {
    struct cql_conn *conn;
    bool ready;
};

struct cql_host {
    struct cql_session *s;
    uint32_t idx;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint8_t ip[16];
    uint8_t ip_len;
    char name[64];
    char dc[64];  /* [info_lock] */
    bool up;      /* [info_lock] writes on io */
    bool removed; /* [info_lock] writes on io */
    bool contact;
    int64_t *tokens;        /* [io] */
    uint32_t n_tokens;      /* [info_lock] writes on io */
    struct pool_slot *pool; /* cfg.connections_per_host slots [io] */
    uint32_t n_ready;       /* [io] */
    uint32_t backoff_ms;
    struct cql_timer reconnect;
    _Atomic uint64_t served;
};

enum connect_phase { CP_IDLE, CP_CONNECTING, CP_DONE };

struct cql_session {
    struct cql_session_config cfg; /* strings point to the copies below */
    char *contact_points, *user, *password, *keyspace;
    uint16_t port; /* the first contact point's: every peer's */
    struct cql_loop *loop;
    pthread_t thread;
    bool thread_started;

    /* Submission queue and control flags [qlock]. */
    pthread_mutex_t qlock;
    struct cql_req *qhead, *qtail;
    bool wake_pending, stop_requested, connect_requested;
    atomic_uint pending;
    bool stopping; /* [io] shutting down: nothing new is dispatched */

    /* cql_session_connect [clock]. */
    pthread_mutex_t clock;
    pthread_cond_t ccond;
    enum connect_phase phase;
    int connect_rc;
    char connect_text[256];
    uint32_t connect_failures; /* [io] control attempts failed in this phase */

    /* Hosts [info_lock for the array; see struct cql_host]. */
    pthread_mutex_t info_lock;
    struct cql_host **hosts;
    uint32_t n_hosts, n_contacts;
    struct cql_ring ring; /* [io] */
    uint32_t rr;          /* [io] round-robin cursor */
    uint64_t rng;         /* [io] xorshift state for jitter */
    bool topology_ready;  /* [io] */

    /* Control connection [io]. */
    struct cql_conn *control;
    struct cql_host *control_host;
    uint32_t control_next, control_backoff_ms;
    struct cql_timer control_timer, refresh_timer;
    struct cql_reply *local_rows;

    /* Requests whose SCHEMA_CHANGE result waits for schema agreement [io]:
     * `checking` are covered by the check under way, `incoming` by the next. */
    struct schema_wait *schema_checking, *schema_incoming;
    bool schema_check_running;
    uint64_t schema_deadline_ns;
    struct cql_timer schema_timer;
    uint8_t local_schema[16];

    /* Prepared statements [prep_lock]. */
    pthread_mutex_t prep_lock;
    struct cql_prepared_stmt **buckets;
    size_t n_buckets, n_prepared;

    _Atomic int64_t last_timestamp;
    struct cql_session_stats stats; /* [info_lock] snapshot */
    atomic_ullong n_submitted, n_completed, n_failed, n_timeouts, n_retries, n_reprepares,
        n_redispatched;
};

/* The session whose I/O thread this is, NULL on other threads. */
extern _Thread_local const struct cql_session *cql_io_session;

/* cql_session.c */
void cql_req_free(struct cql_req *r);
int cql_session_submit_req(struct cql_session *s, struct cql_req *r);
void cql_session_dispatch(struct cql_session *s, struct cql_req *r);
/* A request with its callback, kind and defaults from opts filled in (no
 * frame yet). NULL without memory. */
struct cql_req *cql_req_new(struct cql_session *s, uint8_t kind, cql_callback cb, void *ctx);
/* Sends an internal QUERY on the control connection; cb runs on io. */
int cql_session_control_query(struct cql_session *s, const char *cql, cql_callback cb);
void cql_session_connect_done(struct cql_session *s, int rc, const char *text);

/* cql_cluster.c */
int cql_cluster_add_contacts(struct cql_session *s, const char *list, const char **err_text);
void cql_cluster_shutdown(struct cql_session *s); /* [io] close everything */
void cql_cluster_free(struct cql_session *s);     /* after the I/O thread ended */
void cql_cluster_build_plan(struct cql_session *s, struct cql_req *r);
struct cql_conn *cql_host_pick_conn(struct cql_host *h);
bool cql_host_usable(const struct cql_host *h);
void cql_cluster_publish_stats(struct cql_session *s);
struct cql_host *cql_cluster_find_ip(struct cql_session *s, const uint8_t *ip, size_t len);
struct cql_host *cql_cluster_add_peer(struct cql_session *s, const uint8_t *ip, size_t len);
void cql_cluster_open_pool(struct cql_host *h);
/* What every connection to h shares (address, credentials, timeout); the
 * caller adds its keyspace or events. */
struct cql_conn_config cql_host_conn_config(const struct cql_host *h);
void cql_cluster_host_down(struct cql_host *h); /* STATUS_CHANGE DOWN */
void cql_cluster_host_up(struct cql_host *h);   /* STATUS_CHANGE UP */
void cql_cluster_set_removed(struct cql_host *h, bool removed);
/* Takes ownership of tokens (malloc'd). */
void cql_cluster_set_tokens(struct cql_host *h, int64_t *tokens, uint32_t n, struct cql_str dc);
int cql_cluster_rebuild_ring(struct cql_session *s);

/* Completes r with CQL_OK and reply (after a schema agreement wait). */
void cql_session_complete_ok(struct cql_session *s, struct cql_req *r, struct cql_reply *reply);

/* cql_control.c */
void cql_cluster_start(struct cql_session *s); /* [io] a cql_session_connect */
void cql_control_shutdown(struct cql_session *s);
/* Holds a SCHEMA_CHANGE result until every up host reports the same schema
 * version (or CQL_SCHEMA_WAIT_MS passed), then completes the request. */
#define CQL_SCHEMA_WAIT_MS 10000
void cql_control_await_schema(struct cql_session *s, struct cql_req *r, struct cql_reply *reply);

/* cql_prepared.c */
struct cql_prepared_stmt *cql_prepared_find(struct cql_session *s, const char *query, size_t len);
struct cql_prepared_stmt *cql_prepared_find_id(struct cql_session *s, struct cql_slice id);
/* Takes a copy of a PREPARED result frame; returns the cached handle (an
 * existing one for the same text) or NULL (no memory, cache full). */
struct cql_prepared_stmt *cql_prepared_insert(struct cql_session *s, const char *query, size_t len,
                                              const uint8_t *frame, size_t frame_len);
void cql_prepared_free_all(struct cql_session *s);

/* cql_reply.c */
/* A reply owning a copy of frame, decoded. On a malformed frame, a client
 * error reply carrying the decoder's code. NULL only without memory. */
struct cql_reply *cql_reply_from_frame(const uint8_t *frame, size_t len);
/* A client-side error reply with a formatted text. NULL without memory. */
struct cql_reply *cql_reply_client(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cql_spec_free(struct cql_spec *spec);

#endif
