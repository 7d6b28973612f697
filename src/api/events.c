/* events.c — the event log's API: GET /api/v1/events (a page, newest
 * first) and GET /api/v1/events/summary (counts by type). A user reads
 * the events of their own account and devices; the admin reads every
 * event, or one user's with ?user_id=. Pages splice the stored bodies. */
#include <stdio.h>
#include <string.h>

#include "api/app.h"
#include "api/authn.h"
#include "api/doc_page.h"
#include "api/handlers_events.h"
#include "api/views.h"
#include "core/events.h"
#include "core/timerange.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"

/* limit 1..1000 (default 100); cursors "<ts_ms>_<id>" */
static const struct iot_doc_paging events_paging = {
    .def = 100, .max = 1000, .rule = IOT_DOC_LIMIT_STRICT, .sep = '_'};

/* Whose events: the caller's own, or for the admin everyone's or those of
 * ?user_id=. */
static bool read_owner(struct iot_req *r, struct iot_docs_filter *f)
{
    struct iot_principal p;
    if (!iot_authn_any(r, &p))
        return false;
    const char *uid = iot_req_query(r, "user_id");
    if (!p.admin) {
        if (uid && strcmp(uid, p.user.user_id) != 0) {
            iot_reply_error(r, 403, "Forbidden", "you may read your own events only");
            return false;
        }
        f->user_id = p.user.id;
        return true;
    }
    if (!uid)
        return true;
    struct iot_user u;
    int rc = strlen(uid) == IOT_USER_ID_LEN
                 ? iot_reg_user_get_by_user_id(&iot_app_of(r)->registry, uid, &u)
                 : IOT_ENOTFOUND;
    if (rc == IOT_ENOTFOUND) {
        iot_reply_error(r, 404, "User not found", "no user with user_id '%s'", uid);
        return false;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "user");
        return false;
    }
    f->user_id = u.id;
    return true;
}

static bool read_time(struct iot_req *r, const char *key, int64_t now, bool *has, int64_t *ms)
{
    const char *s = iot_req_query(r, key);
    *has = s != NULL;
    if (s && iot_time_parse(s, now, ms) != IOT_OK) {
        iot_reply_error(r, 400, "Invalid time", "'%s' must be now, -<n>s|m|h|d|w or ISO-8601", key);
        return false;
    }
    return true;
}

/* The filters both endpoints take: owner, device_id, type, since, until.
 * *none is set when since is after until: no event can match (an empty
 * answer, as for any other range without events). */
static bool read_filters(struct iot_req *r, struct iot_docs_filter *f, bool *none)
{
    if (!read_owner(r, f))
        return false;
    const char *device = iot_req_query(r, "device_id");
    if (device && !iot_parse_id(device, &f->device_id)) {
        iot_reply_error(r, 400, "Invalid parameter", "'device_id' must be a device id");
        return false;
    }
    f->k1 = iot_req_query(r, "type");
    if (f->k1 && !iot_event_type_valid(f->k1)) {
        iot_reply_error(r, 400, "Invalid parameter",
                        "'type' must be an event type such as device.online");
        return false;
    }
    int64_t now = iot_now_ms();
    if (!read_time(r, "since", now, &f->has_ts_min, &f->ts_min) ||
        !read_time(r, "until", now, &f->has_ts_max, &f->ts_max))
        return false;
    *none = f->has_ts_min && f->has_ts_max && f->ts_max < f->ts_min;
    return true;
}

void iot_h_events_list(struct iot_req *r)
{
    struct iot_docs_filter f = {0};
    struct iot_doc_cursor c;
    bool none;
    if (!read_filters(r, &f, &none) || !iot_doc_page_filter(r, &events_paging, &f, &c))
        return;
    if (none) {
        iot_reply_json(r, 200, json_pack("{s:s, s:[], s:i, s:I, s:n}", "status", "success",
                                         "events", "count", 0, "limit", (json_int_t)f.limit,
                                         "next_cursor"));
        return;
    }
    struct iot_buf head = {0};
    iot_buf_puts(&head, "{\"status\":\"success\"");
    iot_doc_page_reply(r, &events_paging, IOT_DOCS_EVENTS, &f, &head, "events");
}

static int count_type(void *ctx, const char *k1, const char *k2, int64_t count)
{
    (void)k2;
    json_t *by_type = ctx;
    if (k1) /* every event has a type */
        json_object_set_new(by_type, k1, json_integer(count));
    return 0;
}

void iot_h_events_summary(struct iot_req *r)
{
    struct iot_docs_filter f = {0};
    bool none;
    if (!read_filters(r, &f, &none))
        return;
    json_t *by_type = json_object();
    int rc = none ? IOT_OK : iot_docs_count_by(&iot_app_of(r)->docs, IOT_DOCS_EVENTS, &f, IOT_DOCS_GROUP_K1,
                               count_type, by_type);
    if (rc) {
        json_decref(by_type);
        iot_reply_store_error(r, rc, "events");
        return;
    }
    json_int_t total = 0;
    const char *type;
    json_t *n;
    json_object_foreach(by_type, type, n)
        total += json_integer_value(n);
    iot_reply_json(r, 200, json_pack("{s:s, s:I, s:o}", "status", "success", "total", total,
                                     "by_type", by_type));
}
