/* cql_session.h — the Cassandra client: a session over a cluster, with one
 * I/O thread that runs every connection, the async API (callbacks), futures
 * and blocking wrappers (cql_future.h), prepared statements with a cache and
 * transparent re-prepare, token-aware routing from the ring a control
 * connection reads, host down/up handling with reconnects, retries
 * (cql_retry.h), paging and client-side timestamps.
 *
 * Ownership: a session owns its connections, hosts and prepared statements
 * (cql_prepared_stmt handles stay valid until cql_session_free). Every
 * request argument is copied before the submitting call returns. A
 * completion callback owns the struct cql_reply it is given and frees it
 * with cql_reply_free (now or later, from any thread).
 *
 * Threading: every function may be called from any thread, concurrently,
 * except cql_session_free. Completion callbacks run on the session's I/O
 * thread: they must not block (no *_sync call, no cql_future_wait/get, no
 * long work) and must not free the session; they may submit new requests.
 * The *_sync wrappers return CQL_E_INVALID when called on the I/O thread. */
#ifndef CQL_SESSION_H
#define CQL_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cql/cql_buf.h"
#include "cql/cql_error.h"
#include "cql/cql_msg.h"

struct cql_session;
struct cql_reply;
struct cql_prepared_stmt;
struct cql_future;

/* "Use the session's default" where a consistency is asked for. */
#define CQL_CONSISTENCY_DEFAULT 0xFFFF

/* Zero means "default" for every field. */
struct cql_session_config {
    /* "host:port,host:port"; the port defaults to 9042, IPv6 as [::1]:9042.
     * Peers found in system.peers are reached on the first contact point's
     * port. */
    const char *contact_points;
    const char *user; /* NULL: no credentials (PasswordAuthenticator needs them) */
    const char *password;
    const char *keyspace; /* every connection runs USE <keyspace> (as written) */
    /* Default consistency of requests. 0 (ANY) cannot be a default and means
     * LOCAL_ONE. */
    uint16_t consistency;
    uint16_t serial_consistency;   /* 0: none, else SERIAL or LOCAL_SERIAL */
    uint32_t request_timeout_ms;   /* whole request, retries included; 12000 */
    uint32_t connect_timeout_ms;   /* connect + handshake of one connection; 5000 */
    uint32_t connections_per_host; /* 1 (at most 64) */
    uint32_t max_pending;          /* requests submitted, not completed; 262144 */
    uint32_t reconnect_base_ms;    /* first reconnect delay, doubled each failure; 100 */
    uint32_t reconnect_max_ms;     /* cap of that delay; 10000 */
    uint32_t max_prepared;         /* prepared statements cached; 4096 */
    bool no_token_aware;           /* route every request round-robin */
    bool no_client_timestamps;     /* do not send default timestamps (flag 0x20) */
};

/* Per-request options; zero means the session's default for each. */
struct cql_opts {
    int32_t page_size;             /* > 0: at most this many rows per page */
    struct cql_slice paging_state; /* ptr set: continue where that page ended */
    uint16_t serial_consistency;   /* SERIAL or LOCAL_SERIAL; 0: session's */
    bool idempotent;               /* may be retried after a write timeout or a lost connection */
    uint32_t timeout_ms;           /* 0: session's request timeout */
    int64_t timestamp;             /* µs since the epoch; 0: generated (strictly increasing) */
    bool tracing;
};

/* One statement of a batch: a prepared handle, or else query text. values
 * is a run of cells written with cql_encode_* (cql_types.h). */
struct cql_batch_item {
    const char *query;
    const struct cql_prepared_stmt *prepared;
    struct cql_slice values;
};

/* rc is CQL_OK or the request's error; reply is owned by the callback (see
 * cql_reply_* below) and is NULL only when rc is CQL_E_NOMEM. */
typedef void (*cql_callback)(int rc, struct cql_reply *reply, void *ctx);

/* ---- life cycle ------------------------------------------------------------ */

/* Validates cfg (strings are copied), resolves the contact points and starts
 * the I/O thread; it does not connect yet. CQL_E_INVALID names the problem in
 * *err_text if given (static text). */
int cql_session_new(const struct cql_session_config *cfg, struct cql_session **out,
                    const char **err_text);
/* Blocks until the control connection has read the topology and at least one
 * host accepts requests, or the connect timeout passes for every contact
 * point. The error (e.g. CQL_E_SRV_AUTH for a wrong password) is described
 * by cql_session_error_text. Requests submitted before it fail with
 * CQL_E_NO_HOST. */
int cql_session_connect(struct cql_session *s);
/* The last connect error, e.g. "127.0.0.1:9042: Provided username cassandra
 * and/or password are incorrect". Valid until the next cql_session_connect. */
const char *cql_session_error_text(struct cql_session *s);
/* Stops the I/O thread after completing every pending request with
 * CQL_E_SHUTDOWN (callbacks run), closes everything and frees the session.
 * Not from a callback. NULL is a no-op. */
void cql_session_free(struct cql_session *s);

/* ---- requests (async) ---------------------------------------------------------
 * Each returns CQL_OK and later calls cb exactly once, or returns an error
 * (CQL_E_INVALID, CQL_E_NOMEM, CQL_E_QUEUE_FULL, CQL_E_SHUTDOWN) and never
 * calls cb. values: a run of cells written with cql_encode_*; consistency:
 * a CQL_CONSISTENCY_* or CQL_CONSISTENCY_DEFAULT; opts may be NULL. */

int cql_session_query(struct cql_session *s, const char *cql, struct cql_slice values,
                      uint16_t consistency, const struct cql_opts *opts, cql_callback cb,
                      void *ctx);
/* Prepares on one host (or finds the statement in the cache: no round trip
 * then). The reply's cql_reply_prepared is the handle. */
int cql_session_prepare(struct cql_session *s, const char *cql, cql_callback cb, void *ctx);
/* Token-aware when every partition-key marker is bound to a value. An
 * UNPREPARED answer re-prepares the statement on that host and retries once,
 * transparently. */
int cql_session_execute(struct cql_session *s, const struct cql_prepared_stmt *ps,
                        struct cql_slice values, uint16_t consistency, const struct cql_opts *opts,
                        cql_callback cb, void *ctx);
/* type: CQL_BATCH_LOGGED, _UNLOGGED or _COUNTER; 1..65535 items. opts'
 * paging fields are ignored. */
int cql_session_batch(struct cql_session *s, uint8_t type, const struct cql_batch_item *items,
                      size_t n_items, uint16_t consistency, const struct cql_opts *opts,
                      cql_callback cb, void *ctx);
/* The page after `page` (a reply with cql_reply_has_more_pages): the same
 * statement, values and options with its paging state. page may be freed as
 * soon as this returns. */
int cql_session_next_page(struct cql_session *s, const struct cql_reply *page, cql_callback cb,
                          void *ctx);

/* ---- requests (futures and blocking) -----------------------------------------
 * _async: a future that always completes (also when submitting failed);
 * NULL only if it cannot be allocated. _sync: waits, returns the request's
 * rc and stores the reply (also an error reply; NULL on submit failures) in
 * *out, to be freed with cql_reply_free. out may be NULL. */

struct cql_future *cql_session_query_async(struct cql_session *s, const char *cql,
                                           struct cql_slice values, uint16_t consistency,
                                           const struct cql_opts *opts);
struct cql_future *cql_session_execute_async(struct cql_session *s,
                                             const struct cql_prepared_stmt *ps,
                                             struct cql_slice values, uint16_t consistency,
                                             const struct cql_opts *opts);
int cql_session_query_sync(struct cql_session *s, const char *cql, struct cql_slice values,
                           uint16_t consistency, const struct cql_opts *opts,
                           struct cql_reply **out);
int cql_session_execute_sync(struct cql_session *s, const struct cql_prepared_stmt *ps,
                             struct cql_slice values, uint16_t consistency,
                             const struct cql_opts *opts, struct cql_reply **out);
int cql_session_batch_sync(struct cql_session *s, uint8_t type, const struct cql_batch_item *items,
                           size_t n_items, uint16_t consistency, const struct cql_opts *opts,
                           struct cql_reply **out);
int cql_session_next_page_sync(struct cql_session *s, const struct cql_reply *page,
                               struct cql_reply **out);
/* The handle of a prepared statement (a cache hit costs no round trip); on
 * failure *out is NULL and err_reply (if given) gets the error reply. */
int cql_session_prepare_sync(struct cql_session *s, const char *cql,
                             const struct cql_prepared_stmt **out, struct cql_reply **err_reply);

/* ---- replies -------------------------------------------------------------------
 * A reply owns the response frame and everything decoded from it: strings,
 * cells and row iterators taken from it are borrowed until cql_reply_free.
 * Getters accept NULL and then return NULL/0/false. */

void cql_reply_free(struct cql_reply *r);
/* The request's rc (as given to the callback). */
int cql_reply_rc(const struct cql_reply *r);
/* The decoded response: envelope (warnings, tracing id, custom payload) and
 * message. NULL for client-side errors (timeout, closed, …). */
const struct cql_message *cql_reply_message(const struct cql_reply *r);
/* enum cql_result_kind of a RESULT, 0 otherwise. */
int32_t cql_reply_kind(const struct cql_reply *r);
/* Rows of a ROWS result (read them with cql_rows_iter/cql_rows_next), else NULL. */
const struct cql_rows *cql_reply_rows(const struct cql_reply *r);
bool cql_reply_has_more_pages(const struct cql_reply *r);
/* The paging state to pass in cql_opts.paging_state; {NULL, 0} on the last page. */
struct cql_slice cql_reply_paging_state(const struct cql_reply *r);
/* The server's ERROR (code, message and extra fields), else NULL. */
const struct cql_error_body *cql_reply_error(const struct cql_reply *r);
/* A description of a failure: the server's message for server errors, the
 * client's for others; "" on success. NUL-terminated. */
const char *cql_reply_error_text(const struct cql_reply *r);
/* "ip:port" of the host that answered (or last tried), "" if none. */
const char *cql_reply_host(const struct cql_reply *r);
/* The handle a PREPARE produced (owned by the session), else NULL. */
const struct cql_prepared_stmt *cql_reply_prepared(const struct cql_reply *r);

/* ---- prepared statements ----------------------------------------------------- */

const char *cql_prepared_query(const struct cql_prepared_stmt *ps);
/* Bind markers (names, types, pk_indices) and the result columns. */
const struct cql_metadata *cql_prepared_params(const struct cql_prepared_stmt *ps);
const struct cql_metadata *cql_prepared_result(const struct cql_prepared_stmt *ps);

/* ---- introspection ------------------------------------------------------------ */

struct cql_host_info {
    char name[64]; /* "ip:port" */
    char dc[64];
    bool up;
    uint32_t n_tokens;
    uint64_t served; /* responses received from this host */
};

/* Copies up to cap hosts (contact points and peers, removed ones excepted)
 * into out; returns how many there are. */
size_t cql_session_hosts(struct cql_session *s, struct cql_host_info *out, size_t cap);

struct cql_session_stats {
    uint64_t submitted, completed, failed;
    uint64_t timeouts, retries, reprepares, redispatched;
    uint32_t pending;   /* submitted, not completed */
    uint32_t in_flight; /* stream ids in use over all connections, orphans included */
    uint32_t orphans;   /* stream ids held for timed-out requests */
    uint32_t waiting;   /* requests waiting for a stream id */
    uint32_t connections_ready;
};

/* A snapshot, refreshed by the I/O thread on every turn. */
void cql_session_stats(struct cql_session *s, struct cql_session_stats *out);

#endif
