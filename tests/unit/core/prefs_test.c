/* Unit tests of core/prefs: the time zone shape and the checks of the
 * known keys (the store side is covered by tests/api/test_preferences.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "test_asserts.h"
#include <stdlib.h>

#include "core/prefs.h"

static void test_timezones(void **state)
{
    (void)state;
    static const char *const good[] = {"UTC", "GMT", "Europe/Paris", "Etc/GMT+5", "Etc/GMT-14",
                                       "America/Argentina/Buenos_Aires", "America/Port-au-Prince"};
    static const char *const bad[] = {"", "/", "Europe/", "/Paris", "Europe//Paris", "A/B/C/D",
                                      "1UTC", "Europe/1Paris", "Europe/Paris Time", "../etc",
                                      "Europe\\Paris", "UTC\n"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (!iot_prefs_timezone_valid(good[i]))
            fail_msg("refused %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (iot_prefs_timezone_valid(bad[i]))
            fail_msg("accepted '%s'", bad[i]);
    char longest[IOT_PREFS_TIMEZONE_MAX + 2];
    memset(longest, 'A', sizeof longest);
    longest[IOT_PREFS_TIMEZONE_MAX] = '\0';
    assert_true(iot_prefs_timezone_valid(longest));
    longest[IOT_PREFS_TIMEZONE_MAX] = 'A';
    longest[IOT_PREFS_TIMEZONE_MAX + 1] = '\0';
    assert_false(iot_prefs_timezone_valid(longest));
}

static int check(const char *json)
{
    json_t *v = json_loads(json, 0, NULL);
    char *text = NULL, why[200];
    size_t len;
    int rc = iot_prefs_check(v, &text, &len, why, sizeof why);
    free(text);
    json_decref(v);
    return rc;
}

static void test_checks(void **state)
{
    (void)state;
    assert_rc(check("{}"), IOT_OK);
    assert_rc(check("{\"units\":\"imperial\",\"other\":[1,{\"x\":null}]}"), IOT_OK);
    assert_rc(check("{\"units\":\"si\"}"), IOT_EINVAL);
    assert_rc(check("{\"timezone\":3}"), IOT_EINVAL);
    assert_rc(check("{\"notifications\":[]}"), IOT_EINVAL);
    assert_rc(check("{\"dashboard\":\"x\"}"), IOT_EINVAL);
    assert_rc(check("[]"), IOT_EINVAL);
    char *big = malloc(IOT_PREFS_MAX + 32);
    snprintf(big, IOT_PREFS_MAX + 32, "{\"k\":\"%0*d\"}", IOT_PREFS_MAX - 8, 0);
    assert_rc(check(big), IOT_OK);
    snprintf(big, IOT_PREFS_MAX + 32, "{\"k\":\"%0*d\"}", IOT_PREFS_MAX - 7, 0);
    assert_rc(check(big), IOT_ELIMIT);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timezones),
        cmocka_unit_test(test_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
