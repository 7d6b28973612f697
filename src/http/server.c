#include "http/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/metrics.h"
#include "core/secrets.h"
#include "http/client_addr.h"
#include "http/conn_guard.h"
#include "http/cors.h"
#include "util/clock.h"
#include "util/hex.h"
#include "util/log.h"

/* Seconds a connection may stay silent (libmicrohttpd's timeout). */
#define IDLE_TIMEOUT 60

struct iot_server {
    struct MHD_Daemon *daemon;
    struct iot_server_config cfg;
    uint16_t port;
    struct iot_cors cors;
    struct iot_trusted_proxies proxies;
    struct iot_conn_guard *guard;
};

/* Headers on every response: no sniffing, no framing, no caching of API
 * answers, no referrer leaks; the API serves no active content. */
static const char *const security_headers[][2] = {
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"X-XSS-Protection", "0"},
    {"Referrer-Policy", "no-referrer"},
    {"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
    {"Cache-Control", "no-store"},
};

/* A client's X-Request-ID is echoed only if it is short and plain, so it can
 * never inject anything into our headers or logs. */
static bool request_id_ok(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > IOT_REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == ':';
        if (!ok)
            return false;
    }
    return true;
}

/* Request ids only need to be unique, not secret: a random per-process
 * prefix and a counter, without a getrandom() call per request. */
static void new_request_id(char *buf, size_t size)
{
    static _Atomic uint32_t prefix, counter;
    uint32_t p = atomic_load(&prefix);
    if (p == 0) {
        char hex[9];
        iot_random_hex(hex, 8);
        uint32_t fresh = (uint32_t)strtoul(hex, NULL, 16) | 1u;
        atomic_compare_exchange_strong(&prefix, &p, fresh);
        p = atomic_load(&prefix);
    }
    snprintf(buf, size, "%08x%08x", p, atomic_fetch_add(&counter, 1));
}

/* The TCP peer, or behind a trusted proxy the address it forwarded. */
static void set_client_ip(struct iot_server *s, struct iot_req *r, const char *const *xff,
                          size_t n_xff)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    struct iot_ip peer;
    struct iot_client_id id;
    if (!info || !iot_ip_from_sockaddr(info->client_addr, &peer))
        id = (struct iot_client_id){.ip = "unknown", .key = "unknown"};
    else
        iot_client_addr_select(&s->proxies, &peer, xff, n_xff, &id);
    _Static_assert(sizeof r->client_ip == sizeof id.ip, "client_ip holds an iot_client_id ip");
    _Static_assert(sizeof r->client_key == sizeof id.key, "client_key holds an iot_client_id key");
    memcpy(r->client_ip, id.ip, sizeof r->client_ip);
    memcpy(r->client_key, id.key, sizeof r->client_key);
}

static struct iot_req *request_new(struct iot_server *s, struct MHD_Connection *conn,
                                   const char *url, const char *method)
{
    struct iot_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->conn = conn;
    r->app = s->cfg.app;
    r->method = method;
    r->path = url;
    r->start_us = iot_mono_us();
    const char *id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-ID");
    if (id && request_id_ok(id))
        snprintf(r->request_id, sizeof r->request_id, "%s", id);
    else
        new_request_id(r->request_id, sizeof r->request_id);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    r->track = info ? info->socket_context : NULL;
    return r;
}

static void request_free(struct iot_req *r)
{
    free(r->body);
    free(r->path_copy);
    free(r->resp_body);
    free(r);
}

/* Appends upload data, or only counts it once the limit is passed: the body
 * must still be drained before the 413 can be sent on a keep-alive
 * connection. */
static void request_append(struct iot_req *r, const char *data, size_t size, size_t max_body)
{
    if (r->body_too_large || r->body_len + size > max_body) {
        r->body_too_large = true;
        return;
    }
    char *grown = realloc(r->body, r->body_len + size + 1);
    if (!grown) {
        r->body_too_large = true; /* treated as "too large for us now" */
        return;
    }
    memcpy(grown + r->body_len, data, size);
    r->body = grown;
    r->body_len += size;
    r->body[r->body_len] = '\0';
}

/* A CORS preflight on an existing route: 204, the route's methods. */
static void reply_preflight(struct iot_req *r)
{
    size_t used = strlen(r->allow);
    snprintf(r->allow + used, sizeof r->allow - used, "%sOPTIONS", used ? ", " : "");
    free(r->resp_body);
    r->resp_body = NULL;
    r->resp_len = 0;
    r->status = 204;
    r->preflight = true;
}

static void dispatch(struct iot_server *s, struct iot_req *r)
{
    if (r->body_too_large) {
        iot_reply_error(r, 413, "Payload Too Large", "request body exceeds %zu bytes",
                        s->cfg.max_body);
        return;
    }
    const struct iot_route *route = NULL;
    switch (iot_route(s->cfg.routes, s->cfg.n_routes, r, &route, r->allow, sizeof r->allow)) {
    case IOT_ROUTE_FOUND:
        r->route = route;
        route->handler(r);
        /* A suspended request belongs to the thread that will resume it,
         * which may be writing its answer now: do not even read it. */
        if (!r->suspended && r->status == 0) {
            IOT_ERROR("request %s: handler for %s %s gave no answer", r->request_id, r->method,
                      r->path);
            iot_reply_error(r, 500, "Internal Server Error", "no response was produced");
        }
        return;
    case IOT_ROUTE_BAD_METHOD:
        if (strcmp(r->method, "OPTIONS") == 0) {
            reply_preflight(r);
            return;
        }
        iot_reply_error(r, 405, "Method Not Allowed", "%s is not allowed here; allowed: %s",
                        r->method, r->allow);
        return;
    case IOT_ROUTE_NOT_FOUND:
        iot_reply_error(r, 404, "Not Found", "the requested resource was not found");
        return;
    }
}

/* A streamed body outlives the request struct (MHD releases the response
 * after the completion callback), so it carries its own small binding. */
struct stream_binding {
    iot_stream_read_fn read;
    iot_stream_release_fn release;
    void *ctx;
};

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream_binding *b = cls;
    long n = b->read(b->ctx, buf, max);
    return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void stream_release(void *cls)
{
    struct stream_binding *b = cls;
    if (b->release)
        b->release(b->ctx);
    free(b);
}

static struct MHD_Response *make_stream_response(struct iot_req *r)
{
    struct stream_binding *b = malloc(sizeof *b);
    if (!b)
        return NULL;
    *b = (struct stream_binding){r->stream_read, r->stream_release, r->stream_ctx};
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, b, stream_release);
    if (!resp)
        stream_release(b);
    return resp;
}

static struct MHD_Response *make_response(struct iot_req *r)
{
    if (r->stream_read)
        return make_stream_response(r);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->resp_len, r->resp_body, MHD_RESPMEM_MUST_FREE);
    if (resp)
        r->resp_body = NULL; /* now owned by the response */
    return resp;
}

/* Access-Control-* headers: on every answer the origin may read; on a
 * preflight also what it may send. Nothing for an origin not listed. */
static void add_cors_headers(struct iot_server *s, struct iot_req *r, struct MHD_Response *resp)
{
    bool vary;
    const char *origin = s->cors.any ? NULL : iot_req_header(r, "Origin");
    const char *allow = iot_cors_allow_origin(&s->cors, origin, &vary);
    if (vary)
        MHD_add_response_header(resp, "Vary", "Origin");
    if (!allow)
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", allow);
    if (!r->preflight) {
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", IOT_CORS_EXPOSE_HEADERS);
        return;
    }
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", r->allow);
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", IOT_CORS_ALLOW_HEADERS);
    MHD_add_response_header(resp, "Access-Control-Max-Age", IOT_CORS_MAX_AGE);
}

static enum MHD_Result send_reply(struct iot_server *s, struct iot_req *r)
{
    struct MHD_Response *resp = make_response(r);
    if (!resp)
        return MHD_NO;
    if (r->status != 204 && r->status != 304)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                r->resp_type ? r->resp_type : "application/json");
    MHD_add_response_header(resp, "X-Request-ID", r->request_id);
    const char *const(*secure)[2] = r->security_headers ? r->security_headers : security_headers;
    size_t n_secure = r->security_headers ? r->n_security_headers
                                          : sizeof security_headers / sizeof *security_headers;
    for (size_t i = 0; i < n_secure; i++)
        MHD_add_response_header(resp, secure[i][0], secure[i][1]);
    if (r->etag[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, r->etag);
    if (r->retry_after[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, r->retry_after);
    if (r->allow[0] && (r->status == 405 || r->preflight))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->close_after)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    add_cors_headers(s, r, resp);
    r->replied_us = iot_mono_us();
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* What the request header says about itself, gathered in one pass. */
struct header_scan {
    unsigned content_length; /* how many Content-Length fields */
    unsigned transfer_encoding;
    const char *te;  /* the last Transfer-Encoding value */
    /* The X-Forwarded-For lines in order, the right-most
     * IOT_XFF_MAX_LINES of them (the nearest proxies wrote those). */
    const char *xff[IOT_XFF_MAX_LINES];
    size_t n_xff;
    size_t bytes; /* the header's size as sent, near enough: "k: v\r\n" */
};

static void keep_xff_line(struct header_scan *h, const char *value)
{
    if (h->n_xff == IOT_XFF_MAX_LINES) {
        memmove(h->xff, h->xff + 1, (IOT_XFF_MAX_LINES - 1) * sizeof *h->xff);
        h->n_xff--;
    }
    h->xff[h->n_xff++] = value;
}

#define IS_HEADER(key, key_size, lit) \
    ((key_size) == sizeof lit - 1 && strncasecmp((key), lit, sizeof lit - 1) == 0)

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    struct header_scan *h = cls;
    h->bytes += key_size + value_size + 4;
    if (IS_HEADER(key, key_size, "Content-Length")) {
        h->content_length++;
    } else if (IS_HEADER(key, key_size, "Transfer-Encoding")) {
        h->transfer_encoding++;
        h->te = value;
    } else if (IS_HEADER(key, key_size, "X-Forwarded-For")) {
        keep_xff_line(h, value);
    }
    return MHD_YES;
}

/* Refuses, before any body is read, a request whose size or framing we will
 * not accept. Framing first: two lengths (or a length and chunking) let a
 * proxy and us disagree where the request ends, and what we took for its
 * body would be read as a second request (request smuggling); the answer
 * closes the connection, since nothing after it can be trusted.
 * Returns true when it has set the reply. */
static bool refuse_early(struct iot_server *s, struct iot_req *r, const struct header_scan *h,
                         size_t uri_len)
{
    r->close_after = true;
    if (s->cfg.max_uri && uri_len > s->cfg.max_uri) {
        iot_reply_error(r, 414, "URI Too Long", "the request target exceeds %zu bytes",
                        s->cfg.max_uri);
    } else if (s->cfg.max_header && h->bytes > s->cfg.max_header) {
        iot_reply_error(r, 431, "Request Header Fields Too Large",
                        "the request header exceeds %zu bytes", s->cfg.max_header);
    } else if (h->content_length > 1) {
        iot_reply_error(r, 400, "Bad Request", "more than one Content-Length header");
    } else if (h->transfer_encoding && h->content_length) {
        iot_reply_error(r, 400, "Bad Request",
                        "both Transfer-Encoding and Content-Length are present");
    } else if (h->transfer_encoding > 1 || (h->te && strcasecmp(h->te, "chunked") != 0)) {
        iot_reply_error(r, 400, "Bad Request", "only 'Transfer-Encoding: chunked' is accepted");
    } else {
        r->close_after = false;
        return false;
    }
    return true;
}

/* Announced body size: libmicrohttpd has already refused a Content-Length
 * that is not a number (with its own page, see iot_server_start). */
static uint64_t announced_length(struct MHD_Connection *conn)
{
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return cl ? strtoull(cl, NULL, 10) : 0;
}

/* The first call for a request: its header is complete, no body read yet. */
static enum MHD_Result on_header(struct iot_server *s, struct iot_req *r)
{
    struct header_scan h = {0};
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, scan_header, &h);
    set_client_ip(s, r, h.xff, s->proxies.n ? h.n_xff : 0);
    if (refuse_early(s, r, &h, iot_conn_track_uri_len(r->track)))
        return send_reply(s, r);
    uint64_t length = announced_length(r->conn);
    /* Refuse an announced oversize body before reading any of it. */
    if (length > s->cfg.max_body) {
        r->body_too_large = true;
        dispatch(s, r);
        return send_reply(s, r);
    }
    iot_conn_track_header_done(r->track, length > 0 || h.transfer_encoding, r->start_us);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct iot_server *s = cls;
    struct iot_req *r = *con_cls;
    if (!r) {
        r = request_new(s, conn, url, method);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        return on_header(s, r);
    }
    if (*upload_data_size) {
        request_append(r, upload_data, *upload_data_size, s->cfg.max_body);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->suspended) { /* called again after iot_req_resume: the reply is ready */
        r->suspended = false;
        return send_reply(s, r);
    }
    iot_conn_track_body_done(r->track);
    dispatch(s, r);
    if (r->suspended)
        return MHD_YES;
    return send_reply(s, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct iot_req *r = *con_cls;
    int64_t now = iot_mono_us();
    /* The connection (if kept alive) now waits for its next request. */
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    iot_conn_track_request_done(info ? info->socket_context : NULL, now);
    if (!r)
        return;
    int64_t us = now - r->start_us;
    /* A live stream counts until its answer went out: its whole life would
     * pin the route's every quantile at the top bucket. */
    int64_t served = r->stream_read && r->replied_us ? r->replied_us - r->start_us : us;
    iot_metrics_http_request(r->route, r->method, r->status, served);
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        IOT_INFO("%s %s %s %d %lldus id=%s", r->client_ip, r->method, r->path, r->status,
                 (long long)us, r->request_id);
    else
        IOT_INFO("%s %s %s %d %lldus id=%s aborted(%d)", r->client_ip, r->method, r->path,
                 r->status, (long long)us, r->request_id, (int)toe);
    request_free(r);
    *con_cls = NULL;
}

/* libmicrohttpd's accept policy: the per-address cap, which (unlike its
 * own MHD_OPTION_PER_IP_CONNECTION_LIMIT) spares trusted proxies and does
 * not log every refusal. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    struct iot_server *s = cls;
    return iot_conn_guard_admit(s->guard, addr) ? MHD_YES : MHD_NO;
}

/* Every connection is tracked for its deadlines (conn_guard.h). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct iot_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *peer =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        *socket_context = fd ? iot_conn_guard_track(s->guard, fd->connect_fd,
                                                    peer ? peer->client_addr : NULL)
                             : NULL;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        iot_conn_guard_untrack(s->guard, *socket_context);
        *socket_context = NULL;
    }
}

/* Called once per request when its request line is in, with the target
 * exactly as sent, before it is split and decoded: the length the 414
 * limit applies to, and where the header deadline of a kept-alive
 * connection starts. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (info) {
        iot_conn_track_set_uri_len(info->socket_context, strlen(uri));
        iot_conn_track_request_line(info->socket_context, iot_mono_us());
    }
    return NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t len = strlen(line);
    while (len && line[len - 1] == '\n')
        line[--len] = '\0';
    IOT_WARN("http: %s", line);
}

/* Percent-decoding of paths and query values, in place. "%00" is left
 * encoded: a NUL would silently cut the string short ("/%00" must not
 * become "/"). */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    char *out = s;
    for (const char *in = s; *in; in++) {
        int hi, lo;
        if (*in == '%' && (hi = iot_hex_digit(in[1])) >= 0 && (lo = iot_hex_digit(in[2])) >= 0 &&
            (hi || lo)) {
            *out++ = (char)(hi * 16 + lo);
            in += 2;
        } else {
            *out++ = *in;
        }
    }
    *out = '\0';
    return (size_t)(out - s);
}

static bool make_address(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        return true;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        return true;
    }
    return false;
}

static void server_free(struct iot_server *s)
{
    iot_conn_guard_free(s->guard);
    iot_cors_free(&s->cors);
    iot_trusted_proxies_free(&s->proxies);
    free(s);
}

/* The parts that do not need the socket: origins, proxies, the guard. */
static bool server_prepare(struct iot_server *s)
{
    char bad[128];
    if (iot_cors_parse(s->cfg.cors_origins ? s->cfg.cors_origins : "*", &s->cors))
        return false;
    const char *proxies = s->cfg.trusted_proxies ? s->cfg.trusted_proxies : "";
    if (iot_trusted_proxies_parse(proxies, &s->proxies, bad, sizeof bad)) {
        IOT_ERROR("IOTFLOW_TRUSTED_PROXIES: '%s' is not an IPv4/IPv6 address or CIDR network",
                  bad);
        return false;
    }
    struct iot_conn_guard_config gcfg = {
        .header_timeout = s->cfg.header_timeout, .body_timeout = s->cfg.body_timeout,
        .idle_timeout = IDLE_TIMEOUT, .per_ip_cap = s->cfg.max_connections_per_ip,
        .exempt = &s->proxies};
    s->guard = iot_conn_guard_new(&gcfg);
    return s->guard != NULL;
}

/* libmicrohttpd keeps a request's target and header in one memory pool
 * per connection and answers on its own, with a fixed HTML page, when they
 * do not fit (414/431; 0.9.75 has no hook to change that page). Our limits
 * (answered in JSON by refuse_early) must therefore stay well inside the
 * pool: room for both, plus the library's records of each header and query
 * argument. 32 KiB is the library's default, kept when the limits allow:
 * the pool is cleared with memset on every keep-alive request, and above
 * 32 KiB it is an mmap per connection. */
static size_t connection_memory(const struct iot_server_config *cfg)
{
    size_t need = cfg->max_uri + cfg->max_header + 16 * 1024;
    return need > 32 * 1024 ? need : 32 * 1024;
}

struct iot_server *iot_server_start(const struct iot_server_config *cfg)
{
    struct sockaddr_storage addr;
    if (!make_address(cfg->host, cfg->port, &addr)) {
        IOT_ERROR("listen address '%s' is not an IPv4 or IPv6 address", cfg->host);
        return NULL;
    }
    struct iot_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    if (!server_prepare(s)) {
        server_free(s);
        return NULL;
    }
    /* poll by default: libmicrohttpd takes a suspended connection out of
     * its epoll set and puts it back on resume, two epoll_ctl calls for
     * every telemetry request (each waits for its group commit suspended);
     * poll simply skips suspended sockets. Measured on 2 cores, 32
     * keep-alive connections: ingest +19% with poll. poll's cost grows
     * with the connections each thread holds: equal at ~250 open
     * connections, epoll 9% faster at 1000 (IOTFLOW_HTTP_EPOLL=1). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | (cfg->epoll ? MHD_USE_EPOLL : MHD_USE_POLL) |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The idle timeout counts silent time only; the guard's deadlines
     * (header, body) bound a client that trickles bytes to stay "active". */
    s->daemon = MHD_start_daemon(
        flags, cfg->port, on_accept, s, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, cfg->threads, MHD_OPTION_CONNECTION_LIMIT,
        cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, connection_memory(cfg),
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_UNESCAPE_CALLBACK, unescape, s,
        MHD_OPTION_END);
    if (!s->daemon) {
        IOT_ERROR("cannot listen on %s:%u (in use, or not allowed?)", cfg->host, cfg->port);
        server_free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    return s;
}

uint16_t iot_server_port(const struct iot_server *s) { return s->port; }

void iot_server_stop(struct iot_server *s)
{
    if (!s)
        return;
    /* Handlers run to completion on their worker threads; MHD_stop_daemon
     * joins those threads, so every request being handled gets its answer.
     * Suspended requests must have been resumed before (main.c stops the
     * ingest pipeline and the streams first). MHD_quiesce_daemon is not
     * used: with an epoll thread pool, libmicrohttpd 0.9.75 can abort in it
     * ("Failed to remove listen FD from epoll set") when a worker has
     * taken the listen socket out of its set on its own. The daemon closes
     * (and notifies) every connection before the guard goes. */
    MHD_stop_daemon(s->daemon);
    server_free(s);
}
