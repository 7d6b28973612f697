/* web.h — serving the dashboard (src/web, compiled in by web/assets.h):
 * GET / for a browser, GET /ui/... for the files index.html loads.
 * Every dashboard answer carries the dashboard's own security headers
 * (a Content-Security-Policy allowing only its own files). Stateless:
 * any HTTP thread may call these. */
#ifndef IOT_API_WEB_H
#define IOT_API_WEB_H

#include <stdbool.h>

#include "http/request.h"

/* Whether the client's Accept header prefers text/html to JSON (a
 * browser's does; curl's and most libraries' "any type" does not). */
bool iot_web_prefers_html(struct iot_req *r);
/* The same for an Accept header's value (NULL: none, so no). */
bool iot_web_accept_prefers_html(const char *accept);

/* Answers index.html, the dashboard's page. */
void iot_web_reply_index(struct iot_req *r);

/* GET /ui/<path>: one of the dashboard's files, 304 when the client's
 * copy is current, 404 JSON when there is no such file. */
void iot_h_web_asset(struct iot_req *r);

#endif
