/* conn_guard.h — deadlines for slow clients, which libmicrohttpd lacks.
 *
 * libmicrohttpd's connection timeout counts idle time only: a client that
 * sends one header line every few seconds holds its connection forever. The
 * guard tracks every connection (created on libmicrohttpd's STARTED
 * notification, freed on CLOSED) with the deadline of its current phase:
 *
 *   new, awaiting its first     connected + header timeout
 *   request header
 *   idle between keep-alive     answered + idle timeout + header timeout:
 *   requests                    libmicrohttpd's own idle timeout closes a
 *                               silent connection first; this only bounds
 *                               one that trickles its next request line
 *   reading a request header    min(the above, request line + header
 *                               timeout)
 *   receiving a request body    header end + body timeout
 *   being handled, suspended,   no deadline: our own code is in charge
 *   or streaming its answer
 *
 * The guard also counts connections per client address (an IPv6 one by its
 * /64, iot_ip_bucket: one host may hold a whole /64) and refuses (through
 * libmicrohttpd's accept policy) one over the per-address cap, unless the
 * address is a trusted proxy: a proxy speaks for many clients. The count
 * moves on STARTED (libmicrohttpd may still drop a connection it accepted
 * before that), where the check is made again in one step with the count:
 * a connection two worker threads admitted at once past the last place is
 * shut down there. An address never holds more than the cap.
 *
 * A reaper thread wakes every 500 ms and shuts down (shutdown(2), never
 * close) the socket of each connection past its deadline; libmicrohttpd then
 * sees end-of-file and closes and frees the connection itself. The reaper
 * holds the guard's lock while it does so, and iot_conn_guard_untrack takes
 * the same lock: libmicrohttpd calls CLOSED before it closes the socket
 * (daemon.c, MHD_cleanup_connections, 0.9.75), so the reaper can never shut
 * down a descriptor number that has since been reused.
 *
 * Threads: track/untrack/phase calls come from the HTTP worker threads (each
 * connection always from the one that owns it); the reaper is the guard's.
 * Phase changes are one atomic store, no lock: they run on every request. */
#ifndef IOT_HTTP_CONN_GUARD_H
#define IOT_HTTP_CONN_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct iot_conn_guard;
struct iot_conn_track;
struct iot_trusted_proxies;
struct sockaddr;

struct iot_conn_guard_config {
    unsigned header_timeout; /* seconds, 0 = none */
    unsigned body_timeout;   /* seconds, 0 = none */
    unsigned idle_timeout;   /* libmicrohttpd's: a kept-alive connection's
                              * header deadline starts after it */
    unsigned per_ip_cap;     /* connections per client address, 0 = no cap */
    const struct iot_trusted_proxies *exempt; /* borrowed, outlives the guard */
};

/* Starts the reaper only if a timeout or the cap is set. NULL on failure
 * (logged). */
struct iot_conn_guard *iot_conn_guard_new(const struct iot_conn_guard_config *cfg);
/* Stops the reaper and frees. Every connection must have been untracked
 * (libmicrohttpd's daemon stopped). NULL is a no-op. */
void iot_conn_guard_free(struct iot_conn_guard *g);

/* May a new connection from this peer be accepted (per-address cap)? */
bool iot_conn_guard_admit(struct iot_conn_guard *g, const struct sockaddr *peer);
/* A new connection on socket fd from peer, awaiting its first request
 * header. NULL when out of memory (the connection then simply has no
 * deadline and does not count). */
struct iot_conn_track *iot_conn_guard_track(struct iot_conn_guard *g, int fd,
                                            const struct sockaddr *peer);
/* The connection is closing; t is freed. NULL is a no-op. */
void iot_conn_guard_untrack(struct iot_conn_guard *g, struct iot_conn_track *t);

/* Phase changes (t may be NULL: then nothing happens). now_us is
 * iot_mono_us(), which the caller has at hand anyway. */
void iot_conn_track_request_line(struct iot_conn_track *t, int64_t now_us);
void iot_conn_track_header_done(struct iot_conn_track *t, bool has_body, int64_t now_us);
void iot_conn_track_body_done(struct iot_conn_track *t);
void iot_conn_track_request_done(struct iot_conn_track *t, int64_t now_us);

/* The length of the current request's target as the client sent it (set
 * from libmicrohttpd's URI callback, read when the header is complete). */
void iot_conn_track_set_uri_len(struct iot_conn_track *t, size_t len);
size_t iot_conn_track_uri_len(const struct iot_conn_track *t);

#endif
