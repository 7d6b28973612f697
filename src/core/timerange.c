#include "core/timerange.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/err.h"

#define MAX_SPAN_MS (INT64_C(3660) * 86400000) /* ten years and then some */

static int unit_ms(char unit, int64_t *ms)
{
    switch (unit) {
    case 's': *ms = 1000; return IOT_OK;
    case 'm': *ms = 60000; return IOT_OK;
    case 'h': *ms = 3600000; return IOT_OK;
    case 'd': *ms = 86400000; return IOT_OK;
    case 'w': *ms = 7 * 86400000LL; return IOT_OK;
    default: return IOT_EINVAL;
    }
}

/* "<digits><unit>" → ms, bounded. */
static int parse_span(const char *s, int64_t *ms)
{
    if (*s < '0' || *s > '9')
        return IOT_EINVAL;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    int64_t unit;
    if (errno || end[0] == '\0' || end[1] != '\0' || unit_ms(end[0], &unit))
        return IOT_EINVAL;
    if (n > MAX_SPAN_MS / unit)
        return IOT_EINVAL;
    *ms = n * unit;
    return IOT_OK;
}

int iot_time_parse(const char *s, int64_t now_ms, int64_t *ms)
{
    if (!s || !*s)
        return IOT_EINVAL;
    if (strcmp(s, "now") == 0) {
        *ms = now_ms;
        return IOT_OK;
    }
    if (s[0] == '-') {
        int64_t span;
        if (parse_span(s + 1, &span))
            return IOT_EINVAL;
        *ms = now_ms - span;
        return IOT_OK;
    }
    return iot_parse_iso8601(s, ms);
}

int iot_window_parse(const char *s, int64_t *ms)
{
    int64_t w;
    if (!s || parse_span(s, &w) || w < 1000 || w > 366 * 86400000LL)
        return IOT_EINVAL;
    *ms = w;
    return IOT_OK;
}
