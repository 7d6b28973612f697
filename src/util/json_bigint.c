/* json_bigint.c — JSON integers beyond int64 read as reals (json_bigint.h). */
#include "util/json_bigint.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Whether the digits d[0..n) (no sign, no leading zero unless n == 1) are
 * beyond INT64_MAX, or beyond its magnitude + 1 when negative. */
static bool beyond_int64(const char *d, size_t n, bool negative)
{
    static const char max[] = "9223372036854775807";
    static const char min[] = "9223372036854775808";
    const char *limit = negative ? min : max;
    size_t limit_len = sizeof max - 1;
    if (n != limit_len)
        return n > limit_len;
    return memcmp(d, limit, n) > 0;
}

/* Walks s; with out == NULL only counts the literals to widen. */
static size_t widen(const char *s, size_t len, char *out)
{
    size_t widened = 0, o = 0;
    bool in_string = false;
    for (size_t i = 0; i < len;) {
        char c = s[i];
        if (in_string || (c != '-' && !is_digit(c))) {
            if (in_string && c == '\\' && i + 1 < len) {
                if (out) {
                    out[o++] = c;
                    out[o++] = s[i + 1];
                }
                i += 2;
                continue;
            }
            if (c == '"')
                in_string = !in_string;
            if (out)
                out[o++] = c;
            i++;
            continue;
        }
        /* A number: sign, integer digits, then maybe fraction/exponent. */
        size_t start = i;
        bool negative = c == '-';
        if (negative)
            i++;
        size_t digits = i;
        while (i < len && is_digit(s[i]))
            i++;
        size_t n_digits = i - digits;
        bool real = false;
        while (i < len && (is_digit(s[i]) || s[i] == '.' || s[i] == 'e' || s[i] == 'E' ||
                           s[i] == '+' || s[i] == '-')) {
            real = true;
            i++;
        }
        if (out) {
            memcpy(out + o, s + start, i - start);
            o += i - start;
        }
        if (!real && n_digits > 0 && beyond_int64(s + digits, n_digits, negative)) {
            widened++;
            if (out) {
                out[o++] = '.';
                out[o++] = '0';
            }
        }
    }
    if (out)
        out[o] = '\0';
    return widened;
}

char *iot_json_widen_bigints(const char *s, size_t len, size_t *out_len)
{
    size_t n = widen(s, len, NULL);
    if (n == 0)
        return NULL;
    char *out = malloc(len + 2 * n + 1);
    if (!out)
        return NULL;
    widen(s, len, out);
    *out_len = len + 2 * n;
    return out;
}
