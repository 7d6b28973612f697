/* timerange_fuzz.c — libFuzzer target for the time expressions of the
 * query string (src/core/timerange.c: "now", "-15m", ISO-8601; windows
 * "5m") and the ISO-8601 parser and formatter under them
 * (src/util/clock.c). The input, cut at its first NUL, is one expression.
 *
 * Besides memory errors it checks what the API relies on: a parsed
 * ISO-8601 time formats to text that parses back to the same instant
 * (timestamps go out in that form and come back as cursors and ranges), a
 * relative offset lies within its bound before now, and a window is within
 * 1 s .. 366 d.
 *
 * Build for fuzzing with clang -DFUZZING -fsanitize=fuzzer,address,undefined;
 * without FUZZING it is a plain program replaying files (fuzz_replay.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/timerange.h"
#include "util/clock.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_MS INT64_C(1795000000000)
#define DAY_MS INT64_C(86400000)
#define YEAR_0 INT64_C(-62167219200000)       /* 0000-01-01T00:00:00Z */
#define YEAR_10000 INT64_C(253402300800000)   /* 10000-01-01T00:00:00Z */

static void check_iso_round_trip(int64_t ms)
{
    if (ms < YEAR_0 || ms >= YEAR_10000)
        return; /* the formatter writes only years 0000-9999 */
    char text[IOT_ISO8601_LEN + 1];
    iot_iso8601(ms, text, sizeof text);
    int64_t back;
    if (iot_parse_iso8601(text, &back) != IOT_OK || back != ms)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0; /* query values are short; longer inputs add nothing */
    char s[257];
    memcpy(s, data, size);
    s[size] = '\0';

    int64_t ms;
    if (iot_parse_iso8601(s, &ms) == IOT_OK)
        check_iso_round_trip(ms);
    if (iot_time_parse(s, NOW_MS, &ms) == IOT_OK) {
        if (s[0] == '-' && (ms > NOW_MS || ms < NOW_MS - 3660 * DAY_MS))
            abort();
        check_iso_round_trip(ms);
    }
    if (iot_window_parse(s, &ms) == IOT_OK && (ms < 1000 || ms > 366 * DAY_MS))
        abort();
    return 0;
}

#ifndef FUZZING
#include "fuzz_replay.h"

int main(int argc, char **argv)
{
    return fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);
}
#endif
