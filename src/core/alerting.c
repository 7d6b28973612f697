/* alerting.c — the alerting engine's queue, thread and invalidation
 * channels (alerting.h); the evaluation itself is in alerting_eval.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alerting_int.h"
#include "core/device_auth.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define QUEUE_DEFAULT 65536
#define REFRESH_DEFAULT_MS (300 * 1000)
#define DROP_LOG_EVERY_MS 10000

/* Invalidations between instances: "user <id>" or "device <id>". */
#define RULES_CHANNEL "alerting:rules"

void iot_alerting__count(struct iot_alerting *a, int64_t *stat, int64_t n)
{
    pthread_mutex_lock(&a->lock);
    *stat += n;
    pthread_mutex_unlock(&a->lock);
}

/* ---- the queue --------------------------------------------------------------- */

/* Caller holds a->lock. */
static void push_locked(struct iot_alerting *a, struct item *it)
{
    it->next = NULL;
    if (a->tail)
        a->tail->next = it;
    else
        a->head = it;
    a->tail = it;
    a->queued += it->n_msgs;
    pthread_cond_signal(&a->wake);
}

static void push_invalidation(struct iot_alerting *a, enum item_kind kind, int64_t id)
{
    struct item *it = calloc(1, sizeof *it);
    if (!it) {
        IOT_WARN("alerts: out of memory; an invalidation of %lld is lost until the next refresh",
                 (long long)id);
        return;
    }
    it->kind = kind;
    it->id = id;
    pthread_mutex_lock(&a->lock);
    push_locked(a, it);
    pthread_mutex_unlock(&a->lock);
}

/* The numbers of a message that rules can compare: numbers, and booleans
 * as 0/1. */
static bool comparable(const struct iot_tm_point *p)
{
    return p->value.type == IOT_TM_NUMBER || p->value.type == IOT_TM_BOOL;
}

static struct alert_point point_of(const struct iot_tm_point *p, const char *name)
{
    const struct iot_tm_value *v = &p->value;
    if (v->type == IOT_TM_BOOL)
        return (struct alert_point){name, v->boolean ? 1.0 : 0.0, true, v->boolean};
    return (struct alert_point){name, v->num, v->is_int, v->i};
}

/* One allocation: the item, its messages, its points, the points' names. */
static struct item *copy_batch(const struct iot_tm_message *msgs, size_t n)
{
    size_t n_points = 0, name_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < msgs[i].n_points; k++) {
            if (comparable(&msgs[i].points[k])) {
                n_points++;
                name_bytes += strlen(msgs[i].points[k].name) + 1;
            }
        }
    }
    size_t size = sizeof(struct item) + n * sizeof(struct alert_msg) +
                  n_points * sizeof(struct alert_point) + name_bytes;
    struct item *it = malloc(size);
    if (!it)
        return NULL;
    *it = (struct item){.kind = ITEM_MESSAGES, .n_msgs = n};
    it->msgs = (struct alert_msg *)(it + 1);
    it->points = (struct alert_point *)(it->msgs + n);
    char *names = (char *)(it->points + n_points);
    size_t p = 0;
    for (size_t i = 0; i < n; i++) {
        const struct iot_tm_message *m = &msgs[i];
        it->msgs[i] = (struct alert_msg){m->device_id, m->user_id, m->ts, p, 0};
        for (size_t k = 0; k < m->n_points; k++) {
            if (!comparable(&m->points[k]))
                continue;
            size_t len = strlen(m->points[k].name) + 1;
            memcpy(names, m->points[k].name, len);
            it->points[p++] = point_of(&m->points[k], names);
            names += len;
            it->msgs[i].n++;
        }
    }
    return it;
}

void iot_alerting_after_commit(void *ctx, const struct iot_tm_message *msgs, size_t n)
{
    struct iot_alerting *a = ctx;
    if (!a || n == 0)
        return;
    pthread_mutex_lock(&a->lock);
    bool full = a->queued + n > a->cfg.queue_max || a->stopping;
    pthread_mutex_unlock(&a->lock);
    struct item *it = full ? NULL : copy_batch(msgs, n);
    pthread_mutex_lock(&a->lock);
    if (it && !a->stopping) {
        push_locked(a, it);
        it = NULL;
    } else {
        a->stats.dropped += (int64_t)n;
        int64_t now = iot_mono_us() / 1000;
        if (now - a->last_drop_log >= DROP_LOG_EVERY_MS) {
            a->last_drop_log = now;
            IOT_WARN("alerts: evaluation queue full; %lld messages not evaluated so far",
                     (long long)a->stats.dropped);
        }
    }
    pthread_mutex_unlock(&a->lock);
    free(it);
}

/* ---- the thread -------------------------------------------------------------- */

static void process(struct iot_alerting *a, struct item *it)
{
    switch (it->kind) {
    case ITEM_MESSAGES:
        for (size_t i = 0; i < it->n_msgs; i++)
            iot_alerting__evaluate(a, &it->msgs[i], it->points);
        iot_alerting__count(a, &a->stats.evaluated, (int64_t)it->n_msgs);
        break;
    case ITEM_USER:
        iot_alerting__user_stale(a, it->id);
        break;
    case ITEM_DEVICE:
        iot_alerting__device_stale(a, it->id);
        break;
    case ITEM_DEVICE_GONE:
        iot_alerting__device_gone(a, it->id);
        break;
    }
}

static void *thread_main(void *arg)
{
    struct iot_alerting *a = arg;
    pthread_setname_np(pthread_self(), "alerting");
    for (;;) {
        pthread_mutex_lock(&a->lock);
        while (!a->head && !a->stopping)
            pthread_cond_wait(&a->wake, &a->lock);
        struct item *items = a->head;
        a->head = a->tail = NULL;
        a->queued = 0;
        bool stop = a->stopping && !items;
        pthread_mutex_unlock(&a->lock);
        if (stop)
            break;
        for (struct item *it = items, *next; it; it = next) {
            next = it->next;
            process(a, it);
            free(it);
        }
    }
    return NULL;
}

/* ---- invalidation channels ------------------------------------------------------ */

static void publish_invalidation(struct iot_alerting *a, const char *what, int64_t id)
{
    char msg[64];
    int len = snprintf(msg, sizeof msg, "%s %lld", what, (long long)id);
    int rc = iot_cache_publish(a->env.cache, RULES_CHANNEL, msg, (size_t)len);
    if (rc)
        IOT_WARN("alerts: peers not told that the rules of %s %lld changed (%s); they reload"
                 " them within their refresh period", what, (long long)id, iot_strerror(rc));
}

/* Copies a delivery into a NUL-terminated buffer; false when too long. */
static bool message_text(const char *msg, size_t len, char *buf, size_t size)
{
    if (len >= size)
        return false;
    memcpy(buf, msg, len);
    buf[len] = '\0';
    return true;
}

static void on_rules_notice(void *ctx, const char *channel, const char *msg, size_t len)
{
    (void)channel;
    char text[64], what[16];
    long long id;
    if (!message_text(msg, len, text, sizeof text) || sscanf(text, "%15s %lld", what, &id) != 2)
        return;
    if (strcmp(what, "user") == 0)
        push_invalidation(ctx, ITEM_USER, id);
    else if (strcmp(what, "device") == 0)
        push_invalidation(ctx, ITEM_DEVICE, id);
}

static void on_device_notice(void *ctx, const char *channel, const char *msg, size_t len)
{
    (void)channel;
    struct iot_device_notice n;
    if (iot_device_notice_parse(msg, len, &n) && !n.owner && n.deleted)
        push_invalidation(ctx, ITEM_DEVICE_GONE, n.id);
}

void iot_alerting_user_changed(struct iot_alerting *a, int64_t user_id)
{
    if (!a)
        return;
    push_invalidation(a, ITEM_USER, user_id); /* before the caller answers: ordered with ingest */
    publish_invalidation(a, "user", user_id);
}

void iot_alerting_device_changed(struct iot_alerting *a, int64_t device_id)
{
    if (!a)
        return;
    push_invalidation(a, ITEM_DEVICE, device_id);
    publish_invalidation(a, "device", device_id);
}

/* ---- life --------------------------------------------------------------------- */

struct iot_alerting *iot_alerting_new(const struct iot_alerting_config *cfg, struct iot_docs *docs,
                                      struct iot_cache *cache, struct iot_registry *reg)
{
    struct iot_alerting *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->cfg = *cfg;
    if (!a->cfg.queue_max)
        a->cfg.queue_max = QUEUE_DEFAULT;
    if (a->cfg.refresh_ms <= 0)
        a->cfg.refresh_ms = REFRESH_DEFAULT_MS;
    a->reg = reg;
    a->env = (struct iot_alert_env){docs, cache, NULL};
    a->last_drop_log = -DROP_LOG_EVERY_MS;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->wake, NULL);
    iot_alerting__init_tables(a);
    return a;
}

int iot_alerting_start(struct iot_alerting *a, struct iot_events *events)
{
    a->env.events = events;
    int rc = iot_cache_subscribe(a->env.cache, RULES_CHANNEL, on_rules_notice, a, &a->rules_sub);
    if (rc == IOT_OK)
        rc = iot_cache_subscribe(a->env.cache, IOT_DEVICE_NOTICE_CHANNEL, on_device_notice, a,
                                 &a->notice_sub);
    if (rc == IOT_OK && pthread_create(&a->thread, NULL, thread_main, a) != 0)
        rc = IOT_ENOMEM;
    if (rc == IOT_OK)
        a->started = true;
    return rc;
}

void iot_alerting_stats(struct iot_alerting *a, struct iot_alerting_stats *out)
{
    pthread_mutex_lock(&a->lock);
    *out = a->stats;
    pthread_mutex_unlock(&a->lock);
}

void iot_alerting_stop(struct iot_alerting *a)
{
    if (!a)
        return;
    iot_cache_unsubscribe(a->env.cache, a->rules_sub);
    iot_cache_unsubscribe(a->env.cache, a->notice_sub);
    a->rules_sub = a->notice_sub = NULL;
    pthread_mutex_lock(&a->lock);
    bool join = a->started && !a->joined;
    a->stopping = a->joined = true;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
    if (join)
        pthread_join(a->thread, NULL);
}

void iot_alerting_free(struct iot_alerting *a)
{
    if (!a)
        return;
    iot_alerting_stop(a);
    for (struct item *it = a->head, *next; it; it = next) { /* never started */
        next = it->next;
        free(it);
    }
    iot_alerting__free_tables(a);
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->lock);
    free(a);
}
