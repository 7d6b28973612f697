#include "core/ingest.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tm_message.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/json_out.h"
#include "util/log.h"

#define SEEN_MAX 4096 /* distinct devices gathered between flushes */
#define NEWEST_SLOTS 4096 /* devices whose newest cached timestamp we remember */

/* The cache writes of one fan-out, sent as one batch (one round trip to a
 * server cache), and an arena for the keys, fields and messages they point
 * into. Both live on the writer thread and are reused from one fan-out to
 * the next: a fan-out makes several strings per message, and a malloc and
 * free for each was a fifth of the writer's time. */
struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

struct fanout {
    struct iot_cache_write *w;
    size_t n, cap;
    struct chunk *chunks; /* newest first */
};

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
    /* Newest timestamp this process put in each device's cached latest
     * values (direct-mapped by device id). */
    struct { int64_t device_id, ts; } newest_cached[NEWEST_SLOTS];
    bool shared_cache; /* Redis: see cache_latest */
    struct fanout fan;
};

void iot_ingest_channel(int64_t device_id, char *buf, size_t size)
{
    snprintf(buf, size, "telemetry:%lld", (long long)device_id);
}

void iot_latest_key(int64_t device_id, char *buf, size_t size)
{
    snprintf(buf, size, "latest:%lld", (long long)device_id);
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

#define CHUNK_BYTES 16384

static void *fanout_alloc(struct fanout *f, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    struct chunk *c = f->chunks;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > CHUNK_BYTES ? size : CHUNK_BYTES;
        if (!(c = malloc(sizeof *c + cap)))
            return NULL;
        *c = (struct chunk){.next = f->chunks, .cap = cap};
        f->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

/* Empties the fan-out for the next batch, keeping one chunk. */
static void fanout_reset(struct fanout *f)
{
    f->n = 0;
    if (!f->chunks)
        return;
    struct chunk *keep = f->chunks, *c = keep->next;
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    keep->next = NULL;
    keep->used = 0;
}

static void fanout_free(struct fanout *f)
{
    fanout_reset(f);
    free(f->chunks);
    free(f->w);
}

static void fanout_add(struct fanout *f, struct iot_cache_write w)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 64;
        struct iot_cache_write *grown = realloc(f->w, cap * sizeof *grown);
        if (!grown)
            return; /* the write is lost: the cache is a cache */
        f->w = grown;
        f->cap = cap;
    }
    f->w[f->n++] = w;
}

static void fanout_send(struct iot_ingest *ing, struct fanout *f)
{
    int rc = iot_cache_write_batch(ing->cache, f->w, f->n);
    if (rc)
        IOT_DEBUG("ingest: %zu cache writes not all applied: %s", f->n, iot_strerror(rc));
    fanout_reset(f);
}

/* A latest-value cache field: "<ts>|<JSON value>", so readers know its
 * age; NULL when out of memory. Numbers and booleans are formatted here, as
 * iot_tm_value_json types them (an integer exact, a real in its shortest
 * round-trip form and still a real: 21.0, -0.0): this runs for every point
 * ingested, and a JSON value costs several allocations. */
static const char *latest_field(struct fanout *f, int64_t ts, const struct iot_tm_value *v,
                                size_t *len)
{
    char *field = NULL;
    int n = -1;
    if (v->type == IOT_TM_BOOL && (field = fanout_alloc(f, 32)))
        n = snprintf(field, 32, "%lld|%s", (long long)ts, v->boolean ? "true" : "false");
    else if (v->type == IOT_TM_NUMBER && v->is_int && (field = fanout_alloc(f, 48)))
        n = snprintf(field, 48, "%lld|%lld", (long long)ts, (long long)v->i);
    else if (v->type == IOT_TM_NUMBER && (field = fanout_alloc(f, 24 + IOT_JSON_REAL_MAX))) {
        n = snprintf(field, 24, "%lld|", (long long)ts);
        int r = iot_json_real_text(v->num, field + n);
        n = r < 0 ? -1 : n + r;
    }
    if (v->type == IOT_TM_STRING) {
        json_t *jv = iot_tm_value_json(v);
        char *text = json_dumps(jv, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(jv);
        size_t cap = text ? strlen(text) + 24 : 0;
        if (text && (field = fanout_alloc(f, cap)))
            n = snprintf(field, cap, "%lld|%s", (long long)ts, text);
        free(text);
    }
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return field;
}

/* Merges a device's newest message of the batch into its cached latest
 * values — unless the message may be older than what the cache holds (a
 * device catching up, or one this process has not cached yet): then the
 * entry is dropped and the next read refills it from the store, which keeps
 * the newer value by timestamp. A merge never makes an entry complete (see
 * IOT_LATEST_COMPLETE), so a partial entry is never trusted. */
static void cache_latest(struct iot_ingest *ing, struct fanout *f, const struct iot_tm_message *m)
{
    char *key = fanout_alloc(f, 64);
    if (!key)
        return;
    iot_latest_key(m->device_id, key, 64);
    /* A shared cache (Redis) outlives this process and is read by other
     * instances: there the entry is only dropped, never merged, and the
     * complete entries that reads refill live IOT_LATEST_SHARED_TTL_MS. So
     * a crash or an outage between commit and fan-out leaves a stale entry
     * for seconds at most. */
    if (ing->shared_cache) {
        fanout_add(f, (struct iot_cache_write){.kind = IOT_CACHE_W_DEL, .key = key});
        return;
    }
    size_t slot = (size_t)((uint64_t)m->device_id % NEWEST_SLOTS);
    bool known = ing->newest_cached[slot].device_id == m->device_id;
    if (!known || m->ts < ing->newest_cached[slot].ts) {
        if (!known)
            ing->newest_cached[slot].device_id = m->device_id, ing->newest_cached[slot].ts = m->ts;
        fanout_add(f, (struct iot_cache_write){.kind = IOT_CACHE_W_DEL, .key = key});
        return;
    }
    ing->newest_cached[slot].ts = m->ts;
    struct iot_cache_field *fields = fanout_alloc(f, m->n_points * sizeof *fields + 1);
    if (!fields)
        return;
    size_t n = 0;
    for (size_t i = 0; i < m->n_points; i++) {
        size_t len;
        const char *value = latest_field(f, m->ts, &m->points[i].value, &len);
        if (value)
            fields[n++] = (struct iot_cache_field){m->points[i].name, value, len};
    }
    /* + 1: a complete entry also holds IOT_LATEST_COMPLETE */
    fanout_add(f, (struct iot_cache_write){.kind = IOT_CACHE_W_HASH_SET, .key = key,
                                           .fields = fields, .n_fields = n,
                                           .ttl_ms = IOT_LATEST_TTL_MS,
                                           .max_fields = IOT_LATEST_NAMES_MAX + 1});
}

/* The device's presence and its last_seen for the registry. */
static void seen_now(struct iot_ingest *ing, struct fanout *f, int64_t device_id, int64_t now)
{
    fanout_add(f, (struct iot_cache_write){.kind = IOT_CACHE_W_PRESENCE_TOUCH,
                                           .device_id = device_id, .seen_ms = now});
    note_seen(ing, device_id, now);
}

/* The message as subscribers of the device's channel see it. */
static void publish(struct fanout *f, const struct iot_tm_message *m)
{
    char ts[IOT_ISO8601_LEN + 1];
    iot_iso8601(m->ts, ts, sizeof ts);
    size_t cap = m->data_len + m->meta_len + 128;
    char *channel = fanout_alloc(f, 48), *buf = fanout_alloc(f, cap);
    if (!channel || !buf)
        return;
    iot_ingest_channel(m->device_id, channel, 48);
    int len = snprintf(buf, cap, "{\"device_id\":%lld,\"timestamp\":\"%s\",\"measurements\":%.*s%s%.*s}",
                       (long long)m->device_id, ts, (int)m->data_len, m->data_json,
                       m->meta_json ? ",\"metadata\":" : "", (int)m->meta_len,
                       m->meta_json ? m->meta_json : "");
    if (len > 0 && (size_t)len < cap)
        fanout_add(f, (struct iot_cache_write){.kind = IOT_CACHE_W_PUBLISH, .key = channel,
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
    struct fanout *f = &ing->fan;
    for (size_t i = 0; i < n; i++) {
        size_t d = 0;
        while (d < n_devices && newest[d].device_id != msgs[i].device_id)
            d++;
        if (d == n_devices && n_devices < sizeof newest / sizeof *newest)
            newest[n_devices++] = (struct newest){msgs[i].device_id, i};
        else if (d < n_devices && msgs[i].ts >= msgs[newest[d].index].ts)
            newest[d].index = i;
        else if (d == n_devices) { /* more devices than slots: update directly */
            cache_latest(ing, f, &msgs[i]);
            seen_now(ing, f, msgs[i].device_id, now);
        }
        publish(f, &msgs[i]);
    }
    for (size_t d = 0; d < n_devices; d++) {
        cache_latest(ing, f, &msgs[newest[d].index]);
        seen_now(ing, f, newest[d].device_id, now);
    }
    fanout_send(ing, f);
}

static void commit_jobs(struct iot_ingest *ing, struct iot_ingest_job *jobs, size_t n)
{
    int rc = gather_batch(ing, jobs, n);
    if (rc == IOT_OK)
        rc = iot_tm_write_batch(ing->tm, ing->batch, n);
    if (rc == IOT_OK)
        fan_out(ing, ing->batch, n);
    else
        IOT_ERROR("ingest: a batch of %zu messages failed: %s", n, iot_strerror(rc));
    pthread_mutex_lock(&ing->lock);
    if (rc == IOT_OK) {
        ing->stats.committed_messages += (int64_t)n;
        ing->stats.commits++;
    } else {
        ing->stats.failed += (int64_t)n;
    }
    pthread_mutex_unlock(&ing->lock);
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
    ing->shared_cache = (cache->ops->caps & IOT_CACHE_CAP_SHARED) != 0;
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
        free(ing);
        return NULL;
    }
    return ing;
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
    fanout_free(&ing->fan);
    free(ing);
}
