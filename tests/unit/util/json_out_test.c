/* Unit tests of util/json_out: shortest round-trip reals, integers left
 * alone, strings never touched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_out.h"

#define assert_text(got, want)                                                                 \
    do {                                                                                       \
        const char *g_ = (got), *w_ = (want);                                                  \
        if (!g_ || strcmp(g_, w_) != 0)                                                        \
            fail_msg("%s is \"%s\", want \"%s\"", #got, g_ ? g_ : "(null)", w_);             \
    } while (0)

static const char *real(double d)
{
    static char buf[IOT_JSON_REAL_MAX];
    int n = iot_json_real_text(d, buf);
    assert_true(n > 0 && (size_t)n == strlen(buf));
    return buf;
}

static void tricky_reals(void **state)
{
    (void)state;
    assert_text(real(0.1), "0.1");
    assert_text(real(0.473419), "0.473419");
    assert_text(real(0.1 + 0.2), "0.30000000000000004");
    assert_text(real(1.0), "1.0");
    assert_text(real(100.0), "100.0");
    assert_text(real(-0.0), "-0.0");
    assert_text(real(0.0), "0.0");
    assert_text(real(21.5), "21.5");
    assert_text(real(1e300), "1e300");
    assert_text(real(5e-324), "5e-324");
    assert_text(real(DBL_MAX), "1.7976931348623157e308");
    assert_text(real(DBL_MIN), "2.2250738585072014e-308");
    assert_text(real(1e21), "1e21");
    assert_text(real(123456789012345680000.0), "1.2345678901234568e20");
    assert_text(real(1e16), "10000000000000000.0");
    assert_text(real(1e17), "1e17");
    assert_text(real(0.0001), "0.0001");
    assert_text(real(0.00001), "1e-5");
    assert_text(real(-1.5e-7), "-1.5e-7");
    assert_text(real(9007199254740993.0), "9007199254740992.0"); /* a real: rounded on parse */
    char buf[IOT_JSON_REAL_MAX];
    assert_int_equal(iot_json_real_text(INFINITY, buf), -1);
    assert_int_equal(iot_json_real_text(NAN, buf), -1);
}

/* Every text reads back to the same bits, and no shorter %.Ng does. */
static void round_trips_and_is_shortest(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        if (!isfinite(d))
            continue;
        const char *t = real(d);
        double back = strtod(t, NULL);
        if (memcmp(&back, &d, sizeof d) != 0)
            fail_msg("%s reads back as %.17g, not %.17g", t, back, d);
        /* significant digits of t: no sign, point, leading or padding zeros */
        char sig[40];
        int n = 0;
        for (const char *p = t; *p && *p != 'e'; p++)
            if (*p >= '0' && *p <= '9' && (n || *p != '0'))
                sig[n++] = *p;
        while (n > 1 && sig[n - 1] == '0')
            n--;
        for (int prec = 1; prec <= 17; prec++) {
            char g[40];
            snprintf(g, sizeof g, "%.*g", prec, d);
            double gb = strtod(g, NULL);
            if (memcmp(&gb, &d, sizeof d) == 0) {
                if (n > prec)
                    fail_msg("%s has %d significant digits, %s only %d", t, n, g, prec);
                break;
            }
        }
    }
}

static int exp_of(const char *s) { return (int)strtol(s, NULL, 10); }

/* Whether some prec-digit decimal reads back to d: the nearest one (%.*e)
 * or the one next to it on either side, found by brute force on the
 * digits. */
static bool some_decimal_of(double d, int prec)
{
    char e[40];
    snprintf(e, sizeof e, "%.*e", prec - 1, d);
    char *x = strchr(e, 'e');
    int exp10 = exp_of(x + 1);
    char dig[20];
    int nd = 0;
    for (char *p = e; p < x; p++)
        if (*p >= '0' && *p <= '9')
            dig[nd++] = *p;
    dig[nd] = '\0';
    long long m = strtoll(dig, NULL, 10);
    for (long long dm = -1; dm <= 1; dm++) {
        char t[64];
        snprintf(t, sizeof t, "%s%llde%d", d < 0 ? "-" : "", m + dm, exp10 - (prec - 1));
        double back = strtod(t, NULL);
        if (memcmp(&back, &d, sizeof d) == 0)
            return true;
    }
    return false;
}

/* Powers of two are where the decimal nearest to d may not read back while
 * the next one does (their lower neighbour is closer than the upper one). */
static void powers_of_two_are_shortest(void **state)
{
    (void)state;
    assert_text(real(0x1p-24), "5.960464477539063e-8");
    assert_text(real(-0x1p-24), "-5.960464477539063e-8");
    assert_text(real(1024.0), "1024.0");
    assert_text(real(0.5), "0.5");
    assert_text(real(0x1p-1074), "5e-324");
    assert_text(real(0x1p1023), "8.98846567431158e307");
    for (int k = -1074; k <= 1023; k++) {
        for (int sign = 0; sign < 2; sign++) {
            double d = ldexp(sign ? -1.0 : 1.0, k);
            const char *t = real(d);
            double back = strtod(t, NULL);
            if (memcmp(&back, &d, sizeof d) != 0)
                fail_msg("2^%d: %s reads back as %.17g", k, t, back);
            char sig[40];
            int n = 0;
            for (const char *p = t; *p && *p != 'e'; p++)
                if (*p >= '0' && *p <= '9' && (n || *p != '0'))
                    sig[n++] = *p;
            while (n > 1 && sig[n - 1] == '0')
                n--;
            for (int prec = 1; prec < n; prec++)
                if (some_decimal_of(d, prec))
                    fail_msg("2^%d: %s has %d significant digits, %d would do", k, t, n, prec);
        }
    }
}

static void dumps_rewrites_reals_only(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:f, s:f, s:I, s:s, s:[f, f, b, n], s:f}", "load", 0.473419, "neg",
                          -0.0, "big", (json_int_t)9007199254740993LL, "text",
                          "0.47341899999999998 1e+21", "list", 1e21, 1.0, 1, "tiny", 5e-324);
    char *text = iot_json_dumps(v);
    json_decref(v);
    assert_text(text, "{\"load\":0.473419,\"neg\":-0.0,\"big\":9007199254740993,"
                      "\"text\":\"0.47341899999999998 1e+21\",\"list\":[1e21,1.0,true,null],"
                      "\"tiny\":5e-324}");
    json_t *back = json_loads(text, 0, NULL);
    assert_non_null(back);
    double neg = json_real_value(json_object_get(back, "neg"));
    assert_true(neg == 0.0 && signbit(neg));
    assert_int_equal(json_integer_value(json_object_get(back, "big")), 9007199254740993LL);
    json_decref(back);
    free(text);
    json_t *one = json_real(0.1);
    char *scalar = iot_json_dumps(one);
    json_decref(one);
    assert_text(scalar, "0.1");
    free(scalar);
}

static void shorten_is_total_on_any_text(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"", ""},
        {"1.0000000000000000", "1.0"},
        {"[\"\\\"2.50\\\"\", 2.50, -3E2, 7]", "[\"\\\"2.50\\\"\", 2.5, -300.0, 7]"},
        {"{\"a\":\"unterminated 1.50", "{\"a\":\"unterminated 1.50"},
        {"1e999 - 1..2 1e", "1e999 - 1..2 1e"},
        {"\\", "\\"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = 0;
        char *out = iot_json_shorten_reals(cases[i][0], strlen(cases[i][0]), &len);
        assert_text(out, cases[i][1]);
        assert_int_equal(len, strlen(cases[i][1]));
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tricky_reals),
        cmocka_unit_test(round_trips_and_is_shortest),
        cmocka_unit_test(powers_of_two_are_shortest),
        cmocka_unit_test(dumps_rewrites_reals_only),
        cmocka_unit_test(shorten_is_total_on_any_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
