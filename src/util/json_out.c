/* json_out.c — shortest round-trip text of reals, and JSON dumped with it.
 * See json_out.h. */
#include "util/json_out.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/clock.h"

/* A real token longer than this is not one jansson or we wrote; it is
 * copied unchanged. */
#define TOKEN_MAX 64

static bool same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* Adds one unit in the last digit of the mantissa of e, "[-]d.ddde[+-]xx"
 * (%.*e's form), away from zero; 9.99e5 becomes 1.00e6. */
static int bump_last_digit(char *e, size_t size)
{
    char *x = strchr(e, 'e');
    if (!x)
        return -1;
    size_t first = *e == '-'; /* index of the leading digit */
    for (size_t i = (size_t)(x - e); i-- > first;) {
        if (e[i] == '.')
            continue;
        if (e[i] != '9') {
            e[i]++;
            return 0;
        }
        e[i] = '0';
    }
    /* carried out of the leading digit: every digit is 0 now, lead with 1 */
    e[first] = '1';
    long exp10 = strtol(x + 1, NULL, 10) + 1;
    size_t room = size - (size_t)(x - e);
    int n = snprintf(x, room, "e%+03ld", exp10);
    return n < 0 || (size_t)n >= room ? -1 : 0;
}

/* Whether the p-digit text in e reads back to d; for a power of two also
 * the p-digit decimal one unit further from zero (see shortest_digits). */
static bool try_prec(double d, int prec, bool pow2, char *e, size_t size)
{
    int n = snprintf(e, size, "%.*e", prec - 1, d);
    if (n < 0 || (size_t)n >= size)
        return false;
    if (same_bits(strtod(e, NULL), d))
        return true;
    return pow2 && bump_last_digit(e, size) == 0 && same_bits(strtod(e, NULL), d);
}

/* The significant digits (no trailing zeros, at least one) and decimal
 * exponent of the shortest text that reads back to d.
 *
 * The doubles that read back to d form an interval around it, narrower
 * than the gap between 15-digit decimals, so at most one 15-digit decimal
 * lies in it. If a text of k <= 15 digits reads back to d, that decimal is
 * it. The interval is symmetric around d except at a power of two, whose
 * lower neighbour is twice as close: elsewhere the decimal nearest to d (what
 * %.*e rounds to) is in the interval whenever any decimal of its length is;
 * at a power of two the nearest may fall just below on the narrow side while
 * the next one up, on the wide side, reads back (2^-24: 16 digits round to
 * ...062, outside; ...063 is in). So each precision tries the nearest
 * decimal and, at a power of two, the next one up; trying 15, 16, 17 digits
 * finds the shortest, which 17 always reaches. That needs all 53 bits: a
 * subnormal tries every precision from 1. */
static int shortest_digits(double d, char digits[18], int *exp10, bool *negative)
{
    char e[40];
    bool subnormal = d != 0.0 && fabs(d) < DBL_MIN;
    int bin_exp;
    bool pow2 = !subnormal && d != 0.0 && fabs(frexp(d, &bin_exp)) == 0.5;
    bool found = false;
    for (int prec = subnormal ? 1 : 15; prec <= 17 && !found; prec++)
        found = try_prec(d, prec, pow2, e, sizeof e);
    if (!found)
        return -1;
    /* e is "[-]d.ddd...e[+-]xx" */
    const char *p = e;
    *negative = *p == '-';
    if (*negative)
        p++;
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < 17)
            digits[nd++] = *p;
    if (*p != 'e')
        return -1;
    *exp10 = (int)strtol(p + 1, NULL, 10);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    return nd;
}

static int put_plain(char *buf, size_t *n, const char *digits, int nd, int x)
{
    if (x < 0) {
        memcpy(buf + *n, "0.", 2);
        *n += 2;
        for (int i = -1; i > x; i--)
            buf[(*n)++] = '0';
        memcpy(buf + *n, digits, (size_t)nd);
        *n += (size_t)nd;
        return 0;
    }
    for (int i = 0; i <= x; i++) /* integer part, padded with zeros */
        buf[(*n)++] = i < nd ? digits[i] : '0';
    buf[(*n)++] = '.';
    if (nd > x + 1) {
        memcpy(buf + *n, digits + x + 1, (size_t)(nd - x - 1));
        *n += (size_t)(nd - x - 1);
    } else {
        buf[(*n)++] = '0'; /* a real stays a real: "1.0", not "1" */
    }
    return 0;
}

int iot_json_real_text(double d, char *buf)
{
    if (!isfinite(d))
        return -1;
    char digits[18];
    int x;
    bool negative;
    int nd = shortest_digits(d, digits, &x, &negative);
    if (nd < 1)
        return -1;
    size_t n = 0;
    if (negative)
        buf[n++] = '-';
    if (x >= -4 && x < 17) {
        put_plain(buf, &n, digits, nd, x);
    } else {
        buf[n++] = digits[0];
        if (nd > 1) {
            buf[n++] = '.';
            memcpy(buf + n, digits + 1, (size_t)(nd - 1));
            n += (size_t)(nd - 1);
        }
        n += (size_t)snprintf(buf + n, IOT_JSON_REAL_MAX - n, "e%d", x);
    }
    buf[n] = '\0';
    return (int)n;
}

static bool number_start(char c) { return c == '-' || (c >= '0' && c <= '9'); }
static bool number_char(char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* Appends the token in[0..len) rewritten when it is a real that reads back
 * whole and finite, else as is. */
static void put_number(struct iot_buf *b, const char *in, size_t len)
{
    bool real = memchr(in, '.', len) || memchr(in, 'e', len) || memchr(in, 'E', len);
    if (real && len < TOKEN_MAX) {
        char token[TOKEN_MAX], out[IOT_JSON_REAL_MAX];
        memcpy(token, in, len);
        token[len] = '\0';
        char *end;
        double d = strtod(token, &end);
        int n = end == token + len ? iot_json_real_text(d, out) : -1;
        if (n > 0) {
            iot_buf_append(b, out, (size_t)n);
            return;
        }
    }
    iot_buf_append(b, in, len);
}

char *iot_json_shorten_reals(const char *in, size_t len, size_t *out_len)
{
    struct iot_buf b = {0};
    size_t i = 0, copied = 0;
    bool in_string = false;
    while (i < len) {
        char c = in[i];
        if (in_string) {
            i += c == '\\' ? 2 : 1;
            in_string = c != '"';
            continue;
        }
        if (c == '"' || !number_start(c)) {
            in_string = c == '"';
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && number_char(in[i]))
            i++;
        iot_buf_append(&b, in + copied, start - copied);
        put_number(&b, in + start, i - start);
        copied = i;
    }
    iot_buf_append(&b, in + copied, len - copied); /* also makes "" of empty input */
    return iot_buf_take(&b, out_len);
}

char *iot_json_dumps(const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return NULL;
    size_t len;
    char *out = iot_json_shorten_reals(text, strlen(text), &len);
    free(text);
    return out;
}

json_t *iot_json_time(int64_t ms)
{
    if (ms == 0)
        return json_null();
    char buf[IOT_ISO8601_LEN + 1];
    iot_iso8601(ms, buf, sizeof buf);
    return json_string(buf);
}
