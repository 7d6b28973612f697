/* metrics.c — histogram updates and the Prometheus text writer (see
 * metrics.h). */
#include "util/metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void iot_histogram_observe(struct iot_histogram *h, const struct iot_hist_bounds *b, int64_t us)
{
    if (us < 0)
        us = 0;
    size_t i = 0;
    while (i < b->n && us > b->le_us[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)us, memory_order_relaxed);
}

uint64_t iot_histogram_count(const struct iot_histogram *h, const struct iot_hist_bounds *b)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= b->n; i++)
        n += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
    return n;
}

/* HELP text escapes backslash and newline; label values also the quote. */
static void escape(struct iot_buf *b, const char *s, bool quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n"
                        : (quote && *s == '"') ? "\\\"" : NULL;
        if (!rep)
            continue;
        iot_buf_append(b, run, (size_t)(s - run));
        iot_buf_puts(b, rep);
        run = s + 1;
    }
    iot_buf_append(b, run, (size_t)(s - run));
}

void iot_metrics_escape_label(struct iot_buf *b, const char *value) { escape(b, value, true); }

void iot_metrics_family(struct iot_buf *b, const char *name, const char *type, const char *help)
{
    iot_buf_printf(b, "# HELP %s ", name);
    escape(b, help, false);
    iot_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* name{a="x",b="y"[,extra="z"]} — braces only when there is a label. */
static void series(struct iot_buf *b, const char *name, const char *suffix,
                   const struct iot_label *labels, size_t n, const struct iot_label *extra)
{
    iot_buf_puts(b, name);
    iot_buf_puts(b, suffix);
    if (n == 0 && !extra)
        return;
    iot_buf_append(b, "{", 1);
    for (size_t i = 0; i < n + (extra != NULL); i++) {
        const struct iot_label *l = i < n ? &labels[i] : extra;
        iot_buf_printf(b, "%s%s=\"", i ? "," : "", l->name);
        escape(b, l->value, true);
        iot_buf_append(b, "\"", 1);
    }
    iot_buf_append(b, "}", 1);
}

static void value(struct iot_buf *b, double v)
{
    if (isnan(v))
        iot_buf_puts(b, " NaN\n");
    else if (isinf(v))
        iot_buf_puts(b, v > 0 ? " +Inf\n" : " -Inf\n");
    else {
        /* The shortest of two precisions that reads back as the same double. */
        char text[32];
        snprintf(text, sizeof text, "%.15g", v);
        if (strtod(text, NULL) != v)
            snprintf(text, sizeof text, "%.17g", v);
        iot_buf_printf(b, " %s\n", text);
    }
}

void iot_metrics_sample(struct iot_buf *b, const char *name, const struct iot_label *labels,
                        size_t n_labels, double v)
{
    series(b, name, "", labels, n_labels, NULL);
    value(b, v);
}

void iot_metrics_sample_u64(struct iot_buf *b, const char *name, const struct iot_label *labels,
                            size_t n_labels, uint64_t v)
{
    series(b, name, "", labels, n_labels, NULL);
    iot_buf_printf(b, " %llu\n", (unsigned long long)v);
}

/* A bound in seconds, shortest exact form: 0.0005, 0.25, 1, 10. */
static void seconds_text(int64_t us, char *buf, size_t size)
{
    snprintf(buf, size, "%lld.%06lld", (long long)(us / 1000000), (long long)(us % 1000000));
    char *end = buf + strlen(buf) - 1;
    while (*end == '0')
        *end-- = '\0';
    if (*end == '.')
        *end = '\0';
}

void iot_metrics_histogram(struct iot_buf *b, const char *name, const struct iot_label *labels,
                           size_t n_labels, const struct iot_histogram *h,
                           const struct iot_hist_bounds *bounds)
{
    uint64_t cumulative = 0;
    char le[32];
    for (size_t i = 0; i <= bounds->n; i++) {
        cumulative += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        if (i < bounds->n)
            seconds_text(bounds->le_us[i], le, sizeof le);
        else
            snprintf(le, sizeof le, "+Inf");
        series(b, name, "_bucket", labels, n_labels, &(struct iot_label){"le", le});
        iot_buf_printf(b, " %llu\n", (unsigned long long)cumulative);
    }
    uint64_t sum_us = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
    series(b, name, "_sum", labels, n_labels, NULL);
    iot_buf_printf(b, " %llu.%06llu\n", (unsigned long long)(sum_us / 1000000),
                   (unsigned long long)(sum_us % 1000000));
    series(b, name, "_count", labels, n_labels, NULL);
    iot_buf_printf(b, " %llu\n", (unsigned long long)cumulative);
}
