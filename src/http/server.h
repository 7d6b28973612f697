/* server.h — the HTTP server: libmicrohttpd with a pool of worker threads.
 *
 * It reads each request (bounded body → 413), gives it an X-Request-ID,
 * routes it, runs the handler on the worker thread, adds the standard
 * headers, writes one access-log line per request, and on stop finishes the
 * requests in flight before returning. */
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
