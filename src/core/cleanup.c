/* cleanup.c — the clean-up of deleted devices and users (cleanup.h): their
 * telemetry and their documents, the attempt made by the deleting request,
 * the retry passes over the registry's pending rows, and the thread that
 * runs them.
 *
 * Locks: `lock` guards the thread's state and the log state; `pass_lock`
 * makes one cleaner's passes run one at a time. Neither is held across a
 * store call except pass_lock, which nothing else waits on but a pass. */
#include "core/cleanup.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define POLL_MS_DEFAULT INT64_C(10000)
#define RETRY_MIN_MS_DEFAULT INT64_C(5000)
#define RETRY_MAX_MS_DEFAULT INT64_C(600000)

struct iot_cleaner {
    struct iot_cleaner_config cfg;
    struct iot_registry *reg;
    struct iot_telemetry *tm;
    struct iot_docs *docs; /* NULL: no documents to remove */

    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC: the thread's waits */
    pthread_t thread;
    bool running, stopping;
    /* Logged once per change: removals failing, the registry's list of
     * pending rows failing. */
    bool failing, list_failing;
    int64_t failures; /* failed attempts since `failing` was set */

    pthread_mutex_t pass_lock;
    struct iot_pending_cleanup rows[IOT_CLEANUP_PAGE_MAX]; /* the pass's page */
};

static const char *kind_name(enum iot_cleanup_kind kind)
{
    const char *name = iot_reg_cleanup_kind_name(kind);
    return name ? name : "?";
}

int64_t iot_cleaner_retry_delay(const struct iot_cleaner *c, int64_t attempts)
{
    int64_t delay = c->cfg.retry_min_ms;
    for (int64_t i = 1; i < attempts && delay < c->cfg.retry_max_ms; i++)
        delay *= 2;
    return delay < c->cfg.retry_max_ms ? delay : c->cfg.retry_max_ms;
}

/* ---- logging once per change ------------------------------------------------ */

static void note_failure(struct iot_cleaner *c, enum iot_cleanup_kind kind, int64_t id,
                         const char *what, int rc)
{
    pthread_mutex_lock(&c->lock);
    bool first = !c->failing;
    c->failing = true;
    c->failures++;
    pthread_mutex_unlock(&c->lock);
    if (first)
        IOT_WARN("%s of deleted %s %lld not removed: %s; the clean-up stays pending in the"
                 " registry and is retried with backoff (%lld s up to %lld s); further failures"
                 " are not logged until clean-ups succeed again",
                 what, kind_name(kind), (long long)id, iot_strerror(rc),
                 (long long)(c->cfg.retry_min_ms / 1000), (long long)(c->cfg.retry_max_ms / 1000));
    else
        IOT_DEBUG("%s of deleted %s %lld not removed: %s", what, kind_name(kind), (long long)id,
                  iot_strerror(rc));
}

static void note_success(struct iot_cleaner *c)
{
    pthread_mutex_lock(&c->lock);
    bool was = c->failing;
    int64_t failures = c->failures;
    c->failing = false;
    c->failures = 0;
    pthread_mutex_unlock(&c->lock);
    if (was)
        IOT_INFO("clean-ups of deleted devices and users succeed again (after %lld failed"
                 " attempt%s)",
                 (long long)failures, failures == 1 ? "" : "s");
}

static void note_list(struct iot_cleaner *c, int rc)
{
    pthread_mutex_lock(&c->lock);
    bool changed = c->list_failing != (rc != IOT_OK);
    c->list_failing = rc != IOT_OK;
    pthread_mutex_unlock(&c->lock);
    if (changed && rc)
        IOT_WARN("pending clean-ups cannot be read from the registry: %s; trying again"
                 " every %lld s",
                 iot_strerror(rc), (long long)(c->cfg.poll_ms / 1000));
    else if (changed)
        IOT_INFO("pending clean-ups are read from the registry again");
}

/* ---- one attempt --------------------------------------------------------------- */

static int remove_telemetry(struct iot_cleaner *c, enum iot_cleanup_kind kind, int64_t id)
{
    switch (kind) {
    case IOT_CLEANUP_DEVICE: return iot_tm_delete_device(c->tm, id);
    case IOT_CLEANUP_USER: return iot_tm_delete_user(c->tm, id);
    default: return IOT_EINVAL;
    }
}

/* Every document of the device or user, in every collection — except,
 * for a device, its events: the audit trail stays with the owner until
 * the owner goes (a user's clean-up takes them). Each delete_where is
 * idempotent, so a retry after a partial failure simply repeats them. */
static int remove_documents(struct iot_cleaner *c, enum iot_cleanup_kind kind, int64_t id)
{
    if (!c->docs)
        return IOT_OK;
    if (kind != IOT_CLEANUP_DEVICE && kind != IOT_CLEANUP_USER)
        return IOT_EINVAL;
    for (int coll = 0; coll < IOT_DOCS_N_COLLS; coll++) {
        if (kind == IOT_CLEANUP_DEVICE && coll == IOT_DOCS_EVENTS)
            continue;
        struct iot_docs_filter f = {0};
        if (kind == IOT_CLEANUP_DEVICE)
            f.device_id = id;
        else
            f.user_id = id;
        int rc = iot_docs_delete_where(c->docs, (enum iot_docs_coll)coll, &f, NULL);
        if (rc)
            return rc;
    }
    return IOT_OK;
}

/* Both stores, telemetry first; *what names the one that failed. */
static int remove_data(struct iot_cleaner *c, enum iot_cleanup_kind kind, int64_t id,
                       const char **what)
{
    *what = "telemetry";
    int rc = remove_telemetry(c, kind, id);
    if (rc)
        return rc;
    *what = "documents";
    return remove_documents(c, kind, id);
}

/* Removes the telemetry and the documents and marks the row done, or
 * records the failure with the row's next attempt after the backoff for
 * `attempts` + 1 failures. *marked tells whether the registry took the
 * outcome (a row that is gone counts: another instance finished it). */
static int attempt(struct iot_cleaner *c, enum iot_cleanup_kind kind, int64_t id,
                   int64_t attempts, int64_t now, bool *marked)
{
    const char *what;
    int rc = remove_data(c, kind, id, &what);
    int reg_rc;
    if (rc == IOT_OK) {
        note_success(c);
        reg_rc = iot_reg_cleanup_done(c->reg, kind, id);
    } else {
        note_failure(c, kind, id, what, rc);
        int64_t delay = iot_cleaner_retry_delay(c, attempts + 1);
        int64_t next_at = now < INT64_MAX - delay ? now + delay : INT64_MAX;
        reg_rc = iot_reg_cleanup_failed(c->reg, kind, id, next_at, iot_strerror(rc));
    }
    *marked = reg_rc == IOT_OK || reg_rc == IOT_ENOTFOUND;
    if (!*marked) /* the row keeps its state: a later pass repeats the (idempotent) removal */
        IOT_DEBUG("pending clean-up of %s %lld not updated: %s", kind_name(kind), (long long)id,
                  iot_strerror(reg_rc));
    return rc;
}

int iot_cleaner_after_delete(struct iot_cleaner *c, enum iot_cleanup_kind kind,
                             int64_t target_id)
{
    if (!c)
        return IOT_EINVAL;
    bool marked;
    return attempt(c, kind, target_id, 0, iot_now_ms(), &marked);
}

/* ---- passes ------------------------------------------------------------------- */

/* One page of due rows; false when the pass should end (nothing left, a
 * failure, or the registry did not take an outcome: the page would come
 * back unchanged). */
static bool pass_page(struct iot_cleaner *c, int64_t now, struct iot_cleaner_pass *p, int *rc)
{
    size_t n = 0;
    *rc = iot_reg_cleanup_list(c->reg, now, c->rows, IOT_CLEANUP_PAGE_MAX, &n);
    note_list(c, *rc);
    if (*rc || n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        const struct iot_pending_cleanup *row = &c->rows[i];
        bool marked;
        int arc = attempt(c, row->kind, row->target_id, row->attempts, now, &marked);
        p->attempted++;
        if (arc) {
            p->failed++;
            return false;
        }
        p->done++;
        if (!marked)
            return false;
    }
    return true;
}

int iot_cleaner_pass(struct iot_cleaner *c, int64_t now, struct iot_cleaner_pass *out)
{
    struct iot_cleaner_pass p = {0};
    int rc = IOT_OK;
    pthread_mutex_lock(&c->pass_lock);
    while (pass_page(c, now, &p, &rc))
        ;
    pthread_mutex_unlock(&c->pass_lock);
    if (p.done && !p.failed)
        IOT_INFO("removed the telemetry and documents of %zu deleted devices or users left"
                 " pending", p.done);
    if (out)
        *out = p;
    return rc;
}

/* ---- the thread ------------------------------------------------------------ */

static void *cleaner_main(void *arg)
{
    struct iot_cleaner *c = arg;
    pthread_setname_np(pthread_self(), "tm-cleanup");
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        pthread_mutex_unlock(&c->lock);
        iot_cleaner_pass(c, iot_now_ms(), NULL);
        pthread_mutex_lock(&c->lock);
        if (c->stopping)
            break;
        struct timespec deadline = iot_deadline_ms(CLOCK_MONOTONIC, c->cfg.poll_ms);
        pthread_cond_timedwait(&c->wake, &c->lock, &deadline);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

struct iot_cleaner *iot_cleaner_new(const struct iot_cleaner_config *cfg,
                                    struct iot_registry *reg, struct iot_telemetry *tm,
                                    struct iot_docs *docs)
{
    struct iot_cleaner *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = cfg ? *cfg : (struct iot_cleaner_config){0};
    if (c->cfg.poll_ms <= 0)
        c->cfg.poll_ms = POLL_MS_DEFAULT;
    if (c->cfg.retry_min_ms <= 0)
        c->cfg.retry_min_ms = RETRY_MIN_MS_DEFAULT;
    if (c->cfg.retry_max_ms < c->cfg.retry_min_ms)
        c->cfg.retry_max_ms = c->cfg.retry_min_ms > RETRY_MAX_MS_DEFAULT ? c->cfg.retry_min_ms
                                                                        : RETRY_MAX_MS_DEFAULT;
    c->reg = reg;
    c->tm = tm;
    c->docs = docs;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&c->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (rc) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->pass_lock, NULL);
    return c;
}

int iot_cleaner_start(struct iot_cleaner *c)
{
    pthread_mutex_lock(&c->lock);
    int rc = IOT_OK;
    if (!c->running) {
        c->stopping = false;
        if (pthread_create(&c->thread, NULL, cleaner_main, c) == 0)
            c->running = true;
        else
            rc = IOT_ENOMEM;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void iot_cleaner_stop(struct iot_cleaner *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    bool running = c->running;
    c->stopping = true;
    c->running = false;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    if (running)
        pthread_join(c->thread, NULL);
}

void iot_cleaner_free(struct iot_cleaner *c)
{
    if (!c)
        return;
    iot_cleaner_stop(c);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->pass_lock);
    free(c);
}
