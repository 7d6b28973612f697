/* Unit tests of http/request: which Content-Types count as JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/request.h"

static void json_types(void **state)
{
    const char *yes[] = {"application/json", "application/json; charset=utf-8",
                         "Application/JSON;charset=UTF-8", "  application/json  ",
                         "application/vnd.api+json", "application/merge-patch+json; q=1",
                         "APPLICATION/PROBLEM+JSON"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        assert_true(iot_media_type_is_json(yes[i]));
}

static void other_types(void **state)
{
    const char *no[] = {"text/plain", "", "json", "application/", "application/+json",
                        "application/jsonx", "application/x-json-stream", "text/json",
                        "application/xml", "multipart/form-data; boundary=x",
                        "application/x-www-form-urlencoded", "application/json5",
                        "applicationjson", "application/json+xml"};
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        assert_false(iot_media_type_is_json(no[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_types),
        cmocka_unit_test(other_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
