/* telemetry.c — telemetry ingest: POST /api/v1/telemetry (one message) and
 * POST /api/v1/telemetry/batch (up to 1000), both with the device's key.
 *
 * The handler validates, builds its success answer, suspends the request
 * and queues the messages; the ingest writer commits the batch they land
 * in and only then resumes the request with 201 (or 503 when the commit
 * failed). No worker thread waits on the disk. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/authn.h"
#include "api/handlers.h"
#include "api/views.h"
#include "core/metrics.h"
#include "core/tm_message.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

/* One submission in flight: owned by the request until queued, then by
 * the ingest pipeline until done() runs. */
struct submission {
    struct iot_ingest_job job;
    struct iot_tm_parsed parsed;
    struct iot_req *r;
    char *ok_body; /* the 201 answer, built on the request thread */
    size_t ok_len;
};

static void submission_free(struct submission *s)
{
    iot_tm_parsed_free(&s->parsed);
    free(s->ok_body);
    free(s);
}

/* Runs on the ingest writer thread after the commit. */
static void submission_done(struct iot_ingest_job *job)
{
    struct submission *s = job->ctx;
    struct iot_req *r = s->r;
    if (job->status == IOT_OK) {
        iot_reply_raw(r, 201, s->ok_body, s->ok_len);
        s->ok_body = NULL;
    } else {
        iot_reply_retry_after(r, 1);
        iot_reply_error(r, 503, "Storage unavailable",
                        "the telemetry store did not confirm the write; retry later");
    }
    submission_free(s);
    iot_req_resume(r);
}

static bool device_rate_ok(struct iot_req *r, const struct iot_device *d)
{
    struct iot_app *app = iot_app_of(r);
    int64_t retry_ms = 0;
    if (iot_device_rate_take(&app->devices, d->id, &retry_ms))
        return true;
    iot_reply_retry_after(r, (retry_ms + 999) / 1000);
    iot_reply_error(r, 429, "Too many requests",
                    "device %lld may send %lld telemetry requests per minute",
                    (long long)d->id, (long long)app->devices.rate_limit);
    return false;
}

static bool device_bytes_ok(struct iot_req *r, const struct iot_device *d)
{
    struct iot_app *app = iot_app_of(r);
    int64_t retry_ms = 0;
    if (iot_device_bytes_take(&app->devices, d->id, (int64_t)r->body_len, &retry_ms))
        return true;
    iot_reply_retry_after(r, (retry_ms + 999) / 1000);
    iot_reply_error(r, 429, "Too many requests",
                    "device %lld may send %lld bytes of telemetry per minute", (long long)d->id,
                    (long long)app->devices.byte_rate_limit);
    return false;
}

static char *success_body(const struct iot_device *d, const struct iot_tm_parsed *p, bool batch,
                          size_t *len)
{
    struct iot_buf b = {0};
    char first[IOT_ISO8601_LEN + 1], last[IOT_ISO8601_LEN + 1];
    int64_t lo = p->msgs[0].ts, hi = p->msgs[0].ts;
    size_t points = 0;
    for (size_t i = 0; i < p->n; i++) {
        lo = p->msgs[i].ts < lo ? p->msgs[i].ts : lo;
        hi = p->msgs[i].ts > hi ? p->msgs[i].ts : hi;
        points += p->msgs[i].n_points;
    }
    iot_iso8601(batch ? lo : p->msgs[0].ts, first, sizeof first);
    iot_iso8601(hi, last, sizeof last);
    json_t *name = json_string(d->name);
    iot_buf_printf(&b, "{\"message\":\"Telemetry data stored successfully\",\"device_id\":%lld,"
                       "\"device_name\":", (long long)d->id);
    iot_buf_json(&b, name);
    json_decref(name);
    iot_buf_printf(&b, ",\"timestamp\":\"%s\",\"points\":%zu", first, points);
    if (batch)
        iot_buf_printf(&b, ",\"accepted\":%zu,\"first_timestamp\":\"%s\",\"last_timestamp\":\"%s\"",
                       p->n, first, last);
    iot_buf_puts(&b, ",\"stored\":true}");
    return iot_buf_take(&b, len);
}

static void submit(struct iot_req *r, bool batch)
{
    struct iot_app *app = iot_app_of(r);
    struct iot_device d;
    if (!iot_authn_device(r, IOT_DEVICE_AUTH_ACTIVE, &d) || !device_rate_ok(r, &d) ||
        !device_bytes_ok(r, &d))
        return;
    json_t *body = batch ? iot_req_json_value(r) : iot_req_json_object(r);
    if (!body)
        return;
    struct submission *s = calloc(1, sizeof *s);
    char err[256] = "";
    int rc = s ? (batch ? iot_tm_parse_batch : iot_tm_parse_one)(body, d.id, d.user_id, iot_now_ms(),
                                                                  &s->parsed, err, sizeof err)
               : IOT_ENOMEM;
    json_decref(body); /* the parsed set holds its own reference */
    if (rc == IOT_OK && !(s->ok_body = success_body(&d, &s->parsed, batch, &s->ok_len)))
        rc = IOT_ENOMEM;
    if (rc) {
        if (rc == IOT_EINVAL)
            iot_reply_error(r, 400, "Invalid telemetry", "%s", err);
        else
            iot_reply_store_error(r, rc, "telemetry");
        if (s)
            submission_free(s);
        return;
    }
    s->r = r;
    s->job = (struct iot_ingest_job){.msgs = s->parsed.msgs, .n = s->parsed.n,
                                     .done = submission_done, .ctx = s};
    /* Suspend before queueing: the writer may resume us at once. (d is our
     * copy: after the submit s may already be gone.) */
    iot_req_suspend(r);
    rc = iot_ingest_submit_sighting(app->ingest, app->events, &s->job, &d);
    if (rc) {
        submission_free(s);
        iot_reply_retry_after(r, 1);
        iot_reply_error(r, 503, rc == IOT_ELIMIT ? "Ingest queue full" : "Shutting down",
                        "the server cannot take more telemetry right now; retry later");
        iot_req_resume(r);
    }
}

void iot_h_telemetry_post(struct iot_req *r) { submit(r, false); }
void iot_h_telemetry_batch(struct iot_req *r) { submit(r, true); }
