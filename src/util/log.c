#include "util/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util/clock.h"
#include "util/err.h"

static atomic_int current_level = IOT_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void iot_log_set_level(enum iot_log_level level) { atomic_store(&current_level, (int)level); }

int iot_log_enabled(enum iot_log_level level) { return (int)level >= atomic_load(&current_level); }

int iot_log_parse_level(const char *s, enum iot_log_level *out)
{
    for (int i = IOT_LOG_DEBUG; i <= IOT_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum iot_log_level)i;
            return IOT_OK;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = IOT_LOG_WARN;
        return IOT_OK;
    }
    return IOT_EINVAL;
}

/* Length of the valid UTF-8 sequence at s (at most `avail` bytes) and its
 * code point, or 0 when the bytes there are not valid UTF-8 (overlong forms
 * and surrogates included). */
static size_t utf8_decode(const unsigned char *s, size_t avail, unsigned *cp)
{
    size_t n;
    unsigned min;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, min = 0x80, *cp = s[0] & 0x1fu;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, min = 0x800, *cp = s[0] & 0x0fu;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, min = 0x10000, *cp = s[0] & 0x07u;
    else
        return 0;
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3fu);
    }
    if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
        return 0;
    return n;
}

/* C1 controls (0x9b is CSI on 8-bit terminals), line and paragraph
 * separators (new lines to some log viewers) and the bidi controls that
 * make text display in another order than it is stored. */
static bool unsafe_code_point(unsigned cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x2028 && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

size_t iot_log_escape(const char *in, size_t len, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        char esc[8];
        size_t n = 0, take = 1;
        unsigned cp = 0;
        unsigned char c = s[i];
        if (c == '\\') {
            n = (size_t)snprintf(esc, sizeof esc, "\\\\");
        } else if (c == '\n' || c == '\r' || c == '\t') {
            n = (size_t)snprintf(esc, sizeof esc, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        } else if (c < 0x20 || c == 0x7f) {
            n = (size_t)snprintf(esc, sizeof esc, "\\x%c%c", hex[c >> 4], hex[c & 15]);
        } else if (c >= 0x80) {
            take = utf8_decode(s + i, len - i, &cp);
            if (take == 0) {
                take = 1;
                n = (size_t)snprintf(esc, sizeof esc, "\\x%c%c", hex[c >> 4], hex[c & 15]);
            } else if (unsafe_code_point(cp)) {
                n = (size_t)snprintf(esc, sizeof esc, "\\u%04x", cp);
            }
        }
        const char *src = n ? esc : in + i;
        size_t add = n ? n : take;
        if (o + add >= size)
            break;
        memcpy(out + o, src, add);
        o += add;
        i += take;
    }
    out[o] = '\0';
    return o;
}

void iot_log(enum iot_log_level level, const char *fmt, ...)
{
    if (!iot_log_enabled(level) || level >= IOT_LOG_OFF)
        return;
    char message[2048], line[2048];
    char ts[IOT_ISO8601_LEN + 1];
    iot_iso8601(iot_now_ms(), ts, sizeof ts);
    int n = snprintf(line, sizeof line, "%s %-5s ", ts, level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    /* Escaped here, after formatting, so that no caller can forget it. */
    size_t mlen = (size_t)len < sizeof message ? (size_t)len : sizeof message - 1;
    iot_log_escape(message, mlen, line + n, sizeof line - (size_t)n);
    /* One write per line so concurrent threads never interleave. */
    fprintf(stderr, "%s\n", line);
}
