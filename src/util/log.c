#include "util/log.h"

#include <stdarg.h>
#include <stdatomic.h>
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

void iot_log(enum iot_log_level level, const char *fmt, ...)
{
    if (!iot_log_enabled(level) || level >= IOT_LOG_OFF)
        return;
    char line[2048];
    char ts[IOT_ISO8601_LEN + 1];
    iot_iso8601(iot_now_ms(), ts, sizeof ts);
    int n = snprintf(line, sizeof line, "%s %-5s ", ts, level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line so concurrent threads never interleave. */
    fprintf(stderr, "%s\n", line);
}
