/* log.h — leveled logging to stderr, one line per event.
 *
 * Lines look like "2026-11-27T11:00:14.123Z info  message". The level is set
 * once at start-up; iot_log is thread-safe (one fprintf per line). Every
 * message is escaped by the formatter itself (iot_log_escape), so a value
 * from a client (a path, a username) can never forge a line or reach the
 * operator's terminal as a control sequence, whichever caller logs it. */
#ifndef IOT_UTIL_LOG_H
#define IOT_UTIL_LOG_H

#include <stddef.h>

enum iot_log_level { IOT_LOG_DEBUG, IOT_LOG_INFO, IOT_LOG_WARN, IOT_LOG_ERROR, IOT_LOG_OFF };

void iot_log_set_level(enum iot_log_level level);
int iot_log_enabled(enum iot_log_level level);
/* Parses "debug|info|warn|error|off"; returns 0 or IOT_EINVAL. */
int iot_log_parse_level(const char *s, enum iot_log_level *out);
void iot_log(enum iot_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copies len bytes of `in` to `out` (always NUL-terminated, size > 0) with
 * everything a terminal or a line-based log reader could act on escaped:
 * C0 controls and DEL as \n \r \t or \xHH; every other code point of
 * utf8.h's invisible list (C1 controls, zero-width and bidi characters,
 * line separators, ...) as \uXXXX, or \UXXXXXXXX above U+FFFF; bytes that
 * are not valid UTF-8 as \xHH; and the backslash as \\ (so an escape is
 * never ambiguous). Stops at
 * a whole character when out is full. Returns the length written. */
size_t iot_log_escape(const char *in, size_t len, char *out, size_t size);

#define IOT_DEBUG(...) iot_log(IOT_LOG_DEBUG, __VA_ARGS__)
#define IOT_INFO(...) iot_log(IOT_LOG_INFO, __VA_ARGS__)
#define IOT_WARN(...) iot_log(IOT_LOG_WARN, __VA_ARGS__)
#define IOT_ERROR(...) iot_log(IOT_LOG_ERROR, __VA_ARGS__)

#endif
