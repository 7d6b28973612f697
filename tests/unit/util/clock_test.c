/* Unit tests of util/clock: ISO-8601 formatting and parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/clock.h"
#include "util/err.h"

static void formats_with_millis_and_z(void **state)
{
    char buf[IOT_ISO8601_LEN + 1];
    iot_iso8601(0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    iot_iso8601(1795777214123LL, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-27T11:00:14.123Z");
    iot_iso8601(-1, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    iot_iso8601(951782400000LL, buf, sizeof buf); /* a leap day */
    assert_string_equal(buf, "2000-02-29T00:00:00.000Z");
    iot_iso8601(253402300799999LL, buf, sizeof buf);
    assert_string_equal(buf, "9999-12-31T23:59:59.999Z");
}

/* The hand-written formatter agrees with the parser on every day of four
 * centuries, at several times of day. */
static void format_parse_round_trip(void **state)
{
    for (int64_t day = -146097; day < 146097 * 2; day += 1) {
        int64_t ms = day * 86400000 + (day % 7) * 12345678;
        char buf[IOT_ISO8601_LEN + 1];
        iot_iso8601(ms, buf, sizeof buf);
        int64_t back = 0;
        assert_int_equal(iot_parse_iso8601(buf, &back), IOT_OK);
        assert_int_equal(back, ms);
    }
}

static void parses_forms(void **state)
{
    struct { const char *in; int64_t ms; } ok[] = {
        {"2026-11-27T11:00:14.123Z", 1795777214123LL},
        {"2026-11-27T11:00:14Z", 1795777214000LL},
        {"2026-11-27T11:00:14", 1795777214000LL},
        {"2026-11-27 11:00:14.1Z", 1795777214100LL},
        {"2026-11-27T11:00Z", 1795777200000LL},
        {"2026-11-27T13:00:14.123+02:00", 1795777214123LL},
        {"2026-11-27T06:30:14.123-0430", 1795777214123LL},
        {"2026-11-27T11:00:14.123456789Z", 1795777214123LL},
        {"2026-11-27", 1795737600000LL},
        {"2024-02-29T00:00:00Z", 1709164800000LL},
        {"1970-01-01T00:00:00Z", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        int64_t ms = -7;
        assert_int_equal(iot_parse_iso8601(ok[i].in, &ms), IOT_OK);
        assert_int_equal(ms, ok[i].ms);
    }
}

static void rejects_garbage(void **state)
{
    const char *bad[] = {"", "yesterday", "2026-13-01", "2026-02-30", "2023-02-29",
                         "2026-11-27T25:00:00Z", "2026-11-27T11:60Z", "2026-11-27T11:00:14.Z",
                         "2026-11-27T11:00:14Zjunk", "2026-11-27T11", "2026/11/27",
                         "2026-11-27T11:00:14+25:00", "-1h"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int64_t ms;
        assert_int_equal(iot_parse_iso8601(bad[i], &ms), IOT_EINVAL);
    }
}

static int64_t fixed_clock(void) { return 42; }

static void clock_can_be_injected(void **state)
{
    iot_clock_override(fixed_clock);
    assert_int_equal(iot_now_ms(), 42);
    iot_clock_override(NULL);
    assert_true(iot_now_ms() > 1700000000000LL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(formats_with_millis_and_z),
        cmocka_unit_test(format_parse_round_trip),
        cmocka_unit_test(parses_forms),
        cmocka_unit_test(rejects_garbage),
        cmocka_unit_test(clock_can_be_injected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
