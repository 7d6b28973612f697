/* The in-process cache's publish/subscribe.
 *
 * publish snapshots the channel's subscribers under ps->lock (taking a
 * reference on each), releases the lock, and calls each callback on the
 * publisher's thread. So a callback may publish, subscribe, or use any other
 * cache op without deadlock. Each subscription counts the deliveries running
 * into it; unsubscribe marks it dead (no delivery starts after that: the
 * check and the count are taken under the same lock) and waits on ps->idle
 * until the count is zero. The memory of a subscription is freed by whoever
 * drops the last reference: unsubscribe, or a publisher still holding it in
 * its snapshot.
 *
 * The remaining deadlock is a cycle of callbacks unsubscribing each other's
 * subscriptions (the header's "must not unsubscribe its own" generalised):
 * a callback should leave unsubscribing to code outside deliveries. */
#include <stdlib.h>

#include "store/memory/mem_cache.h"
#include "util/err.h"

/* Subscribers a publish can snapshot on the stack before it mallocs. */
#define PUBLISH_STACK_SUBS 16

struct iot_mem_sub;

/* A channel with at least one subscriber; its name is node->key. */
struct iot_mem_channel {
    struct iot_mtab_node *node; /* in ps->channels */
    struct iot_mem_sub **subs;
    size_t n, cap;
};

/* What struct iot_cache_sub handles point to (the public type stays
 * opaque; we cast at the boundary). Fields after ctx are guarded by
 * ps->lock; fn and ctx never change. */
struct iot_mem_sub {
    iot_cache_msg_fn fn;
    void *ctx;
    struct iot_mem_channel *chan; /* NULL once unsubscribed */
    size_t idx;                   /* slot in chan->subs */
    unsigned refs;                /* 1 while subscribed, +1 per publish holding it */
    unsigned running;             /* deliveries in progress */
    bool dead;                    /* unsubscribe has begun: start no delivery */
};

static void channel_free(void *ctx, struct iot_mtab_node *n)
{
    struct iot_mem_channel *ch = n->val.ptr;
    for (size_t i = 0; i < ch->n; i++)
        free(ch->subs[i]);
    free(ch->subs);
    free(ch);
}

int iot_mem_pubsub_init(struct iot_mem_pubsub *ps, const unsigned char seed[IOT_MTAB_SEED_LEN])
{
    if (pthread_mutex_init(&ps->lock, NULL) != 0)
        return IOT_EINTERNAL;
    if (pthread_cond_init(&ps->idle, NULL) != 0) {
        pthread_mutex_destroy(&ps->lock);
        return IOT_EINTERNAL;
    }
    iot_mtab_init(&ps->channels, seed);
    return IOT_OK;
}

void iot_mem_pubsub_fini(struct iot_mem_pubsub *ps)
{
    /* The caller guarantees no publish or unsubscribe is in progress, so
     * every subscription is referenced by its channel only. */
    iot_mtab_clear(&ps->channels, channel_free, NULL);
    pthread_cond_destroy(&ps->idle);
    pthread_mutex_destroy(&ps->lock);
}

static void sub_unref_locked(struct iot_mem_sub *sub)
{
    if (--sub->refs == 0)
        free(sub);
}

/* Takes sub out of its channel, and the channel out of the table when it
 * was the last subscriber. */
static void channel_remove_locked(struct iot_mem_pubsub *ps, struct iot_mem_sub *sub)
{
    struct iot_mem_channel *ch = sub->chan;
    if (!ch)
        return;
    ch->n--;
    if (sub->idx != ch->n) {
        ch->subs[sub->idx] = ch->subs[ch->n];
        ch->subs[sub->idx]->idx = sub->idx;
    }
    sub->chan = NULL;
    if (ch->n == 0) {
        iot_mtab_remove(&ps->channels, ch->node);
        free(ch->subs);
        free(ch);
    }
}

/* Finds or creates the channel and makes room for one more subscriber. On
 * failure nothing is left behind. */
static struct iot_mem_channel *channel_reserve_locked(struct iot_mem_pubsub *ps,
                                                      const char *name, size_t len)
{
    struct iot_mtab_node *node = iot_mtab_find(&ps->channels, name, len);
    if (!node) {
        struct iot_mem_channel *nc = calloc(1, sizeof *nc);
        node = nc ? iot_mtab_add(&ps->channels, name, len) : NULL;
        if (!node) {
            free(nc);
            return NULL;
        }
        nc->node = node;
        node->val.ptr = nc;
    }
    struct iot_mem_channel *ch = node->val.ptr;
    if (ch->n < ch->cap)
        return ch;
    size_t ncap = ch->cap ? ch->cap * 2 : 4;
    struct iot_mem_sub **subs = realloc(ch->subs, ncap * sizeof *subs);
    if (!subs) {
        if (ch->n == 0) {
            iot_mtab_remove(&ps->channels, node);
            free(ch->subs);
            free(ch);
        }
        return NULL;
    }
    ch->subs = subs;
    ch->cap = ncap;
    return ch;
}

int iot_mem_subscribe(void *self, const char *channel, iot_cache_msg_fn fn, void *ctx,
                      struct iot_cache_sub **out)
{
    struct iot_mem_cache *c = self;
    size_t len;
    if (!out)
        return IOT_EINVAL;
    *out = NULL;
    if (!fn || iot_cache_check_key(channel, &len))
        return IOT_EINVAL;
    struct iot_mem_sub *sub = calloc(1, sizeof *sub);
    if (!sub)
        return IOT_ENOMEM;
    sub->fn = fn;
    sub->ctx = ctx;
    sub->refs = 1;
    pthread_mutex_lock(&c->ps.lock);
    struct iot_mem_channel *ch = channel_reserve_locked(&c->ps, channel, len);
    if (ch) {
        sub->chan = ch;
        sub->idx = ch->n;
        ch->subs[ch->n++] = sub;
    }
    pthread_mutex_unlock(&c->ps.lock);
    if (!ch) {
        free(sub);
        return IOT_ENOMEM;
    }
    *out = (struct iot_cache_sub *)sub;
    return IOT_OK;
}

void iot_mem_unsubscribe(void *self, struct iot_cache_sub *handle)
{
    struct iot_mem_cache *c = self;
    struct iot_mem_sub *sub = (struct iot_mem_sub *)handle;
    if (!c || !sub)
        return;
    pthread_mutex_lock(&c->ps.lock);
    sub->dead = true;
    channel_remove_locked(&c->ps, sub);
    while (sub->running > 0)
        pthread_cond_wait(&c->ps.idle, &c->ps.lock);
    sub_unref_locked(sub);
    pthread_mutex_unlock(&c->ps.lock);
}

/* One delivery from a publish snapshot; drops the snapshot's reference. */
static void deliver(struct iot_mem_pubsub *ps, struct iot_mem_sub *sub, const char *channel,
                    const char *msg, size_t len)
{
    pthread_mutex_lock(&ps->lock);
    bool run = !sub->dead;
    if (run)
        sub->running++;
    pthread_mutex_unlock(&ps->lock);
    if (run)
        sub->fn(sub->ctx, channel, msg, len);
    pthread_mutex_lock(&ps->lock);
    if (run && --sub->running == 0 && sub->dead)
        pthread_cond_broadcast(&ps->idle);
    sub_unref_locked(sub);
    pthread_mutex_unlock(&ps->lock);
}

int iot_mem_publish(void *self, const char *channel, const char *msg, size_t len)
{
    struct iot_mem_cache *c = self;
    size_t clen;
    if (iot_cache_check_key(channel, &clen) || iot_cache_check_value(msg, len))
        return IOT_EINVAL;
    if (!msg)
        msg = ""; /* callbacks always get a valid pointer */
    struct iot_mem_sub *stack[PUBLISH_STACK_SUBS];
    struct iot_mem_sub **subs = stack;
    size_t n = 0;
    pthread_mutex_lock(&c->ps.lock);
    const struct iot_mtab_node *node = iot_mtab_find(&c->ps.channels, channel, clen);
    if (node) {
        const struct iot_mem_channel *ch = node->val.ptr;
        if (ch->n > PUBLISH_STACK_SUBS)
            subs = malloc(ch->n * sizeof *subs);
        if (subs) {
            n = ch->n;
            for (size_t i = 0; i < n; i++) {
                subs[i] = ch->subs[i];
                subs[i]->refs++;
            }
        }
    }
    pthread_mutex_unlock(&c->ps.lock);
    if (!subs)
        return IOT_ENOMEM;
    for (size_t i = 0; i < n; i++)
        deliver(&c->ps, subs[i], channel, msg, len);
    if (subs != stack)
        free(subs);
    return IOT_OK;
}
