/* test_asserts.h — asserts the C test suites share, printing both values:
 * decimal, and error names for IOT_E* statuses (cmocka 1.1's
 * assert_int_equal prints hex, unreadable for negatives). Header-only;
 * include after <cmocka.h>. */
#ifndef IOT_TESTS_TEST_ASSERTS_H
#define IOT_TESTS_TEST_ASSERTS_H

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "util/err.h"

#define assert_i64(a, b)                                                                       \
    do {                                                                                       \
        int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                                          \
        if (a_ != b_)                                                                          \
            fail_msg("%s is %" PRId64 ", want %" PRId64 " (%s)", #a, a_, b_, #b);            \
    } while (0)
#define assert_f64(a, b)                                                                       \
    do {                                                                                       \
        double a_ = (a), b_ = (b);                                                             \
        if (!(fabs(a_ - b_) <= 1e-9 * (1.0 + fabs(b_))))                                       \
            fail_msg("%s is %.17g, want %.17g (%s)", #a, a_, b_, #b);                          \
    } while (0)
#define assert_rc(expr, want)                                                                  \
    do {                                                                                       \
        int rc_ = (expr), want_ = (want);                                                      \
        if (rc_ != want_)                                                                      \
            fail_msg("%s returned %d (%s), want %d (%s)", #expr, rc_, iot_strerror(rc_), want_, \
                     iot_strerror(want_));                                                     \
    } while (0)
/* Byte-exact comparison of a (ptr, len) with a NUL-terminated expectation. */
#define assert_bytes(p, len, want)                                                             \
    do {                                                                                       \
        const char *w_ = (want);                                                               \
        size_t l_ = (size_t)(len), wl_ = strlen(w_);                                           \
        if (l_ != wl_ || memcmp((p), w_, wl_) != 0)                                            \
            fail_msg("%s is \"%.*s\" (%zu bytes), want \"%s\" (%zu bytes)", #p, (int)l_,       \
                     (const char *)(p), l_, w_, wl_);                                          \
    } while (0)

#endif
