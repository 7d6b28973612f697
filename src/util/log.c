#include "util/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/utf8.h"

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

size_t iot_log_escape(const char *in, size_t len, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        char esc[12];
        size_t n = 0, take = 1;
        uint32_t cp = 0;
        unsigned char c = s[i];
        if (c == '\\') {
            n = (size_t)snprintf(esc, sizeof esc, "\\\\");
        } else if (c == '\n' || c == '\r' || c == '\t') {
            n = (size_t)snprintf(esc, sizeof esc, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        } else if (c < 0x20 || c == 0x7f) {
            n = (size_t)snprintf(esc, sizeof esc, "\\x%c%c", hex[c >> 4], hex[c & 15]);
        } else if (c >= 0x80) {
            size_t next = i;
            if (!iot_utf8_next(in, len, &next, &cp)) {
                n = (size_t)snprintf(esc, sizeof esc, "\\x%c%c", hex[c >> 4], hex[c & 15]);
            } else {
                take = next - i;
                if (iot_codepoint_invisible(cp))
                    n = cp > 0xffff ? (size_t)snprintf(esc, sizeof esc, "\\U%08x", (unsigned)cp)
                                    : (size_t)snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
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
