/* router.h — maps (method, path) to a handler.
 *
 * Routes are a static table of patterns like "/api/v1/groups/{}/devices/{}"
 * where "{}" matches one non-empty path segment and becomes a parameter.
 * When several patterns match, the one with the most literal segments wins
 * ("/devices/status" beats "/devices/{}"). A path that matches only with
 * another method yields 405 and the list of allowed methods. Read-only after
 * start-up, so any thread may route. */
#ifndef IOT_HTTP_ROUTER_H
#define IOT_HTTP_ROUTER_H

#include <stddef.h>

#include "http/request.h"

typedef void (*iot_handler_fn)(struct iot_req *r);

struct iot_route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* absolute path with "{}" parameters */
    iot_handler_fn handler;
};

enum iot_route_result { IOT_ROUTE_FOUND, IOT_ROUTE_NOT_FOUND, IOT_ROUTE_BAD_METHOD };

/* Finds the route for r->method and r->path. On FOUND sets *out and fills
 * r->params (using r->path_copy). On BAD_METHOD writes the allowed methods,
 * comma separated, into allow. */
enum iot_route_result iot_route(const struct iot_route *routes, size_t n, struct iot_req *r,
                                const struct iot_route **out, char *allow, size_t allow_size);

#endif
