/* cors.h — Cross-Origin Resource Sharing as the original IoTFlow (Flask-CORS)
 * did it: CORS_ORIGINS "*" (default) or a comma-separated list of origins;
 * no credentials mode.
 *
 * The origin list is parsed once at start-up and read-only afterwards (any
 * thread may use it); per request it only compares strings. */
#ifndef IOT_HTTP_CORS_H
#define IOT_HTTP_CORS_H

#include <stdbool.h>
#include <stddef.h>

/* Headers a browser may send on a cross-origin API call and those it may
 * read from the answer. */
#define IOT_CORS_ALLOW_HEADERS \
    "Authorization, X-API-Key, Content-Type, X-Request-ID, X-User-ID, If-None-Match"
#define IOT_CORS_EXPOSE_HEADERS "X-Request-ID, Retry-After, ETag"
#define IOT_CORS_MAX_AGE "600" /* seconds a preflight answer may be cached */

struct iot_cors {
    bool any;       /* "*": every origin, answered with "*" */
    char **origins; /* exact origins otherwise, without a trailing slash */
    size_t n;
};

/* Parses "*" or "https://a.example, http://localhost:3000" (empty = "*").
 * Returns IOT_OK or IOT_ENOMEM; free with iot_cors_free. */
int iot_cors_parse(const char *list, struct iot_cors *out);
void iot_cors_free(struct iot_cors *c);

/* The Access-Control-Allow-Origin value for a request with this Origin
 * header (NULL if none): "*", the origin itself when listed, or NULL (no
 * CORS headers at all). *vary is set when the answer depends on the Origin
 * header, so caches must key on it. */
const char *iot_cors_allow_origin(const struct iot_cors *c, const char *origin, bool *vary);

#endif
