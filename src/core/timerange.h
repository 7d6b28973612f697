/* timerange.h — the time expressions of the telemetry API: "now",
 * relative offsets ("-30s", "-15m", "-1h", "-24h", "-7d", "-30d", also
 * "-2w") and ISO-8601 date-times; and aggregation windows ("1m", "5m",
 * "15m", "1h", "1d"). Pure functions of their inputs (the caller passes
 * "now"). */
#ifndef IOT_CORE_TIMERANGE_H
#define IOT_CORE_TIMERANGE_H

#include <stdint.h>

/* Parses a time expression relative to now_ms into *ms. IOT_EINVAL when
 * it is none of the accepted forms. */
int iot_time_parse(const char *s, int64_t now_ms, int64_t *ms);

/* Parses a window "<n>s|m|h|d" into ms (1 s .. 366 d). */
int iot_window_parse(const char *s, int64_t *ms);

#endif
