/* Unit tests of util/utf8: the one decoder and the one list of invisible
 * code points, and that the log escaper and the account rules both follow
 * that list (they used to disagree on U+200B..U+200F and U+061C). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/account_rules.h"
#include "util/log.h"
#include "util/utf8.h"

/* UTF-8 encoding of cp into out (4 bytes room); returns its length. */
static size_t encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static void decodes_valid_sequences(void **state)
{
    const char s[] = "a\xc3\xa9\xe2\x80\x8b\xf0\x9f\x98\x80";
    uint32_t want[] = {0x61, 0xE9, 0x200B, 0x1F600}, cp;
    size_t i = 0;
    for (size_t k = 0; k < 4; k++) {
        assert_true(iot_utf8_next(s, sizeof s - 1, &i, &cp));
        assert_int_equal(cp, want[k]);
    }
    assert_int_equal(i, sizeof s - 1);
    /* Every scalar value round-trips. */
    for (uint32_t v = 0; v <= 0x10FFFF; v++) {
        if (v >= 0xD800 && v <= 0xDFFF)
            continue;
        char b[4];
        size_t n = encode(v, b), j = 0;
        assert_true(iot_utf8_next(b, n, &j, &cp));
        assert_int_equal(j, n);
        assert_int_equal(cp, v);
    }
}

static void refuses_malformed_sequences(void **state)
{
    static const struct {
        const char *s;
        size_t len;
    } bad[] = {
        {"\xe2\x80", 2},             /* truncated */
        {"\x80", 1},                 /* stray continuation */
        {"\xc0\xaf", 2},             /* overlong '/' */
        {"\xe0\x80\xaf", 3},         /* overlong, 3 bytes */
        {"\xed\xa0\x80", 3},         /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", 4},     /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 4},     /* never a lead byte */
        {"\xc3\x28", 2},             /* lead, then no continuation */
        {"\xe2\x82\xac", 2},         /* cut short by len, not by the bytes */
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        size_t i = 0;
        uint32_t cp;
        assert_false(iot_utf8_next(bad[k].s, bad[k].len, &i, &cp));
        assert_int_equal(i, 0); /* no progress on failure */
    }
}

static void the_invisible_list(void **state)
{
    static const uint32_t invisible[] = {0x00, 0x1F, 0x7F, 0x85, 0x9B, 0xAD, 0x34F, 0x61C,
                                         0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2028,
                                         0x2029, 0x202A, 0x202E, 0x2060, 0x2066, 0x2069,
                                         0xFE0F, 0xFEFF, 0xE0001, 0xE007F};
    static const uint32_t visible[] = {0x20, 0x41, 0xA0, 0xE9, 0x200A, 0x2010, 0x202F,
                                       0x20AC, 0x1F600, 0x10FFFF};
    for (size_t k = 0; k < sizeof invisible / sizeof *invisible; k++)
        assert_true(iot_codepoint_invisible(invisible[k]));
    for (size_t k = 0; k < sizeof visible / sizeof *visible; k++)
        assert_false(iot_codepoint_invisible(visible[k]));
    assert_true(iot_codepoint_space(0x3000));
    assert_true(iot_codepoint_space(0x2009));
    assert_false(iot_codepoint_space(0x200B)); /* zero-width: invisible, not a space */
}

/* The log escapes exactly the invisible code points above ASCII, and a
 * username refuses every one of them: one list, no disagreement left. */
static void log_and_account_rules_follow_the_list(void **state)
{
    for (uint32_t v = 0x80; v <= 0x10FFFF; v++) {
        if (v >= 0xD800 && v <= 0xDFFF)
            continue;
        char b[8] = "a", out[32];
        size_t n = 1 + encode(v, b + 1);
        iot_log_escape(b, n, out, sizeof out);
        bool escaped = strchr(out, '\\') != NULL;
        if (escaped != iot_codepoint_invisible(v))
            fail_msg("U+%04X: escaped in logs %d, in the invisible list %d", (unsigned)v,
                     escaped, iot_codepoint_invisible(v));
        if (iot_codepoint_invisible(v) && !iot_codepoint_space(v))
            assert_non_null(iot_username_problem(b, n));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decodes_valid_sequences),
        cmocka_unit_test(refuses_malformed_sequences),
        cmocka_unit_test(the_invisible_list),
        cmocka_unit_test(log_and_account_rules_follow_the_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
