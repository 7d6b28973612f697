#include "http/request.h"

#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/json_bigint.h"
#include "util/log.h"

const char *iot_req_header(struct iot_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *iot_req_query(struct iot_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *iot_req_param(struct iot_req *r, size_t i) { return i < r->n_params ? r->params[i] : NULL; }

/* jansson accepts arbitrarily deep nesting; a client must not be able to
 * make us recurse without bound, so depth is checked before parsing. */
static bool json_depth_ok(const char *s, size_t len)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > IOT_JSON_MAX_DEPTH)
                return false;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

json_t *iot_req_json_value(struct iot_req *r)
{
    if (r->body_len == 0) {
        iot_reply_error(r, 400, "Invalid JSON", "the request body must be JSON");
        return NULL;
    }
    if (!json_depth_ok(r->body, r->body_len)) {
        iot_reply_error(r, 400, "Invalid JSON", "JSON nested deeper than %d levels",
                        IOT_JSON_MAX_DEPTH);
        return NULL;
    }
    json_error_t jerr;
    /* JSON_REJECT_DUPLICATES: an object with two "name" keys is ambiguous.
     * No JSON_ALLOW_NUL: "\u0000" inside a string is refused. */
    json_t *root = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root && json_error_code(&jerr) == json_error_numeric_overflow) {
        /* An integer beyond int64 is valid JSON: read it as a real. */
        size_t wide_len;
        char *wide = iot_json_widen_bigints(r->body, r->body_len, &wide_len);
        if (wide) {
            root = json_loadb(wide, wide_len, JSON_REJECT_DUPLICATES, &jerr);
            free(wide);
        }
    }
    if (!root)
        iot_reply_error(r, 400, "Invalid JSON", "malformed JSON at line %d column %d: %s",
                        jerr.line, jerr.column, jerr.text);
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

void iot_reply_json(struct iot_req *r, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
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

void iot_reply_error(struct iot_req *r, int status, const char *error, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
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
