/* web.c — the dashboard's files over HTTP: index.html at / (for clients
 * that prefer HTML) and everything else at /ui/<path>.
 *
 * Files are revalidated, not cached blind (Cache-Control: no-cache with
 * the build-time ETag): a new binary's dashboard is seen at the next load,
 * and an unchanged one costs a 304. */
#include "api/web.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web/assets.h"

#define UI_PREFIX "/ui/"

/* The dashboard runs only its own scripts and styles, talks only to its
 * own origin, and may not be framed; nothing inline (the pages have no
 * inline script or style, so an injected one would not run). */
static const char *const dashboard_headers[][2] = {
    {"Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
     "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
    {"X-Frame-Options", "DENY"},
    {"Cache-Control", "no-cache"},
    /* / answers HTML or JSON by Accept: a cache must keep them apart. */
    {"Vary", "Accept"},
};

/* The quality of the most specific range in an Accept header matching
 * type/subtype (RFC 9110 12.5.1): exact beats type/ *, which beats * / *.
 * 0 when none matches. */
static double accept_quality(const char *accept, const char *type, const char *subtype)
{
    double best_q = 0;
    int best_rank = 0;
    size_t type_len = strlen(type), sub_len = strlen(subtype);
    for (const char *p = accept; *p;) {
        p += strspn(p, " \t,");
        size_t item_len = strcspn(p, ",");
        size_t range_len = strcspn(p, ";,");
        while (range_len && (p[range_len - 1] == ' ' || p[range_len - 1] == '\t'))
            range_len--;
        const char *slash = memchr(p, '/', range_len);
        if (slash) {
            size_t t_len = (size_t)(slash - p), s_len = range_len - t_len - 1;
            bool t_any = t_len == 1 && p[0] == '*', s_any = s_len == 1 && slash[1] == '*';
            bool t_ok = t_any || (t_len == type_len && strncasecmp(p, type, t_len) == 0);
            bool s_ok = s_any || (s_len == sub_len && strncasecmp(slash + 1, subtype, s_len) == 0);
            int rank = t_any ? 1 : s_any ? 2 : 3;
            if (t_ok && s_ok && rank > best_rank) {
                double q = 1;
                const char *qp = p + range_len;
                const char *end = p + item_len;
                while ((qp = memchr(qp, ';', (size_t)(end - qp))) != NULL) {
                    qp++;
                    qp += strspn(qp, " \t");
                    if ((qp[0] == 'q' || qp[0] == 'Q') && qp[1] == '=')
                        q = strtod(qp + 2, NULL);
                }
                best_rank = rank;
                best_q = q;
            }
        }
        p += item_len;
    }
    return best_q;
}

bool iot_web_accept_prefers_html(const char *accept)
{
    return accept &&
           accept_quality(accept, "text", "html") > accept_quality(accept, "application", "json");
}

bool iot_web_prefers_html(struct iot_req *r)
{
    return iot_web_accept_prefers_html(iot_req_header(r, "Accept"));
}

static void reply_asset(struct iot_req *r, const struct iot_web_asset *a)
{
    r->security_headers = dashboard_headers;
    r->n_security_headers = sizeof dashboard_headers / sizeof *dashboard_headers;
    snprintf(r->etag, sizeof r->etag, "%s", a->etag);
    if (iot_req_etag_matches(r, a->etag)) {
        iot_reply_raw(r, 304, calloc(1, 1), 0);
        return;
    }
    /* The server frees the body it sends; the table is static. */
    char *copy = malloc(a->len + 1);
    if (copy)
        memcpy(copy, a->data, a->len);
    iot_reply_raw(r, 200, copy, a->len);
    if (copy)
        r->resp_type = a->content_type;
}

void iot_web_reply_index(struct iot_req *r)
{
    const struct iot_web_asset *a = iot_web_asset_find("index.html");
    if (!a) {
        iot_reply_error(r, 404, "Not found", "this build has no dashboard");
        return;
    }
    reply_asset(r, a);
}

void iot_h_web_asset(struct iot_req *r)
{
    const struct iot_web_asset *a = NULL;
    if (strncmp(r->path, UI_PREFIX, sizeof UI_PREFIX - 1) == 0)
        a = iot_web_asset_find(r->path + sizeof UI_PREFIX - 1);
    if (!a) {
        iot_reply_error(r, 404, "Not found", "no such dashboard file");
        return;
    }
    reply_asset(r, a);
}
