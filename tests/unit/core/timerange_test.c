/* Unit tests of core/timerange: relative and absolute times, windows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/timerange.h"
#include "util/err.h"

#define NOW INT64_C(1795777214123)

static void relative_and_now(void **state)
{
    struct { const char *in; int64_t ms; } ok[] = {
        {"now", NOW}, {"-30s", NOW - 30000}, {"-15m", NOW - 900000}, {"-1h", NOW - 3600000},
        {"-24h", NOW - 86400000}, {"-7d", NOW - 7 * 86400000LL}, {"-30d", NOW - 30 * 86400000LL},
        {"-2w", NOW - 14 * 86400000LL}, {"-0s", NOW},
        {"2026-11-27T11:00:14.123Z", NOW},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        int64_t ms = 0;
        assert_int_equal(iot_time_parse(ok[i].in, NOW, &ms), IOT_OK);
        assert_int_equal(ms, ok[i].ms);
    }
}

static void rejects(void **state)
{
    const char *bad[] = {"", "-", "-h", "-1", "-1x", "-1hh", "1h", "+1h", "-1.5h", "NOW",
                         "-99999999999999999999d", "-100000d", "yesterday", "-1 h"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int64_t ms;
        assert_int_equal(iot_time_parse(bad[i], NOW, &ms), IOT_EINVAL);
    }
    int64_t ms;
    assert_int_equal(iot_time_parse(NULL, NOW, &ms), IOT_EINVAL);
}

static void windows(void **state)
{
    int64_t ms;
    assert_int_equal(iot_window_parse("1m", &ms), IOT_OK);
    assert_int_equal(ms, 60000);
    assert_int_equal(iot_window_parse("15m", &ms), IOT_OK);
    assert_int_equal(ms, 900000);
    assert_int_equal(iot_window_parse("1d", &ms), IOT_OK);
    assert_int_equal(ms, 86400000);
    const char *bad[] = {"0m", "1", "m", "-1m", "500ms", "367d", "1y"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(iot_window_parse(bad[i], &ms), IOT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(relative_and_now),
        cmocka_unit_test(rejects),
        cmocka_unit_test(windows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
