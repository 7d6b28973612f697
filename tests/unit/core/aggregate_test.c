/* Unit tests of core/aggregate against the real embedded telemetry store:
 * every window size must give exactly what a brute-force pass over the raw
 * values gives, whether rollups or raw samples served it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/aggregate.h"
#include "util/err.h"

#define T0 INT64_C(1795737600000) /* 2026-11-27T00:00:00Z */
#define N_MSGS 600
#define STEP INT64_C(37000) /* 37 s apart: crosses minute and hour edges unevenly */

static struct iot_telemetry tm;
static double values[N_MSGS];
static int64_t stamps[N_MSGS];

static int setup(void **state)
{
    const char *base = getenv("IOT_TEST_TMPDIR") ? getenv("IOT_TEST_TMPDIR") : "/tmp";
    mkdir(base, 0700);
    char url[512];
    snprintf(url, sizeof url, "sqlite://%s/aggregate-test-%d.db", base, (int)getpid());
    unlink(url + 9);
    if (iot_telemetry_open(url, false, &tm))
        return -1;
    struct iot_tm_message msgs[N_MSGS];
    struct iot_tm_point points[N_MSGS];
    char json[N_MSGS][64];
    for (int i = 0; i < N_MSGS; i++) {
        values[i] = (double)((i * 7919) % 101) - 50.5;
        stamps[i] = T0 + 1234 + i * STEP;
        points[i] = (struct iot_tm_point){"temp", {.type = IOT_TM_NUMBER, .num = values[i]}};
        snprintf(json[i], sizeof json[i], "{\"temp\":%.1f}", values[i]);
        msgs[i] = (struct iot_tm_message){.device_id = 1, .user_id = 1, .ts = stamps[i], .seq = i,
                                          .points = &points[i], .n_points = 1,
                                          .data_json = json[i], .data_len = strlen(json[i])};
    }
    /* Two batches, so rollups must merge across commits. */
    if (iot_tm_write_batch(&tm, msgs, N_MSGS / 2) ||
        iot_tm_write_batch(&tm, msgs + N_MSGS / 2, N_MSGS - N_MSGS / 2))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    iot_telemetry_close(&tm);
    return 0;
}

/* The expected bucket for [start, start + window) ∩ [from, to]. */
static struct iot_agg_bucket brute(int64_t start, int64_t window, int64_t from, int64_t to)
{
    struct iot_agg_bucket b = {.start = start};
    for (int i = 0; i < N_MSGS; i++) {
        int64_t ts = stamps[i];
        if (ts < start || ts >= start + window || ts < from || ts > to)
            continue;
        if (b.count == 0 || values[i] < b.min)
            b.min = values[i];
        if (b.count == 0 || values[i] > b.max)
            b.max = values[i];
        b.count++;
        b.sum += values[i];
    }
    return b;
}

static void check(int64_t from, int64_t to, int64_t window, bool expect_rollups)
{
    struct iot_agg_result res;
    assert_int_equal(iot_aggregate(&tm, 1, "temp", from, to, window, IOT_AGG_MEAN, &res), IOT_OK);
    int64_t total = 0;
    for (size_t i = 0; i < res.n; i++) {
        struct iot_agg_bucket want = brute(res.buckets[i].start, window, from, to);
        assert_int_equal(res.buckets[i].count, want.count);
        assert_true(fabs(res.buckets[i].sum - want.sum) < 1e-6);
        if (want.count) {
            assert_true(res.buckets[i].min == want.min);
            assert_true(res.buckets[i].max == want.max);
        }
        total += want.count;
    }
    assert_true(total > 0);
    if (expect_rollups)
        assert_true(res.rollup_rows > 0);
    else
        assert_int_equal(res.rollup_rows, 0);
    iot_agg_result_free(&res);
}

static void minute_windows_from_raw(void **state)
{
    check(T0 + 500000, T0 + 4000000, 60000, false);
    check(T0 + 500000, T0 + 4000000, 5 * 60000, false);
    check(T0, T0 + 6 * 3600000, 15 * 60000, false);
}

static void hour_and_day_windows_use_rollups_and_raw_edges(void **state)
{
    check(T0 + 1800000, T0 + 5 * 3600000 + 123456, 3600000, true); /* ragged ends */
    check(T0, T0 + N_MSGS * STEP, 3600000, true);
    check(T0 - 86400000, T0 + 86400000, 86400000, true);
    check(T0 + 2 * 3600000 + 1, T0 + 3 * 3600000 - 1, 2 * 3600000, false); /* no whole hour */
}

static void functions_and_limits(void **state)
{
    struct iot_agg_bucket b = {.count = 4, .sum = 10, .min = -1, .max = 7};
    assert_true(iot_agg_value(&b, IOT_AGG_MEAN) == 2.5);
    assert_true(iot_agg_value(&b, IOT_AGG_COUNT) == 4);
    enum iot_agg_fn fn;
    assert_int_equal(iot_agg_parse("avg", &fn), IOT_OK);
    assert_int_equal(fn, IOT_AGG_MEAN);
    assert_int_equal(iot_agg_parse("median", &fn), IOT_EINVAL);
    struct iot_agg_result res;
    assert_int_equal(iot_aggregate(&tm, 1, "temp", 0, T0, 1000, IOT_AGG_MEAN, &res), IOT_ELIMIT);
    assert_int_equal(iot_aggregate(&tm, 1, "temp", T0, T0 - 1, 1000, IOT_AGG_MEAN, &res), IOT_EINVAL);
}

/* JSON has no infinity: a sum or mean that overflowed is null, not a
 * failed json_real (NULL) that made the window vanish from the answer. */
static void non_finite_is_null(void **state)
{
    struct iot_agg_bucket b = {.count = 2, .sum = INFINITY, .min = 1.7e308, .max = 1.7e308};
    json_t *j = iot_agg_json(&b, IOT_AGG_SUM);
    assert_non_null(j);
    assert_true(json_is_null(j));
    json_decref(j);
    j = iot_agg_json(&b, IOT_AGG_MEAN);
    assert_non_null(j);
    assert_true(json_is_null(j));
    json_decref(j);
    j = iot_agg_json(&b, IOT_AGG_MAX);
    assert_true(json_is_real(j) && json_real_value(j) == 1.7e308);
    json_decref(j);
    b.sum = NAN;
    j = iot_agg_json(&b, IOT_AGG_SUM);
    assert_true(json_is_null(j));
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(minute_windows_from_raw),
        cmocka_unit_test(hour_and_day_windows_use_rollups_and_raw_edges),
        cmocka_unit_test(functions_and_limits),
        cmocka_unit_test(non_finite_is_null),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
