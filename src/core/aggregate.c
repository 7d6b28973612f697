/* aggregate.c — windowed aggregation; see aggregate.h. */
#include "core/aggregate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

static const char *const fn_names[] = {"mean", "sum", "min", "max", "count", "first", "last"};
#define N_FNS ((int)(sizeof fn_names / sizeof fn_names[0]))

int iot_agg_parse(const char *s, enum iot_agg_fn *out)
{
    if (!s)
        return IOT_EINVAL;
    for (int i = 0; i < N_FNS; i++)
        if (strcmp(s, fn_names[i]) == 0)
            return *out = (enum iot_agg_fn)i, IOT_OK;
    if (strcmp(s, "avg") == 0 || strcmp(s, "average") == 0)
        return *out = IOT_AGG_MEAN, IOT_OK;
    return IOT_EINVAL;
}

const char *iot_agg_name(enum iot_agg_fn fn) { return fn_names[fn]; }

double iot_agg_value(const struct iot_agg_bucket *b, enum iot_agg_fn fn)
{
    switch (fn) {
    case IOT_AGG_MEAN: return b->count ? b->sum / (double)b->count : 0;
    case IOT_AGG_SUM: return b->sum;
    case IOT_AGG_MIN: return b->min;
    case IOT_AGG_MAX: return b->max;
    case IOT_AGG_COUNT: return (double)b->count;
    case IOT_AGG_FIRST:
    case IOT_AGG_LAST: return b->edge.num;
    }
    return 0;
}

json_t *iot_agg_json(const struct iot_agg_bucket *b, enum iot_agg_fn fn)
{
    bool all_ints = b->count > 0 && b->ints == b->count;
    switch (fn) {
    case IOT_AGG_COUNT: return json_integer(b->count);
    case IOT_AGG_SUM:
        if (all_ints && !b->isum_over)
            return json_integer(b->isum);
        break;
    case IOT_AGG_MIN:
        if (all_ints)
            return json_integer(b->imin);
        break;
    case IOT_AGG_MAX:
        if (all_ints)
            return json_integer(b->imax);
        break;
    case IOT_AGG_FIRST:
    case IOT_AGG_LAST:
        if (b->edge.is_int)
            return json_integer(b->edge.i);
        break;
    case IOT_AGG_MEAN: break;
    }
    /* JSON has no infinity (json_real refuses it): a sum or mean that
     * overflowed the doubles is reported as null, not dropped. */
    double v = iot_agg_value(b, fn);
    return isfinite(v) ? json_real(v) : json_null();
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

struct acc {
    struct iot_agg_result *res;
    int64_t first, window;
};

static struct iot_agg_bucket *bucket_of(struct acc *a, int64_t ts)
{
    int64_t i = floor_div(ts, a->window) - a->first;
    return i < 0 || (size_t)i >= a->res->n ? NULL : &a->res->buckets[i];
}

static void add(struct iot_agg_bucket *b, int64_t count, double sum, double min, double max)
{
    if (b->count == 0 || min < b->min)
        b->min = min;
    if (b->count == 0 || max > b->max)
        b->max = max;
    b->count += count;
    b->sum += sum;
}

static void add_ints(struct iot_agg_bucket *b, int64_t ints, int64_t isum, bool isum_exact,
                     int64_t imin, int64_t imax)
{
    if (ints == 0)
        return;
    if (b->ints == 0 || imin < b->imin)
        b->imin = imin;
    if (b->ints == 0 || imax > b->imax)
        b->imax = imax;
    b->ints += ints;
    if (!isum_exact || __builtin_add_overflow(b->isum, isum, &b->isum))
        b->isum_over = true;
}

static int on_sample(void *ctx, const struct iot_tm_sample *s)
{
    struct acc *a = ctx;
    a->res->raw_rows++;
    struct iot_agg_bucket *b = bucket_of(a, s->ts);
    if (!b)
        return 0;
    add(b, 1, s->num, s->num, s->num);
    if (s->is_int)
        add_ints(b, 1, s->i, true, s->i, s->i);
    return 0;
}

static int on_rollup(void *ctx, const struct iot_tm_rollup *r)
{
    struct acc *a = ctx;
    a->res->rollup_rows++;
    struct iot_agg_bucket *b = bucket_of(a, r->start);
    if (!b || r->count == 0)
        return 0;
    add(b, r->count, r->sum, r->min, r->max);
    add_ints(b, r->ints, r->isum, r->isum_exact, r->imin, r->imax);
    return 0;
}

static int read_range(struct iot_telemetry *tm, int64_t dev, const char *name, int64_t from,
                      int64_t end, struct acc *a)
{
    /* Hourly rollups serve whole hours only when a window never splits an
     * hour, i.e. the window is a whole number of hours. */
    int64_t h0 = end, h1 = end;
    if (a->window % IOT_TM_HOUR == 0) {
        h0 = floor_div(from + IOT_TM_HOUR - 1, IOT_TM_HOUR) * IOT_TM_HOUR;
        h1 = floor_div(end, IOT_TM_HOUR) * IOT_TM_HOUR;
        if (h0 >= h1)
            h0 = h1 = end;
    }
    int rc = iot_tm_samples_typed(tm, dev, name, from, h0, on_sample, a);
    if (rc == IOT_OK && h0 < h1)
        rc = iot_tm_rollups(tm, dev, name, IOT_TM_HOUR, h0, h1, on_rollup, a);
    if (rc == IOT_OK && h1 < end)
        rc = iot_tm_samples_typed(tm, dev, name, h1, end, on_sample, a);
    return rc;
}

/* first / last: one sample per non-empty window, within [from, end). */
static int read_edges(struct iot_telemetry *tm, int64_t dev, const char *name, int64_t from,
                      int64_t end, bool last, struct iot_agg_result *res)
{
    for (size_t i = 0; i < res->n; i++) {
        struct iot_agg_bucket *b = &res->buckets[i];
        if (b->count == 0)
            continue;
        int64_t lo = b->start > from ? b->start : from;
        int64_t hi = i + 1 < res->n ? res->buckets[i + 1].start : end;
        int rc = iot_tm_sample_edge(tm, dev, name, lo, hi < end ? hi : end, last, &b->edge);
        if (rc == IOT_ENOTFOUND) /* deleted since, or only rollups are left (raw */
            b->count = 0;        /* retention is shorter): no first or last to give */
        else if (rc)
            return rc;
        res->raw_rows++;
    }
    return IOT_OK;
}

int iot_aggregate(struct iot_telemetry *tm, int64_t device_id, const char *name, int64_t from,
                  int64_t to, int64_t window, enum iot_agg_fn fn, struct iot_agg_result *out)
{
    memset(out, 0, sizeof *out);
    if (window <= 0 || to < from || to == INT64_MAX)
        return IOT_EINVAL;
    int64_t first = floor_div(from, window), last = floor_div(to, window);
    if (last - first + 1 > IOT_AGG_MAX_WINDOWS)
        return IOT_ELIMIT;
    out->n = (size_t)(last - first + 1);
    out->buckets = calloc(out->n, sizeof *out->buckets);
    if (!out->buckets)
        return IOT_ENOMEM;
    for (size_t i = 0; i < out->n; i++)
        out->buckets[i].start = (first + (int64_t)i) * window;
    struct acc a = {out, first, window};
    int rc = read_range(tm, device_id, name, from, to + 1, &a);
    if (rc == IOT_OK && (fn == IOT_AGG_FIRST || fn == IOT_AGG_LAST))
        rc = read_edges(tm, device_id, name, from, to + 1, fn == IOT_AGG_LAST, out);
    if (rc)
        iot_agg_result_free(out);
    return rc;
}

void iot_agg_result_free(struct iot_agg_result *r)
{
    if (!r)
        return;
    free(r->buckets);
    memset(r, 0, sizeof *r);
}
