/* cql_conn.h — one TCP connection to a Cassandra node speaking native
 * protocol v4: non-blocking connect with TCP_NODELAY, the handshake (OPTIONS,
 * STARTUP, PasswordAuthenticator SASL PLAIN, optional USE and REGISTER),
 * many requests in flight on stream ids 0..32767 matched to responses in any
 * order, incremental framing of what is read, and one write buffer that
 * batches every queued request into as few write(2) calls as possible.
 * Ownership: the connection borrows each struct cql_conn_req from send until
 * its done callback ran or cql_conn_abandon returned; it copies the request
 * frame into its write buffer at send time. Response frames handed to done
 * are borrowed for the duration of the callback only.
 * Threading: a connection belongs to the loop thread; every call below and
 * every callback happens there. */
#ifndef CQL_CONN_H
#define CQL_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cql/cql_buf.h"
#include "cql/cql_loop.h"

#define CQL_MAX_STREAMS 32768
/* Above this many unwritten bytes new requests wait in the connection's
 * queue instead of the write buffer (bounded memory on a slow socket). */
#define CQL_CONN_WBUF_SOFT_MAX ((size_t)8 << 20)

struct cql_conn;
struct cql_conn_req;

/* Completion of one request, called exactly once per cql_conn_send that
 * returned CQL_OK (unless the request was abandoned first):
 *   CQL_OK          frame/len is the whole response frame (borrowed);
 *   CQL_E_CLOSED    the connection closed after the request was written: the
 *                   server may or may not have executed it;
 *   CQL_E_NOT_SENT  the connection closed before the request left: it is
 *                   safe to send it elsewhere. */
typedef void (*cql_conn_done_fn)(struct cql_conn_req *req, int rc, const uint8_t *frame,
                                 size_t len);

struct cql_conn_req {
    const uint8_t *frame; /* one encoded request frame; any stream id */
    size_t len;
    cql_conn_done_fn done;
    /* Private to the connection while it holds the request. */
    struct cql_conn_req *prev, *next; /* its wait queue */
    uint64_t end_seq;                 /* byte count of the stream after this frame */
    int16_t stream;                   /* >= 0 in flight, -1 otherwise */
    bool waiting;
};

/* Owner callbacks; arg is passed back. */
struct cql_conn_events {
    void (*on_ready)(struct cql_conn *c, void *arg);
    /* After every request it held completed. err says why (CQL_E_IO,
     * CQL_E_CLOSED, CQL_E_TIMEOUT, a CQL_E_SRV_* from the handshake, …) and
     * cql_conn_error_text has the details. The owner frees the connection
     * later (not inside this callback). */
    void (*on_closed)(struct cql_conn *c, int err, void *arg);
    /* An EVENT frame (stream -1), borrowed for the call. */
    void (*on_event)(struct cql_conn *c, const uint8_t *frame, size_t len, void *arg);
    void *arg;
};

/* Strings are borrowed and must outlive the connection. */
struct cql_conn_config {
    const struct sockaddr *addr;
    socklen_t addrlen;
    const char *name; /* "host:port", for messages */
    const char *user; /* NULL: answer AUTHENTICATE with CQL_E_AUTH_REQUIRED */
    const char *password;
    const char *keyspace;         /* NULL or "": no USE */
    const struct cql_str *events; /* REGISTER these during the handshake */
    size_t n_events;
    uint32_t connect_timeout_ms; /* connect + handshake; 0 = 5000 */
};

/* Creates the socket and starts connecting; on_ready or on_closed follows.
 * Fails (nothing allocated) with CQL_E_NOMEM or CQL_E_IO. */
int cql_conn_new(struct cql_loop *loop, const struct cql_conn_config *cfg,
                 const struct cql_conn_events *ev, struct cql_conn **out);
/* Frees a closed (or never used) connection; closes it first if needed,
 * which completes its requests. NULL is a no-op. */
void cql_conn_free(struct cql_conn *c);

/* Frees c in a deferred call (safe from inside its own callbacks). */
void cql_conn_free_later(struct cql_conn *c);

/* Queues a request on a ready connection: it is written now if a stream id
 * is free and the write buffer is under its soft limit, otherwise it waits
 * (in order) for one. CQL_OK: done will be called. CQL_E_CLOSED if the
 * connection is not ready, CQL_E_NOMEM: nothing happened, done will not be
 * called. */
int cql_conn_send(struct cql_conn *c, struct cql_conn_req *req);

/* Forgets a request the owner gave up on (its deadline passed). A waiting
 * request is unlinked; an in-flight one keeps its stream id reserved until
 * the late response arrives (then dropped) or the connection closes. done is
 * not called for it. Returns true if a stream id stays reserved. */
bool cql_conn_abandon(struct cql_conn *c, struct cql_conn_req *req);

/* Closes the socket, completes every request (CQL_E_NOT_SENT or
 * CQL_E_CLOSED) and calls on_closed. No-op when already closed. */
void cql_conn_close(struct cql_conn *c, int err, const char *why);

bool cql_conn_is_ready(const struct cql_conn *c);
bool cql_conn_is_closed(const struct cql_conn *c);
const char *cql_conn_name(const struct cql_conn *c);
/* Why the connection closed: the server's message for a handshake ERROR,
 * the errno text for I/O errors. Borrowed, valid until cql_conn_free. */
const char *cql_conn_error_text(const struct cql_conn *c);

struct cql_conn_counts {
    uint32_t in_flight; /* stream ids in use, orphans included */
    uint32_t orphans;   /* ids held for abandoned requests */
    uint32_t waiting;   /* requests waiting for an id or buffer room */
};
struct cql_conn_counts cql_conn_counts(const struct cql_conn *c);

#endif
