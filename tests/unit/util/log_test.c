/* Unit tests of util/log: every logged value is escaped by the formatter,
 * so no client input can forge a log line or drive a terminal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

static const char *escaped(const char *in, size_t len)
{
    static char out[256];
    iot_log_escape(in, len, out, sizeof out);
    return out;
}
#define ESC(lit) escaped(lit, sizeof lit - 1)

static void plain_text_is_unchanged(void **state)
{
    assert_string_equal(ESC("GET /api/v1/health 200 12us id=abc"),
                        "GET /api/v1/health 200 12us id=abc");
    assert_string_equal(ESC("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
                        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"); /* é € 😀 stay UTF-8 */
}

static void newlines_cannot_forge_a_line(void **state)
{
    assert_string_equal(ESC("/x\n2026-01-01T00:00:00.000Z info  forged"),
                        "/x\\n2026-01-01T00:00:00.000Z info  forged");
    assert_string_equal(ESC("a\rb\tc"), "a\\rb\\tc");
    assert_string_equal(ESC("a\\nb"), "a\\\\nb"); /* a literal backslash-n stays distinguishable */
}

static void control_bytes_are_hex(void **state)
{
    assert_string_equal(ESC("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
    assert_string_equal(ESC("del\x7f bel\x07"), "del\\x7f bel\\x07");
    assert_string_equal(escaped("a\0b", 3), "a\\x00b");
}

static void c1_and_invalid_utf8(void **state)
{
    assert_string_equal(ESC("\xc2\x9b" "31m"), "\\u009b31m"); /* CSI as UTF-8 */
    assert_string_equal(ESC("\x9b" "31m"), "\\x9b31m");       /* CSI as a raw 8-bit byte */
    assert_string_equal(ESC("\xc0\xaf"), "\\xc0\\xaf");       /* overlong "/" */
    assert_string_equal(ESC("\xe2\x80\xa8"), "\\u2028");      /* line separator */
    assert_string_equal(ESC("\xe2\x80\xae"), "\\u202e");      /* right-to-left override */
    assert_string_equal(ESC("\xe2\x82"), "\\xe2\\x82");       /* truncated sequence */
}

/* Zero-width characters and bidi marks hide or reorder what an operator
 * reads: escaped like the account rules refuse them (util/utf8.h). */
static void invisible_code_points(void **state)
{
    assert_string_equal(ESC("ad\xe2\x80\x8bmin"), "ad\\u200bmin");     /* zero-width space */
    assert_string_equal(ESC("\xe2\x80\x8c\xe2\x80\x8d"), "\\u200c\\u200d"); /* ZWNJ, ZWJ */
    assert_string_equal(ESC("\xe2\x80\x8e\xe2\x80\x8f"), "\\u200e\\u200f"); /* LRM, RLM */
    assert_string_equal(ESC("\xd8\x9c"), "\\u061c");                 /* Arabic letter mark */
    assert_string_equal(ESC("\xef\xbb\xbf"), "\\ufeff");            /* BOM */
    assert_string_equal(ESC("\xf3\xa0\x80\x81"), "\\U000e0001");   /* language tag */
}

static void stops_at_a_whole_escape(void **state)
{
    char out[6];
    size_t n = iot_log_escape("ab\n\ncd", 6, out, sizeof out);
    assert_int_equal(n, 4);
    assert_string_equal(out, "ab\\n");
    n = iot_log_escape("\xe2\x82\xac\xe2\x82\xac", 6, out, sizeof out);
    assert_int_equal(n, 3);
    assert_string_equal(out, "\xe2\x82\xac");
}

/* The formatter applies it: a value logged through iot_log comes out as one
 * escaped line. */
static void iot_log_escapes_arguments(void **state)
{
    char path[] = "/tmp/iot-log-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    iot_log(IOT_LOG_ERROR, "user %s logged in", "eve\ninfo  admin logged in\x1b[2J");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char buf[512] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "user eve\\ninfo  admin logged in\\x1b[2J logged in\n"));
    assert_ptr_equal(strchr(buf, '\n'), buf + n - 1); /* exactly one line */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_text_is_unchanged),
        cmocka_unit_test(newlines_cannot_forge_a_line),
        cmocka_unit_test(control_bytes_are_hex),
        cmocka_unit_test(c1_and_invalid_utf8),
        cmocka_unit_test(invisible_code_points),
        cmocka_unit_test(stops_at_a_whole_escape),
        cmocka_unit_test(iot_log_escapes_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
