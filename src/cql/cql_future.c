/* cql_future.c — futures: a mutex, a condition variable and two references
 * (see cql_future.h). */
#include "cql/cql_future.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "cql/cql_error.h"
#include "cql/cql_session.h"

struct cql_future {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs;
    bool done;
    int rc;
    struct cql_reply *reply;
};

struct cql_future *cql_future_new(void)
{
    struct cql_future *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, &attr);
    pthread_condattr_destroy(&attr);
    f->refs = 2;
    return f;
}

/* Drops one reference; the last frees the future and any untaken reply. */
static void unref(struct cql_future *f)
{
    pthread_mutex_lock(&f->lock);
    int left = --f->refs;
    pthread_mutex_unlock(&f->lock);
    if (left > 0)
        return;
    cql_reply_free(f->reply);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

void cql_future_complete(int rc, struct cql_reply *reply, void *future)
{
    struct cql_future *f = future;
    pthread_mutex_lock(&f->lock);
    f->rc = rc;
    f->reply = reply;
    f->done = true;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    unref(f);
}

bool cql_future_done(struct cql_future *f)
{
    pthread_mutex_lock(&f->lock);
    bool done = f->done;
    pthread_mutex_unlock(&f->lock);
    return done;
}

bool cql_future_wait(struct cql_future *f, uint32_t timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&f->lock);
    while (!f->done) {
        if (timeout_ms == UINT32_MAX)
            pthread_cond_wait(&f->cond, &f->lock);
        else if (pthread_cond_timedwait(&f->cond, &f->lock, &until) == ETIMEDOUT)
            break;
    }
    bool done = f->done;
    pthread_mutex_unlock(&f->lock);
    return done;
}

int cql_future_get(struct cql_future *f, struct cql_reply **reply)
{
    cql_future_wait(f, UINT32_MAX);
    pthread_mutex_lock(&f->lock);
    int rc = f->rc;
    struct cql_reply *r = f->reply;
    f->reply = NULL;
    pthread_mutex_unlock(&f->lock);
    if (reply)
        *reply = r;
    else
        cql_reply_free(r);
    return rc;
}

void cql_future_free(struct cql_future *f)
{
    if (f)
        unref(f);
}
