/* aggregate.h — windowed aggregation of one measurement (mean, sum, min,
 * max, count) over a time range. Windows are aligned to multiples of their
 * width since the epoch. Whole hours inside the range are read from the
 * store's hourly rollups when the window is a whole number of hours; the
 * edges, and any smaller window, from raw samples — so the answer is exact
 * either way and the common case reads ~60x fewer rows. */
#ifndef IOT_CORE_AGGREGATE_H
#define IOT_CORE_AGGREGATE_H

#include <stddef.h>
#include <stdint.h>

#include "store/telemetry.h"

#define IOT_AGG_MAX_WINDOWS 10000

enum iot_agg_fn { IOT_AGG_MEAN, IOT_AGG_SUM, IOT_AGG_MIN, IOT_AGG_MAX, IOT_AGG_COUNT };

struct iot_agg_bucket {
    int64_t start;
    int64_t count;
    double sum, min, max;
};

struct iot_agg_result {
    struct iot_agg_bucket *buckets; /* one per window, empty ones included */
    size_t n;
    int64_t rollup_rows, raw_rows; /* what was read, for the response */
};

/* "mean" (also "avg"), "sum", "min", "max", "count". */
int iot_agg_parse(const char *s, enum iot_agg_fn *out);
const char *iot_agg_name(enum iot_agg_fn fn);
double iot_agg_value(const struct iot_agg_bucket *b, enum iot_agg_fn fn);

/* Aggregates `name` of a device over [from, to] (inclusive, ms) in windows
 * of `window` ms. IOT_ELIMIT when that makes more than IOT_AGG_MAX_WINDOWS
 * windows. Free the result with iot_agg_result_free. */
int iot_aggregate(struct iot_telemetry *tm, int64_t device_id, const char *name, int64_t from,
                  int64_t to, int64_t window, struct iot_agg_result *out);
void iot_agg_result_free(struct iot_agg_result *r);

#endif
