/* retention.c — the retention thread; see retention.h. */
#include "core/retention.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define RETENTION_PERIOD_MS INT64_C(3600000)

struct iot_retention {
    struct iot_telemetry *tm;
    int64_t raw_ms, rollup_ms;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping, running;
    pthread_t thread;
};

void iot_retention_run(struct iot_telemetry *tm, int64_t raw_ms, int64_t rollup_ms, int64_t now)
{
    if (!raw_ms && !rollup_ms)
        return;
    int64_t raw_before = raw_ms ? now - raw_ms : INT64_MIN;
    int64_t rollup_before = rollup_ms ? now - rollup_ms : INT64_MIN;
    int64_t removed = 0;
    int rc = iot_tm_purge(tm, raw_before, rollup_before, &removed);
    if (rc)
        IOT_WARN("retention: purge failed: %s", iot_strerror(rc));
    else if (removed)
        IOT_INFO("retention: removed %lld old rows", (long long)removed);
}

static void *retention_main(void *arg)
{
    struct iot_retention *r = arg;
    pthread_setname_np(pthread_self(), "retention");
    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        pthread_mutex_unlock(&r->lock);
        iot_retention_run(r->tm, r->raw_ms, r->rollup_ms, iot_now_ms());
        pthread_mutex_lock(&r->lock);
        struct timespec deadline = iot_deadline_ms(CLOCK_MONOTONIC, RETENTION_PERIOD_MS);
        while (!r->stopping &&
               pthread_cond_timedwait(&r->wake, &r->lock, &deadline) == 0)
            ;
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

struct iot_retention *iot_retention_start(struct iot_telemetry *tm, int64_t raw_ms,
                                          int64_t rollup_ms)
{
    int rc = iot_tm_set_retention(tm, raw_ms, rollup_ms);
    if (rc)
        IOT_WARN("retention: the telemetry store refused the periods: %s", iot_strerror(rc));
    struct iot_retention *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    *r = (struct iot_retention){.tm = tm, .raw_ms = raw_ms, .rollup_ms = rollup_ms};
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake, &attr);
    pthread_condattr_destroy(&attr);
    /* A store that expires rows itself needs no thread. */
    if (tm->ops->caps & IOT_TM_CAP_TTL)
        return r;
    if (pthread_create(&r->thread, NULL, retention_main, r) != 0) {
        iot_retention_stop(r);
        return NULL;
    }
    r->running = true;
    return r;
}

void iot_retention_stop(struct iot_retention *r)
{
    if (!r)
        return;
    if (r->running) {
        pthread_mutex_lock(&r->lock);
        r->stopping = true;
        pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->thread, NULL);
    }
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
