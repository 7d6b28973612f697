/* cql_test_util.h — helpers for the CQL codec's unit tests: a byte-array
 * comparison that prints both sides in hex at the first difference, and a
 * copy of a frame with its header length rewritten (for truncation loops). */
#ifndef CQL_TEST_UTIL_H
#define CQL_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void print_hex(const char *label, const uint8_t *p, size_t n)
{
    fprintf(stderr, "%s (%zu bytes):", label, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s%02x", i % 16 ? " " : "\n  ", p[i]);
    fprintf(stderr, "\n");
}

#define assert_bytes(got, got_len, want, want_len)                                                 \
    check_bytes((const uint8_t *)(got), (got_len), (const uint8_t *)(want), (want_len), __FILE__,  \
                __LINE__)

static inline void check_bytes(const uint8_t *got, size_t got_len, const uint8_t *want,
                               size_t want_len, const char *file, int line)
{
    size_t n = got_len < want_len ? got_len : want_len;
    size_t i = 0;
    while (i < n && got[i] == want[i])
        i++;
    if (i == n && got_len == want_len)
        return;
    fprintf(stderr, "%s:%d: bytes differ at offset %zu\n", file, line, i);
    print_hex("got", got, got_len);
    print_hex("want", want, want_len);
    fail();
}

/* A heap copy of the first 9 + body_len bytes of frame, header length
 * patched to body_len. */
static inline uint8_t *frame_with_body_len(const uint8_t *frame, size_t body_len)
{
    uint8_t *copy = malloc(9 + body_len + 1); /* +1: never malloc(0) */
    assert_non_null(copy);
    memcpy(copy, frame, 9 + body_len);
    copy[5] = (uint8_t)(body_len >> 24);
    copy[6] = (uint8_t)(body_len >> 16);
    copy[7] = (uint8_t)(body_len >> 8);
    copy[8] = (uint8_t)body_len;
    return copy;
}

static inline int str_is(const char *ptr, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(ptr, want, len) == 0;
}

#define assert_str(s, want)                                                                        \
    do {                                                                                           \
        if (!str_is((s).ptr, (s).len, (want))) {                                                   \
            fprintf(stderr, "got \"%.*s\", want \"%s\"\n", (int)(s).len, (s).ptr, (want));         \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#endif
