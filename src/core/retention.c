/* retention.c — the retention thread (see retention.h). */
#include "core/retention.h"

#include <pthread.h>
#include <stdlib.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

struct iot_retention {
    struct iot_retention_config cfg;
    struct iot_telemetry *tm;
    bool purges; /* a thread was started */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* on CLOCK_MONOTONIC */
    bool stopping, joined;
    pthread_t thread;
};

/* One purge of everything older than the periods, as of now. */
static void purge(struct iot_retention *r)
{
    int64_t now = iot_now_ms();
    int64_t raw_before = r->cfg.raw_ms ? now - r->cfg.raw_ms : INT64_MIN;
    int64_t rollup_before = r->cfg.rollup_ms ? now - r->cfg.rollup_ms : INT64_MIN;
    int64_t removed = 0;
    int rc = iot_tm_purge(r->tm, raw_before, rollup_before, &removed);
    if (rc)
        IOT_WARN("retention: purge failed: %s", iot_strerror(rc));
    else if (removed)
        IOT_INFO("retention: removed %lld old rows", (long long)removed);
}

/* Waits one period, or less when asked to stop; true when stopping. The
 * wait is on the monotonic clock: a wall clock set back would stall it. */
static bool wait_period(struct iot_retention *r)
{
    struct timespec until = iot_deadline_ms(CLOCK_MONOTONIC, r->cfg.period_ms);
    pthread_mutex_lock(&r->lock);
    while (!r->stopping && pthread_cond_timedwait(&r->wake, &r->lock, &until) == 0)
        ;
    bool stopping = r->stopping;
    pthread_mutex_unlock(&r->lock);
    return stopping;
}

static void *retention_main(void *arg)
{
    struct iot_retention *r = arg;
    pthread_setname_np(pthread_self(), "tm-retention");
    do
        purge(r);
    while (!wait_period(r));
    return NULL;
}

static void retention_destroy(struct iot_retention *r)
{
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

int iot_retention_start(const struct iot_retention_config *cfg, struct iot_telemetry *tm,
                        struct iot_retention **out)
{
    *out = NULL;
    if (cfg->raw_ms < 0 || cfg->rollup_ms < 0 || cfg->period_ms < 0)
        return IOT_EINVAL;
    int rc = iot_tm_set_retention(tm, cfg->raw_ms, cfg->rollup_ms);
    if (rc) {
        IOT_ERROR("retention: the telemetry store (%s) refused its retention (raw %lld ms, "
                  "rollups %lld ms): %s", tm->ops->name, (long long)cfg->raw_ms,
                  (long long)cfg->rollup_ms, iot_strerror(rc));
        return rc;
    }
    struct iot_retention *r = calloc(1, sizeof *r);
    if (!r)
        return IOT_ENOMEM;
    r->cfg = *cfg;
    if (!r->cfg.period_ms)
        r->cfg.period_ms = IOT_RETENTION_PERIOD_MS;
    r->tm = tm;
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake, &attr);
    pthread_condattr_destroy(&attr);
    bool store_expires = (tm->ops->caps & IOT_TM_CAP_TTL) != 0;
    bool anything = cfg->raw_ms || cfg->rollup_ms;
    if (!store_expires && anything) {
        if (pthread_create(&r->thread, NULL, retention_main, r) != 0) {
            retention_destroy(r);
            return IOT_ENOMEM;
        }
        r->purges = true;
    }
    *out = r;
    return IOT_OK;
}

bool iot_retention_purges(const struct iot_retention *r)
{
    return r && r->purges;
}

void iot_retention_stop(struct iot_retention *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    bool joined = r->joined;
    r->stopping = r->joined = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    if (r->purges && !joined)
        pthread_join(r->thread, NULL);
}

void iot_retention_free(struct iot_retention *r)
{
    if (!r)
        return;
    iot_retention_stop(r);
    retention_destroy(r);
}
