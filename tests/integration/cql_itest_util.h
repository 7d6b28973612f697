/* cql_itest_util.h — what the CQL integration tests share: a monotonic clock
 * in ms, a slice over a buffer, and scripts/services.sh to stop and start
 * the Cassandra nodes under test (IOT_SOURCE_DIR names the source tree). */
#ifndef CQL_ITEST_UTIL_H
#define CQL_ITEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cql/cql_buf.h"
#include "cql/cql_types.h"

static inline uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline struct cql_slice slice_of(const struct cql_buf *b)
{
    return (struct cql_slice){b->data, b->len};
}

/* scripts/services.sh <action> <what> (e.g. "stop", "cassandra3.2"). */
static inline int services(const char *action, const char *what)
{
    const char *root = getenv("IOT_SOURCE_DIR");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s/scripts/services.sh %s %s >/dev/null", root ? root : ".", action,
             what);
    fprintf(stderr, "  %s\n", cmd);
    return system(cmd);
}

#endif
