/* Unit tests of util/metrics: instruments and the Prometheus text format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "util/metrics.h"

static char *take(struct iot_buf *b)
{
    size_t len;
    char *text = iot_buf_take(b, &len);
    assert_non_null(text);
    return text;
}

static void counter_and_gauge(void **state)
{
    struct iot_counter c = {0};
    iot_counter_inc(&c);
    iot_counter_add(&c, 41);
    assert_int_equal(iot_counter_get(&c), 42);
    struct iot_gauge g = {0};
    iot_gauge_add(&g, 3);
    iot_gauge_add(&g, -5);
    assert_int_equal(iot_gauge_get(&g), -2);
    iot_gauge_set(&g, 7);
    assert_int_equal(iot_gauge_get(&g), 7);
}

static const struct iot_hist_bounds bounds = {3, {1000, 250000, 2000000}};

/* A value on a bound belongs to that bucket (le = "less or equal"). */
static void histogram_buckets_are_cumulative(void **state)
{
    struct iot_histogram h = {0};
    iot_histogram_observe(&h, &bounds, 1000);    /* le 0.001 */
    iot_histogram_observe(&h, &bounds, 1001);    /* le 0.25 */
    iot_histogram_observe(&h, &bounds, -5);      /* 0, le 0.001 */
    iot_histogram_observe(&h, &bounds, 9000000); /* +Inf */
    assert_int_equal(iot_histogram_count(&h, &bounds), 4);
    struct iot_buf b = {0};
    iot_metrics_histogram(&b, "x_seconds", &(struct iot_label){"route", "/a"}, 1, &h, &bounds);
    char *text = take(&b);
    assert_string_equal(text, "x_seconds_bucket{route=\"/a\",le=\"0.001\"} 2\n"
                              "x_seconds_bucket{route=\"/a\",le=\"0.25\"} 3\n"
                              "x_seconds_bucket{route=\"/a\",le=\"2\"} 3\n"
                              "x_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"
                              "x_seconds_sum{route=\"/a\"} 9.002001\n"
                              "x_seconds_count{route=\"/a\"} 4\n");
    free(text);
}

static void family_and_samples(void **state)
{
    struct iot_buf b = {0};
    iot_metrics_family(&b, "a_total", "counter", "Back\\slash and\nnewline \"quoted\".");
    struct iot_label l[] = {{"k", "q\"uote"}, {"p", "back\\slash\nnl"}};
    iot_metrics_sample_u64(&b, "a_total", l, 2, 18446744073709551615ULL);
    iot_metrics_sample(&b, "g", NULL, 0, 0.1);
    iot_metrics_sample(&b, "g", NULL, 0, 1796590115.899);
    iot_metrics_sample(&b, "g", NULL, 0, -INFINITY);
    iot_metrics_sample(&b, "g", NULL, 0, NAN);
    char *text = take(&b);
    assert_string_equal(text, "# HELP a_total Back\\\\slash and\\nnewline \"quoted\".\n"
                              "# TYPE a_total counter\n"
                              "a_total{k=\"q\\\"uote\",p=\"back\\\\slash\\nnl\"} "
                              "18446744073709551615\n"
                              "g 0.1\n"
                              "g 1796590115.899\n"
                              "g -Inf\n"
                              "g NaN\n");
    free(text);
}

/* Four threads, no lock: every increment and observation is kept. */
#define THREADS 4
#define PER_THREAD 100000
static struct iot_counter shared_counter;
static struct iot_histogram shared_hist;

static void *hammer(void *arg)
{
    for (int i = 0; i < PER_THREAD; i++) {
        iot_counter_inc(&shared_counter);
        iot_histogram_observe(&shared_hist, &bounds, i % 3000000);
    }
    return arg;
}

static void concurrent_updates_add_up(void **state)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(iot_counter_get(&shared_counter), THREADS * PER_THREAD);
    assert_int_equal(iot_histogram_count(&shared_hist, &bounds), THREADS * PER_THREAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counter_and_gauge),
        cmocka_unit_test(histogram_buckets_are_cumulative),
        cmocka_unit_test(family_and_samples),
        cmocka_unit_test(concurrent_updates_add_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
