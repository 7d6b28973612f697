/* Unit tests of util/json_bigint: integer literals beyond int64 get ".0",
 * nothing else changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/json_bigint.h"

/* The widened text of in, or NULL when nothing needed widening. */
static char *widened(const char *in)
{
    size_t n = 0;
    char *out = iot_json_widen_bigints(in, strlen(in), &n);
    if (out)
        assert_int_equal(n, strlen(out));
    return out;
}

static void expect_widened(const char *in, const char *want)
{
    char *out = widened(in);
    assert_non_null(out);
    assert_string_equal(out, want);
    free(out);
}

static void widens_integers_beyond_int64(void **state)
{
    (void)state;
    expect_widened("{\"x\":18446744073709551616}", "{\"x\":18446744073709551616.0}");
    expect_widened("[9223372036854775808]", "[9223372036854775808.0]");
    expect_widened("[-9223372036854775809]", "[-9223372036854775809.0]");
    expect_widened("[1, -3567954850067168362496 ,2]", "[1, -3567954850067168362496.0 ,2]");
    expect_widened("{\"a\":[100000000000000000000,{\"b\":100000000000000000000}]}",
                   "{\"a\":[100000000000000000000.0,{\"b\":100000000000000000000.0}]}");
}

static void leaves_the_rest(void **state)
{
    (void)state;
    /* int64's own ends, reals, and digits inside strings */
    assert_null(widened("[9223372036854775807, -9223372036854775808, 0, -0, 12]"));
    assert_null(widened("[1e400, 18446744073709551616.5, 18446744073709551616e0, -2.5E+3]"));
    assert_null(widened("{\"18446744073709551616\":\"99999999999999999999999\"}"));
    assert_null(widened("{\"k\\\"99999999999999999999999\":true}"));
    assert_null(widened(""));
    /* escaped quote then a big number outside the string */
    expect_widened("{\"a\\\"\":99999999999999999999}", "{\"a\\\"\":99999999999999999999.0}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(widens_integers_beyond_int64),
        cmocka_unit_test(leaves_the_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
