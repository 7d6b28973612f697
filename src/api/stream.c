/* stream.c — live telemetry streams (see stream.h).
 *
 * Lock order: iot_streams.lock (the list, slot counts, re-check flags, each
 * stream's `counted` and `recheck`) before stream.lock (its buffer and
 * flags). A pub/sub delivery runs on the cache's thread and takes only its
 * stream's lock; a device notice runs there too and takes the list lock,
 * then stream locks. So no one holding either lock may call into the cache
 * (unsubscribe waits for running deliveries) or the registry: the ticker
 * drops the list lock for its store lookups. */
#include "api/stream.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/app.h"
#include "api/device_common.h"
#include "api/handlers.h"
#include "api/stream_access.h"
#include "core/ingest.h"
#include "core/metrics.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define TICK_MS 1000
#define CAP_RETRY_AFTER_S 5

struct stream {
    struct iot_streams *owner;
    struct stream *prev, *next;     /* owner->lock */
    uint64_t serial;                /* order of admission: the list is newest first */
    struct iot_stream_grant grant;  /* fixed once admitted */
    int64_t cap_user;               /* the user it counts for; 0 = none (admin token) */
    bool counted;                   /* owner->lock: holds a slot */
    bool recheck;                   /* owner->lock: re-check in the next pass */
    pthread_mutex_t lock;
    struct MHD_Connection *conn;
    struct iot_cache_sub *sub;
    char head[48]; /* "event: <name>\ndata: ", fixed once admitted */
    size_t head_len;
    char *buf;
    size_t len, off;
    bool suspended, ended, heartbeat_due;
};

struct iot_streams {
    struct iot_app *app;
    int64_t heartbeat_ms, recheck_ms;
    size_t max_streams, per_user, per_device;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC: the ticker's wake-ups */
    struct stream *head;
    size_t count;
    uint64_t last_serial;
    bool closing, joined, recheck_pending;
    pthread_t ticker;
    /* The ticker's re-check batch, max_streams long; only it touches them. */
    struct iot_stream_grant *batch;
    uint64_t *batch_serial;
    const char **batch_reason;
};

static int64_t mono_ms(void) { return iot_mono_us() / 1000; }

/* Wakes a stream's connection if it sleeps. Caller holds st->lock. */
static void wake(struct stream *st)
{
    if (st->suspended) {
        st->suspended = false;
        iot_conn_resume(st->conn);
    }
}

static void append(struct stream *st, const char *text, size_t n)
{
    memcpy(st->buf + st->len, text, n);
    st->len += n;
}

/* Pub/sub delivery, on the publisher's thread: never blocks on the client.
 * A consumer whose backlog would pass the buffer is dropped rather than
 * buffered without bound. */
static void deliver(void *ctx, const char *channel, const char *msg, size_t len)
{
    static const char tail[] = "\n\n";
    struct stream *st = ctx;
    pthread_mutex_lock(&st->lock);
    if (st->ended) {
        /* already over */
    } else if (st->len + st->head_len + len + sizeof tail > IOT_STREAM_BUFFER) {
        st->ended = true;
        IOT_INFO("stream on %s dropped: consumer too slow", channel);
    } else {
        append(st, st->head, st->head_len);
        append(st, msg, len);
        append(st, tail, sizeof tail - 1);
    }
    wake(st);
    pthread_mutex_unlock(&st->lock);
}

static long stream_read(void *ctx, char *out, size_t max)
{
    struct stream *st = ctx;
    long n = 0;
    pthread_mutex_lock(&st->lock);
    if (st->off < st->len) {
        size_t take = st->len - st->off < max ? st->len - st->off : max;
        memcpy(out, st->buf + st->off, take);
        st->off += take;
        if (st->off == st->len)
            st->off = st->len = 0;
        n = (long)take;
    } else if (st->ended) {
        n = -1;
    } else if (st->heartbeat_due && max >= 14) {
        st->heartbeat_due = false;
        memcpy(out, ": keep-alive\n\n", 14);
        n = 14;
    } else {
        /* Nothing to send: park the connection until deliver() or the
         * ticker wakes it (returning 0 without suspending would spin). */
        st->suspended = true;
        iot_conn_suspend(st->conn);
    }
    pthread_mutex_unlock(&st->lock);
    return n;
}

/* Gives back a stream's slot. Caller holds s->lock. */
static void release_slot(struct iot_streams *s, struct stream *st)
{
    if (st->counted) {
        st->counted = false;
        s->count--;
        iot_metrics_streams_open(-1);
    }
}

static void unlink_stream(struct iot_streams *s, struct stream *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else if (s->head == st)
        s->head = st->next;
    if (st->next)
        st->next->prev = st->prev;
    st->prev = st->next = NULL;
    release_slot(s, st);
}

static void stream_free(struct stream *st)
{
    if (!st)
        return;
    pthread_mutex_destroy(&st->lock);
    free(st->buf);
    free(st);
}

static void stream_release(void *ctx)
{
    struct stream *st = ctx;
    struct iot_streams *s = st->owner;
    iot_cache_unsubscribe(&s->app->cache, st->sub); /* no delivery runs after this */
    pthread_mutex_lock(&s->lock);
    unlink_stream(s, st);
    pthread_mutex_unlock(&s->lock);
    stream_free(st);
}

/* Ends a stream: what is buffered is still sent, then, when `reason` is
 * set and fits, a last `revoked` event, then the end. Caller holds s->lock;
 * the slot is free at once. */
static void end_stream(struct iot_streams *s, struct stream *st, const char *reason)
{
    pthread_mutex_lock(&st->lock);
    if (!st->ended && reason) {
        char event[96];
        int n = snprintf(event, sizeof event, "event: revoked\ndata: {\"reason\": \"%s\"}\n\n", reason);
        if (n > 0 && (size_t)n < sizeof event && st->len + (size_t)n <= IOT_STREAM_BUFFER)
            append(st, event, (size_t)n);
    }
    st->ended = true;
    release_slot(s, st);
    wake(st);
    pthread_mutex_unlock(&st->lock);
}

/* Ends the parked streams whose client hung up (their slots are free at
 * once) and gives back the slots of streams that ended on their own.
 * Caller holds s->lock. */
static void reclaim(struct iot_streams *s)
{
    for (struct stream *st = s->head; st; st = st->next) {
        pthread_mutex_lock(&st->lock);
        bool over = st->ended || (st->suspended && iot_conn_closed_by_peer(st->conn));
        pthread_mutex_unlock(&st->lock);
        if (over && st->counted)
            end_stream(s, st, NULL);
    }
}

/* One pass over the streams (caller holds s->lock): keep-alives when due,
 * the reclaiming of dead ones, and the end of every stream when closing. */
static void tick(struct iot_streams *s, bool heartbeat)
{
    reclaim(s);
    for (struct stream *st = s->head; st; st = st->next) {
        if (s->closing) {
            end_stream(s, st, NULL);
            continue;
        }
        if (!heartbeat)
            continue;
        pthread_mutex_lock(&st->lock);
        st->heartbeat_due = true;
        wake(st);
        pthread_mutex_unlock(&st->lock);
    }
}

/* Copies the grants to re-check into the batch: every live stream's, or
 * only the flagged ones. Caller holds s->lock. */
static size_t collect(struct iot_streams *s, bool all)
{
    size_t n = 0;
    for (struct stream *st = s->head; st && n < s->max_streams; st = st->next) {
        if (!st->counted || (!all && !st->recheck))
            continue;
        st->recheck = false;
        s->batch[n] = st->grant;
        s->batch_serial[n] = st->serial;
        n++;
    }
    s->recheck_pending = false;
    return n;
}

/* Ends the streams the batch found revoked. The list and the batch are
 * both in descending serial order; streams admitted since are skipped, and
 * batch entries of streams gone since find no match. Caller holds s->lock. */
static void apply(struct iot_streams *s, size_t n)
{
    size_t i = 0;
    for (struct stream *st = s->head; st && i < n; st = st->next) {
        while (i < n && s->batch_serial[i] > st->serial)
            i++;
        if (i < n && s->batch_serial[i] == st->serial) {
            const char *reason = s->batch_reason[i++];
            if (reason && st->counted) {
                IOT_INFO("stream of device %lld ended: %s", (long long)st->grant.device_id, reason);
                end_stream(s, st, reason);
            }
        }
    }
}

/* Re-checks credentials. Caller holds s->lock, which is dropped during
 * the store lookups. */
static void recheck(struct iot_streams *s, bool all)
{
    size_t n = collect(s, all);
    if (n == 0)
        return;
    pthread_mutex_unlock(&s->lock);
    int64_t t0 = iot_mono_us();
    int rc = iot_stream_grants_check(s->app, s->batch, n, s->batch_reason);
    IOT_DEBUG("re-checked %zu live streams in %.2f ms", n, (double)(iot_mono_us() - t0) / 1000.0);
    if (rc)
        IOT_WARN("live streams' credentials not all re-checked (%s); trying again in %lld s",
                 iot_strerror(rc), (long long)(s->recheck_ms / 1000));
    pthread_mutex_lock(&s->lock);
    apply(s, n);
}

static void *ticker_main(void *arg)
{
    struct iot_streams *s = arg;
    int64_t now = mono_ms();
    int64_t next_tick = now + TICK_MS, next_beat = now + s->heartbeat_ms;
    int64_t next_check = now + s->recheck_ms;
    pthread_mutex_lock(&s->lock);
    while (!s->closing) {
        int64_t due = next_tick < next_check ? next_tick : next_check;
        if (!s->recheck_pending && due > now) {
            struct timespec deadline = iot_deadline_ms(CLOCK_MONOTONIC, due - now);
            pthread_cond_timedwait(&s->cond, &s->lock, &deadline);
        }
        if (s->closing)
            break;
        now = mono_ms();
        if (now >= next_tick) {
            bool beat = now >= next_beat;
            if (beat)
                next_beat = now + s->heartbeat_ms;
            tick(s, beat);
            next_tick = now + TICK_MS;
        }
        bool all = now >= next_check;
        if (all)
            next_check = now + s->recheck_ms;
        if (all || s->recheck_pending) {
            recheck(s, all);
            now = mono_ms();
        }
    }
    tick(s, true); /* closing: ends every stream */
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static int init_cond_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}

static void streams_free_memory(struct iot_streams *s)
{
    free(s->batch);
    free(s->batch_serial);
    free(s->batch_reason);
    free(s);
}

struct iot_streams *iot_streams_new(struct iot_app *app, size_t max_streams)
{
    struct iot_streams *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    const struct iot_config *cfg = app->cfg;
    s->app = app;
    s->heartbeat_ms = (cfg->stream_heartbeat > 0 ? cfg->stream_heartbeat : 1) * 1000;
    s->recheck_ms = (cfg->stream_recheck > 0 ? cfg->stream_recheck : 1) * 1000;
    s->max_streams = max_streams ? max_streams : 1;
    s->per_user = (size_t)cfg->streams_per_user;
    s->per_device = (size_t)cfg->streams_per_device;
    s->batch = calloc(s->max_streams, sizeof *s->batch);
    s->batch_serial = calloc(s->max_streams, sizeof *s->batch_serial);
    s->batch_reason = calloc(s->max_streams, sizeof *s->batch_reason);
    if (!s->batch || !s->batch_serial || !s->batch_reason || init_cond_monotonic(&s->cond)) {
        streams_free_memory(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    if (pthread_create(&s->ticker, NULL, ticker_main, s)) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        streams_free_memory(s);
        return NULL;
    }
    return s;
}

void iot_streams_end_device(struct iot_streams *s, int64_t device_id)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    for (struct stream *st = s->head; st; st = st->next)
        if (st->grant.device_id == device_id && st->counted)
            end_stream(s, st, IOT_REVOKED_DEVICE_DELETED);
    pthread_mutex_unlock(&s->lock);
}

void iot_streams_recheck_device(struct iot_streams *s, int64_t device_id)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    for (struct stream *st = s->head; st; st = st->next) {
        if (st->grant.device_id == device_id && st->counted) {
            st->recheck = true;
            s->recheck_pending = true;
        }
    }
    if (s->recheck_pending)
        pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

void iot_streams_close_all(struct iot_streams *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    bool joined = s->joined;
    s->closing = s->joined = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (!joined)
        pthread_join(s->ticker, NULL); /* its last pass ended every stream */
}

void iot_streams_free(struct iot_streams *s)
{
    if (!s)
        return;
    iot_streams_close_all(s); /* no-op when already closed */
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    streams_free_memory(s);
}

/* ---- opening a stream -------------------------------------------------------- */

enum refusal { ADMITTED, REFUSED_FULL, REFUSED_USER, REFUSED_DEVICE };

/* Which limit a new stream would pass. Caller holds s->lock. */
static enum refusal limit_hit(const struct iot_streams *s, const struct stream *new_st)
{
    if (s->closing || s->count >= s->max_streams)
        return REFUSED_FULL;
    size_t of_user = 0, of_device = 0;
    for (const struct stream *st = s->head; st; st = st->next) {
        if (!st->counted)
            continue;
        of_user += new_st->cap_user && st->cap_user == new_st->cap_user;
        of_device += new_st->grant.device_id && st->grant.device_id == new_st->grant.device_id;
    }
    if (s->per_user && new_st->cap_user && of_user >= s->per_user)
        return REFUSED_USER;
    if (s->per_device && new_st->grant.device_id && of_device >= s->per_device)
        return REFUSED_DEVICE;
    return ADMITTED;
}

/* Takes a slot for st and puts it on the list, or says which limit
 * refuses it (after reclaiming the slots of clients that hung up). */
static enum refusal admit(struct iot_streams *s, struct stream *st)
{
    pthread_mutex_lock(&s->lock);
    enum refusal why = limit_hit(s, st);
    if (why != ADMITTED && !s->closing) {
        reclaim(s);
        why = limit_hit(s, st);
    }
    if (why == ADMITTED) {
        st->serial = ++s->last_serial;
        st->counted = true;
        s->count++;
        iot_metrics_streams_open(1);
        st->next = s->head;
        if (s->head)
            s->head->prev = st;
        s->head = st;
    }
    pthread_mutex_unlock(&s->lock);
    return why;
}

static struct stream *stream_new(struct iot_streams *s, struct iot_req *r,
                                 const struct iot_stream_grant *grant, int64_t cap_user,
                                 const char *event)
{
    struct stream *st = calloc(1, sizeof *st);
    if (!st || !(st->buf = malloc(IOT_STREAM_BUFFER))) {
        free(st);
        return NULL;
    }
    st->owner = s;
    st->conn = r->conn;
    st->grant = *grant;
    st->cap_user = cap_user;
    int n = snprintf(st->head, sizeof st->head, "event: %s\ndata: ", event);
    st->head_len = n > 0 && (size_t)n < sizeof st->head ? (size_t)n : 0;
    pthread_mutex_init(&st->lock, NULL);
    static const char hello[] = "retry: 3000\n: connected\n\n";
    memcpy(st->buf, hello, sizeof hello - 1);
    st->len = sizeof hello - 1;
    return st;
}

static void reply_refusal(struct iot_req *r, const struct iot_streams *s, enum refusal why)
{
    if (why == REFUSED_USER || why == REFUSED_DEVICE) {
        bool user = why == REFUSED_USER;
        iot_metrics_rate_limited(user ? IOT_RATE_LIMIT_STREAMS_PER_USER
                                      : IOT_RATE_LIMIT_STREAMS_PER_DEVICE);
        iot_reply_retry_after(r, CAP_RETRY_AFTER_S);
        iot_reply_error(r, 429, "Too many streams",
                        "at most %zu live streams per %s are allowed at once; close one first",
                        user ? s->per_user : s->per_device, user ? "user" : "device");
        return;
    }
    iot_reply_retry_after(r, 5);
    iot_reply_error(r, 503, "Too many streams", "no live stream can be opened right now");
}

void iot_streams_open(struct iot_req *r, const struct iot_stream_grant *grant, int64_t cap_user,
                      const char *channel, const char *event)
{
    struct iot_streams *s = iot_app_of(r)->streams;
    struct stream *st = stream_new(s, r, grant, cap_user, event);
    enum refusal why = st ? admit(s, st) : REFUSED_FULL;
    if (why != ADMITTED) {
        stream_free(st);
        reply_refusal(r, s, why);
        return;
    }
    if (iot_cache_subscribe(&s->app->cache, channel, deliver, st, &st->sub) != IOT_OK) {
        pthread_mutex_lock(&s->lock);
        unlink_stream(s, st);
        pthread_mutex_unlock(&s->lock);
        stream_free(st);
        reply_refusal(r, s, REFUSED_FULL);
        return;
    }
    iot_reply_stream(r, 200, "text/event-stream", stream_read, stream_release, st);
}

void iot_h_telemetry_stream(struct iot_req *r)
{
    struct iot_device d;
    struct iot_principal p;
    if (!iot_authn_device_reader_as(r, &d, &p))
        return;
    bool by_key = !p.admin && !p.has_user;
    struct iot_stream_grant grant;
    iot_stream_grant_of(r, by_key ? NULL : &p, &d, &grant);
    /* A device's key counts for its owner, so that keys cannot multiply
     * one user's share; the admin token counts for no user. */
    int64_t cap_user = p.has_user ? p.user.id : by_key ? d.user_id : 0;
    char channel[48];
    iot_ingest_channel(d.id, channel, sizeof channel);
    iot_streams_open(r, &grant, cap_user, channel, "telemetry");
}
