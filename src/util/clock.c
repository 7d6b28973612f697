#include "util/clock.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/err.h"

static _Atomic(int64_t (*)(void)) clock_override;

static int64_t real_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t iot_now_ms(void)
{
    int64_t (*fn)(void) = atomic_load(&clock_override);
    return fn ? fn() : real_now_ms();
}

void iot_clock_override(int64_t (*now_ms)(void)) { atomic_store(&clock_override, now_ms); }

static _Atomic(int64_t (*)(void)) mono_override;

void iot_mono_override(int64_t (*mono_us)(void)) { atomic_store(&mono_override, mono_us); }

int64_t iot_mono_real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t iot_mono_us(void)
{
    int64_t (*fn)(void) = atomic_load(&mono_override);
    return fn ? fn() : iot_mono_real_us();
}

static void put_digits(char *p, int value, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + value % 10);
        value /= 10;
    }
}

/* Civil date of a day count since 1970-01-01 (proleptic Gregorian). */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* Formatting by hand: history pages format one timestamp per record, and
 * gmtime_r + snprintf was a visible share of a 1000-row query. */
void iot_iso8601(int64_t ms, char *buf, size_t size)
{
    if (size < IOT_ISO8601_LEN + 1) {
        if (size)
            buf[0] = '\0';
        return;
    }
    int64_t days = ms >= 0 ? ms / 86400000 : (ms - 86399999) / 86400000;
    int64_t in_day = ms - days * 86400000;
    int y, mo, d;
    civil_from_days(days, &y, &mo, &d);
    if (y < 0 || y > 9999) {
        snprintf(buf, size, "%s", "0000-00-00T00:00:00.000Z");
        return;
    }
    memcpy(buf, "0000-00-00T00:00:00.000Z", IOT_ISO8601_LEN + 1);
    put_digits(buf, y, 4);
    put_digits(buf + 5, mo, 2);
    put_digits(buf + 8, d, 2);
    put_digits(buf + 11, (int)(in_day / 3600000), 2);
    put_digits(buf + 14, (int)(in_day / 60000 % 60), 2);
    put_digits(buf + 17, (int)(in_day / 1000 % 60), 2);
    put_digits(buf + 20, (int)(in_day % 1000), 3);
}

/* Reads exactly n decimal digits at *p, advancing it. */
static int read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return IOT_EINVAL;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return IOT_OK;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 ? 28 + leap : days[month - 1];
}

/* Days from 1970-01-01 to the given civil date (proleptic Gregorian). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int parse_time_part(const char **p, int *hh, int *mi, int *ss, int *millis)
{
    if (read_digits(p, 2, hh) || **p != ':')
        return IOT_EINVAL;
    (*p)++;
    if (read_digits(p, 2, mi))
        return IOT_EINVAL;
    if (**p == ':') {
        (*p)++;
        if (read_digits(p, 2, ss))
            return IOT_EINVAL;
        if (**p == '.') {
            (*p)++;
            int digits = 0, frac = 0;
            while (**p >= '0' && **p <= '9') {
                if (digits < 3)
                    frac = frac * 10 + (**p - '0');
                digits++;
                (*p)++;
            }
            if (digits == 0 || digits > 9)
                return IOT_EINVAL;
            for (int i = digits; i < 3; i++)
                frac *= 10;
            *millis = frac;
        }
    }
    if (*hh > 23 || *mi > 59 || *ss > 60)
        return IOT_EINVAL;
    return IOT_OK;
}

static int parse_offset(const char **p, int *offset_min)
{
    char c = **p;
    if (c == 'Z' || c == 'z') {
        (*p)++;
        return IOT_OK;
    }
    if (c != '+' && c != '-')
        return c == '\0' ? IOT_OK : IOT_EINVAL;
    (*p)++;
    int oh, om = 0;
    if (read_digits(p, 2, &oh))
        return IOT_EINVAL;
    if (**p == ':')
        (*p)++;
    if (**p && read_digits(p, 2, &om))
        return IOT_EINVAL;
    if (oh > 23 || om > 59)
        return IOT_EINVAL;
    *offset_min = (c == '-' ? -1 : 1) * (oh * 60 + om);
    return IOT_OK;
}

int iot_parse_iso8601(const char *s, int64_t *ms)
{
    const char *p = s;
    int y, mo, d, hh = 0, mi = 0, ss = 0, millis = 0, offset_min = 0;
    if (read_digits(&p, 4, &y) || *p++ != '-' || read_digits(&p, 2, &mo) || *p++ != '-' ||
        read_digits(&p, 2, &d))
        return IOT_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return IOT_EINVAL;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (parse_time_part(&p, &hh, &mi, &ss, &millis))
            return IOT_EINVAL;
        if (parse_offset(&p, &offset_min))
            return IOT_EINVAL;
    }
    if (*p != '\0')
        return IOT_EINVAL;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss;
    *ms = (secs - (int64_t)offset_min * 60) * 1000 + millis;
    return IOT_OK;
}

struct timespec iot_deadline_ms(clockid_t clock, int64_t ms)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}
