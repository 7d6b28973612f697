/* events.c — the event log's queue and writer thread (see events.h).
 *
 * Emitters append to a bounded ring under one mutex and return; the
 * "events" thread takes up to batch_max events at a time, turns them into
 * documents and writes them with one insert_many. Each event gets its id
 * at emit time, so a batch retried after a store error (some of it may be
 * stored already) stores every event once. The thread also runs the
 * retention pass. */
#include "core/events.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/events_presence.h"
#include "core/secrets.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/json_out.h"
#include "util/log.h"

#define DEFAULT_QUEUE_MAX 65536
#define DEFAULT_BATCH_MAX 512
#define DEFAULT_RETRY_MIN_MS 100
#define DEFAULT_RETRY_MAX_MS 30000
#define DEFAULT_DRAIN_MS 5000
#define DEFAULT_PURGE_EVERY_MS INT64_C(3600000)
#define DEFAULT_WARN_EVERY_MS 10000
#define DEFAULT_ONLINE_WINDOW_MS 300000
#define RING_START 256
#define UID_CACHE_SLOTS 256 /* a power of two */

struct pending {
    char id[IOT_DOCS_ID_MAX + 1];
    char type[IOT_EVENT_TYPE_MAX + 1];
    int64_t user_id, device_id, ts_ms;
    json_t *details; /* owned; NULL: {} */
};

/* The public user id of an internal one, as the registry said. */
struct uid_slot {
    int64_t id; /* 0: empty */
    char uid[IOT_USER_ID_LEN + 1];
};

/* The writer's batch: events taken off the queue and, once built, their
 * documents, kept as they are across retries. */
struct batch {
    struct pending *ev;
    struct iot_doc *docs;
    char **bodies;
    size_t n;
    bool built;
    bool singly; /* the store refused the batch: one document at a time */
};

struct iot_events {
    struct iot_events_config cfg;
    struct iot_docs *docs;
    struct iot_registry *reg;
    struct iot_presence_watch *presence;

    pthread_mutex_t lock;
    pthread_cond_t wake; /* on CLOCK_MONOTONIC */
    struct pending *ring;
    size_t cap, head, count; /* cap grows by doubling up to queue_max */
    bool accepting, stopping, joined, started;
    int64_t stop_deadline_us; /* monotonic; writing stops there */
    uint64_t emitted, written, dropped, failed_writes;
    uint64_t dropped_unwarned;
    int64_t last_warn_us;

    pthread_t thread;
    struct uid_slot uids[UID_CACHE_SLOTS]; /* the writer's only */
    struct batch batch;                    /* the writer's only */
};

bool iot_event_type_valid(const char *type)
{
    size_t n = 0;
    for (; type[n]; n++) {
        char c = type[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_';
        if (!ok || n >= IOT_EVENT_TYPE_MAX)
            return false;
    }
    return n > 0;
}

/* Doubles the ring (keeping order) when full and below queue_max; false
 * when it may not or cannot grow. Under the lock. */
static bool ring_make_room(struct iot_events *ev)
{
    if (ev->count < ev->cap)
        return true;
    if (ev->cap >= ev->cfg.queue_max)
        return false;
    size_t cap = ev->cap ? ev->cap * 2 : RING_START;
    if (cap > ev->cfg.queue_max)
        cap = ev->cfg.queue_max;
    struct pending *ring = malloc(cap * sizeof *ring);
    if (!ring)
        return false;
    for (size_t i = 0; i < ev->count; i++)
        ring[i] = ev->ring[(ev->head + i) % ev->cap];
    free(ev->ring);
    ev->ring = ring;
    ev->cap = cap;
    ev->head = 0;
    return true;
}

/* Counts a dropped event and warns at most once per warn interval. Under
 * the lock. */
static void count_drop(struct iot_events *ev)
{
    ev->dropped++;
    ev->dropped_unwarned++;
    int64_t now = iot_mono_us();
    if (ev->last_warn_us && now - ev->last_warn_us < ev->cfg.warn_every_ms * 1000)
        return;
    IOT_WARN("events: queue full (%zu waiting): %llu event(s) dropped since the last warning",
             ev->count, (unsigned long long)ev->dropped_unwarned);
    ev->dropped_unwarned = 0;
    ev->last_warn_us = now;
}

/* Queues one event; `id` NULL: a fresh random one. */
static void enqueue(struct iot_events *ev, const char *id, const char *type, int64_t user_id,
                    int64_t device_id, json_t *details)
{
    if (!ev || !type) {
        json_decref(details);
        return;
    }
    if (!iot_event_type_valid(type) || (details && !json_is_object(details)) || user_id < 0 ||
        device_id < 0) {
        IOT_ERROR("events: refused an event of a bad type or details (a bug in the caller)");
        json_decref(details);
        return;
    }
    struct pending p = {.user_id = user_id, .device_id = device_id, .details = details};
    if (id)
        snprintf(p.id, sizeof p.id, "%s", id);
    else
        iot_random_hex(p.id, IOT_EVENT_ID_LEN);
    snprintf(p.type, sizeof p.type, "%s", type);
    p.ts_ms = iot_now_ms();

    pthread_mutex_lock(&ev->lock);
    bool queued = false;
    if (ev->accepting) {
        ev->emitted++;
        if (ring_make_room(ev)) {
            ev->ring[(ev->head + ev->count) % ev->cap] = p;
            ev->count++;
            queued = true;
            if (ev->count == 1)
                pthread_cond_signal(&ev->wake);
        } else {
            count_drop(ev);
        }
    }
    pthread_mutex_unlock(&ev->lock);
    if (!queued)
        json_decref(details);
}

void iot_events_emit(struct iot_events *ev, const char *type, int64_t user_id, int64_t device_id,
                     json_t *details)
{
    enqueue(ev, NULL, type, user_id, device_id, details);
}

/* {"last_seen": ISO time or null} */
static json_t *last_seen_details(int64_t last_seen)
{
    return json_pack("{s:o}", "last_seen", iot_json_time(last_seen));
}

bool iot_events_device_arriving(struct iot_events *ev, int64_t device_id, int64_t user_id,
                                int64_t known, int64_t *prev)
{
    return ev && iot_presence_watch_seen(ev->presence, device_id, user_id, known, iot_now_ms(),
                                         prev);
}

void iot_events_device_online(struct iot_events *ev, int64_t device_id, int64_t user_id,
                              int64_t prev)
{
    char id[IOT_DOCS_ID_MAX + 1];
    snprintf(id, sizeof id, "online-%lld-%lld", (long long)device_id, (long long)prev);
    enqueue(ev, id, IOT_EV_DEVICE_ONLINE, user_id, device_id, last_seen_details(prev));
}

void iot_events_device_seen(struct iot_events *ev, int64_t device_id, int64_t user_id,
                            int64_t known)
{
    int64_t prev;
    if (iot_events_device_arriving(ev, device_id, user_id, known, &prev))
        iot_events_device_online(ev, device_id, user_id, prev);
}

void iot_events_device_gone(struct iot_events *ev, int64_t device_id, int64_t user_id)
{
    if (ev)
        iot_presence_watch_forget(ev->presence, device_id, user_id);
}

static void emit_offline(void *ctx, int64_t device_id, int64_t user_id, int64_t last_seen)
{
    char id[IOT_DOCS_ID_MAX + 1];
    snprintf(id, sizeof id, "offline-%lld-%lld", (long long)device_id, (long long)last_seen);
    enqueue(ctx, id, IOT_EV_DEVICE_OFFLINE, user_id, device_id, last_seen_details(last_seen));
}

/* ---- the writer ----------------------------------------------------------- */

/* The public id of an internal user id into uid (empty for none or an
 * unknown user). IOT_OK, or the registry's error when it did not answer. */
static int public_uid(struct iot_events *ev, int64_t id, char uid[IOT_USER_ID_LEN + 1])
{
    uid[0] = '\0';
    if (id <= 0)
        return IOT_OK;
    struct uid_slot *slot = &ev->uids[(uint64_t)id & (UID_CACHE_SLOTS - 1)];
    if (slot->id == id) {
        memcpy(uid, slot->uid, sizeof slot->uid);
        return IOT_OK;
    }
    struct iot_user u;
    int rc = iot_reg_user_get_by_id(ev->reg, id, &u);
    if (rc == IOT_ENOTFOUND)
        return IOT_OK; /* deleted meanwhile: the event keeps the internal id only */
    if (rc)
        return rc;
    slot->id = id;
    memcpy(slot->uid, u.user_id, sizeof slot->uid);
    memcpy(uid, u.user_id, sizeof slot->uid);
    return IOT_OK;
}

/* The body of one event: {id, type, at, user_id, device_id, details}.
 * NULL when out of memory; *len receives its length. */
static char *event_body(const struct pending *p, const char *uid, size_t *len)
{
    char *details = p->details ? iot_json_dumps(p->details) : NULL;
    if (p->details && !details)
        return NULL;
    char at[IOT_ISO8601_LEN + 1];
    iot_iso8601(p->ts_ms, at, sizeof at);
    char user[IOT_USER_ID_LEN + 3] = "null";
    if (uid[0])
        snprintf(user, sizeof user, "\"%s\"", uid);
    char device[24] = "null";
    if (p->device_id)
        snprintf(device, sizeof device, "%lld", (long long)p->device_id);
    const char *fmt = "{\"id\":\"%s\",\"type\":\"%s\",\"at\":\"%s\",\"user_id\":%s,"
                      "\"device_id\":%s,\"details\":%s}";
    const char *d = details ? details : "{}";
    int n = snprintf(NULL, 0, fmt, p->id, p->type, at, user, device, d);
    char *body = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (body)
        snprintf(body, (size_t)n + 1, fmt, p->id, p->type, at, user, device, d);
    free(details);
    *len = body ? (size_t)n : 0;
    return body;
}

/* Builds the documents of the batch once. IOT_OK, or an error to retry. */
static int batch_build(struct iot_events *ev, struct batch *b)
{
    if (b->built)
        return IOT_OK;
    for (size_t i = 0; i < b->n; i++) {
        if (b->bodies[i])
            continue;
        const struct pending *p = &b->ev[i];
        char uid[IOT_USER_ID_LEN + 1];
        int rc = public_uid(ev, p->user_id, uid);
        if (rc)
            return rc;
        size_t len = 0;
        b->bodies[i] = event_body(p, uid, &len);
        if (!b->bodies[i])
            return IOT_ENOMEM;
        b->docs[i] = (struct iot_doc){.id = p->id, .user_id = p->user_id,
                                      .device_id = p->device_id, .ts_ms = p->ts_ms,
                                      .k1 = p->type, .body = b->bodies[i], .body_len = len};
    }
    b->built = true;
    return IOT_OK;
}

static void batch_clear(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        json_decref(b->ev[i].details);
        free(b->bodies[i]);
        b->bodies[i] = NULL;
    }
    b->n = 0;
    b->built = b->singly = false;
}

/* Writes the batch one document at a time, so that a document the store
 * refuses (IOT_EINVAL: a body over the size limit) is the only one lost.
 * IOT_OK, or the first error that is worth a retry. */
static int batch_write_singly(struct iot_events *ev, struct batch *b, size_t *written)
{
    for (size_t i = 0; i < b->n; i++) {
        if (!b->docs[i].body)
            continue; /* written (or refused) by an earlier attempt */
        size_t ins = 0;
        int rc = iot_docs_insert_many(ev->docs, IOT_DOCS_EVENTS, &b->docs[i], 1, &ins);
        if (rc == IOT_EINVAL)
            IOT_ERROR("events: the store refused a %s event (%zu bytes); dropped",
                      b->ev[i].type, b->docs[i].body_len);
        else if (rc)
            return rc;
        *written += ins;
        b->docs[i].body = NULL;
    }
    return IOT_OK;
}

/* Removes the events just written for users deleted meanwhile. A user's
 * deletion removes its events (core/cleanup.c), but events emitted just
 * before it may still be queued here and land after that clean-up: so
 * after each batch the writer looks again, past its cache, at every owner
 * the batch named. Either the clean-up ran after this batch (and removed
 * it) or this look sees the user gone. One registry read per owner per
 * batch. */
static void drop_orphans(struct iot_events *ev, const struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        int64_t uid = b->ev[i].user_id;
        bool seen = uid <= 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = b->ev[j].user_id == uid;
        struct iot_user u;
        if (seen || iot_reg_user_get_by_id(ev->reg, uid, &u) != IOT_ENOTFOUND)
            continue;
        ev->uids[(uint64_t)uid & (UID_CACHE_SLOTS - 1)].id = 0;
        struct iot_docs_filter f = {.user_id = uid};
        int rc = iot_docs_delete_where(ev->docs, IOT_DOCS_EVENTS, &f, NULL);
        if (rc)
            IOT_WARN("events: cannot remove the events of deleted user %lld: %s", (long long)uid,
                     iot_strerror(rc));
    }
}

/* One attempt at writing the batch; IOT_OK when nothing of it is left. */
static int batch_write(struct iot_events *ev, struct batch *b)
{
    int rc = batch_build(ev, b);
    if (rc)
        return rc;
    size_t written = 0;
    if (!b->singly) {
        rc = iot_docs_insert_many(ev->docs, IOT_DOCS_EVENTS, b->docs, b->n, &written);
        b->singly = rc == IOT_EINVAL;
    }
    if (b->singly) {
        written = 0;
        rc = batch_write_singly(ev, b, &written);
    }
    pthread_mutex_lock(&ev->lock);
    ev->written += written;
    if (rc)
        ev->failed_writes++;
    pthread_mutex_unlock(&ev->lock);
    if (!rc) {
        drop_orphans(ev, b);
        batch_clear(b);
    }
    return rc;
}

/* Moves up to batch_max queued events into the (empty) batch. Under the
 * lock. */
static void batch_take(struct iot_events *ev, struct batch *b)
{
    while (b->n < ev->cfg.batch_max && ev->count) {
        b->ev[b->n++] = ev->ring[ev->head];
        ev->head = (ev->head + 1) % ev->cap;
        ev->count--;
    }
}

/* Waits on the wake condition until `until_us` (monotonic) at most, or
 * until woken. Under the lock. */
static void wait_until(struct iot_events *ev, int64_t until_us)
{
    int64_t left_ms = (until_us - iot_mono_us() + 999) / 1000;
    if (left_ms <= 0)
        return;
    struct timespec ts = iot_deadline_ms(CLOCK_MONOTONIC, left_ms);
    pthread_cond_timedwait(&ev->wake, &ev->lock, &ts);
}

int iot_events_purge(struct iot_events *ev, int64_t before_ms, int64_t *deleted)
{
    struct iot_docs_filter f = {.has_ts_max = true, .ts_max = before_ms - 1};
    return iot_docs_delete_where(ev->docs, IOT_DOCS_EVENTS, &f, deleted);
}

static void retention_pass(struct iot_events *ev)
{
    int64_t deleted = 0;
    int rc = iot_events_purge(ev, iot_now_ms() - ev->cfg.retention_ms, &deleted);
    if (rc)
        IOT_WARN("events: retention pass failed: %s", iot_strerror(rc));
    else if (deleted)
        IOT_INFO("events: retention removed %lld old event(s)", (long long)deleted);
}

/* After a failed write: waits the backoff (or less when stopping), logging
 * the first failure of a run. */
static void after_failure(struct iot_events *ev, int rc, int64_t *backoff_ms, bool *failing)
{
    if (!*failing)
        IOT_WARN("events: writing %zu event(s) failed (%s); retrying with backoff, "
                 "emitters are not blocked", ev->batch.n, iot_strerror(rc));
    *failing = true;
    int64_t until = iot_mono_us() + *backoff_ms * 1000;
    *backoff_ms = *backoff_ms * 2 > ev->cfg.retry_max_ms ? ev->cfg.retry_max_ms : *backoff_ms * 2;
    pthread_mutex_lock(&ev->lock);
    for (;;) {
        int64_t end = ev->stopping && ev->stop_deadline_us < until ? ev->stop_deadline_us : until;
        if (iot_mono_us() >= end)
            break;
        wait_until(ev, end);
    }
    pthread_mutex_unlock(&ev->lock);
}

/* Drops what is left at the end of the drain time, and says how much. */
static void drop_leftovers(struct iot_events *ev)
{
    size_t left = ev->batch.n;
    batch_clear(&ev->batch);
    pthread_mutex_lock(&ev->lock);
    while (ev->count) {
        json_decref(ev->ring[ev->head].details);
        ev->head = (ev->head + 1) % ev->cap;
        ev->count--;
        left++;
    }
    ev->dropped += left;
    pthread_mutex_unlock(&ev->lock);
    if (left)
        IOT_WARN("events: %zu event(s) not written at shutdown (the store did not take them)",
                 left);
}

static void *writer_main(void *arg)
{
    struct iot_events *ev = arg;
    pthread_setname_np(pthread_self(), "events");
    int64_t backoff_ms = ev->cfg.retry_min_ms;
    bool failing = false;
    int64_t next_purge_us = iot_mono_us(), next_sweep_us = iot_mono_us();
    for (;;) {
        if (ev->cfg.retention_ms && iot_mono_us() >= next_purge_us) {
            retention_pass(ev);
            next_purge_us = iot_mono_us() + ev->cfg.purge_every_ms * 1000;
        }
        if (!ev->cfg.retention_ms)
            next_purge_us = INT64_MAX;
        if (iot_mono_us() >= next_sweep_us) {
            iot_presence_watch_sweep(ev->presence, iot_now_ms(), emit_offline, ev);
            next_sweep_us = iot_mono_us() + ev->cfg.offline_sweep_ms * 1000;
        }
        int64_t next_duty = next_purge_us < next_sweep_us ? next_purge_us : next_sweep_us;
        pthread_mutex_lock(&ev->lock);
        while (!ev->batch.n && !ev->count && !ev->stopping && iot_mono_us() < next_duty)
            wait_until(ev, next_duty);
        if (!ev->batch.n)
            batch_take(ev, &ev->batch);
        bool stopping = ev->stopping;
        bool past_deadline = stopping && iot_mono_us() >= ev->stop_deadline_us;
        pthread_mutex_unlock(&ev->lock);
        if (past_deadline) {
            drop_leftovers(ev);
            break;
        }
        if (!ev->batch.n) {
            if (stopping)
                break;
            continue;
        }
        int rc = batch_write(ev, &ev->batch);
        if (rc) {
            after_failure(ev, rc, &backoff_ms, &failing);
            continue;
        }
        if (failing)
            IOT_INFO("events: writing works again");
        failing = false;
        backoff_ms = ev->cfg.retry_min_ms;
    }
    return NULL;
}

/* ---- life cycle ----------------------------------------------------------- */

static void config_defaults(struct iot_events_config *c)
{
    if (!c->queue_max)
        c->queue_max = DEFAULT_QUEUE_MAX;
    if (!c->batch_max)
        c->batch_max = DEFAULT_BATCH_MAX;
    if (!c->retry_min_ms)
        c->retry_min_ms = DEFAULT_RETRY_MIN_MS;
    if (!c->retry_max_ms)
        c->retry_max_ms = DEFAULT_RETRY_MAX_MS;
    if (c->retry_max_ms < c->retry_min_ms)
        c->retry_max_ms = c->retry_min_ms;
    if (!c->drain_ms)
        c->drain_ms = DEFAULT_DRAIN_MS;
    if (!c->purge_every_ms)
        c->purge_every_ms = DEFAULT_PURGE_EVERY_MS;
    if (!c->warn_every_ms)
        c->warn_every_ms = DEFAULT_WARN_EVERY_MS;
    if (!c->online_window_ms)
        c->online_window_ms = DEFAULT_ONLINE_WINDOW_MS;
    if (!c->offline_sweep_ms)
        c->offline_sweep_ms = c->online_window_ms / 10 < 1000    ? 1000
                              : c->online_window_ms / 10 > 30000 ? 30000
                                                                  : c->online_window_ms / 10;
}

static void events_destroy(struct iot_events *ev)
{
    batch_clear(&ev->batch);
    for (size_t i = 0; i < ev->count; i++)
        json_decref(ev->ring[(ev->head + i) % ev->cap].details);
    free(ev->ring);
    free(ev->batch.ev);
    free(ev->batch.docs);
    free(ev->batch.bodies);
    iot_presence_watch_free(ev->presence);
    pthread_cond_destroy(&ev->wake);
    pthread_mutex_destroy(&ev->lock);
    free(ev);
}

int iot_events_start(const struct iot_events_config *cfg, struct iot_docs *docs,
                     struct iot_registry *reg, struct iot_cache *cache,
                     struct iot_events **out)
{
    *out = NULL;
    if (cfg->retry_min_ms < 0 || cfg->retry_max_ms < 0 || cfg->drain_ms < 0 ||
        cfg->retention_ms < 0 || cfg->purge_every_ms < 0 || cfg->warn_every_ms < 0 ||
        cfg->online_window_ms < 0 || cfg->offline_sweep_ms < 0)
        return IOT_EINVAL;
    struct iot_events *ev = calloc(1, sizeof *ev);
    if (!ev)
        return IOT_ENOMEM;
    ev->cfg = *cfg;
    config_defaults(&ev->cfg);
    ev->docs = docs;
    ev->reg = reg;
    pthread_mutex_init(&ev->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ev->wake, &attr);
    pthread_condattr_destroy(&attr);
    size_t bmax = ev->cfg.batch_max;
    ev->batch.ev = calloc(bmax, sizeof *ev->batch.ev);
    ev->batch.docs = calloc(bmax, sizeof *ev->batch.docs);
    ev->batch.bodies = calloc(bmax, sizeof *ev->batch.bodies);
    ev->presence = iot_presence_watch_new(ev->cfg.online_window_ms, cache);
    if (!ev->batch.ev || !ev->batch.docs || !ev->batch.bodies || !ev->presence) {
        events_destroy(ev);
        return IOT_ENOMEM;
    }
    ev->accepting = true;
    if (pthread_create(&ev->thread, NULL, writer_main, ev) != 0) {
        events_destroy(ev);
        return IOT_ENOMEM;
    }
    ev->started = true;
    *out = ev;
    return IOT_OK;
}

void iot_events_stop(struct iot_events *ev)
{
    if (!ev)
        return;
    pthread_mutex_lock(&ev->lock);
    bool joined = ev->joined;
    ev->accepting = false;
    if (!ev->stopping)
        ev->stop_deadline_us = iot_mono_us() + ev->cfg.drain_ms * 1000;
    ev->stopping = ev->joined = true;
    pthread_cond_signal(&ev->wake);
    pthread_mutex_unlock(&ev->lock);
    if (ev->started && !joined)
        pthread_join(ev->thread, NULL);
}

void iot_events_free(struct iot_events *ev)
{
    if (!ev)
        return;
    iot_events_stop(ev);
    events_destroy(ev);
}

void iot_events_stats(struct iot_events *ev, struct iot_events_stats *out)
{
    *out = (struct iot_events_stats){0};
    if (!ev)
        return;
    pthread_mutex_lock(&ev->lock);
    out->emitted = ev->emitted;
    out->written = ev->written;
    out->dropped = ev->dropped;
    out->failed_writes = ev->failed_writes;
    out->queued = ev->count;
    pthread_mutex_unlock(&ev->lock);
}
