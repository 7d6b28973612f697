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
#include "core/ingest.h"
#include "util/err.h"
#include "util/log.h"

struct stream {
    struct iot_streams *owner;
    struct stream *prev, *next;
    pthread_mutex_t lock;
    struct MHD_Connection *conn;
    struct iot_cache_sub *sub;
    char *buf;
    size_t len, off;
    bool suspended, ended, heartbeat_due;
    bool counted; /* holds one of owner->max_streams slots */
    int64_t device_id;
};

struct iot_streams {
    struct iot_cache *cache;
    int64_t heartbeat_s;
    size_t max_streams;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct stream *head;
    size_t count;
    bool closing, joined;
    pthread_t ticker;
};

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
    static const char head[] = "event: telemetry\ndata: ", tail[] = "\n\n";
    struct stream *st = ctx;
    pthread_mutex_lock(&st->lock);
    if (st->ended) {
        /* already over */
    } else if (st->len + sizeof head + len + sizeof tail > IOT_STREAM_BUFFER) {
        st->ended = true;
        IOT_INFO("stream of device %lld dropped: consumer too slow", (long long)st->device_id);
    } else {
        append(st, head, sizeof head - 1);
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
    }
}

static void stream_release(void *ctx)
{
    struct stream *st = ctx;
    struct iot_streams *s = st->owner;
    iot_cache_unsubscribe(s->cache, st->sub); /* no delivery runs after this */
    pthread_mutex_lock(&s->lock);
    if (st->prev)
        st->prev->next = st->next;
    else
        s->head = st->next;
    if (st->next)
        st->next->prev = st->prev;
    release_slot(s, st);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_destroy(&st->lock);
    free(st->buf);
    free(st);
}

/* One pass over the streams (caller holds s->lock): keep-alives when due,
 * the end of parked streams whose client hung up (their slot is free at
 * once), and the end of every stream when closing. */
static void tick(struct iot_streams *s, bool heartbeat)
{
    for (struct stream *st = s->head; st; st = st->next) {
        pthread_mutex_lock(&st->lock);
        if (heartbeat)
            st->heartbeat_due = true;
        if (s->closing || (st->suspended && iot_conn_closed_by_peer(st->conn)))
            st->ended = true;
        if (st->ended)
            release_slot(s, st);
        if (heartbeat || st->ended)
            wake(st);
        pthread_mutex_unlock(&st->lock);
    }
}

static void *ticker_main(void *arg)
{
    struct iot_streams *s = arg;
    int64_t seconds = 0;
    pthread_mutex_lock(&s->lock);
    while (!s->closing) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 1;
        pthread_cond_timedwait(&s->cond, &s->lock, &deadline);
        seconds++;
        tick(s, s->closing || seconds % s->heartbeat_s == 0);
    }
    tick(s, true);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

struct iot_streams *iot_streams_new(struct iot_cache *cache, int64_t heartbeat_s, size_t max_streams)
{
    struct iot_streams *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cache = cache;
    s->heartbeat_s = heartbeat_s > 0 ? heartbeat_s : 1;
    s->max_streams = max_streams;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (pthread_create(&s->ticker, NULL, ticker_main, s)) {
        free(s);
        return NULL;
    }
    return s;
}

void iot_streams_end_device(struct iot_streams *s, int64_t device_id)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    for (struct stream *st = s->head; st; st = st->next) {
        if (st->device_id != device_id)
            continue;
        pthread_mutex_lock(&st->lock);
        st->ended = true; /* what is buffered is still sent, then the end */
        release_slot(s, st);
        wake(st);
        pthread_mutex_unlock(&st->lock);
    }
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
    free(s);
}

static struct stream *stream_open(struct iot_streams *s, struct iot_req *r, int64_t device_id)
{
    struct stream *st = calloc(1, sizeof *st);
    if (!st || !(st->buf = malloc(IOT_STREAM_BUFFER))) {
        free(st);
        return NULL;
    }
    st->owner = s;
    st->conn = r->conn;
    st->device_id = device_id;
    pthread_mutex_init(&st->lock, NULL);
    static const char hello[] = "retry: 3000\n: connected\n\n";
    memcpy(st->buf, hello, sizeof hello - 1);
    st->len = sizeof hello - 1;
    char channel[48];
    iot_ingest_channel(device_id, channel, sizeof channel);
    if (iot_cache_subscribe(s->cache, channel, deliver, st, &st->sub) != IOT_OK) {
        pthread_mutex_destroy(&st->lock);
        free(st->buf);
        free(st);
        return NULL;
    }
    return st;
}

void iot_h_telemetry_stream(struct iot_req *r)
{
    struct iot_device d;
    if (!iot_authn_device_reader(r, &d))
        return;
    struct iot_streams *s = iot_app_of(r)->streams;
    pthread_mutex_lock(&s->lock);
    if (s->count >= s->max_streams)
        tick(s, false); /* reclaim the slots of clients that hung up */
    bool full = s->count >= s->max_streams || s->closing;
    if (!full)
        s->count++; /* reserve the slot */
    pthread_mutex_unlock(&s->lock);
    struct stream *st = full ? NULL : stream_open(s, r, d.id);
    if (!st) {
        if (!full) {
            pthread_mutex_lock(&s->lock);
            s->count--;
            pthread_mutex_unlock(&s->lock);
        }
        iot_reply_retry_after(r, 5);
        iot_reply_error(r, 503, "Too many streams", "no live stream can be opened right now");
        return;
    }
    pthread_mutex_lock(&s->lock);
    st->counted = true; /* the slot reserved above */
    st->next = s->head;
    if (s->head)
        s->head->prev = st;
    s->head = st;
    pthread_mutex_unlock(&s->lock);
    iot_reply_stream(r, 200, "text/event-stream", stream_read, stream_release, st);
}
