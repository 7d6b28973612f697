/* cql_fake_peer.h — a scripted CQL v4 server for the client's unit tests:
 * listens on an address of 127.0.0.0/8 (ephemeral port unless given), runs
 * one thread that accepts connections, frames and decodes requests with the
 * codec, answers the handshake (OPTIONS, STARTUP, PasswordAuthenticator),
 * REGISTER, USE and the control connection's system.local/system.peers
 * queries by itself, and hands every other request to the test's handler,
 * which answers (now or later, in any order, split, with extra flags) or
 * drops the connection. It tracks the stream ids each connection has
 * outstanding, so tests can check concurrency and stream-id reuse.
 * Ownership: the peer owns its connections until fake_peer_stop. Threading:
 * handler and tick run on the peer's thread; fake_peer_* getters and
 * fake_peer_drop_all may be called from the test's thread. Compiled by
 * #including cql_fake_peer.c into the test. */
#ifndef CQL_FAKE_PEER_H
#define CQL_FAKE_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cql/cql_buf.h"
#include "cql/cql_frame.h"

struct fake_peer;
struct fake_conn;

/* A decoded request; everything points into the request frame (valid during
 * the handler call only: copy what is kept). */
struct fake_req {
    struct cql_frame_header h;
    struct cql_str query;         /* QUERY, PREPARE */
    struct cql_slice prepared_id; /* EXECUTE */
    uint16_t consistency;
    uint8_t flags;           /* query flags */
    struct cql_slice values; /* the run of [value]s */
    uint16_t n_values;
    int32_t page_size;
    struct cql_value paging_state;
    int64_t timestamp;
    uint8_t batch_type; /* BATCH */
    uint16_t batch_n;
};

/* Returns true when it answered (or will answer) the request itself; false
 * lets the peer answer with a VOID result. */
typedef bool (*fake_handler)(struct fake_peer *p, struct fake_conn *c, const struct fake_req *req,
                             void *arg);
/* Called every few milliseconds on the peer's thread. */
typedef void (*fake_tick)(struct fake_peer *p, void *arg);

struct fake_node {
    const char *ip;    /* "127.0.0.2" */
    const char *token; /* decimal */
};

struct fake_peer_config {
    const char *ip;   /* NULL: 127.0.0.1 */
    uint16_t port;    /* 0: ephemeral */
    const char *user; /* non-NULL: PasswordAuthenticator with this user */
    const char *password;
    const char *token;             /* this node's token in system.local; NULL: "0" */
    const struct fake_node *peers; /* rows of system.peers */
    size_t n_peers;
    bool split_writes; /* every write goes out one byte at a time */
    fake_handler handler;
    fake_tick tick;
    void *arg;
};

int fake_peer_start(const struct fake_peer_config *cfg, struct fake_peer **out);
void fake_peer_stop(struct fake_peer *p);
uint16_t fake_peer_port(const struct fake_peer *p);
/* "ip:port" of the peer, for contact points. */
const char *fake_peer_addr(const struct fake_peer *p);

/* Counters (any thread). */
uint32_t fake_peer_count(struct fake_peer *p, uint8_t opcode); /* requests by opcode */
uint32_t fake_peer_conns(struct fake_peer *p);                 /* accepted so far */
uint32_t fake_peer_max_outstanding(struct fake_peer *p);       /* on one connection */
uint32_t fake_peer_dup_streams(struct fake_peer *p);           /* ids reused while outstanding */
/* Closes every connection (from the peer's thread, soon). */
void fake_peer_drop_all(struct fake_peer *p);
/* Sends a STATUS_CHANGE event ("UP"/"DOWN" for ip) on every connection that
 * registered for events (from the peer's thread, soon). */
void fake_peer_push_status(struct fake_peer *p, const char *change, const char *ip);
/* Stops accepting and closes the listening socket (a node that is down);
 * fake_peer_listen_again reopens it on the same address. */
void fake_peer_stop_listening(struct fake_peer *p);
int fake_peer_listen_again(struct fake_peer *p);

/* ---- answering (peer thread) ------------------------------------------------
 * Each appends one response frame to the connection's output, sent when the
 * handler or tick returns (all in one write, or byte by byte if split). */
void fake_send_void(struct fake_conn *c, int16_t stream);
/* One int column "v" and one row per value. */
void fake_send_rows_int(struct fake_conn *c, int16_t stream, const int32_t *vals, size_t n);
/* The same with HAS_MORE_PAGES and a paging state (NULL: last page). */
void fake_send_rows_page(struct fake_conn *c, int16_t stream, const int32_t *vals, size_t n,
                         const char *paging_state);
void fake_send_error(struct fake_conn *c, int16_t stream, int32_t code, const char *msg,
                     const void *extra, size_t extra_len);
/* A PREPARED result: id, one int bind marker "k" (partition key index 0) and
 * one int result column "v". */
void fake_send_prepared(struct fake_conn *c, int16_t stream, const char *id);
/* Any bytes (whole frames written by the test). */
void fake_send_raw(struct fake_conn *c, const void *p, size_t n);
/* Closes the connection (after sending what is queued). */
void fake_close(struct fake_conn *c);
bool fake_conn_closed(const struct fake_conn *c);
/* Which listener-accepted connection this is (0, 1, …). */
uint32_t fake_conn_index(const struct fake_conn *c);

#endif
