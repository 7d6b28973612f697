/* telemetry.c — the table of compiled-in telemetry backends and the
 * open/close entry points that pick one by URL scheme; the measurement-name
 * rule; the fallbacks of the optional slots. */
#include "store/telemetry.h"

#include <math.h>
#include <string.h>

#include "store/backend.h"
#include "store/cassandra/telemetry_cassandra.h"
#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/telemetry_sqlite.h"
#include "util/err.h"

/* A URL with no known scheme is a path for the embedded default. */
static const struct iot_backend_scheme backends[] = {
    {.scheme = "sqlite", .ops = &iot_telemetry_sqlite},
    {.scheme = "cassandra", .ops = &iot_telemetry_cassandra},
};

const struct iot_telemetry_ops *iot_telemetry_backend(const char *url)
{
    return iot_backend_pick(url, backends, sizeof backends / sizeof backends[0],
                            &iot_telemetry_sqlite, true);
}

const char *iot_telemetry_backend_names(void)
{
    return "sqlite, cassandra";
}

int iot_telemetry_open(const char *url, bool durable, struct iot_telemetry *out)
{
    if (!out)
        return IOT_EINVAL;
    out->ops = NULL;
    out->self = NULL;
    const struct iot_telemetry_ops *ops = iot_telemetry_backend(url);
    if (!ops)
        return IOT_EINVAL;
    void *self = NULL;
    int rc = ops->open(url ? url : "", durable, &self);
    if (rc)
        return rc;
    out->ops = ops;
    out->self = self;
    return IOT_OK;
}

int iot_telemetry_file(const char *url, char *path, size_t size)
{
    const struct iot_telemetry_ops *ops = iot_telemetry_backend(url);
    if (!ops)
        return IOT_EINVAL;
    if (ops != &iot_telemetry_sqlite)
        return IOT_ENOTFOUND;
    return iot_sqldb_url_file(url, path, size);
}

void iot_telemetry_close(struct iot_telemetry *t)
{
    if (!t)
        return;
    if (t->ops && t->self)
        t->ops->close(t->self);
    t->ops = NULL;
    t->self = NULL;
}

int iot_tm_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > IOT_TM_NAME_MAX)
        return 0;
    return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == len;
}

/* ---- version 2 slots with fallbacks ------------------------------------------ */

struct untyped {
    iot_tm_typed_sample_fn fn;
    void *ctx;
};

/* A version 1 sample is a double: exact only as a real. */
static int untyped_sample(void *ctx, int64_t ts, double value)
{
    struct untyped *u = ctx;
    struct iot_tm_sample s = {.ts = ts, .num = value};
    return u->fn(u->ctx, &s);
}

int iot_tm_samples_typed(struct iot_telemetry *t, int64_t dev, const char *name, int64_t from,
                         int64_t to, iot_tm_typed_sample_fn fn, void *ctx)
{
    if (t->ops->version >= 2 && t->ops->samples_typed)
        IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops,
                        t->ops->samples_typed(t->self, dev, name, from, to, fn, ctx));
    struct untyped u = {fn, ctx};
    IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops,
                    t->ops->samples(t->self, dev, name, from, to, untyped_sample, &u));
}

struct edge {
    bool last, found;
    struct iot_tm_sample *out;
};

static int keep_edge(void *ctx, const struct iot_tm_sample *s)
{
    struct edge *e = ctx;
    if (e->last || !e->found)
        *e->out = *s;
    e->found = true;
    return !e->last; /* the first one is the oldest: stop */
}

int iot_tm_sample_edge(struct iot_telemetry *t, int64_t dev, const char *name, int64_t from,
                       int64_t to, bool last, struct iot_tm_sample *out)
{
    if (!out)
        return IOT_EINVAL;
    if (t->ops->version >= 2 && t->ops->sample_edge)
        IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops,
                        t->ops->sample_edge(t->self, dev, name, from, to, last, out));
    /* The fallback's op is timed in iot_tm_samples_typed. */
    struct edge e = {.last = last, .out = out};
    int rc = iot_tm_samples_typed(t, dev, name, from, to, keep_edge, &e);
    return rc ? rc : e.found ? IOT_OK : IOT_ENOTFOUND;
}

/* ---- version 3 slots ----------------------------------------------------------- */

int iot_tm_set_retention(struct iot_telemetry *t, int64_t raw_ms, int64_t rollup_ms)
{
    if (raw_ms < 0 || rollup_ms < 0)
        return IOT_EINVAL;
    if (t->ops->version >= 3 && t->ops->set_retention)
        IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops,
                        t->ops->set_retention(t->self, raw_ms, rollup_ms));
    return IOT_OK;
}

int iot_tm_export_scan(struct iot_telemetry *t, int64_t after_device, int64_t after_ts,
                       int64_t after_seq, int64_t limit, iot_tm_export_fn fn, void *ctx)
{
    if (!fn || limit < 0 || t->ops->version < 3 || !t->ops->export_scan)
        return IOT_EINVAL;
    IOT_STORE_TIMED(IOT_STORE_TELEMETRY, t->ops,
                    t->ops->export_scan(t->self, after_device, after_ts, after_seq, limit, fn, ctx));
}

/* ---- what every backend accepts -------------------------------------------------- */

static int check_value(const struct iot_tm_value *v)
{
    switch (v->type) {
    case IOT_TM_NUMBER: return isfinite(v->num) ? IOT_OK : IOT_EINVAL;
    case IOT_TM_BOOL: return IOT_OK;
    case IOT_TM_STRING:
        return v->str_len <= IOT_TM_STRING_MAX && (v->str || v->str_len == 0) ? IOT_OK
                                                                              : IOT_EINVAL;
    default: return IOT_EINVAL;
    }
}

int iot_tm_check_message(const struct iot_tm_message *m)
{
    if (m->ts < -IOT_TM_TS_LIMIT || m->ts > IOT_TM_TS_LIMIT)
        return IOT_EINVAL;
    if (!m->data_json || m->data_len == 0 || m->data_len > IOT_TM_DATA_JSON_MAX)
        return IOT_EINVAL;
    if (m->meta_json && m->meta_len > IOT_TM_DATA_JSON_MAX)
        return IOT_EINVAL;
    if (m->n_points > IOT_TM_POINTS_MAX || (m->n_points && !m->points))
        return IOT_EINVAL;
    for (size_t i = 0; i < m->n_points; i++) {
        if (!m->points[i].name || !iot_tm_name_valid(m->points[i].name))
            return IOT_EINVAL;
        int rc = check_value(&m->points[i].value);
        if (rc)
            return rc;
    }
    return IOT_OK;
}

int iot_tm_check_batch(const struct iot_tm_message *msgs, size_t n)
{
    if (!msgs)
        return IOT_EINVAL;
    if (n > IOT_TM_STORE_BATCH_MAX)
        return IOT_ELIMIT;
    for (size_t i = 0; i < n; i++) {
        int rc = iot_tm_check_message(&msgs[i]);
        if (rc)
            return rc;
    }
    return IOT_OK;
}
