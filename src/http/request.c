#include "http/request.h"

#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/json_in.h"
#include "util/json_out.h"
#include "util/log.h"
#include "util/utf8.h"

const char *iot_req_header(struct iot_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *iot_req_query(struct iot_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *iot_req_param(struct iot_req *r, size_t i) { return i < r->n_params ? r->params[i] : NULL; }

/* application/json or any application/<x>+json, parameters (charset)
 * allowed; case-insensitive as media types are. */
bool iot_media_type_is_json(const char *ct)
{
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t len = strcspn(ct, ";");
    while (len && (ct[len - 1] == ' ' || ct[len - 1] == '\t'))
        len--;
    static const char app[] = "application/";
    const size_t app_len = sizeof app - 1;
    if (len <= app_len || strncasecmp(ct, app, app_len) != 0)
        return false;
    const char *sub = ct + app_len;
    size_t sub_len = len - app_len;
    if (sub_len == 4 && strncasecmp(sub, "json", 4) == 0)
        return true;
    return sub_len > 5 && strncasecmp(sub + sub_len - 5, "+json", 5) == 0;
}

json_t *iot_req_json_value(struct iot_req *r)
{
    /* A body without Content-Type stays accepted: device firmware sends
     * none. Any other declared type is refused rather than guessed at. */
    const char *ct = iot_req_header(r, "Content-Type");
    if (ct && !iot_media_type_is_json(ct)) {
        iot_reply_error(r, 415, "Unsupported Media Type",
                        "the request body must be application/json");
        return NULL;
    }
    char err[200];
    json_t *root = iot_json_parse(r->body, r->body_len, err, sizeof err);
    if (!root)
        iot_reply_error(r, 400, "Invalid JSON", "%s", err);
    return root;
}

json_t *iot_req_json_object(struct iot_req *r)
{
    json_t *root = iot_req_json_value(r);
    if (root && !json_is_object(root)) {
        json_decref(root);
        iot_reply_error(r, 400, "Invalid JSON", "request body must be a JSON object");
        return NULL;
    }
    return root;
}

bool iot_req_query_int(struct iot_req *r, const char *name, int64_t def, int64_t max,
                       int64_t *out)
{
    const char *s = iot_req_query(r, name);
    if (!s) {
        *out = def;
        return true;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || (errno == ERANGE && v < 0)) {
        iot_reply_error(r, 400, "Invalid parameter", "'%s' must be a non-negative integer", name);
        return false;
    }
    *out = (errno == ERANGE || v > max) ? max : v;
    return true;
}

bool iot_req_query_bool(struct iot_req *r, const char *name, bool def)
{
    const char *s = iot_req_query(r, name);
    if (!s)
        return def;
    if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0 || strcasecmp(s, "yes") == 0)
        return true;
    if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0 || strcasecmp(s, "no") == 0)
        return false;
    return def;
}

bool iot_req_etag_matches(struct iot_req *r, const char *etag)
{
    const char *header = iot_req_header(r, "If-None-Match");
    size_t etag_len = strlen(etag);
    for (const char *p = header ? header : ""; *p;) {
        p += strspn(p, " \t,");
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        size_t n = strcspn(p, ",");
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == etag_len && memcmp(p, etag, n) == 0)
            return true;
        p += strcspn(p, ",");
    }
    return false;
}

void iot_reply_json(struct iot_req *r, int status, json_t *body)
{
    char *text = body ? iot_json_dumps(body) : NULL; /* reals in shortest round-trip form */
    json_decref(body);
    free(r->resp_body);
    if (!text) {
        IOT_ERROR("request %s: could not serialise the response", r->request_id);
        static const char fallback[] = "{\"error\":\"Internal Server Error\",\"message\":\"response could not be built\"}";
        r->resp_body = strdup(fallback);
        r->resp_len = r->resp_body ? sizeof fallback - 1 : 0;
        r->status = 500;
    } else {
        r->resp_body = text;
        r->resp_len = strlen(text);
        r->status = status;
    }
    r->resp_type = "application/json";
}

void iot_reply_raw(struct iot_req *r, int status, char *body, size_t len)
{
    if (!body) {
        iot_reply_error(r, 500, "Internal Server Error", "response could not be built");
        return;
    }
    free(r->resp_body);
    r->resp_body = body;
    r->resp_len = len;
    r->status = status;
    r->resp_type = "application/json";
}

/* Error messages quote client bytes (jansson cites the token it choked on,
 * handlers cite names), and vsnprintf may cut a character in two; a JSON
 * string must be UTF-8, or the reply cannot be built and a 400 becomes a
 * 500. So each byte that starts no valid character becomes '?'. A
 * character of utf8.h's invisible list above ASCII (bidi overrides,
 * zero-width characters, ...) becomes one '?' too: quoted back, it would
 * hide or reorder the message wherever it is shown. ASCII controls stay:
 * JSON escapes them. Works in place (the text only shrinks). */
static void utf8_scrub(char *s)
{
    size_t len = strlen(s), o = 0;
    for (size_t i = 0; i < len;) {
        size_t next = i;
        uint32_t cp;
        if (!iot_utf8_next(s, len, &next, &cp) || (cp >= 0x80 && iot_codepoint_invisible(cp))) {
            s[o++] = '?';
            i = next > i ? next : i + 1;
            continue;
        }
        memmove(s + o, s + i, next - i);
        o += next - i;
        i = next;
    }
    s[o] = '\0';
}

void iot_reply_error(struct iot_req *r, int status, const char *error, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    utf8_scrub(message);
    iot_reply_json(r, status, json_pack("{s:s, s:s}", "error", error, "message", message));
}

void iot_reply_retry_after(struct iot_req *r, int64_t seconds)
{
    snprintf(r->retry_after, sizeof r->retry_after, "%lld", (long long)(seconds > 0 ? seconds : 1));
}

void iot_reply_store_error(struct iot_req *r, int err, const char *what)
{
    switch (err) {
    case IOT_ENOTFOUND:
        iot_reply_error(r, 404, "Not found", "no such %s", what);
        return;
    case IOT_ECONFLICT:
        iot_reply_error(r, 409, "Conflict", "the %s conflicts with an existing one", what);
        return;
    case IOT_EINVAL:
        iot_reply_error(r, 400, "Invalid request", "invalid %s", what);
        return;
    case IOT_EUNAVAILABLE:
    case IOT_ETIMEOUT:
    case IOT_EAGAIN:
        iot_reply_retry_after(r, 1);
        iot_reply_error(r, 503, "Service unavailable", "a backend store is unavailable; retry later");
        return;
    default:
        IOT_ERROR("request %s: store error on %s: %s", r->request_id, what, iot_strerror(err));
        iot_reply_error(r, 500, "Internal Server Error", "an unexpected error occurred");
        return;
    }
}

void iot_req_suspend(struct iot_req *r)
{
    r->suspended = true;
    MHD_suspend_connection(r->conn);
}

void iot_req_resume(struct iot_req *r) { MHD_resume_connection(r->conn); }

void iot_conn_suspend(struct MHD_Connection *conn) { MHD_suspend_connection(conn); }
void iot_conn_resume(struct MHD_Connection *conn) { MHD_resume_connection(conn); }

bool iot_conn_closed_by_peer(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info)
        return false;
    struct pollfd pfd = {.fd = info->connect_fd, .events = POLLRDHUP};
    return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

void iot_reply_stream(struct iot_req *r, int status, const char *content_type,
                      iot_stream_read_fn read, iot_stream_release_fn release, void *ctx)
{
    free(r->resp_body);
    r->resp_body = NULL;
    r->resp_len = 0;
    r->status = status;
    r->resp_type = content_type;
    r->stream_read = read;
    r->stream_release = release;
    r->stream_ctx = ctx;
}
