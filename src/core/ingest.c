#include "core/ingest.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/events.h"
#include "core/latest.h"
#include "core/metrics.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define SEEN_MAX 4096 /* distinct devices gathered between flushes */

struct iot_ingest {
    struct iot_ingest_config cfg;
    struct iot_telemetry *tm;
    struct iot_cache *cache;
    struct iot_registry *reg;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct iot_ingest_job *head, *tail;
    size_t queued;
    bool stopping, joined;
    struct iot_ingest_stats stats;
    pthread_t writer;

    /* Sightings waiting for the registry (under lock: heartbeats add to
     * it from request threads). */
    struct iot_seen seen[SEEN_MAX];
    size_t n_seen;

    /* Writer-thread state. */
    struct iot_tm_message *batch;
    size_t batch_cap;
    struct iot_seen flushing[SEEN_MAX];
    int64_t last_seen_flush;
    struct iot_latest_writer *latest;
    struct iot_fanout fan;
};

void iot_ingest_channel(int64_t device_id, char *buf, size_t size)
{
    snprintf(buf, size, "telemetry:%lld", (long long)device_id);
}

int iot_ingest_submit(struct iot_ingest *ing, struct iot_ingest_job *job)
{
    int rc = IOT_OK;
    pthread_mutex_lock(&ing->lock);
    if (ing->stopping) {
        rc = IOT_EUNAVAILABLE;
    } else if (ing->queued + job->n > ing->cfg.queue_max) {
        ing->stats.rejected_full++;
        rc = IOT_ELIMIT;
    } else {
        job->next = NULL;
        if (ing->tail)
            ing->tail->next = job;
        else
            ing->head = job;
        ing->tail = job;
        ing->queued += job->n;
        pthread_cond_signal(&ing->wake);
    }
    pthread_mutex_unlock(&ing->lock);
    return rc;
}

/* Takes queued jobs up to batch_max messages (always at least one job). */
static struct iot_ingest_job *take_jobs(struct iot_ingest *ing, size_t *n_msgs)
{
    struct iot_ingest_job *first = ing->head, *last = NULL, *j = first;
    size_t n = 0;
    while (j && (n == 0 || n + j->n <= ing->cfg.batch_max)) {
        n += j->n;
        last = j;
        j = j->next;
    }
    if (!last)
        return NULL;
    ing->head = last->next;
    if (!ing->head)
        ing->tail = NULL;
    last->next = NULL;
    ing->queued -= n;
    *n_msgs = n;
    return first;
}

static int gather_batch(struct iot_ingest *ing, struct iot_ingest_job *jobs, size_t n)
{
    if (n > ing->batch_cap) {
        struct iot_tm_message *grown = realloc(ing->batch, n * sizeof *grown);
        if (!grown)
            return IOT_ENOMEM;
        ing->batch = grown;
        ing->batch_cap = n;
    }
    size_t k = 0;
    for (struct iot_ingest_job *j = jobs; j; j = j->next) {
        memcpy(ing->batch + k, j->msgs, j->n * sizeof *j->msgs);
        k += j->n;
    }
    return IOT_OK;
}

/* Caller holds ing->lock. Returns false when the table is full (the caller
 * then flushes). */
static bool note_seen_locked(struct iot_ingest *ing, int64_t device_id, int64_t ts)
{
    for (size_t i = 0; i < ing->n_seen; i++) {
        if (ing->seen[i].device_id == device_id) {
            if (ts > ing->seen[i].last_seen)
                ing->seen[i].last_seen = ts;
            return true;
        }
    }
    if (ing->n_seen == SEEN_MAX)
        return false;
    ing->seen[ing->n_seen++] = (struct iot_seen){device_id, ts};
    return true;
}

static void note_seen(struct iot_ingest *ing, int64_t device_id, int64_t ts)
{
    pthread_mutex_lock(&ing->lock);
    bool kept = note_seen_locked(ing, device_id, ts);
    if (!kept)
        pthread_cond_signal(&ing->wake); /* full: the writer flushes now */
    pthread_mutex_unlock(&ing->lock);
    if (!kept) /* rare: the registry gets this one directly */
        iot_reg_device_touch(ing->reg, &(struct iot_seen){device_id, ts}, 1);
}

void iot_ingest_note_seen(struct iot_ingest *ing, int64_t device_id, int64_t ts)
{
    note_seen(ing, device_id, ts);
}

/* Writes the gathered sightings to the registry in one batch (writer
 * thread), outside the lock. */
static void flush_seen(struct iot_ingest *ing, int64_t now)
{
    pthread_mutex_lock(&ing->lock);
    size_t n = ing->n_seen;
    memcpy(ing->flushing, ing->seen, n * sizeof *ing->seen);
    ing->n_seen = 0;
    pthread_mutex_unlock(&ing->lock);
    if (n) {
        int rc = iot_reg_device_touch(ing->reg, ing->flushing, n);
        if (rc)
            IOT_WARN("ingest: last_seen of %zu devices not persisted: %s", n, iot_strerror(rc));
    }
    ing->last_seen_flush = now;
}

static void fanout_send(struct iot_ingest *ing)
{
    size_t n = ing->fan.n;
    int rc = iot_fanout_send(&ing->fan, ing->cache);
    if (rc)
        IOT_DEBUG("ingest: %zu cache writes not all applied: %s", n, iot_strerror(rc));
}

/* The device's presence and its last_seen for the registry. */
static void seen_now(struct iot_ingest *ing, struct iot_fanout *f, int64_t device_id, int64_t now)
{
    iot_fanout_add(f, (struct iot_cache_write){.kind = IOT_CACHE_W_PRESENCE_TOUCH,
                                               .device_id = device_id, .seen_ms = now});
    note_seen(ing, device_id, now);
}

/* The message as subscribers of the device's channel see it. */
static void publish(struct iot_fanout *f, const struct iot_tm_message *m)
{
    char ts[IOT_ISO8601_LEN + 1];
    iot_iso8601(m->ts, ts, sizeof ts);
    size_t cap = m->data_len + m->meta_len + 128;
    char *channel = iot_fanout_alloc(f, 48), *buf = iot_fanout_alloc(f, cap);
    if (!channel || !buf)
        return;
    iot_ingest_channel(m->device_id, channel, 48);
    int len = snprintf(buf, cap, "{\"device_id\":%lld,\"timestamp\":\"%s\",\"measurements\":%.*s%s%.*s}",
                       (long long)m->device_id, ts, (int)m->data_len, m->data_json,
                       m->meta_json ? ",\"metadata\":" : "", (int)m->meta_len,
                       m->meta_json ? m->meta_json : "");
    if (len > 0 && (size_t)len < cap)
        iot_fanout_add(f, (struct iot_cache_write){.kind = IOT_CACHE_W_PUBLISH, .key = channel,
                                                   .msg = buf, .len = (size_t)len});
}

/* After the commit: latest values and presence from the newest message
 * of each device in the batch, last_seen gathered for the registry, and
 * every message published on its device's channel — all in one cache
 * batch. */
static void fan_out(struct iot_ingest *ing, const struct iot_tm_message *msgs, size_t n)
{
    struct newest { int64_t device_id; size_t index; } newest[64];
    size_t n_devices = 0;
    int64_t now = iot_now_ms();
    struct iot_fanout *f = &ing->fan;
    for (size_t i = 0; i < n; i++) {
        size_t d = 0;
        while (d < n_devices && newest[d].device_id != msgs[i].device_id)
            d++;
        if (d == n_devices && n_devices < sizeof newest / sizeof *newest)
            newest[n_devices++] = (struct newest){msgs[i].device_id, i};
        else if (d < n_devices && msgs[i].ts >= msgs[newest[d].index].ts)
            newest[d].index = i;
        else if (d == n_devices) { /* more devices than slots: update directly */
            iot_latest_after_commit(ing->latest, f, &msgs[i]);
            seen_now(ing, f, msgs[i].device_id, now);
        }
        publish(f, &msgs[i]);
    }
    for (size_t d = 0; d < n_devices; d++) {
        iot_latest_after_commit(ing->latest, f, &msgs[newest[d].index]);
        seen_now(ing, f, newest[d].device_id, now);
    }
    fanout_send(ing);
}

static int64_t points_of(const struct iot_tm_message *msgs, size_t n)
{
    int64_t points = 0;
    for (size_t i = 0; i < n; i++)
        points += (int64_t)msgs[i].n_points;
    return points;
}

static void commit_jobs(struct iot_ingest *ing, struct iot_ingest_job *jobs, size_t n)
{
    int64_t t0 = iot_mono_us();
    int rc = gather_batch(ing, jobs, n);
    if (rc == IOT_OK)
        rc = iot_tm_write_batch(ing->tm, ing->batch, n);
    if (rc == IOT_OK) {
        fan_out(ing, ing->batch, n);
        if (ing->cfg.after_commit)
            ing->cfg.after_commit(ing->cfg.after_commit_ctx, ing->batch, n);
    } else {
        IOT_ERROR("ingest: a batch of %zu messages failed: %s", n, iot_strerror(rc));
    }
    int64_t points = rc == IOT_OK ? points_of(ing->batch, n) : 0;
    pthread_mutex_lock(&ing->lock);
    if (rc == IOT_OK) {
        ing->stats.committed_messages += (int64_t)n;
        ing->stats.committed_points += points;
        ing->stats.commits++;
    } else {
        ing->stats.failed += (int64_t)n;
    }
    pthread_mutex_unlock(&ing->lock);
    iot_metrics_ingest_commit(iot_mono_us() - t0); /* a failed one too: a slow store shows */
    for (struct iot_ingest_job *j = jobs, *next; j; j = next) {
        next = j->next; /* done() may free j */
        j->status = rc;
        j->done(j);
    }
}

/* Waits for work or for the next periodic duty. */
static struct iot_ingest_job *wait_for_jobs(struct iot_ingest *ing, size_t *n, bool *stop)
{
    pthread_mutex_lock(&ing->lock);
    while (!ing->head && !ing->stopping) {
        struct timespec deadline = iot_deadline_ms(CLOCK_MONOTONIC, 200);
        if (pthread_cond_timedwait(&ing->wake, &ing->lock, &deadline) != 0)
            break; /* timed out: let the caller do its periodic work */
    }
    struct iot_ingest_job *jobs = take_jobs(ing, n);
    *stop = ing->stopping && !jobs;
    pthread_mutex_unlock(&ing->lock);
    return jobs;
}

static bool seen_full(struct iot_ingest *ing)
{
    pthread_mutex_lock(&ing->lock);
    bool full = ing->n_seen >= SEEN_MAX / 2;
    pthread_mutex_unlock(&ing->lock);
    return full;
}

static void *writer_main(void *arg)
{
    struct iot_ingest *ing = arg;
    pthread_setname_np(pthread_self(), "ingest-writer");
    for (;;) {
        size_t n = 0;
        bool stop = false;
        struct iot_ingest_job *jobs = wait_for_jobs(ing, &n, &stop);
        if (jobs)
            commit_jobs(ing, jobs, n);
        int64_t now = iot_now_ms();
        if (stop || now - ing->last_seen_flush >= ing->cfg.seen_flush_ms || seen_full(ing))
            flush_seen(ing, now);
        if (stop)
            break;
    }
    return NULL;
}

struct iot_ingest *iot_ingest_start(const struct iot_ingest_config *cfg, struct iot_telemetry *tm,
                                    struct iot_cache *cache, struct iot_registry *reg)
{
    struct iot_ingest *ing = calloc(1, sizeof *ing);
    if (!ing)
        return NULL;
    ing->cfg = *cfg;
    ing->tm = tm;
    ing->cache = cache;
    ing->reg = reg;
    if (!(ing->latest = iot_latest_writer_new(cache))) {
        free(ing);
        return NULL;
    }
    ing->last_seen_flush = iot_now_ms();
    pthread_mutex_init(&ing->lock, NULL);
    /* The writer's waits time its periodic duties: on the wall clock a step
     * back would stall them for as long as the step. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ing->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&ing->writer, NULL, writer_main, ing) != 0) {
        pthread_cond_destroy(&ing->wake);
        pthread_mutex_destroy(&ing->lock);
        iot_latest_writer_free(ing->latest);
        free(ing);
        return NULL;
    }
    return ing;
}

int iot_ingest_submit_sighting(struct iot_ingest *ing, struct iot_events *ev,
                               struct iot_ingest_job *job, const struct iot_device *d)
{
    int64_t id = d->id, owner = d->user_id, prev; /* d may live in the job's owner */
    bool arriving = iot_events_device_arriving(ev, id, owner, d->last_seen, &prev);
    int rc = iot_ingest_submit(ing, job);
    if (arriving && rc)
        iot_events_device_gone(ev, id, owner);
    else if (arriving)
        iot_events_device_online(ev, id, owner, prev);
    return rc;
}

void iot_ingest_stats(struct iot_ingest *ing, struct iot_ingest_stats *out)
{
    pthread_mutex_lock(&ing->lock);
    *out = ing->stats;
    out->queued = (int64_t)ing->queued;
    pthread_mutex_unlock(&ing->lock);
}

void iot_ingest_stop(struct iot_ingest *ing)
{
    if (!ing)
        return;
    pthread_mutex_lock(&ing->lock);
    bool joined = ing->joined;
    ing->stopping = ing->joined = true;
    pthread_cond_signal(&ing->wake);
    pthread_mutex_unlock(&ing->lock);
    if (!joined)
        pthread_join(ing->writer, NULL);
}

void iot_ingest_free(struct iot_ingest *ing)
{
    if (!ing)
        return;
    iot_ingest_stop(ing);
    pthread_cond_destroy(&ing->wake);
    pthread_mutex_destroy(&ing->lock);
    free(ing->batch);
    iot_fanout_free(&ing->fan);
    iot_latest_writer_free(ing->latest);
    free(ing);
}
