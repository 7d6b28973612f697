/* Unit tests of http/cors: the origin list and the Allow-Origin answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>

#include "http/cors.h"
#include "util/err.h"

static void star_and_empty_allow_any(void **state)
{
    const char *lists[] = {"*", "", " * ", "https://a.example, *"};
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
        struct iot_cors c;
        bool vary = true;
        assert_int_equal(iot_cors_parse(lists[i], &c), IOT_OK);
        assert_string_equal(iot_cors_allow_origin(&c, "https://x.example", &vary), "*");
        assert_false(vary);
        assert_string_equal(iot_cors_allow_origin(&c, NULL, &vary), "*");
        iot_cors_free(&c);
    }
}

static void list_echoes_listed_origins_only(void **state)
{
    struct iot_cors c;
    bool vary = false;
    assert_int_equal(iot_cors_parse(" https://a.example/ ,http://localhost:3000,,", &c), IOT_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(iot_cors_allow_origin(&c, "https://a.example", &vary),
                        "https://a.example");
    assert_true(vary);
    assert_string_equal(iot_cors_allow_origin(&c, "HTTPS://A.EXAMPLE", &vary),
                        "HTTPS://A.EXAMPLE");
    assert_string_equal(iot_cors_allow_origin(&c, "http://localhost:3000", &vary),
                        "http://localhost:3000");
    assert_null(iot_cors_allow_origin(&c, "https://a.example.evil", &vary));
    assert_null(iot_cors_allow_origin(&c, "http://localhost:30000", &vary));
    assert_null(iot_cors_allow_origin(&c, "null", &vary));
    assert_null(iot_cors_allow_origin(&c, NULL, &vary));
    assert_true(vary);
    iot_cors_free(&c);
    iot_cors_free(&c); /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(star_and_empty_allow_any),
        cmocka_unit_test(list_echoes_listed_origins_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
