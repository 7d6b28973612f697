/* request.h — one HTTP request as API handlers see it, and the ways to
 * answer it.
 *
 * A struct iot_req lives from the first byte of a request until its response
 * is sent; every pointer it hands out is borrowed until then. Handlers run on
 * an HTTP worker thread and answer exactly once with an iot_reply_* call; a
 * handler that forgets gets a 500 from the server (never silence). */
#ifndef IOT_HTTP_REQUEST_H
#define IOT_HTTP_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/json_in.h"

#define IOT_ROUTE_MAX_PARAMS 4
#define IOT_REQUEST_ID_MAX 64

struct MHD_Connection;
struct iot_conn_track;
struct iot_route;

typedef long (*iot_stream_read_fn)(void *ctx, char *buf, size_t max);
typedef void (*iot_stream_release_fn)(void *ctx);

struct iot_req {
    struct MHD_Connection *conn;
    void *app; /* the application context given to the server */
    const char *method;
    const char *path; /* decoded, without the query string */
    char request_id[IOT_REQUEST_ID_MAX + 1];
    char client_ip[64];  /* the client's address, for logs (client_addr.h) */
    char client_key[64]; /* what per-client limits count: the address, an
                          * IPv6 one's /64 (iot_ip_bucket_format) */
    int64_t start_us;

    char *body; /* NUL-terminated; body_len excludes the NUL */
    size_t body_len;
    bool body_too_large;

    const struct iot_route *route; /* the route matched; NULL: none (yet) */
    const char *params[IOT_ROUTE_MAX_PARAMS]; /* path parameters, in order */
    size_t n_params;
    char *path_copy; /* storage behind params */

    bool suspended; /* waiting for another thread to finish the reply */
    struct iot_conn_track *track; /* the connection's deadlines (conn_guard.h) */

    /* The answer. */
    int status; /* 0 until a reply is set */
    char *resp_body;
    size_t resp_len;
    const char *resp_type;
    char retry_after[24];
    char etag[40]; /* an ETag header to send ("" none): the handler sets it */
    /* Replaces the API's security headers (server.c) when set: the
     * dashboard's pages need a policy that lets their own scripts run,
     * and may be cached if revalidated. n pairs of {name, value}. */
    const char *const (*security_headers)[2];
    size_t n_security_headers;
    iot_stream_read_fn stream_read; /* set by iot_reply_stream */
    int64_t replied_us; /* when the answer was queued (monotonic); 0 before */
    iot_stream_release_fn stream_release;
    void *stream_ctx;
    char allow[64];
    bool close_after; /* "Connection: close": the byte stream cannot be trusted */
    bool preflight;   /* a CORS preflight answer */
};

/* Request accessors (borrowed strings, NULL when absent). */
const char *iot_req_header(struct iot_req *r, const char *name);
const char *iot_req_query(struct iot_req *r, const char *name);
const char *iot_req_param(struct iot_req *r, size_t i);

/* Parses the body as a JSON object. A declared Content-Type other than JSON
 * (see iot_media_type_is_json; none at all is accepted) replies 415; any
 * other problem (empty, malformed, too deep, not an object, embedded NUL)
 * replies 400; both return NULL. The
 * returned object is owned by the caller (json_decref). */
json_t *iot_req_json_object(struct iot_req *r);
/* The same for any JSON value (object, array, ...). */
json_t *iot_req_json_value(struct iot_req *r);
/* True for "application/json" and "application/<x>+json", with or without
 * parameters such as charset. */
bool iot_media_type_is_json(const char *content_type);

/* Reads an integer query parameter into *out (def when absent), clamped to
 * max; negative or non-numeric → replies 400 and returns false. */
bool iot_req_query_int(struct iot_req *r, const char *name, int64_t def, int64_t max,
                       int64_t *out);
/* Query flag: "true"/"1"/"yes" → true, "false"/"0"/"no" → false, absent → def. */
bool iot_req_query_bool(struct iot_req *r, const char *name, bool def);

/* Whether the request's If-None-Match names etag (a quoted tag): a
 * comma-separated list of tags, weak ones ("W/") compared weakly as
 * RFC 9110 asks, or "*". The handler then answers 304. */
bool iot_req_etag_matches(struct iot_req *r, const char *etag);

/* Answers with a JSON value (reference stolen, may be NULL → 500). */
void iot_reply_json(struct iot_req *r, int status, json_t *body);
/* Answers with a ready JSON body (ownership of the heap string taken;
 * NULL → 500). */
void iot_reply_raw(struct iot_req *r, int status, char *body, size_t len);
/* Answers {"error": error, "message": <formatted>}. */
void iot_reply_error(struct iot_req *r, int status, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Answers an IOT_E* code from a store with the matching status (404, 409,
 * 503 + Retry-After, ...); `what` names the thing, e.g. "device". */
void iot_reply_store_error(struct iot_req *r, int err, const char *what);
void iot_reply_retry_after(struct iot_req *r, int64_t seconds);

/* Deferred answers. A handler that hands the request to another thread
 * calls iot_req_suspend first (on its own thread), returns without
 * replying, and the other thread sets the reply and calls iot_req_resume.
 * The request stays valid until resumed. */
void iot_req_suspend(struct iot_req *r);
void iot_req_resume(struct iot_req *r);

/* Streaming answers (Server-Sent Events and the like): `read` is called
 * whenever the socket can take more; it returns bytes written into buf, 0
 * for "nothing yet" (it must then have suspended the connection with
 * iot_conn_suspend), or -1 to end the stream. `release` runs once when the
 * stream is over. */
void iot_reply_stream(struct iot_req *r, int status, const char *content_type,
                      iot_stream_read_fn read, iot_stream_release_fn release, void *ctx);
void iot_conn_suspend(struct MHD_Connection *conn);
/* True when the client has hung up (checked without blocking): how a
 * parked stream learns that nobody is listening any more. */
bool iot_conn_closed_by_peer(struct MHD_Connection *conn);
void iot_conn_resume(struct MHD_Connection *conn);

#endif
