/* Unit tests of core/account_rules: usernames, emails, passwords, and the
 * UTF-8 decoder under them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/account_rules.h"

#define U(s) iot_username_problem((s), sizeof(s) - 1)
#define E(s) iot_email_problem((s), sizeof(s) - 1)
#define P(s) iot_password_problem((s), sizeof(s) - 1)

/* Fails with the value and the message when a rule answers otherwise. */
#define assert_ok(call, s)                                                                     \
    do {                                                                                       \
        const char *why_ = call(s);                                                            \
        if (why_)                                                                              \
            fail_msg("%s(\"%s\") refused: %s", #call, s, why_);                                \
    } while (0)
#define assert_refused(call, s)                                                                \
    do {                                                                                       \
        if (!call(s))                                                                          \
            fail_msg("%s(\"%s\") accepted, want refused", #call, s);                          \
    } while (0)

static void usernames(void **state)
{
    (void)state;
    assert_ok(U, "alice");
    assert_ok(U, "Alice Smith");
    assert_ok(U, "\xc3\xa9mile");         /* émile */
    assert_ok(U, "\xe7\x94\xb0\xe4\xb8\xad"); /* 田中 */
    assert_ok(U, "o'brien-2");
    /* each invisible or control character the issue names, in the middle */
    const char *bad[] = {
        "al\x01ice", "al\tice", "al\nice", "al\x7f" "ice", "al\xc2\x85ice", /* NEL */
        "al\xe2\x80\x8bice", "al\xe2\x80\x8cice", "al\xe2\x80\x8dice",      /* ZWSP ZWNJ ZWJ */
        "al\xe2\x80\x8eice", "al\xe2\x80\x8fice",                            /* LRM RLM */
        "al\xe2\x80\xa8ice", "al\xe2\x80\xa9ice",                            /* LS PS */
        "al\xe2\x80\xaaice", "al\xe2\x80\xaeice",                            /* LRE RLO */
        "al\xe2\x81\xa0ice", "al\xe2\x81\xa4ice",                            /* WJ, U+2064 */
        "al\xe2\x81\xa6ice", "al\xe2\x81\xa9ice",                            /* LRI PDI */
        "\xef\xbb\xbf" "alice",                                              /* BOM */
        "al\xc2\xadice",                                                     /* soft hyphen */
        "al\xf3\xa0\x80\x81ice",                                             /* tag U+E0001 */
        "al\xc2\xa0ice", "al\xe3\x80\x80ice",                                /* NBSP, ideographic space */
        " alice", "alice ",
        "al\xc3ice", "al\xe2\x80ice", "\xc0\xaf", "al\xed\xa0\x80ice",       /* malformed, overlong, surrogate */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (!iot_username_problem(bad[i], strlen(bad[i])))
            fail_msg("username #%zu accepted, want refused", i);
}

static void emails(void **state)
{
    (void)state;
    assert_ok(E, "a@example.com");
    assert_ok(E, "first.last+tag@sub.example.co.uk");
    assert_ok(E, "ALICE@EXAMPLE.COM");
    assert_ok(E, "j\xc3\xbcrgen@example.de");
    assert_refused(E, "alice");
    assert_refused(E, "@example.com");
    assert_refused(E, "alice@");
    assert_refused(E, "alice@localhost");
    assert_refused(E, "alice@@example.com");
    assert_refused(E, "a@b@example.com");
    assert_refused(E, "alice@example..com");
    assert_refused(E, "alice@.example.com");
    assert_refused(E, "alice@example.com.");
    assert_refused(E, "al ice@example.com");
    assert_refused(E, "alice@exa mple.com");
    assert_refused(E, "alice@example.com\n");
    assert_refused(E, "al\xe2\x80\x8bice@example.com");
    assert_refused(E, "alice@example.com\xe2\x80\xae");
    assert_refused(E, "Alice <alice@example.com>");
    assert_refused(E, "alice@example.com,bob@example.com");
    assert_ok(E, "\"a\";x'--@example.com"); /* text, not syntax: it round-trips */
    char longlocal[100];
    memset(longlocal, 'a', 65);
    snprintf(longlocal + 65, sizeof longlocal - 65, "@example.com");
    assert_non_null(iot_email_problem(longlocal, strlen(longlocal)));
    snprintf(longlocal + 64, sizeof longlocal - 64, "@example.com"); /* 64 bytes before it */
    assert_null(iot_email_problem(longlocal, strlen(longlocal)));
}

static void passwords(void **state)
{
    (void)state;
    assert_ok(P, "secret1");
    assert_ok(P, "  two words  ");
    assert_ok(P, "\xe2\x80\x8b" "x\xe2\x80\x8b"); /* one visible character is enough */
    assert_refused(P, "      ");
    assert_refused(P, "\t\t\t\t\t\t");
    assert_refused(P, " \xc2\xa0 \xe3\x80\x80 \xe2\x80\x8b\xef\xbb\xbf");
    assert_refused(P, "pass\xffword");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(usernames),
        cmocka_unit_test(emails),
        cmocka_unit_test(passwords),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
