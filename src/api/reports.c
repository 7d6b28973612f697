/* reports.c — analytics reports' API: POST/GET /api/v1/devices/{id}/reports
 * (the device's owner or the admin), GET /api/v1/reports/{id} (404 to
 * anyone else, so that an id reveals nothing), and POST
 * /api/v1/admin/reports/daily?date=YYYY-MM-DD (the admin runs the daily
 * reports of a day now; the server runs them itself after midnight UTC).
 * The reports themselves are core/reports.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/authn.h"
#include "api/device_common.h"
#include "api/doc_page.h"
#include "api/handlers_events.h"
#include "api/views.h"
#include "core/reports.h"
#include "core/timerange.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"

/* limit 1..100 (default 20); cursors "<ts_ms>_<id>" */
static const struct iot_doc_paging reports_paging = {
    .def = 20, .max = 100, .rule = IOT_DOC_LIMIT_STRICT, .sep = '_'};
#define TIME_TEXT_MAX 64

static struct iot_report_stores stores_of(struct iot_req *r)
{
    struct iot_app *app = iot_app_of(r);
    return (struct iot_report_stores){&app->registry, &app->telemetry, &app->docs};
}

/* The period of a new report: "start" (required) and "end" (default now),
 * in the telemetry API's time syntax, end after start, at most 366 days. */
static bool read_period(struct iot_req *r, json_t *body, int64_t *start, int64_t *end)
{
    char start_text[TIME_TEXT_MAX + 1], end_text[TIME_TEXT_MAX + 1] = "now";
    if (iot_field_missing(body, "start")) {
        iot_reply_error(r, 400, "Missing required fields", "Required fields: start");
        return false;
    }
    if (iot_field_text(r, body, "start", 1, TIME_TEXT_MAX, start_text, sizeof start_text) < 0 ||
        iot_field_text(r, body, "end", 1, TIME_TEXT_MAX, end_text, sizeof end_text) < 0)
        return false;
    int64_t now = iot_now_ms();
    if (iot_time_parse(start_text, now, start) || iot_time_parse(end_text, now, end)) {
        iot_reply_error(r, 400, "Invalid time", "'start' and 'end' must be now, -<n>s|m|h|d|w "
                                                "or ISO-8601");
        return false;
    }
    if (*end <= *start) {
        iot_reply_error(r, 400, "Invalid time range", "'end' must be after 'start'");
        return false;
    }
    if (*end - *start > IOT_REPORT_SPAN_MAX) {
        iot_reply_error(r, 400, "Invalid time range", "a report covers at most 366 days");
        return false;
    }
    return true;
}

/* {"status":"success","report":<body>} with the stored body spliced in. */
static void reply_report(struct iot_req *r, int status, const char *body, size_t len)
{
    struct iot_buf b = {0};
    iot_buf_puts(&b, "{\"status\":\"success\",\"report\":");
    iot_buf_append(&b, body, len);
    iot_buf_puts(&b, "}");
    size_t n;
    char *text = iot_buf_take(&b, &n);
    iot_reply_raw(r, status, text, n);
}

void iot_h_report_create(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_device d;
    if (!iot_authn_any(r, &p) || !iot_load_owned_device(r, 0, &p, &d))
        return;
    json_t *body = iot_req_json_object(r);
    if (!body)
        return;
    int64_t start, end;
    bool ok = read_period(r, body, &start, &end);
    json_decref(body);
    if (!ok)
        return;
    struct iot_user owner;
    int rc = iot_reg_user_get_by_id(&iot_app_of(r)->registry, d.user_id, &owner);
    if (rc) {
        iot_reply_store_error(r, rc, "device owner");
        return;
    }
    struct iot_report_stores s = stores_of(r);
    struct iot_report_spec spec = {.kind = "manual", .device = &d, .owner_uid = owner.user_id,
                                   .start = start, .end = end};
    char *report;
    size_t len;
    rc = iot_report_make(&s, &spec, &report, &len, NULL);
    if (rc) {
        iot_reply_store_error(r, rc, "report");
        return;
    }
    reply_report(r, 201, report, len);
    free(report);
}

void iot_h_reports_of_device(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_device d;
    struct iot_docs_filter f = {0};
    struct iot_doc_cursor c;
    if (!iot_authn_any(r, &p) || !iot_load_owned_device(r, 0, &p, &d) ||
        !iot_doc_page_filter(r, &reports_paging, &f, &c))
        return;
    f.device_id = d.id;
    struct iot_buf head = {0};
    iot_buf_printf(&head, "{\"status\":\"success\",\"device_id\":%lld", (long long)d.id);
    iot_doc_page_reply(r, &reports_paging, IOT_DOCS_REPORTS, &f, &head, "reports");
}

struct found {
    const struct iot_principal *p;
    struct iot_req *r;
    bool visible;
};

static int on_report(void *ctx, const struct iot_doc *doc)
{
    struct found *f = ctx;
    f->visible = f->p->admin || (f->p->has_user && doc->user_id == f->p->user.id);
    if (f->visible)
        reply_report(f->r, 200, doc->body, doc->body_len);
    return 0;
}

void iot_h_report_get(struct iot_req *r)
{
    struct iot_principal p;
    if (!iot_authn_any(r, &p))
        return;
    const char *id = iot_req_param(r, 0);
    struct found f = {.p = &p, .r = r};
    int rc = iot_docs_check_id(id) == IOT_OK
                 ? iot_docs_get(&iot_app_of(r)->docs, IOT_DOCS_REPORTS, id, on_report, &f)
                 : IOT_ENOTFOUND;
    if (rc && rc != IOT_ENOTFOUND)
        iot_reply_store_error(r, rc, "report");
    else if (!f.visible) /* absent and someone else's look the same */
        iot_reply_error(r, 404, "Report not found", "no report with id '%s'", id);
}

/* ?date=YYYY-MM-DD, default yesterday (UTC): the day's midnight. */
static bool read_day(struct iot_req *r, int64_t *day)
{
    const char *date = iot_req_query(r, "date");
    int64_t today = iot_now_ms() / IOT_TM_DAY * IOT_TM_DAY;
    if (!date) {
        *day = today - IOT_TM_DAY;
        return true;
    }
    if (strlen(date) != 10 || iot_parse_iso8601(date, day) != IOT_OK || *day % IOT_TM_DAY != 0) {
        iot_reply_error(r, 400, "Invalid date", "'date' must be a UTC day as YYYY-MM-DD");
        return false;
    }
    if (*day >= today) {
        iot_reply_error(r, 400, "Invalid date", "the day must be over: before today (UTC)");
        return false;
    }
    return true;
}

void iot_h_reports_daily_run(struct iot_req *r)
{
    struct iot_principal p;
    int64_t day;
    if (!iot_authn_admin(r, &p) || !read_day(r, &day))
        return;
    struct iot_report_stores s = stores_of(r);
    struct iot_daily_result res;
    int rc = iot_reports_daily(&s, day, &res);
    if (rc) {
        iot_reply_store_error(r, rc, "reports");
        return;
    }
    char iso[IOT_ISO8601_LEN + 1];
    iot_iso8601(day, iso, sizeof iso);
    iso[10] = '\0';
    iot_reply_json(r, 200, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "status", "success",
                                     "date", iso, "devices", (json_int_t)res.devices, "made",
                                     (json_int_t)res.made, "existing", (json_int_t)res.existing,
                                     "quiet", (json_int_t)res.quiet, "failed",
                                     (json_int_t)res.failed));
}
