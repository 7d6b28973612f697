/* alerts.c — /api/v1/alerts: listing (active ones of a user from the
 * active-alert cache), raising by hand, acknowledging and resolving,
 * counts by status and severity, the live stream; and the helpers the
 * alert rules share (handlers_alerts.h). The documents and their life are
 * core/alerting_docs.h's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/docs_common.h"
#include "api/handlers_alerts.h"
#include "api/stream.h"
#include "api/stream_access.h"
#include "api/views.h"
#include "core/alerting.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/json_out.h"

#define PAGE_BYTES (512 * 1024) /* body bytes per page, past which it ends early */

/* ---- shared with alert_rules.c ------------------------------------------------ */

struct iot_alert_env iot_alert_env_of(struct iot_req *r)
{
    struct iot_app *app = iot_app_of(r);
    return (struct iot_alert_env){&app->docs, &app->cache, app->events};
}

bool iot_alerts_owner_ok(struct iot_req *r, const struct iot_principal *p, int64_t owner,
                         const char *what)
{
    if (p->admin || (p->has_user && p->user.id == owner))
        return true;
    iot_reply_error(r, 403, "Forbidden", "this %s does not belong to you", what);
    return false;
}

const struct iot_doc_paging iot_alerts_paging = {
    .def = 100, .max = 1000, .rule = IOT_DOC_LIMIT_CLAMP_ONE, .sep = '_'};

struct page {
    json_t *items;
    struct iot_doc_page page;
};

static int add_item(void *ctx, const struct iot_doc *doc)
{
    struct page *p = ctx;
    json_t *body = json_loadb(doc->body, doc->body_len, 0, NULL);
    if (body)
        json_array_append_new(p->items, body);
    return iot_doc_page_take(&p->page, doc);
}

static void reply_page(struct iot_req *r, const char *key, json_t *items, json_t *next)
{
    iot_reply_json(r, 200, json_pack("{s:s, s:o, s:I, s:o}", "status", "success", key, items,
                                     "count", (json_int_t)json_array_size(items), "next_cursor",
                                     next));
}

void iot_alerts_page_reply(struct iot_req *r, enum iot_docs_coll coll, struct iot_docs_filter *f,
                           const char *key)
{
    struct page p = {.items = json_array(), .page = {.limit = f->limit, .max_bytes = PAGE_BYTES}};
    int rc = iot_docs_find(&iot_app_of(r)->docs, coll, f, add_item, &p);
    if (rc) {
        json_decref(p.items);
        iot_reply_store_error(r, rc, key);
        return;
    }
    /* A full page may be the last: the next one is then empty. */
    bool full = iot_doc_page_full(&p.page);
    reply_page(r, key, p.items,
               full ? iot_doc_cursor_json(&iot_alerts_paging, p.page.last_ts, p.page.last_id)
                    : json_null());
}

/* ---- reading the filters -------------------------------------------------------- */

static bool one_of(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return true;
    return false;
}

/* device_id, status and severity query parameters into f; answers 400. */
static bool read_filters(struct iot_req *r, struct iot_docs_filter *f)
{
    static const char *const statuses[] = {IOT_ALERT_STATUS_ACTIVE, IOT_ALERT_STATUS_ACKNOWLEDGED,
                                           IOT_ALERT_STATUS_RESOLVED};
    static const char *const severities[] = {"info", "warning", "error", "critical"};
    const char *device = iot_req_query(r, "device_id");
    const char *status = iot_req_query(r, "status");
    const char *severity = iot_req_query(r, "severity");
    if (device && !iot_parse_id(device, &f->device_id)) {
        iot_reply_error(r, 400, "Invalid device_id", "'device_id' must be a positive integer");
        return false;
    }
    if (status && !one_of(status, statuses, 3)) {
        iot_reply_error(r, 400, "Invalid status", "'status' must be active, acknowledged or resolved");
        return false;
    }
    if (severity && !one_of(severity, severities, 4)) {
        iot_reply_error(r, 400, "Invalid severity",
                        "'severity' must be info, warning, error or critical");
        return false;
    }
    f->k1 = status;
    f->k2 = severity;
    return true;
}

/* ---- listing ------------------------------------------------------------------ */

/* An alert's place in the newest-first order. */
struct keyed {
    int64_t ts;
    const char *id;
    json_t *body;
};

static int newest_first(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? 1 : -1;
    return -strcmp(x->id, y->id);
}

static bool selected(const struct iot_docs_filter *f, const struct keyed *k)
{
    json_t *device = json_object_get(k->body, "device_id");
    const char *severity = json_string_value(json_object_get(k->body, "severity"));
    if (f->device_id && json_integer_value(device) != f->device_id)
        return false;
    if (f->k2 && (!severity || strcmp(severity, f->k2) != 0))
        return false;
    /* strictly after the cursor in newest-first order */
    return !f->has_after || k->ts < f->after_ts ||
           (k->ts == f->after_ts && strcmp(k->id, f->after_id) < 0);
}

/* One page of the active alerts of one user, from the cached list:
 * filtered, ordered and cut as the store would. */
static void reply_from_list(struct iot_req *r, const struct iot_docs_filter *f, json_t *all)
{
    size_t n = json_array_size(all), k = 0;
    struct keyed *keys = calloc(n ? n : 1, sizeof *keys);
    if (!keys) {
        json_decref(all);
        iot_reply_store_error(r, IOT_ENOMEM, "alerts");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(all, i);
        struct keyed key = {0, json_string_value(json_object_get(a, "id")), a};
        if (key.id && iot_parse_iso8601(json_string_value(json_object_get(a, "raised_at")),
                                        &key.ts) == IOT_OK && selected(f, &key))
            keys[k++] = key;
    }
    qsort(keys, k, sizeof *keys, newest_first);
    size_t take = k < f->limit ? k : f->limit;
    json_t *items = json_array();
    for (size_t i = 0; i < take; i++)
        json_array_append(items, keys[i].body);
    const struct keyed *last = take ? &keys[take - 1] : NULL;
    json_t *next = last && take == f->limit
                       ? iot_doc_cursor_json(&iot_alerts_paging, last->ts, last->id)
                       : json_null();
    free(keys);
    json_decref(all);
    reply_page(r, "alerts", items, next);
}

void iot_h_alert_list(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_docs_filter f = {0};
    struct iot_doc_cursor c;
    if (!iot_authn_any(r, &p) || !iot_doc_page_filter(r, &iot_alerts_paging, &f, &c) ||
        !read_filters(r, &f))
        return;
    if (!p.admin)
        f.user_id = p.user.id;
    if (!p.admin && f.k1 && strcmp(f.k1, IOT_ALERT_STATUS_ACTIVE) == 0) {
        struct iot_alert_env env = iot_alert_env_of(r);
        json_t *all = NULL;
        bool from_cache;
        if (iot_alert_active_of_user(&env, p.user.id, &all, &from_cache) == IOT_OK) {
            reply_from_list(r, &f, all);
            return;
        }
        /* more than the cache holds, or a store error: the store's pages */
    }
    iot_alerts_page_reply(r, IOT_DOCS_ALERTS, &f, "alerts");
}

/* ---- one alert ------------------------------------------------------------------ */

/* Loads the alert of path parameter 0 and checks the caller may see it. */
static bool load_alert(struct iot_req *r, const struct iot_principal *p, struct iot_alert_doc *doc)
{
    struct iot_alert_env env = iot_alert_env_of(r);
    int rc = iot_alert_load(&env, iot_req_param(r, 0), doc);
    if (rc == IOT_ENOTFOUND) {
        iot_reply_error(r, 404, "Alert not found", "no alert found with ID: %s", iot_req_param(r, 0));
        return false;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "alert");
        return false;
    }
    if (iot_alerts_owner_ok(r, p, doc->user_id, "alert"))
        return true;
    iot_alert_doc_clear(doc);
    return false;
}

static void reply_alert(struct iot_req *r, int status, json_t *body)
{
    iot_reply_json(r, status, json_pack("{s:s, s:O}", "status", "success", "alert", body));
}

void iot_h_alert_get(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_alert_doc doc;
    if (!iot_authn_any(r, &p) || !load_alert(r, &p, &doc))
        return;
    reply_alert(r, 200, doc.body);
    iot_alert_doc_clear(&doc);
}

static void change(struct iot_req *r, enum iot_alert_action action)
{
    struct iot_principal p;
    struct iot_alert_doc doc;
    if (!iot_authn_any(r, &p) || !load_alert(r, &p, &doc))
        return;
    struct iot_alert_env env = iot_alert_env_of(r);
    int rc = iot_alert_apply(&env, action, iot_docs_actor(&p), &doc);
    if (rc == IOT_ECONFLICT) {
        const char *status = json_string_value(json_object_get(doc.body, "status"));
        iot_reply_error(r, 409, "Invalid state transition", "the alert is %s; it cannot be %s",
                        status ? status : "in an unknown state",
                        action == IOT_ALERT_ACKNOWLEDGE ? "acknowledged" : "resolved");
    } else if (rc == IOT_EAGAIN) {
        iot_reply_retry_after(r, 1);
        iot_reply_error(r, 503, "Busy", "the alert kept changing; retry");
    } else if (rc) {
        iot_reply_store_error(r, rc, "alert");
    } else {
        /* A rule's open alert may have ended: its engine reads them again. */
        if (action == IOT_ALERT_RESOLVE)
            iot_alerting_device_changed(iot_app_of(r)->alerting, doc.device_id);
        reply_alert(r, 200, doc.body);
    }
    iot_alert_doc_clear(&doc);
}

void iot_h_alert_acknowledge(struct iot_req *r) { change(r, IOT_ALERT_ACKNOWLEDGE); }
void iot_h_alert_resolve(struct iot_req *r) { change(r, IOT_ALERT_RESOLVE); }

/* ---- raising by hand ---------------------------------------------------------- */

/* The body's fields into *a (strings borrowed from body); answers 400. */
static bool read_new_alert(struct iot_req *r, json_t *body, struct iot_alert_new *a)
{
    json_t *sev = json_object_get(body, "severity"), *msg = json_object_get(body, "message");
    json_t *meas = json_object_get(body, "measurement"), *value = json_object_get(body, "value");
    const char *why = NULL;
    int dev = iot_field_id(r, body, "device_id", &a->device_id);
    if (dev < 0)
        return false; /* answered */
    if (dev == IOT_FIELD_ABSENT) {
        why = "'device_id' is required";
    } else if (!json_is_string(sev) || !iot_alert_severity_parse(json_string_value(sev), &a->severity)) {
        why = "'severity' must be one of info, warning, error, critical";
    } else if (!json_is_string(msg) || json_string_length(msg) == 0 ||
               iot_alert_text_chars(json_string_value(msg), json_string_length(msg)) >
                   IOT_ALERT_MESSAGE_CHARS ||
               strlen(json_string_value(msg)) != json_string_length(msg)) {
        why = "'message' must be a string of 1 to 1024 characters, without NUL";
    } else if (meas && !json_is_null(meas) &&
               (!json_is_string(meas) || !iot_tm_name_valid(json_string_value(meas)))) {
        why = "'measurement' must be a measurement name: 1 to 64 characters of A-Z a-z 0-9 _ . -";
    } else if (value && !json_is_null(value) && !json_is_number(value)) {
        why = "'value' must be a number";
    }
    if (why) {
        iot_reply_error(r, 400, "Validation error", "%s", why);
        return false;
    }
    a->message = json_string_value(msg);
    a->measurement = json_string_value(meas);
    a->value = value && !json_is_null(value) ? value : NULL;
    return true;
}

void iot_h_alert_create(struct iot_req *r)
{
    struct iot_principal p;
    if (!iot_authn_any(r, &p))
        return;
    json_t *body = iot_req_json_object(r);
    if (!body)
        return;
    struct iot_alert_new a = {.raised_ms = iot_now_ms()};
    struct iot_device d;
    int rc = IOT_OK;
    if (read_new_alert(r, body, &a)) {
        rc = iot_reg_device_get(&iot_app_of(r)->registry, a.device_id, &d);
        if (rc == IOT_ENOTFOUND)
            iot_reply_error(r, 404, "Device not found", "no device found with ID: %lld",
                            (long long)a.device_id);
        else if (rc)
            iot_reply_store_error(r, rc, "device");
        else if (iot_alerts_owner_ok(r, &p, d.user_id, "device")) {
            a.user_id = d.user_id;
            struct iot_alert_env env = iot_alert_env_of(r);
            char id[IOT_ALERT_ID_LEN + 1];
            json_t *stored = NULL;
            rc = iot_alert_raise(&env, &a, id, &stored);
            if (rc)
                iot_reply_store_error(r, rc, "alert");
            else
                reply_alert(r, 201, stored);
            json_decref(stored);
        }
    }
    json_decref(body);
}

/* ---- summary -------------------------------------------------------------------- */

static int add_count(void *ctx, const char *k1, const char *k2, int64_t count)
{
    json_t *out = ctx;
    json_t *by_status = json_object_get(out, "by_status");
    json_t *by_severity = json_object_get(out, "by_severity");
    json_t *total = json_object_get(out, "total");
    json_integer_set(total, json_integer_value(total) + count);
    if (k1) {
        json_t *s = json_object_get(by_status, k1);
        json_object_set_new(by_status, k1, json_integer(json_integer_value(s) + count));
    }
    if (k2) {
        json_t *s = json_object_get(by_severity, k2);
        json_object_set_new(by_severity, k2, json_integer(json_integer_value(s) + count));
    }
    if (k1 && k2) {
        json_t *cell = json_object_get(json_object_get(out, "by_status_severity"), k1);
        if (!cell) {
            cell = json_object();
            json_object_set_new(json_object_get(out, "by_status_severity"), k1, cell);
        }
        json_object_set_new(cell, k2, json_integer(count));
    }
    return 0;
}

void iot_h_alert_summary(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_docs_filter f = {0};
    if (!iot_authn_any(r, &p) || !read_filters(r, &f))
        return;
    if (!p.admin)
        f.user_id = p.user.id;
    f.k1 = f.k2 = NULL; /* counted by both */
    json_t *out = json_pack(
        "{s:s, s:I, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}, s:{}}", "status", "success", "total",
        (json_int_t)0, "by_status", IOT_ALERT_STATUS_ACTIVE, (json_int_t)0,
        IOT_ALERT_STATUS_ACKNOWLEDGED, (json_int_t)0, IOT_ALERT_STATUS_RESOLVED, (json_int_t)0,
        "by_severity", "info", (json_int_t)0, "warning", (json_int_t)0, "error", (json_int_t)0,
        "critical", (json_int_t)0, "by_status_severity");
    int rc = iot_docs_count_by(&iot_app_of(r)->docs, IOT_DOCS_ALERTS, &f, IOT_DOCS_GROUP_K1_K2,
                               add_count, out);
    if (rc) {
        json_decref(out);
        iot_reply_store_error(r, rc, "alerts");
        return;
    }
    iot_reply_json(r, 200, out);
}

/* ---- live stream ------------------------------------------------------------------ */

void iot_h_alert_stream(struct iot_req *r)
{
    struct iot_principal p;
    if (!iot_authn_any(r, &p))
        return;
    struct iot_stream_grant grant;
    iot_stream_grant_of_user(r, &p, &grant);
    char channel[64];
    if (p.admin)
        snprintf(channel, sizeof channel, "%s", IOT_ALERT_CHANNEL_ALL);
    else
        iot_alert_channel_of_user(p.user.id, channel, sizeof channel);
    iot_streams_open(r, &grant, p.has_user ? p.user.id : 0, channel, "alert");
}
