/* redis_pubsub.c — the subscriber connection and its thread.
 *
 * Shared state (ps->lock): the table of local channels with their
 * subscriptions, and the queue of SUBSCRIBE/UNSUBSCRIBE requests for the
 * thread. Thread-only state: the hiredis context (hiredis contexts are not
 * thread-safe) and the FIFO of requests sent and not yet confirmed.
 *
 * A channel is NEW until its SUBSCRIBE is written on the current
 * connection, then SENT, then LIVE when the server confirms it; a disconnect
 * makes every channel NEW again and the reconnect re-queues them all. Replies
 * to (UN)SUBSCRIBE come back in the order sent, so the sent FIFO tells which
 * request a confirmation answers; channel ids tell a channel re-created
 * under the same name from the one a stale confirmation was for.
 *
 * Deliveries follow the memory backend: a snapshot of the channel's
 * subscriptions is taken under the lock, each holding a reference; each
 * delivery checks `dead` and sets `running` under the lock and calls the
 * callback without it. unsubscribe marks the subscription dead and, unless it
 * runs on the subscriber thread itself, waits until it is not running. */
#include "store/redis/redis_pubsub.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "util/hash_table.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define CONFIRM_WAIT_MS 2000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define DELIVER_STACK_SUBS 16

enum chan_state {
    CHAN_NEW,  /* no SUBSCRIBE written on the current connection */
    CHAN_SENT, /* written, not confirmed */
    CHAN_LIVE, /* confirmed (or refused, logged): what is published from now on arrives */
};

struct ps_sub;

struct ps_channel {
    struct iot_mtab_node *node; /* in ps->channels; node->key is the name */
    struct ps_sub **subs;
    size_t n, cap;
    uint64_t id;
    enum chan_state state;
};

/* What struct iot_cache_sub handles point to. fn and ctx never change; the
 * rest is guarded by ps->lock. */
struct ps_sub {
    iot_cache_msg_fn fn;
    void *ctx;
    struct ps_channel *chan; /* NULL once unsubscribed */
    size_t idx;              /* slot in chan->subs */
    unsigned refs;           /* 1 while subscribed, +1 per snapshot holding it */
    bool running;            /* a delivery is in its callback */
    bool dead;               /* unsubscribe has begun: start no delivery */
};

/* A SUBSCRIBE (for channel `id`) or UNSUBSCRIBE of an unprefixed name. */
struct ps_op {
    struct ps_op *next;
    bool subscribe;
    uint64_t id;
    size_t len;
    char name[];
};

struct op_list {
    struct ps_op *head;
    struct ps_op **tail;
};

struct iot_redis_ps {
    const struct iot_redis_cfg *cfg;
    int wake_fd;

    pthread_mutex_t lock;
    pthread_cond_t cond; /* broadcast on any change a waiter may need */
    struct iot_mtab channels;
    struct op_list queue;
    uint64_t next_id;
    bool started;
    bool stopping;
    bool link_down; /* the thread's last connect attempt failed */
    pthread_t thread;

    /* Subscriber thread only. */
    redisContext *ctx;
    struct op_list sent;
    bool want_write;
    bool outage_logged;
    int64_t retry_at_us;
    int64_t backoff_ms;
};

/* ---- small pieces ---- */

static void op_list_init(struct op_list *l)
{
    l->head = NULL;
    l->tail = &l->head;
}

static void op_push(struct op_list *l, struct ps_op *op)
{
    op->next = NULL;
    *l->tail = op;
    l->tail = &op->next;
}

static struct ps_op *op_pop(struct op_list *l)
{
    struct ps_op *op = l->head;
    if (op) {
        l->head = op->next;
        if (!l->head)
            l->tail = &l->head;
    }
    return op;
}

static void op_list_clear(struct op_list *l)
{
    struct ps_op *op;
    while ((op = op_pop(l)))
        free(op);
}

static int queue_op_locked(struct iot_redis_ps *ps, bool subscribe, uint64_t id,
                           const char *name, size_t len)
{
    struct ps_op *op = malloc(sizeof *op + len + 1);
    if (!op)
        return IOT_ENOMEM;
    op->subscribe = subscribe;
    op->id = id;
    op->len = len;
    memcpy(op->name, name, len);
    op->name[len] = '\0';
    op_push(&ps->queue, op);
    return IOT_OK;
}

static void wake(struct iot_redis_ps *ps)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the thread will wake. */
    if (write(ps->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        IOT_WARN("redis: cannot wake the subscriber thread: %s", strerror(errno));
}

static bool on_thread_locked(const struct iot_redis_ps *ps)
{
    return ps->started && pthread_equal(pthread_self(), ps->thread);
}

static struct ps_channel *channel_find_locked(struct iot_redis_ps *ps, const char *name,
                                              size_t len)
{
    struct iot_mtab_node *node = iot_mtab_find(&ps->channels, name, len);
    return node ? node->val.ptr : NULL;
}

static void channel_destroy_locked(struct iot_redis_ps *ps, struct ps_channel *ch)
{
    iot_mtab_remove(&ps->channels, ch->node);
    free(ch->subs);
    free(ch);
}

static void sub_unref_locked(struct ps_sub *sub)
{
    if (--sub->refs == 0)
        free(sub);
}

/* ---- the connection (subscriber thread only) ---- */

static void set_all_channels_new(void *ctx, const struct iot_mtab_node *n)
{
    struct ps_channel *ch = n->val.ptr;
    ch->state = CHAN_NEW;
}

static void requeue_channel(void *ctx, const struct iot_mtab_node *n)
{
    struct iot_redis_ps *ps = ctx;
    struct ps_channel *ch = n->val.ptr;
    ch->state = CHAN_NEW;
    if (queue_op_locked(ps, true, ch->id, n->key, n->klen) != IOT_OK)
        IOT_ERROR("redis: out of memory re-subscribing %s", n->key);
}

static void ps_drop(struct iot_redis_ps *ps, const char *why)
{
    if (why)
        IOT_WARN("redis: subscriber connection to %s:%d lost (%s); reconnecting", ps->cfg->host,
                 ps->cfg->port, why);
    redisFree(ps->ctx);
    ps->ctx = NULL;
    ps->want_write = false;
    ps->outage_logged = why != NULL;
    op_list_clear(&ps->sent);
    /* Reconnect at once: a server restart is over by the time we notice. */
    ps->retry_at_us = iot_mono_us();
    ps->backoff_ms = BACKOFF_MIN_MS;
    pthread_mutex_lock(&ps->lock);
    iot_mtab_foreach(&ps->channels, set_all_channels_new, NULL);
    pthread_cond_broadcast(&ps->cond);
    pthread_mutex_unlock(&ps->lock);
}

/* hiredis 0.14 has no public setter: it tells "try again later" from an
 * error on EAGAIN by REDIS_BLOCK, so the flag must follow the socket. */
static int set_nonblocking(redisContext *ctx)
{
    int fl = fcntl(ctx->fd, F_GETFL);
    if (fl < 0 || fcntl(ctx->fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return IOT_EUNAVAILABLE;
    ctx->flags &= ~REDIS_BLOCK;
    return IOT_OK;
}

static void ps_connect_failed(struct iot_redis_ps *ps, const char *why)
{
    ps->retry_at_us = iot_mono_us() + ps->backoff_ms * 1000;
    ps->backoff_ms = ps->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ps->backoff_ms * 2;
    pthread_mutex_lock(&ps->lock);
    ps->link_down = true;
    pthread_cond_broadcast(&ps->cond);
    pthread_mutex_unlock(&ps->lock);
    if (!ps->outage_logged)
        IOT_WARN("redis: subscriber cannot connect to %s:%d (%s); retrying with backoff",
                 ps->cfg->host, ps->cfg->port, why);
    ps->outage_logged = true;
}

static void ps_connect(struct iot_redis_ps *ps)
{
    char why[256];
    redisContext *ctx;
    int rc = iot_redis_connect(ps->cfg, NULL, 0, false, &ctx, why, sizeof why);
    if (rc == IOT_OK && set_nonblocking(ctx) != IOT_OK) {
        snprintf(why, sizeof why, "cannot make the socket non-blocking");
        redisFree(ctx);
        rc = IOT_EUNAVAILABLE;
    }
    if (rc != IOT_OK) {
        ps_connect_failed(ps, why);
        return;
    }
    ps->ctx = ctx;
    ps->backoff_ms = BACKOFF_MIN_MS;
    pthread_mutex_lock(&ps->lock);
    ps->link_down = false;
    /* Queued requests were for the old connection: derive them afresh. */
    op_list_clear(&ps->queue);
    iot_mtab_foreach(&ps->channels, requeue_channel, ps);
    size_t n = ps->channels.count;
    pthread_mutex_unlock(&ps->lock);
    if (ps->outage_logged)
        IOT_INFO("redis: subscriber reconnected to %s:%d; re-subscribing %zu channels",
                 ps->cfg->host, ps->cfg->port, n);
    ps->outage_logged = false;
}

static void ps_flush(struct iot_redis_ps *ps)
{
    int done = 0;
    if (redisBufferWrite(ps->ctx, &done) != REDIS_OK) {
        ps_drop(ps, ps->ctx->errstr);
        return;
    }
    ps->want_write = !done;
}

/* Writes (UN)SUBSCRIBE for one request; false when out of memory. */
static bool append_op(struct iot_redis_ps *ps, const struct ps_op *op)
{
    char full[IOT_REDIS_PREFIX_MAX + IOT_CACHE_KEY_MAX + 1];
    memcpy(full, ps->cfg->prefix, ps->cfg->prefix_len);
    memcpy(full + ps->cfg->prefix_len, op->name, op->len);
    const char *argv[2] = {op->subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE", full};
    const size_t lens[2] = {strlen(argv[0]), ps->cfg->prefix_len + op->len};
    return redisAppendCommandArgv(ps->ctx, 2, argv, lens) == REDIS_OK;
}

/* Turns the queue into commands on the connection, in order. */
static void ps_send_queued(struct iot_redis_ps *ps)
{
    bool any = false;
    pthread_mutex_lock(&ps->lock);
    struct ps_op *op;
    while ((op = op_pop(&ps->queue))) {
        struct ps_channel *ch = NULL;
        if (op->subscribe) {
            /* Gone, re-created, or already sent since: nothing to do. */
            ch = channel_find_locked(ps, op->name, op->len);
            if (!ch || ch->id != op->id || ch->state != CHAN_NEW) {
                free(op);
                continue;
            }
        }
        if (!append_op(ps, op)) {
            IOT_ERROR("redis: out of memory queueing a (UN)SUBSCRIBE");
            free(op);
            continue;
        }
        if (ch)
            ch->state = CHAN_SENT;
        op_push(&ps->sent, op);
        any = true;
    }
    pthread_mutex_unlock(&ps->lock);
    if (any)
        ps_flush(ps);
}

/* ---- replies (subscriber thread only) ---- */

static void deliver_one(struct iot_redis_ps *ps, struct ps_sub *sub, const char *name,
                        const char *msg, size_t len)
{
    pthread_mutex_lock(&ps->lock);
    bool run = !sub->dead;
    sub->running = run;
    pthread_mutex_unlock(&ps->lock);
    if (run)
        sub->fn(sub->ctx, name, msg, len);
    pthread_mutex_lock(&ps->lock);
    if (run) {
        sub->running = false;
        if (sub->dead)
            pthread_cond_broadcast(&ps->cond);
    }
    sub_unref_locked(sub);
    pthread_mutex_unlock(&ps->lock);
}

static void deliver(struct iot_redis_ps *ps, const redisReply *chan, const redisReply *msg)
{
    size_t plen = ps->cfg->prefix_len;
    if (chan->type != REDIS_REPLY_STRING || msg->type != REDIS_REPLY_STRING ||
        chan->len < plen || memcmp(chan->str, ps->cfg->prefix, plen) != 0)
        return;
    /* hiredis NUL-terminates strings, so the unprefixed name is a C string. */
    const char *name = chan->str + plen;
    struct ps_sub *stack[DELIVER_STACK_SUBS];
    struct ps_sub **subs = stack;
    size_t n = 0;
    pthread_mutex_lock(&ps->lock);
    const struct ps_channel *ch = channel_find_locked(ps, name, chan->len - plen);
    if (ch) {
        if (ch->n > DELIVER_STACK_SUBS)
            subs = malloc(ch->n * sizeof *subs);
        if (subs) {
            n = ch->n;
            for (size_t i = 0; i < n; i++) {
                subs[i] = ch->subs[i];
                subs[i]->refs++;
            }
        }
    }
    pthread_mutex_unlock(&ps->lock);
    if (!subs) {
        IOT_ERROR("redis: out of memory delivering a message on %s", name);
        return;
    }
    for (size_t i = 0; i < n; i++)
        deliver_one(ps, subs[i], name, msg->str, msg->len);
    if (subs != stack)
        free(subs);
}

/* A (un)subscribe confirmation, or an error, answers the oldest request. */
static void confirm(struct iot_redis_ps *ps)
{
    struct ps_op *op = op_pop(&ps->sent);
    if (!op)
        return;
    if (op->subscribe) {
        pthread_mutex_lock(&ps->lock);
        struct ps_channel *ch = channel_find_locked(ps, op->name, op->len);
        if (ch && ch->id == op->id && ch->state == CHAN_SENT)
            ch->state = CHAN_LIVE;
        pthread_cond_broadcast(&ps->cond);
        pthread_mutex_unlock(&ps->lock);
    }
    free(op);
}

static bool reply_is(const redisReply *r, const char *s)
{
    size_t n = strlen(s);
    return r->type == REDIS_REPLY_STRING && r->len == n && memcmp(r->str, s, n) == 0;
}

static void handle_reply(struct iot_redis_ps *ps, const redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR) {
        /* Say, an ACL refusing the channel: release its waiters anyway. */
        IOT_WARN("redis: subscriber error reply: %.*s", (int)(r->len > 200 ? 200 : r->len),
                 r->str);
        confirm(ps);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3)
        return;
    if (reply_is(r->element[0], "message"))
        deliver(ps, r->element[1], r->element[2]);
    else if (reply_is(r->element[0], "subscribe") || reply_is(r->element[0], "unsubscribe"))
        confirm(ps);
}

static void ps_read(struct iot_redis_ps *ps)
{
    if (redisBufferRead(ps->ctx) != REDIS_OK) {
        ps_drop(ps, ps->ctx->errstr);
        return;
    }
    for (;;) {
        redisReply *r = NULL;
        if (redisGetReplyFromReader(ps->ctx, (void **)&r) != REDIS_OK) {
            ps_drop(ps, ps->ctx->errstr);
            return;
        }
        if (!r)
            return;
        handle_reply(ps, r);
        freeReplyObject(r);
    }
}

/* ---- the thread ---- */

/* Sleeps until woken, until the socket is ready, or until the next
 * reconnect attempt is due; then does the I/O that is ready. */
static void ps_wait(struct iot_redis_ps *ps)
{
    struct pollfd fds[2] = {{.fd = ps->wake_fd, .events = POLLIN}, {.fd = -1}};
    int timeout = -1;
    if (ps->ctx) {
        fds[1].fd = ps->ctx->fd;
        fds[1].events = (short)(POLLIN | (ps->want_write ? POLLOUT : 0));
    } else {
        int64_t left_ms = (ps->retry_at_us - iot_mono_us()) / 1000 + 1;
        timeout = left_ms < 0 ? 0 : (int)left_ms;
    }
    if (poll(fds, 2, timeout) <= 0)
        return;
    if (fds[0].revents & POLLIN) {
        uint64_t count;
        if (read(ps->wake_fd, &count, sizeof count) < 0 && errno != EAGAIN)
            IOT_WARN("redis: subscriber wake-up read failed: %s", strerror(errno));
    }
    if (!ps->ctx || fds[1].revents == 0)
        return;
    if (fds[1].revents & POLLOUT)
        ps_flush(ps);
    if (ps->ctx && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
        ps_read(ps);
}

static void *ps_main(void *arg)
{
    struct iot_redis_ps *ps = arg;
    for (;;) {
        pthread_mutex_lock(&ps->lock);
        bool stop = ps->stopping;
        pthread_mutex_unlock(&ps->lock);
        if (stop)
            break;
        if (!ps->ctx && iot_mono_us() >= ps->retry_at_us)
            ps_connect(ps);
        if (ps->ctx)
            ps_send_queued(ps);
        ps_wait(ps);
    }
    if (ps->ctx)
        ps_drop(ps, NULL);
    return NULL;
}

static int ps_start_locked(struct iot_redis_ps *ps)
{
    if (ps->started)
        return IOT_OK;
    if (pthread_create(&ps->thread, NULL, ps_main, ps) != 0)
        return IOT_EINTERNAL;
    ps->started = true;
    return IOT_OK;
}

/* ---- the channel table ---- */

/* Finds or creates the channel with room for one more subscriber; a new
 * channel gets its SUBSCRIBE queued. On failure nothing is left behind. */
static int channel_reserve_locked(struct iot_redis_ps *ps, const char *name, size_t len,
                                  struct ps_channel **out)
{
    struct ps_channel *ch = channel_find_locked(ps, name, len);
    if (!ch) {
        ch = calloc(1, sizeof *ch);
        struct iot_mtab_node *node = ch ? iot_mtab_add(&ps->channels, name, len) : NULL;
        if (!node) {
            free(ch);
            return IOT_ENOMEM;
        }
        node->val.ptr = ch;
        ch->node = node;
        ch->id = ++ps->next_id;
        ch->state = CHAN_NEW;
        if (queue_op_locked(ps, true, ch->id, name, len) != IOT_OK) {
            channel_destroy_locked(ps, ch);
            return IOT_ENOMEM;
        }
        wake(ps);
    }
    if (ch->n == ch->cap) {
        size_t ncap = ch->cap ? ch->cap * 2 : 4;
        struct ps_sub **subs = realloc(ch->subs, ncap * sizeof *subs);
        if (!subs) {
            /* Its queued SUBSCRIBE finds no channel and is dropped. */
            if (ch->n == 0)
                channel_destroy_locked(ps, ch);
            return IOT_ENOMEM;
        }
        ch->subs = subs;
        ch->cap = ncap;
    }
    *out = ch;
    return IOT_OK;
}

/* Takes sub out of its channel; the last one out UNSUBSCRIBEs. */
static void channel_remove_locked(struct iot_redis_ps *ps, struct ps_sub *sub)
{
    struct ps_channel *ch = sub->chan;
    if (!ch)
        return;
    ch->n--;
    if (sub->idx != ch->n) {
        ch->subs[sub->idx] = ch->subs[ch->n];
        ch->subs[sub->idx]->idx = sub->idx;
    }
    sub->chan = NULL;
    if (ch->n > 0)
        return;
    if (ch->state != CHAN_NEW) {
        /* Without it the server keeps sending; deliver() then finds no
         * channel and drops the messages, which is only wasteful. */
        if (queue_op_locked(ps, false, 0, ch->node->key, ch->node->klen) == IOT_OK)
            wake(ps);
    }
    channel_destroy_locked(ps, ch);
}

/* Waits until the channel is LIVE, the server is known down, or time is up. */
static void wait_live_locked(struct iot_redis_ps *ps, const struct ps_channel *ch)
{
    struct timespec deadline = iot_deadline_ms(CLOCK_MONOTONIC, CONFIRM_WAIT_MS);
    while (ch->state != CHAN_LIVE && !ps->link_down && !ps->stopping) {
        if (pthread_cond_timedwait(&ps->cond, &ps->lock, &deadline) == ETIMEDOUT)
            break;
    }
}

/* ---- the interface ---- */

int iot_redis_ps_subscribe(struct iot_redis_ps *ps, const char *channel, size_t len,
                           iot_cache_msg_fn fn, void *ctx, struct iot_cache_sub **out)
{
    struct ps_sub *sub = calloc(1, sizeof *sub);
    if (!sub)
        return IOT_ENOMEM;
    sub->fn = fn;
    sub->ctx = ctx;
    sub->refs = 1;
    struct ps_channel *ch = NULL;
    pthread_mutex_lock(&ps->lock);
    int rc = ps_start_locked(ps);
    if (rc == IOT_OK)
        rc = channel_reserve_locked(ps, channel, len, &ch);
    if (rc != IOT_OK) {
        pthread_mutex_unlock(&ps->lock);
        free(sub);
        return rc;
    }
    sub->chan = ch;
    sub->idx = ch->n;
    ch->subs[ch->n++] = sub;
    /* The subscriber thread would be waiting for itself. */
    if (!on_thread_locked(ps))
        wait_live_locked(ps, ch);
    pthread_mutex_unlock(&ps->lock);
    *out = (struct iot_cache_sub *)sub;
    return IOT_OK;
}

void iot_redis_ps_unsubscribe(struct iot_redis_ps *ps, struct iot_cache_sub *handle)
{
    struct ps_sub *sub = (struct ps_sub *)handle;
    if (!ps || !sub)
        return;
    pthread_mutex_lock(&ps->lock);
    sub->dead = true;
    channel_remove_locked(ps, sub);
    /* On the subscriber thread the only delivery that can be running is the
     * caller's own: waiting for it would never end. */
    if (!on_thread_locked(ps)) {
        while (sub->running)
            pthread_cond_wait(&ps->cond, &ps->lock);
    }
    sub_unref_locked(sub);
    pthread_mutex_unlock(&ps->lock);
}

int iot_redis_ps_new(const struct iot_redis_cfg *cfg, struct iot_redis_ps **out)
{
    *out = NULL;
    struct iot_redis_ps *ps = calloc(1, sizeof *ps);
    if (!ps)
        return IOT_ENOMEM;
    ps->cfg = cfg;
    ps->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ps->wake_fd < 0) {
        free(ps);
        return IOT_EINTERNAL;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ps->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&ps->lock, NULL);
    unsigned char seed[IOT_MTAB_SEED_LEN];
    randombytes_buf(seed, sizeof seed);
    iot_mtab_init(&ps->channels, seed);
    op_list_init(&ps->queue);
    op_list_init(&ps->sent);
    ps->backoff_ms = BACKOFF_MIN_MS;
    ps->retry_at_us = iot_mono_us();
    *out = ps;
    return IOT_OK;
}

static void channel_free(void *ctx, struct iot_mtab_node *n)
{
    struct ps_channel *ch = n->val.ptr;
    for (size_t i = 0; i < ch->n; i++)
        free(ch->subs[i]);
    free(ch->subs);
    free(ch);
}

void iot_redis_ps_free(struct iot_redis_ps *ps)
{
    if (!ps)
        return;
    pthread_mutex_lock(&ps->lock);
    ps->stopping = true;
    bool started = ps->started;
    pthread_cond_broadcast(&ps->cond);
    pthread_mutex_unlock(&ps->lock);
    if (started) {
        wake(ps);
        pthread_join(ps->thread, NULL);
    }
    /* The thread is gone, so no snapshot holds a subscription. */
    iot_mtab_clear(&ps->channels, channel_free, NULL);
    op_list_clear(&ps->queue);
    op_list_clear(&ps->sent);
    close(ps->wake_fd);
    pthread_cond_destroy(&ps->cond);
    pthread_mutex_destroy(&ps->lock);
    free(ps);
}
