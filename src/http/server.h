/* server.h — the HTTP server: libmicrohttpd with a pool of worker threads.
 *
 * It reads each request (bounded target → 414, header → 431, body → 413;
 * ambiguous framing → 400 and close; slow header or body → connection
 * closed, see conn_guard.h), gives it an X-Request-ID and its client
 * address (client_addr.h), routes it, answers CORS preflights, runs the
 * handler on the worker thread, adds the standard and CORS headers, writes
 * one access-log line per request, and on stop finishes the requests in
 * flight before returning. */
#ifndef IOT_HTTP_SERVER_H
#define IOT_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/router.h"

struct iot_server_config {
    const char *host;
    uint16_t port;
    unsigned threads;
    unsigned max_connections;
    size_t max_body;
    bool epoll; /* wait for sockets with epoll (else poll), see iot_server_start */
    unsigned max_connections_per_ip; /* 0 = no cap */
    unsigned header_timeout;         /* seconds for a whole request header; 0 = none */
    unsigned body_timeout;           /* seconds for a whole request body; 0 = none */
    size_t max_uri;                  /* request target bytes (414 above); 0 = ours off */
    size_t max_header;               /* request header bytes (431 above); 0 = ours off */
    const char *cors_origins;        /* "*" or a comma-separated list (cors.h) */
    const char *trusted_proxies;     /* "" or addresses/CIDRs (client_addr.h) */
    const struct iot_route *routes;
    size_t n_routes;
    void *app; /* handed to handlers as r->app */
};

struct iot_server;

/* Binds and starts serving. Returns NULL (and logs why) on failure. */
struct iot_server *iot_server_start(const struct iot_server_config *cfg);
/* Stops accepting, lets in-flight requests finish, frees. NULL is a no-op. */
void iot_server_stop(struct iot_server *s);
/* The port actually bound (useful with port 0). */
uint16_t iot_server_port(const struct iot_server *s);

#endif
