/* Unit tests of core/retention: the thread purges at start, on the real
 * SQLite store, and stops at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/retention.h"
#include "util/clock.h"
#include "util/err.h"

#define DAY INT64_C(86400000)

static void write_at(struct iot_telemetry *tm, int64_t dev, int64_t ts)
{
    struct iot_tm_point p = {"t", {.type = IOT_TM_NUMBER, .num = 1, .is_int = true, .i = 1}};
    struct iot_tm_message m = {.device_id = dev, .user_id = 1, .ts = ts, .seq = 1, .points = &p,
                               .n_points = 1, .data_json = "{\"t\":1}", .data_len = 7};
    assert_int_equal(iot_tm_write_batch(tm, &m, 1), IOT_OK);
}

static int64_t messages(struct iot_telemetry *tm)
{
    struct iot_tm_stats st;
    assert_int_equal(iot_tm_stats(tm, &st), IOT_OK);
    return st.messages;
}

static void purges_at_start_and_stops_at_once(void **state)
{
    (void)state;
    struct iot_telemetry tm;
    assert_int_equal(iot_telemetry_open("sqlite::memory:", false, &tm), IOT_OK);
    int64_t now = iot_now_ms();
    write_at(&tm, 1, now - 10 * DAY); /* past a 7-day retention */
    write_at(&tm, 2, now - DAY);
    struct iot_retention *r = iot_retention_start(&tm, 7 * DAY, 0);
    assert_non_null(r);
    for (int i = 0; i < 500 && messages(&tm) != 1; i++)
        usleep(10000);
    assert_int_equal(messages(&tm), 1);
    int64_t t0 = iot_mono_us();
    iot_retention_stop(r); /* the next purge is an hour away: no waiting for it */
    assert_true(iot_mono_us() - t0 < 1000000);
    iot_telemetry_close(&tm);
}

static void forever_keeps_everything(void **state)
{
    (void)state;
    struct iot_telemetry tm;
    assert_int_equal(iot_telemetry_open("sqlite::memory:", false, &tm), IOT_OK);
    write_at(&tm, 1, iot_now_ms() - 1000 * DAY);
    iot_retention_run(&tm, 0, 0, iot_now_ms());
    assert_int_equal(messages(&tm), 1);
    iot_retention_stop(NULL);
    iot_telemetry_close(&tm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(purges_at_start_and_stops_at_once),
        cmocka_unit_test(forever_keeps_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
