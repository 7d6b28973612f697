/* aggregate.h — windowed aggregation of one measurement (mean, sum, min,
 * max, count, first, last) over a time range. Windows are aligned to
 * multiples of their width since the epoch. Whole hours inside the range are
 * read from the store's hourly rollups when the window is a whole number of
 * hours; the edges, and any smaller window, from raw samples — so the answer
 * is exact either way and the common case reads ~60x fewer rows. first and
 * last are one seek per non-empty window (iot_tm_sample_edge).
 *
 * Integers stay exact: a window whose samples are all integers (booleans
 * count as 0/1) has an integer sum (unless it overflows int64), min, max,
 * first and last; iot_agg_json gives them as JSON integers. */
#ifndef IOT_CORE_AGGREGATE_H
#define IOT_CORE_AGGREGATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/telemetry.h"

#define IOT_AGG_MAX_WINDOWS 10000

enum iot_agg_fn {
    IOT_AGG_MEAN,
    IOT_AGG_SUM,
    IOT_AGG_MIN,
    IOT_AGG_MAX,
    IOT_AGG_COUNT,
    IOT_AGG_FIRST,
    IOT_AGG_LAST,
};

struct iot_agg_bucket {
    int64_t start;
    int64_t count;
    double sum, min, max;
    /* The integer samples exactly: ints of the count, summing to isum
     * (unless isum_over), bounded by imin and imax. */
    int64_t ints, isum, imin, imax;
    bool isum_over;
    /* IOT_AGG_FIRST / IOT_AGG_LAST: the window's oldest / newest sample
     * (when count > 0). */
    struct iot_tm_sample edge;
};

struct iot_agg_result {
    struct iot_agg_bucket *buckets; /* one per window, empty ones included */
    size_t n;
    int64_t rollup_rows, raw_rows; /* what was read, for the response */
};

/* "mean" (also "avg"), "sum", "min", "max", "count", "first", "last". */
int iot_agg_parse(const char *s, enum iot_agg_fn *out);
const char *iot_agg_name(enum iot_agg_fn fn);
/* The value as a double (mean of no samples: 0). */
double iot_agg_value(const struct iot_agg_bucket *b, enum iot_agg_fn fn);
/* The value as JSON: an integer when exact (see above), else a real; the
 * mean is always a real, count always an integer; null when the result is
 * not a finite number (a sum or mean overflowing). New reference, NULL
 * only when out of memory. */
json_t *iot_agg_json(const struct iot_agg_bucket *b, enum iot_agg_fn fn);

/* Aggregates `name` of a device over [from, to] (inclusive, ms) in windows
 * of `window` ms, for `fn` (first and last read one more sample per
 * window; every other fn fills count, sums and bounds alike). IOT_ELIMIT
 * when that makes more than IOT_AGG_MAX_WINDOWS windows. Free the result
 * with iot_agg_result_free. */
int iot_aggregate(struct iot_telemetry *tm, int64_t device_id, const char *name, int64_t from,
                  int64_t to, int64_t window, enum iot_agg_fn fn, struct iot_agg_result *out);
void iot_agg_result_free(struct iot_agg_result *r);

#endif
