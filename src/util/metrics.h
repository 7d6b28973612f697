/* metrics.h — counters, gauges and fixed-bucket histograms, and a writer
 * of the Prometheus text exposition format (version 0.0.4).
 *
 * The instruments are plain structs of C11 atomics updated with relaxed
 * ordering: one or two atomic adds per update, no lock, any thread; a
 * zeroed struct is ready to use. They know no names: whoever owns them
 * (core/metrics.c) names and labels them when rendering. A scrape reads
 * each atomic once, so a histogram's buckets, sum and count may disagree
 * by the observations made while it is read — as in every Prometheus
 * client. The writer appends to an iot_buf and is not thread-safe. */
#ifndef IOT_UTIL_METRICS_H
#define IOT_UTIL_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct iot_counter {
    _Atomic uint64_t n;
};

struct iot_gauge {
    _Atomic int64_t v;
};

/* Upper bounds of a histogram's buckets in microseconds, ascending; the
 * +Inf bucket is implicit. Shared by every histogram of a family. */
#define IOT_HIST_BUCKETS_MAX 16
struct iot_hist_bounds {
    size_t n;
    int64_t le_us[IOT_HIST_BUCKETS_MAX];
};

/* Durations: per bucket the observations that fell in it (not cumulative:
 * one add per observation; the writer sums them), [n] being +Inf. */
struct iot_histogram {
    _Atomic uint64_t bucket[IOT_HIST_BUCKETS_MAX + 1];
    _Atomic uint64_t sum_us;
};

static inline void iot_counter_add(struct iot_counter *c, uint64_t d)
{
    atomic_fetch_add_explicit(&c->n, d, memory_order_relaxed);
}
static inline void iot_counter_inc(struct iot_counter *c) { iot_counter_add(c, 1); }
static inline uint64_t iot_counter_get(const struct iot_counter *c)
{
    return atomic_load_explicit(&c->n, memory_order_relaxed);
}

static inline void iot_gauge_add(struct iot_gauge *g, int64_t d)
{
    atomic_fetch_add_explicit(&g->v, d, memory_order_relaxed);
}
static inline void iot_gauge_set(struct iot_gauge *g, int64_t v)
{
    atomic_store_explicit(&g->v, v, memory_order_relaxed);
}
static inline int64_t iot_gauge_get(const struct iot_gauge *g)
{
    return atomic_load_explicit(&g->v, memory_order_relaxed);
}

/* Records one duration (negative counts as 0). */
void iot_histogram_observe(struct iot_histogram *h, const struct iot_hist_bounds *b, int64_t us);
/* Observations so far (the sum of the buckets). */
uint64_t iot_histogram_count(const struct iot_histogram *h, const struct iot_hist_bounds *b);

/* ---- the text exposition format ---------------------------------------- */

struct iot_label {
    const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not checked */
    const char *value; /* any UTF-8; escaped by the writer */
};

/* The "# HELP" and "# TYPE" lines opening a family; type is "counter",
 * "gauge" or "histogram". The help text is escaped. */
void iot_metrics_family(struct iot_buf *b, const char *name, const char *type, const char *help);
/* One sample line: name{labels} value. */
void iot_metrics_sample(struct iot_buf *b, const char *name, const struct iot_label *labels,
                        size_t n_labels, double value);
/* The same with an exact integer value (counters past 2^53 stay exact). */
void iot_metrics_sample_u64(struct iot_buf *b, const char *name, const struct iot_label *labels,
                            size_t n_labels, uint64_t value);
/* A histogram's samples, values in seconds: name_bucket{labels,le="…"}
 * (cumulative, ending with le="+Inf"), name_sum and name_count. */
void iot_metrics_histogram(struct iot_buf *b, const char *name, const struct iot_label *labels,
                           size_t n_labels, const struct iot_histogram *h,
                           const struct iot_hist_bounds *bounds);
/* Appends a label value escaped as the format wants: \\, \" and \n. */
void iot_metrics_escape_label(struct iot_buf *b, const char *value);

#endif
