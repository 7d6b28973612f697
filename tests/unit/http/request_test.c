/* Unit tests of http/request: which Content-Types count as JSON, and error
 * replies — a message that carries client bytes (jansson quotes the
 * offending token of a malformed body) still yields the intended status and
 * a JSON body (found by tm_message_fuzz: invalid UTF-8 was answered 500). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "http/request.h"

static json_t *reply_body(const struct iot_req *r)
{
    json_t *body = json_loadb(r->resp_body, r->resp_len, 0, NULL);
    assert_non_null(body);
    return body;
}

static void error_with_invalid_utf8_keeps_status(void **state)
{
    (void)state;
    struct iot_req r = {0};
    iot_reply_error(&r, 400, "Invalid JSON", "malformed JSON: %s", "near '\"caf\xe6\x8e\xdd'");
    assert_int_equal(r.status, 400);
    json_t *body = reply_body(&r);
    assert_string_equal(json_string_value(json_object_get(body, "error")), "Invalid JSON");
    assert_string_equal(json_string_value(json_object_get(body, "message")),
                        "malformed JSON: near '\"caf?" "?" "?'"); /* no trigraph */
    json_decref(body);
    free(r.resp_body);
}

/* A right-to-left override or a zero-width space quoted back in a message
 * would reorder or hide it where it is shown: each becomes one '?'. */
static void error_hides_invisible_characters(void **state)
{
    (void)state;
    struct iot_req r = {0};
    iot_reply_error(&r, 400, "Invalid", "no user '%s'",
                    "adm\xe2\x80\x8bin\xe2\x80\xaegpj.exe\xd8\x9c\xc2\x9b\xc3\xa9");
    assert_int_equal(r.status, 400);
    json_t *body = reply_body(&r);
    assert_string_equal(json_string_value(json_object_get(body, "message")),
                        "no user 'adm?in?gpj.exe??\xc3\xa9'");
    json_decref(body);
    free(r.resp_body);
}

static void error_rejects_overlong_and_surrogates(void **state)
{
    (void)state;
    struct iot_req r = {0};
    /* overlong '/', a UTF-16 surrogate, above U+10FFFF; then valid é, €, 😀 */
    iot_reply_error(&r, 400, "Invalid", "%s", "\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    assert_int_equal(r.status, 400);
    json_t *body = reply_body(&r);
    assert_string_equal(json_string_value(json_object_get(body, "message")),
                        "??|???|????|\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    json_decref(body);
    free(r.resp_body);
}

/* A long message is cut to fit; the cut may not split a character. */
static void error_cut_inside_a_character(void **state)
{
    (void)state;
    char text[1200] = "";
    for (size_t i = 0; i + 2 < sizeof text; i += 2)
        memcpy(text + i, "\xc3\xa9", 2);
    struct iot_req r = {0};
    iot_reply_error(&r, 400, "Invalid", "%s", text); /* 511 bytes: the cut falls inside an é */
    assert_int_equal(r.status, 400);
    json_t *body = reply_body(&r);
    assert_true(json_string_length(json_object_get(body, "message")) > 400);
    json_decref(body);
    free(r.resp_body);
}

static void json_types(void **state)
{
    (void)state;
    const char *yes[] = {"application/json", "application/json; charset=utf-8",
                         "Application/JSON;charset=UTF-8", "  application/json  ",
                         "application/vnd.api+json", "application/merge-patch+json; q=1",
                         "APPLICATION/PROBLEM+JSON"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        assert_true(iot_media_type_is_json(yes[i]));
}

static void other_types(void **state)
{
    (void)state;
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
        cmocka_unit_test(error_with_invalid_utf8_keeps_status),
        cmocka_unit_test(error_hides_invisible_characters),
        cmocka_unit_test(error_rejects_overlong_and_surrogates),
        cmocka_unit_test(error_cut_inside_a_character),
        cmocka_unit_test(json_types),
        cmocka_unit_test(other_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
