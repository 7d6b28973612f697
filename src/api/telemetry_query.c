/* telemetry_query.c — reading telemetry: history with cursor paging,
 * latest values, windowed aggregates, per-user history, range deletion and
 * the public store status. History bodies are built by splicing the stored
 * measurement JSON, never re-encoding it. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/authn.h"
#include "api/device_common.h"
#include "api/handlers.h"
#include "api/views.h"
#include "core/aggregate.h"
#include "core/latest.h"
#include "core/timerange.h"
#include "core/tm_message.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define HISTORY_DEFAULT 1000
#define HISTORY_MAX 10000
#define USER_DEFAULT 100
#define USER_MAX 1000

/* A resolved time range and the request's own words for it. */
struct span {
    const char *start_text, *end_text;
    int64_t from, to;
};

static bool read_span(struct iot_req *r, const char *start_key, const char *end_key,
                      const char *default_start, struct span *s)
{
    int64_t now = iot_now_ms();
    s->start_text = iot_req_query(r, start_key);
    s->end_text = iot_req_query(r, end_key);
    if (!s->start_text)
        s->start_text = default_start;
    if (iot_time_parse(s->start_text, now, &s->from)) {
        iot_reply_error(r, 400, "Invalid time", "'%s' must be now, -<n>s|m|h|d|w or ISO-8601", start_key);
        return false;
    }
    if (!s->end_text)
        s->to = now;
    else if (iot_time_parse(s->end_text, now, &s->to)) {
        iot_reply_error(r, 400, "Invalid time", "'%s' must be now, -<n>s|m|h|d|w or ISO-8601", end_key);
        return false;
    }
    if (s->to < s->from) {
        iot_reply_error(r, 400, "Invalid time range", "'%s' is after '%s'", start_key, end_key);
        return false;
    }
    return true;
}

/* Cursor "<ts>_<seq>" of the last record of a page; the next page starts
 * strictly after it (older). */
static bool read_cursor(struct iot_req *r, struct iot_tm_range *range)
{
    range->before_ts = range->before_seq = INT64_MAX;
    const char *c = iot_req_query(r, "cursor");
    if (!c || !*c)
        return true;
    char *end;
    errno = 0;
    long long ts = strtoll(c, &end, 10);
    bool ok = !errno && end != c && *end == '_' && end[1] != '\0' && end[1] != ' ';
    const char *second = ok ? end + 1 : c;
    long long seq = ok ? strtoll(second, &end, 10) : 0;
    if (!ok || errno || end == second || *end || (*c != '-' && (*c < '0' || *c > '9'))) {
        iot_reply_error(r, 400, "Invalid cursor", "use the next_cursor of the previous page");
        return false;
    }
    range->before_ts = ts;
    range->before_seq = seq;
    return true;
}

/* A history page being built. It ends at `limit` records or when the
 * stored bytes it carries reach max_bytes (the store stops at the same
 * record, see struct iot_tm_range), whichever comes first: the body is at
 * most max_bytes + one record + ~100 bytes of framing per record. */
struct page {
    struct iot_buf out;
    size_t count;
    bool with_device;
    bool full; /* the byte budget ended it */
    int64_t bytes, max_bytes;
    int64_t last_ts, last_seq;
};

static int append_record(void *ctx, const struct iot_tm_record *rec)
{
    struct page *p = ctx;
    char ts[IOT_ISO8601_LEN + 1];
    iot_iso8601(rec->ts, ts, sizeof ts);
    /* Plain appends, no printf: a 1000-row page formats 1000 of these. */
    iot_buf_append(&p->out, p->count ? ",{" : "{", p->count ? 2 : 1);
    if (p->with_device)
        iot_buf_printf(&p->out, "\"device_id\":%lld,", (long long)rec->device_id);
    iot_buf_append(&p->out, "\"timestamp\":\"", 13);
    iot_buf_append(&p->out, ts, IOT_ISO8601_LEN);
    iot_buf_append(&p->out, "\",\"measurements\":", 17);
    iot_buf_append(&p->out, rec->data_json, rec->data_len);
    if (rec->meta_json) {
        iot_buf_append(&p->out, ",\"metadata\":", 12);
        iot_buf_append(&p->out, rec->meta_json, rec->meta_len);
    }
    iot_buf_append(&p->out, "}", 1);
    p->count++;
    p->last_ts = rec->ts;
    p->last_seq = rec->seq;
    p->bytes += (int64_t)(rec->data_len + (rec->meta_json ? rec->meta_len : 0));
    p->full = p->max_bytes > 0 && p->bytes >= p->max_bytes;
    return p->full; /* stops a backend that does not honour max_bytes too */
}

static void put_text(struct iot_buf *b, const char *key, const char *value)
{
    json_t *v = value ? json_string(value) : json_null();
    iot_buf_printf(b, ",\"%s\":", key);
    iot_buf_json(b, v ? v : json_null());
    json_decref(v);
}

static void put_cursor(struct page *p, int64_t limit)
{
    if ((p->count == (size_t)limit && limit > 0) || p->full)
        iot_buf_printf(&p->out, ",\"next_cursor\":\"%lld_%lld\"", (long long)p->last_ts,
                       (long long)p->last_seq);
    else
        iot_buf_puts(&p->out, ",\"next_cursor\":null");
}

void iot_h_telemetry_history(struct iot_req *r)
{
    struct iot_device d;
    struct span s;
    struct iot_tm_range range;
    if (!iot_authn_device_reader(r, &d) || !read_span(r, "start_time", "end_time", "-1h", &s) ||
        !iot_req_query_int(r, "limit", HISTORY_DEFAULT, HISTORY_MAX, &range.limit) ||
        !read_cursor(r, &range))
        return;
    range.from = s.from;
    range.to = s.to;
    range.max_bytes = iot_app_of(r)->cfg->max_page_bytes;
    struct page p = {.with_device = false, .max_bytes = range.max_bytes};
    iot_buf_printf(&p.out, "{\"device_id\":%lld", (long long)d.id);
    put_text(&p.out, "device_name", d.name);
    put_text(&p.out, "device_type", d.device_type);
    put_text(&p.out, "start_time", s.start_text);
    put_text(&p.out, "end_time", s.end_text);
    iot_buf_puts(&p.out, ",\"data\":[");
    int rc = iot_tm_query_device(&iot_app_of(r)->telemetry, d.id, &range, append_record, &p);
    if (rc) {
        iot_buf_free(&p.out);
        iot_reply_store_error(r, rc, "telemetry");
        return;
    }
    iot_buf_printf(&p.out, "],\"count\":%zu,\"limit\":%lld", p.count, (long long)range.limit);
    put_cursor(&p, range.limit);
    iot_buf_puts(&p.out, "}");
    size_t len;
    char *body = iot_buf_take(&p.out, &len);
    iot_reply_raw(r, 200, body, len);
}

void iot_h_telemetry_user(struct iot_req *r)
{
    struct iot_principal who;
    struct span s;
    struct iot_tm_range range;
    const char *uid = iot_req_param(r, 0);
    if (!iot_authn_self_or_admin(r, uid, &who) || !read_span(r, "start_time", "end_time", "-24h", &s) ||
        !iot_req_query_int(r, "limit", USER_DEFAULT, USER_MAX, &range.limit) || !read_cursor(r, &range))
        return;
    struct iot_app *app = iot_app_of(r);
    struct iot_user u;
    int rc = strlen(uid) == IOT_USER_ID_LEN ? iot_reg_user_get_by_user_id(&app->registry, uid, &u)
                                            : IOT_ENOTFOUND;
    int64_t total = 0;
    if (rc == IOT_OK)
        rc = iot_tm_count_user(&app->telemetry, u.id, s.from, s.to, &total);
    range.from = s.from;
    range.to = s.to;
    range.max_bytes = app->cfg->max_page_bytes;
    struct page p = {.with_device = true, .max_bytes = range.max_bytes};
    iot_buf_puts(&p.out, "{\"status\":\"success\"");
    put_text(&p.out, "user_id", uid);
    iot_buf_puts(&p.out, ",\"telemetry\":[");
    if (rc == IOT_OK)
        rc = iot_tm_query_user(&app->telemetry, u.id, &range, append_record, &p);
    if (rc) {
        iot_buf_free(&p.out);
        iot_reply_store_error(r, rc, rc == IOT_ENOTFOUND ? "user" : "telemetry");
        return;
    }
    iot_buf_printf(&p.out, "],\"count\":%zu,\"total_count\":%lld,\"limit\":%lld", p.count,
                   (long long)total, (long long)range.limit);
    put_text(&p.out, "start_time", s.start_text);
    put_text(&p.out, "end_time", s.end_text);
    put_cursor(&p, range.limit);
    iot_buf_puts(&p.out, "}");
    size_t len;
    char *body = iot_buf_take(&p.out, &len);
    iot_reply_raw(r, 200, body, len);
}

/* Latest values, as core/latest.c reads them (the cache entry when it is
 * trusted, else the store): the answer built as they come. */
struct latest {
    struct iot_buf values, detail;
    size_t n;
    int64_t newest;
    /* A device may have any number of measurement names: the answer stops
     * at the page byte budget and says "truncated" (core/latest.c then does
     * not put it back into the cache as complete). */
    size_t budget;
    bool truncated;
};

/* Adds one value; non-zero (stop) once the answer holds `budget` bytes. */
static int add_latest(void *ctx, const struct iot_latest_value *v)
{
    struct latest *l = ctx;
    char iso[IOT_ISO8601_LEN + 1];
    iot_iso8601(v->ts, iso, sizeof iso);
    const char *sep = l->n ? "," : "";
    /* names are [A-Za-z0-9_.-]: safe to print unescaped */
    iot_buf_printf(&l->values, "%s\"%s\":", sep, v->name);
    iot_buf_append(&l->values, v->json, v->len);
    iot_buf_printf(&l->detail, "%s\"%s\":{\"value\":", sep, v->name);
    iot_buf_append(&l->detail, v->json, v->len);
    iot_buf_printf(&l->detail, ",\"timestamp\":\"%s\"}", iso);
    l->newest = v->ts > l->newest ? v->ts : l->newest;
    l->n++;
    l->truncated = l->budget && l->values.len + l->detail.len >= l->budget;
    return l->truncated;
}

static void latest_free(struct latest *l)
{
    iot_buf_free(&l->values);
    iot_buf_free(&l->detail);
}

static char *latest_body(const struct iot_device *d, const struct latest *l, const char *source,
                         size_t *len)
{
    char newest[IOT_ISO8601_LEN + 1];
    iot_iso8601(l->newest, newest, sizeof newest);
    struct iot_buf b = {0};
    iot_buf_printf(&b, "{\"device_id\":%lld", (long long)d->id);
    put_text(&b, "device_name", d->name);
    put_text(&b, "device_type", d->device_type);
    iot_buf_puts(&b, ",\"latest_data\":{");
    iot_buf_append(&b, l->values.data ? l->values.data : "", l->values.len);
    iot_buf_printf(&b, "},\"timestamp\":\"%s\",\"measurements\":{", newest);
    iot_buf_append(&b, l->detail.data ? l->detail.data : "", l->detail.len);
    iot_buf_printf(&b, "},\"source\":\"%s\"%s}", source, l->truncated ? ",\"truncated\":true" : "");
    return iot_buf_take(&b, len);
}

void iot_h_telemetry_latest(struct iot_req *r)
{
    struct iot_device d;
    if (!iot_authn_device_reader(r, &d))
        return;
    struct iot_app *app = iot_app_of(r);
    struct latest l = {.budget = (size_t)app->cfg->max_page_bytes};
    bool from_cache = false;
    int rc = iot_latest_read(&app->cache, &app->telemetry, d.id, add_latest, &l, &from_cache);
    if (rc) {
        latest_free(&l);
        iot_reply_store_error(r, rc, "telemetry");
        return;
    }
    if (l.n == 0) {
        latest_free(&l);
        iot_reply_json(r, 404, json_pack("{s:s, s:s, s:I, s:s}", "error", "Not found", "message",
                                         "No telemetry data found", "device_id", (json_int_t)d.id,
                                         "device_name", d.name));
        return;
    }
    size_t len;
    char *body = latest_body(&d, &l, from_cache ? "cache" : "store", &len);
    latest_free(&l);
    iot_reply_raw(r, 200, body, len);
}

/* NULL when a window could not be built (out of memory): the caller
 * answers 500 rather than a list with windows silently missing. */
static json_t *agg_data(const struct iot_agg_result *res, enum iot_agg_fn fn)
{
    json_t *data = json_array();
    for (size_t i = 0; data && i < res->n; i++) {
        const struct iot_agg_bucket *b = &res->buckets[i];
        if (b->count == 0)
            continue;
        json_t *w = json_pack("{s:o, s:o, s:I}", "timestamp", iot_json_time(b->start), "value",
                              iot_agg_json(b, fn), "count", (json_int_t)b->count);
        if (!w || json_array_append_new(data, w) != 0) {
            json_decref(data);
            data = NULL;
        }
    }
    return data;
}

void iot_h_telemetry_aggregated(struct iot_req *r)
{
    struct iot_device d;
    struct span s;
    if (!iot_authn_device_reader(r, &d) || !read_span(r, "start_time", "end_time", "-24h", &s))
        return;
    const char *field = iot_req_query(r, "field") ? iot_req_query(r, "field") : "temperature";
    const char *agg = iot_req_query(r, "aggregation") ? iot_req_query(r, "aggregation") : "mean";
    const char *window_text = iot_req_query(r, "window") ? iot_req_query(r, "window") : "1h";
    enum iot_agg_fn fn;
    int64_t window;
    if (!iot_tm_name_valid(field) || iot_agg_parse(agg, &fn) || iot_window_parse(window_text, &window)) {
        iot_reply_error(r, 400, "Invalid aggregation",
                        "field must be a measurement name, aggregation one of mean, sum, min, max, "
                        "count, first, last, and window like 1m, 5m, 15m, 1h, 1d");
        return;
    }
    struct iot_agg_result res;
    int rc = iot_aggregate(&iot_app_of(r)->telemetry, d.id, field, s.from, s.to, window, fn, &res);
    if (rc == IOT_ELIMIT) {
        iot_reply_error(r, 400, "Too many windows", "at most %d windows; use a larger window",
                        IOT_AGG_MAX_WINDOWS);
        return;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "telemetry");
        return;
    }
    json_t *data = agg_data(&res, fn);
    if (!data) {
        iot_agg_result_free(&res);
        iot_reply_error(r, 500, "Internal Server Error", "response could not be built");
        return;
    }
    /* iot_reply_json answers 500 when json_pack fails (NULL) */
    iot_reply_json(r, 200,
                   json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:o, s:I, s:{s:I, s:I}}",
                             "device_id", (json_int_t)d.id, "device_name", d.name, "device_type",
                             d.device_type, "field", field, "aggregation", iot_agg_name(fn), "window",
                             window_text, "start_time", s.start_text, "end_time", s.end_text, "data",
                             data, "count", (json_int_t)json_array_size(data), "source",
                             "rollup_rows", (json_int_t)res.rollup_rows, "raw_rows",
                             (json_int_t)res.raw_rows));
    iot_agg_result_free(&res);
}

void iot_h_telemetry_delete(struct iot_req *r)
{
    struct iot_device d;
    if (!iot_authn_device_reader(r, &d))
        return;
    json_t *body = iot_req_json_object(r);
    if (!body)
        return;
    json_t *js = json_object_get(body, "start_time"), *je = json_object_get(body, "stop_time");
    if (!je)
        je = json_object_get(body, "end_time");
    int64_t now = iot_now_ms(), from, to;
    bool ok = json_is_string(js) && json_is_string(je) &&
              !iot_time_parse(json_string_value(js), now, &from) &&
              !iot_time_parse(json_string_value(je), now, &to) && from <= to;
    json_t *echo = ok ? json_pack("{s:O, s:O}", "start_time", js, "stop_time", je) : NULL;
    json_decref(body);
    if (!ok) {
        iot_reply_error(r, 400, "Invalid time range",
                        "start_time and stop_time are required: now, -<n>s|m|h|d|w or ISO-8601, start first");
        return;
    }
    struct iot_app *app = iot_app_of(r);
    int64_t deleted = 0;
    int rc = iot_tm_delete_range(&app->telemetry, d.id, from, to, &deleted);
    if (rc) {
        json_decref(echo);
        iot_reply_store_error(r, rc, "telemetry");
        return;
    }
    iot_latest_forget(&app->cache, d.id); /* the store recomputed them */
    /* The data is gone either way; a reply that could not be built (echo
     * NULL or a set failing: out of memory) is a 500, not a partial echo. */
    if (json_object_set_new(echo, "message",
                            json_sprintf("Telemetry data deleted for device %s", d.name)) ||
        json_object_set_new(echo, "device_id", json_integer(d.id)) ||
        json_object_set_new(echo, "deleted", json_integer(deleted))) {
        json_decref(echo);
        echo = NULL;
    }
    iot_reply_json(r, 200, echo);
}

static json_t *store_status(const char *role, const char *backend, int rc)
{
    return json_pack("{s:s, s:s, s:b, s:s}", "role", role, "backend", backend, "available",
                     rc == IOT_OK, "status", rc == IOT_OK ? "connected" : iot_strerror(rc));
}

/* The registry counts devices by scanning its table, which a public
 * endpoint must not do per request: each process counts at most once per
 * DEVICE_COUNT_TTL_MS and answers the others from that count. */
#define DEVICE_COUNT_TTL_MS 10000
static pthread_mutex_t device_count_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t device_count = -1, device_count_at;

static json_t *total_devices(struct iot_app *app)
{
    int64_t now = iot_now_ms();
    pthread_mutex_lock(&device_count_mu);
    if (device_count < 0 || now - device_count_at >= DEVICE_COUNT_TTL_MS) {
        struct iot_device_stats ds;
        if (iot_reg_device_stats(&app->registry, now, &ds) == IOT_OK) {
            device_count = ds.total;
            device_count_at = now;
        }
    }
    int64_t n = device_count;
    pthread_mutex_unlock(&device_count_mu);
    return n < 0 ? json_null() : json_integer(n);
}

/* The admin gets the store details; anyone else — no credentials, a user,
 * a device, credentials that fail — the original's public fields.
 * iot_authn_admin answers a refusal itself; the public answer replaces it. */
static bool caller_is_admin(struct iot_req *r)
{
    if (!iot_req_header(r, "Authorization"))
        return false;
    struct iot_principal p;
    if (iot_authn_admin(r, &p))
        return true;
    r->retry_after[0] = '\0';
    return false;
}

/* The admin's extra fields: every store, the ingest counters, the
 * telemetry totals (one row: the store keeps them, no scan). Non-zero when
 * a part could not be built (json_pack or a set failed: out of memory). */
static int add_admin_status(struct iot_app *app, json_t *out, int tm_rc)
{
    struct iot_tm_stats ts = {0};
    if (tm_rc == IOT_OK)
        tm_rc = iot_tm_stats(&app->telemetry, &ts);
    struct iot_ingest_stats is;
    iot_ingest_stats(app->ingest, &is);
    int bad = json_object_set_new(
        out, "stores",
        json_pack("{s:o, s:o, s:o}", "telemetry",
                  store_status("time series", app->telemetry.ops->name, tm_rc), "registry",
                  store_status("users, devices, groups", app->registry.ops->name,
                               iot_reg_ping(&app->registry)),
                  "cache",
                  store_status("sessions, latest values, presence, pub/sub", app->cache.ops->name,
                               iot_cache_ping(&app->cache))));
    bad |= json_object_set_new(out, "ingest",
                        json_pack("{s:I, s:I, s:I, s:I, s:I}", "committed_messages",
                                  (json_int_t)is.committed_messages, "commits",
                                  (json_int_t)is.commits, "queued", (json_int_t)is.queued,
                                  "rejected_full", (json_int_t)is.rejected_full, "failed",
                                  (json_int_t)is.failed));
    bad |= json_object_set_new(out, "total_messages", json_integer(ts.messages));
    bad |= json_object_set_new(out, "devices_with_data", json_integer(ts.devices));
    bad |= json_object_set_new(out, "durable_fsync", json_boolean(app->cfg->fsync));
    return bad;
}

/* The original's fields for everyone: status, backend, total_devices (all
 * registered devices) and "<backend>_available"; details for the admin. */
void iot_h_telemetry_status(struct iot_req *r)
{
    struct iot_app *app = iot_app_of(r);
    bool admin = caller_is_admin(r);
    int tm_rc = iot_tm_ping(&app->telemetry);
    const char *backend = app->telemetry.ops->name;
    char flag[64];
    snprintf(flag, sizeof flag, "%s_available", backend);
    json_t *out = json_pack("{s:s, s:s, s:o, s:b}", "status",
                            tm_rc == IOT_OK ? "healthy" : "unavailable", "backend", backend,
                            "total_devices", total_devices(app), flag, tm_rc == IOT_OK);
    if (admin && out && add_admin_status(app, out, tm_rc) != 0) {
        json_decref(out);
        out = NULL;
    }
    iot_reply_json(r, 200, out); /* NULL (a failed json_pack) answers 500 */
}
