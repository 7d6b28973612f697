/* reports.c — analytics reports and the daily run (see reports.h). */
#include "core/reports.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/aggregate.h"
#include "core/secrets.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

/* Past this many body bytes no more alerts are listed, so the report stays
 * well inside IOT_DOCS_BODY_MAX whatever the alerts carry. */
#define ALERT_BYTES_BUDGET (768 * 1024)
#define DAILY_PAGE 500
#define DAILY_DELAY_MS 120000 /* after midnight: late messages of the day land first */
#define STARTUP_DELAY_MS 60000

/* ---- one report ------------------------------------------------------------ */

struct measurement {
    char name[IOT_TM_NAME_MAX + 1];
    char unit[IOT_TM_NAME_MAX + 1];
};

struct catalog {
    struct measurement *items;
    size_t n;
    bool truncated;
    int64_t start, end;
};

/* Keeps the measurements seen in the period (the catalog knows each one's
 * first and last sample times). */
static int on_catalog(void *ctx, const struct iot_tm_catalog_entry *e)
{
    struct catalog *c = ctx;
    if (e->first_seen >= c->end || e->last_seen < c->start)
        return 0;
    if (c->n == IOT_REPORT_MEASUREMENTS_MAX) {
        c->truncated = true;
        return 1;
    }
    struct measurement *m = &c->items[c->n++];
    snprintf(m->name, sizeof m->name, "%s", e->name);
    snprintf(m->unit, sizeof m->unit, "%s", e->unit ? e->unit : "");
    return 0;
}

static void merge_bucket(struct iot_agg_bucket *into, const struct iot_agg_bucket *b)
{
    if (!b->count)
        return;
    if (!into->count || b->min < into->min)
        into->min = b->min;
    if (!into->count || b->max > into->max)
        into->max = b->max;
    into->count += b->count;
    into->sum += b->sum;
    if (b->ints) {
        if (!into->ints || b->imin < into->imin)
            into->imin = b->imin;
        if (!into->ints || b->imax > into->imax)
            into->imax = b->imax;
        into->ints += b->ints;
        if (b->isum_over || __builtin_add_overflow(into->isum, b->isum, &into->isum))
            into->isum_over = true;
    }
}

/* Count, sums and bounds of one measurement over [start, end): one window
 * as wide as the period (whole hours, so that the rollups serve every
 * whole hour), which the epoch alignment may split in two. */
static int summarise(struct iot_telemetry *tm, int64_t dev, const char *name, int64_t start,
                     int64_t end, struct iot_agg_bucket *out)
{
    memset(out, 0, sizeof *out);
    int64_t window = (end - start + IOT_TM_HOUR - 1) / IOT_TM_HOUR * IOT_TM_HOUR;
    struct iot_agg_result res;
    int rc = iot_aggregate(tm, dev, name, start, end - 1, window, IOT_AGG_COUNT, &res);
    if (rc)
        return rc;
    for (size_t i = 0; i < res.n; i++)
        merge_bucket(out, &res.buckets[i]);
    iot_agg_result_free(&res);
    return IOT_OK;
}

static void put_json(struct iot_buf *b, const char *key, json_t *v)
{
    iot_buf_printf(b, ",\"%s\":", key);
    iot_buf_json(b, v ? v : json_null());
    json_decref(v);
}

static void put_time(struct iot_buf *b, const char *key, int64_t ms, bool known)
{
    char at[IOT_ISO8601_LEN + 1];
    iot_iso8601(ms, at, sizeof at);
    if (known)
        iot_buf_printf(b, ",\"%s\":\"%s\"", key, at);
    else
        iot_buf_printf(b, ",\"%s\":null", key);
}

/* First or last sample of the period into b->edge; false when there is
 * none (raw samples may be gone while rollups remain). */
static int edge(struct iot_telemetry *tm, int64_t dev, const char *name, int64_t start,
                int64_t end, bool last, struct iot_agg_bucket *b, bool *found)
{
    int rc = iot_tm_sample_edge(tm, dev, name, start, end, last, &b->edge);
    *found = rc == IOT_OK;
    return rc == IOT_ENOTFOUND ? IOT_OK : rc;
}

/* One measurement's entry; *had_samples tells whether it had any. */
static int put_measurement(struct iot_buf *b, struct iot_telemetry *tm, int64_t dev,
                           const struct measurement *m, int64_t start, int64_t end, bool comma,
                           bool *had_samples)
{
    struct iot_agg_bucket agg;
    int rc = summarise(tm, dev, m->name, start, end, &agg);
    *had_samples = rc == IOT_OK && agg.count > 0;
    if (!*had_samples)
        return rc;
    struct iot_agg_bucket first = agg, last = agg;
    bool has_first, has_last;
    rc = edge(tm, dev, m->name, start, end, false, &first, &has_first);
    if (rc == IOT_OK)
        rc = edge(tm, dev, m->name, start, end, true, &last, &has_last);
    if (rc)
        return rc;
    iot_buf_puts(b, comma ? ",{\"name\":" : "{\"name\":");
    json_t *name = json_string(m->name);
    iot_buf_json(b, name);
    json_decref(name);
    put_json(b, "unit", m->unit[0] ? json_string(m->unit) : json_null());
    put_json(b, "count", iot_agg_json(&agg, IOT_AGG_COUNT));
    put_json(b, "min", iot_agg_json(&agg, IOT_AGG_MIN));
    put_json(b, "max", iot_agg_json(&agg, IOT_AGG_MAX));
    put_json(b, "mean", iot_agg_json(&agg, IOT_AGG_MEAN));
    put_json(b, "first", has_first ? iot_agg_json(&first, IOT_AGG_FIRST) : json_null());
    put_time(b, "first_at", first.edge.ts, has_first);
    put_json(b, "last", has_last ? iot_agg_json(&last, IOT_AGG_LAST) : json_null());
    put_time(b, "last_at", last.edge.ts, has_last);
    iot_buf_puts(b, "}");
    return IOT_OK;
}

static int put_measurements(struct iot_buf *b, struct iot_telemetry *tm, int64_t dev,
                            int64_t start, int64_t end, bool *empty)
{
    struct catalog c = {.items = calloc(IOT_REPORT_MEASUREMENTS_MAX, sizeof *c.items),
                        .start = start, .end = end};
    if (!c.items)
        return IOT_ENOMEM;
    int rc = iot_tm_catalog(tm, dev, on_catalog, &c);
    size_t listed = 0;
    iot_buf_puts(b, ",\"measurements\":[");
    for (size_t i = 0; rc == IOT_OK && i < c.n; i++) {
        bool had;
        rc = put_measurement(b, tm, dev, &c.items[i], start, end, listed > 0, &had);
        listed += had;
    }
    iot_buf_printf(b, "],\"measurements_truncated\":%s", c.truncated ? "true" : "false");
    free(c.items);
    *empty = listed == 0;
    return rc;
}

struct alert_list {
    struct iot_buf *out;
    size_t n;
    bool truncated;
};

static int on_alert(void *ctx, const struct iot_doc *doc)
{
    struct alert_list *a = ctx;
    if (a->n == IOT_REPORT_ALERTS_MAX || a->out->len + doc->body_len > ALERT_BYTES_BUDGET) {
        a->truncated = true;
        return 1;
    }
    if (a->n++)
        iot_buf_append(a->out, ",", 1);
    iot_buf_append(a->out, doc->body, doc->body_len);
    return 0;
}

static int take_count(void *ctx, const char *k1, const char *k2, int64_t count)
{
    (void)k1;
    (void)k2;
    *(int64_t *)ctx = count;
    return 0;
}

/* The alerts raised in the period, oldest first, and how many there were. */
static int put_alerts(struct iot_buf *b, struct iot_docs *docs, int64_t dev, int64_t start,
                      int64_t end)
{
    struct iot_docs_filter f = {.device_id = dev, .has_ts_min = true, .ts_min = start,
                                .has_ts_max = true, .ts_max = end - 1, .ascending = true,
                                .limit = IOT_REPORT_ALERTS_MAX + 1};
    struct alert_list a = {.out = b};
    iot_buf_puts(b, ",\"alerts\":[");
    int rc = iot_docs_find(docs, IOT_DOCS_ALERTS, &f, on_alert, &a);
    if (rc)
        return rc;
    iot_buf_puts(b, "]");
    int64_t total = (int64_t)a.n;
    if (a.truncated)
        rc = iot_docs_count_by(docs, IOT_DOCS_ALERTS, &f, IOT_DOCS_GROUP_NONE, take_count, &total);
    if (rc)
        return rc;
    iot_buf_printf(b, ",\"alert_count\":%lld,\"alerts_truncated\":%s", (long long)total,
                   a.truncated ? "true" : "false");
    return IOT_OK;
}

int iot_report_make(const struct iot_report_stores *s, const struct iot_report_spec *spec,
                    char **body, size_t *len, bool *empty_out)
{
    *body = NULL;
    *len = 0;
    if (spec->end <= spec->start || spec->end - spec->start > IOT_REPORT_SPAN_MAX)
        return IOT_EINVAL;
    char id[IOT_DOCS_ID_MAX + 1];
    if (spec->id)
        snprintf(id, sizeof id, "%s", spec->id);
    else
        iot_random_hex(id, 32);
    const struct iot_device *d = spec->device;
    int64_t now = iot_now_ms();
    struct iot_buf b = {0};
    iot_buf_printf(&b, "{\"id\":\"%s\",\"kind\":\"%s\",\"device_id\":%lld", id, spec->kind,
                   (long long)d->id);
    put_json(&b, "device_name", json_string(d->name));
    put_json(&b, "user_id", json_string(spec->owner_uid));
    put_time(&b, "start", spec->start, true);
    put_time(&b, "end", spec->end, true);
    put_time(&b, "created_at", now, true);
    bool empty = true;
    int rc = put_measurements(&b, s->tm, d->id, spec->start, spec->end, &empty);
    if (rc == IOT_OK)
        rc = put_alerts(&b, s->docs, d->id, spec->start, spec->end);
    iot_buf_puts(&b, "}");
    if (empty_out)
        *empty_out = empty;
    size_t n = 0;
    char *text = iot_buf_take(&b, &n);
    if (rc == IOT_OK && !text)
        rc = IOT_ENOMEM;
    if (rc == IOT_OK) {
        struct iot_doc doc = {.id = id, .user_id = d->user_id, .device_id = d->id, .ts_ms = now,
                              .k1 = spec->kind, .body = text, .body_len = n};
        rc = iot_docs_put(s->docs, IOT_DOCS_REPORTS, &doc, IOT_DOCS_NEW, NULL);
    }
    if (rc) {
        free(text);
        return rc;
    }
    *body = text;
    *len = n;
    return IOT_OK;
}

/* ---- the daily run ---------------------------------------------------------- */

struct iot_daily_reports {
    struct iot_report_stores stores;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* on CLOCK_MONOTONIC */
    atomic_bool stopping;
    pthread_t thread;
};

struct day_run {
    const struct iot_report_stores *s;
    int64_t day;
    char date[11];
    struct iot_daily_result *out;
    const atomic_bool *stopping; /* NULL: never */
};

static int found_doc(void *ctx, const struct iot_doc *doc)
{
    (void)doc;
    *(bool *)ctx = true;
    return 1;
}

static void daily_one(struct day_run *run, const struct iot_device *d)
{
    char id[IOT_DOCS_ID_MAX + 1];
    snprintf(id, sizeof id, "daily:%lld:%s", (long long)d->id, run->date);
    bool exists = false;
    int rc = iot_docs_get(run->s->docs, IOT_DOCS_REPORTS, id, found_doc, &exists);
    if (rc == IOT_OK && exists) {
        run->out->existing++;
        return;
    }
    struct iot_user owner;
    rc = rc == IOT_ENOTFOUND ? iot_reg_user_get_by_id(run->s->reg, d->user_id, &owner) : rc;
    char *body = NULL;
    size_t len;
    bool empty = false;
    if (rc == IOT_OK) {
        struct iot_report_spec spec = {.id = id, .kind = "daily", .device = d,
                                       .owner_uid = owner.user_id, .start = run->day,
                                       .end = run->day + IOT_TM_DAY};
        rc = iot_report_make(run->s, &spec, &body, &len, &empty);
    }
    free(body);
    if (rc == IOT_ECONFLICT)
        run->out->existing++;
    else if (rc)
        run->out->failed++;
    else
        run->out->made++;
    if (rc && rc != IOT_ECONFLICT)
        IOT_WARN("reports: the daily report of device %lld for %s failed: %s", (long long)d->id,
                 run->date, iot_strerror(rc));
}

struct day_check {
    int64_t day;
    bool active;
};

/* Whether the catalog knows a sample of the device within the day. */
static int on_day_catalog(void *ctx, const struct iot_tm_catalog_entry *e)
{
    struct day_check *c = ctx;
    c->active = e->first_seen < c->day + IOT_TM_DAY && e->last_seen >= c->day;
    return c->active;
}

static int daily_device(void *ctx, const struct iot_device *d)
{
    struct day_run *run = ctx;
    if (run->stopping && atomic_load(run->stopping))
        return 1;
    run->out->devices++;
    struct day_check check = {.day = run->day};
    int rc = iot_tm_catalog(run->s->tm, d->id, on_day_catalog, &check);
    if (rc) {
        run->out->failed++;
        return 0;
    }
    if (!check.active) {
        run->out->quiet++;
        return 0;
    }
    daily_one(run, d);
    return 0;
}

static int daily_run(const struct iot_report_stores *s, int64_t day_ms,
                     struct iot_daily_result *out, const atomic_bool *stopping)
{
    *out = (struct iot_daily_result){0};
    if (day_ms % IOT_TM_DAY != 0)
        return IOT_EINVAL;
    struct day_run run = {.s = s, .day = day_ms, .out = out, .stopping = stopping};
    char iso[IOT_ISO8601_LEN + 1];
    iot_iso8601(day_ms, iso, sizeof iso);
    memcpy(run.date, iso, 10);
    run.date[10] = '\0';
    struct iot_device_filter all = {0};
    /* Pages by offset: a device registered during the run may shift one
     * into the next page twice (its report then exists) — never skipped. */
    for (int64_t offset = 0;; offset += DAILY_PAGE) {
        size_t before = out->devices;
        int rc = iot_reg_device_list(s->reg, &all, (struct iot_page){DAILY_PAGE, offset},
                                     daily_device, &run, NULL);
        if (rc)
            return rc;
        if (out->devices - before < DAILY_PAGE || (stopping && atomic_load(stopping)))
            return IOT_OK;
    }
}

int iot_reports_daily(const struct iot_report_stores *s, int64_t day_ms,
                      struct iot_daily_result *out)
{
    return daily_run(s, day_ms, out, NULL);
}

/* Waits ms, or less when stopping; true when stopping. */
static bool daily_wait(struct iot_daily_reports *d, int64_t ms)
{
    struct timespec until = iot_deadline_ms(CLOCK_MONOTONIC, ms);
    pthread_mutex_lock(&d->lock);
    while (!atomic_load(&d->stopping) &&
           pthread_cond_timedwait(&d->wake, &d->lock, &until) == 0)
        ;
    pthread_mutex_unlock(&d->lock);
    return atomic_load(&d->stopping);
}

static void daily_for(struct iot_daily_reports *d, int64_t day)
{
    struct iot_daily_result res;
    int rc = daily_run(&d->stores, day, &res, &d->stopping);
    char iso[IOT_ISO8601_LEN + 1];
    iot_iso8601(day, iso, sizeof iso);
    if (rc)
        IOT_WARN("reports: the daily run for %.10s failed: %s", iso, iot_strerror(rc));
    else if (res.made || res.failed)
        IOT_INFO("reports: daily reports for %.10s: %zu made, %zu already made, %zu failed", iso,
                 res.made, res.existing, res.failed);
}

static void *daily_main(void *arg)
{
    struct iot_daily_reports *d = arg;
    pthread_setname_np(pthread_self(), "daily-reports");
    /* Instances started together spread their runs a little. */
    int64_t jitter = (int64_t)randombytes_uniform(30000);
    if (daily_wait(d, STARTUP_DELAY_MS + jitter))
        return NULL;
    int64_t today = iot_now_ms() / IOT_TM_DAY * IOT_TM_DAY;
    daily_for(d, today - IOT_TM_DAY);
    for (;;) {
        int64_t now = iot_now_ms();
        int64_t next = (now / IOT_TM_DAY + 1) * IOT_TM_DAY + DAILY_DELAY_MS + jitter;
        if (daily_wait(d, next - now))
            return NULL;
        daily_for(d, iot_now_ms() / IOT_TM_DAY * IOT_TM_DAY - IOT_TM_DAY);
    }
}

struct iot_daily_reports *iot_daily_reports_start(const struct iot_report_stores *s)
{
    struct iot_daily_reports *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->stores = *s;
    atomic_init(&d->stopping, false);
    pthread_mutex_init(&d->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&d->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&d->thread, NULL, daily_main, d) != 0) {
        pthread_cond_destroy(&d->wake);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return NULL;
    }
    return d;
}

void iot_daily_reports_free(struct iot_daily_reports *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    atomic_store(&d->stopping, true);
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
