/* clock.h — wall-clock time in Unix epoch milliseconds and its ISO-8601 form.
 *
 * All of iotflowd reads the time through iot_now_ms() and iot_mono_us() so
 * that tests can inject a clock (retention, TTLs, presence windows).
 * Thread-safe. */
#ifndef IOT_UTIL_CLOCK_H
#define IOT_UTIL_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Current UTC time in ms since the epoch (or the injected clock's). */
int64_t iot_now_ms(void);

/* Replace the clock for tests; NULL restores the real one. */
void iot_clock_override(int64_t (*now_ms)(void));

/* Monotonic microseconds, for measuring durations and process-local TTLs
 * (or the injected clock's). */
int64_t iot_mono_us(void);
/* The monotonic clock itself, whatever a test injected: for measuring how
 * long something took (the store metrics), not for deadlines. */
int64_t iot_mono_real_us(void);

/* Replace the monotonic clock for tests (e.g. the API-key cache's expiry);
 * NULL restores the real one. iot_deadline_ms always reads the real one. */
void iot_mono_override(int64_t (*mono_us)(void));

/* The time `ms` from now on `clock`: a deadline for pthread_cond_timedwait
 * (CLOCK_REALTIME for a default condition variable, CLOCK_MONOTONIC for
 * one whose attribute says so). Not the injected clock. */
struct timespec iot_deadline_ms(clockid_t clock, int64_t ms);

#define IOT_ISO8601_LEN 24 /* "2026-11-27T11:00:14.123Z" */

/* Formats ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (>= IOT_ISO8601_LEN+1). */
void iot_iso8601(int64_t ms, char *buf, size_t size);

/* Parses an ISO-8601 date-time: "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.fff]]"
 * with an optional "Z" or "±HH:MM" offset (none means UTC); 'T' may be a
 * space. Returns 0 and sets *ms, or IOT_EINVAL. */
int iot_parse_iso8601(const char *s, int64_t *ms);

#endif
