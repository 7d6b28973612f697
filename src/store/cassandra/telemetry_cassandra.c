/* telemetry_cassandra.c — the telemetry store on Apache Cassandra (our CQL
 * client, src/cql): the ops table, open and close, ping, retention,
 * statistics, and the set of index rows this process has written. */
#include "store/cassandra/telemetry_cassandra.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "store/cassandra/tmcass_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

/* ---- the known-facts set ----------------------------------------------------------- */

#define KNOWN_MAX 65536 /* past this the set starts over: a fact re-written is harmless */

static size_t known_hash(uint8_t kind, int64_t a, int64_t b)
{
    uint64_t h = (uint64_t)a * 0x9E3779B97F4A7C15u ^ (uint64_t)b * 0xC2B2AE3D27D4EB4Fu ^ kind;
    h ^= h >> 29;
    return (size_t)h;
}

bool tmc_known_has(struct tmc *t, uint8_t kind, int64_t a, int64_t b)
{
    struct tmc_known *k = &t->known;
    pthread_mutex_lock(&k->lock);
    bool found = false;
    if (k->cap) {
        for (size_t i = known_hash(kind, a, b) & (k->cap - 1);; i = (i + 1) & (k->cap - 1)) {
            struct tmc_known_slot *s = &k->slots[i];
            if (!s->kind)
                break;
            if (s->kind == kind && s->a == a && s->b == b) {
                found = true;
                break;
            }
        }
    }
    pthread_mutex_unlock(&k->lock);
    return found;
}

static void known_insert_locked(struct tmc_known *k, uint8_t kind, int64_t a, int64_t b)
{
    size_t i = known_hash(kind, a, b) & (k->cap - 1);
    while (k->slots[i].kind && !(k->slots[i].kind == kind && k->slots[i].a == a &&
                                 k->slots[i].b == b))
        i = (i + 1) & (k->cap - 1);
    if (!k->slots[i].kind)
        k->used++;
    k->slots[i] = (struct tmc_known_slot){kind, a, b};
}

void tmc_known_add(struct tmc *t, uint8_t kind, int64_t a, int64_t b)
{
    struct tmc_known *k = &t->known;
    pthread_mutex_lock(&k->lock);
    if (!k->cap || (k->used + 1) * 2 > k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 1024;
        if (cap > 2 * KNOWN_MAX) { /* full: forget everything */
            memset(k->slots, 0, k->cap * sizeof *k->slots);
            k->used = 0;
        } else {
            struct tmc_known_slot *old = k->slots;
            size_t old_cap = k->cap;
            struct tmc_known_slot *fresh = calloc(cap, sizeof *fresh);
            if (!fresh) {
                pthread_mutex_unlock(&k->lock);
                return;
            }
            k->slots = fresh;
            k->cap = cap;
            k->used = 0;
            for (size_t i = 0; i < old_cap; i++)
                if (old[i].kind)
                    known_insert_locked(k, old[i].kind, old[i].a, old[i].b);
            free(old);
        }
    }
    known_insert_locked(k, kind, a, b);
    pthread_mutex_unlock(&k->lock);
}

void tmc_known_forget(struct tmc *t, uint8_t kind, int64_t a)
{
    struct tmc_known *k = &t->known;
    pthread_mutex_lock(&k->lock);
    /* Rebuild without the facts about `a` (rare: deletes only). */
    struct tmc_known_slot *old = k->slots;
    size_t old_cap = k->cap;
    k->slots = old_cap ? calloc(old_cap, sizeof *k->slots) : NULL;
    k->used = 0;
    if (!k->slots)
        k->cap = 0;
    for (size_t i = 0; k->slots && i < old_cap; i++)
        if (old[i].kind && !(old[i].kind == kind && old[i].a == a))
            known_insert_locked(k, old[i].kind, old[i].a, old[i].b);
    free(old);
    pthread_mutex_unlock(&k->lock);
}

/* ---- open and close ------------------------------------------------------------------- */

static int connect_session(struct tmc *t, const char *keyspace, struct cql_session **out)
{
    struct cql_session_config cfg = {
        .contact_points = t->url.hosts,
        .user = t->url.user[0] ? t->url.user : NULL,
        .password = t->url.user[0] ? t->url.password : NULL,
        .keyspace = keyspace,
        .consistency = t->url.consistency,
        .request_timeout_ms = t->url.timeout_ms,
        .connections_per_host = 2,
    };
    const char *why = NULL;
    int rc = cql_session_new(&cfg, out, &why);
    if (rc) {
        IOT_ERROR("cassandra: %s", why ? why : cql_strerror(rc));
        return IOT_EINVAL;
    }
    rc = cql_session_connect(*out);
    if (rc) {
        /* The session's text names hosts and the server's message, never
         * the password. */
        IOT_ERROR("cassandra: cannot connect to %s: %s", t->url.hosts,
                  cql_session_error_text(*out));
        cql_session_free(*out);
        *out = NULL;
        return tmc_err(rc);
    }
    return IOT_OK;
}

static void tmc_close(void *self)
{
    struct tmc *t = self;
    if (!t)
        return;
    tmc_merger_stop(t);
    cql_session_free(t->s);
    free(t->known.slots);
    free(t->day_counts);
    free(t->dirty);
    pthread_mutex_destroy(&t->known.lock);
    pthread_mutex_destroy(&t->count_lock);
    pthread_mutex_destroy(&t->merge_lock);
    pthread_cond_destroy(&t->merge_wake);
    explicit_bzero(t->url.password, sizeof t->url.password);
    free(t);
}

/* The keyspace and tables through a session without a keyspace (it may
 * not exist yet), then the store's own session on it. */
static int tmc_open(const char *url, bool durable, void **self)
{
    (void)durable; /* a write is acknowledged at the URL's consistency */
    struct tmc *t = calloc(1, sizeof *t);
    if (!t)
        return IOT_ENOMEM;
    pthread_mutex_init(&t->known.lock, NULL);
    pthread_mutex_init(&t->count_lock, NULL);
    pthread_mutex_init(&t->merge_lock, NULL);
    pthread_cond_init(&t->merge_wake, NULL);
    char err[160];
    int rc = tmc_url_parse(url, &t->url, err, sizeof err);
    if (rc) {
        IOT_ERROR("cassandra: bad telemetry URL: %s", err);
        tmc_close(t);
        return rc;
    }
    if (getrandom(&t->writer_id, sizeof t->writer_id, 0) != sizeof t->writer_id)
        t->writer_id = iot_now_ms() ^ (int64_t)getpid() << 40;
    if (t->writer_id == 0)
        t->writer_id = 1; /* 0 is the merged row's */
    rc = connect_session(t, NULL, &t->s);
    if (rc == IOT_OK)
        rc = tmc_schema_apply(t);
    cql_session_free(t->s);
    t->s = NULL;
    if (rc == IOT_OK)
        rc = connect_session(t, t->url.keyspace, &t->s);
    if (rc == IOT_OK)
        rc = tmc_prepare_all(t);
    if (rc == IOT_OK)
        rc = tmc_merger_start(t);
    if (rc) {
        tmc_close(t);
        return rc;
    }
    IOT_INFO("cassandra: telemetry in keyspace %s on %s (replication %d, consistency %s)",
             t->url.keyspace, t->url.hosts, t->url.replication,
             cql_consistency_name(t->url.consistency));
    *self = t;
    return IOT_OK;
}

static int tmc_ping(void *self)
{
    struct tmc *t = self;
    return tmc_query(t, "SELECT release_version FROM system.local", CQL_CONSISTENCY_ONE, NULL);
}

static int tmc_set_retention(void *self, int64_t raw_ms, int64_t rollup_ms)
{
    struct tmc *t = self;
    t->raw_ttl_ms = raw_ms;
    t->rollup_ttl_ms = rollup_ms;
    return IOT_OK;
}

/* Rows expire by their TTLs: nothing to scan. */
static int tmc_purge(void *self, int64_t raw_before, int64_t rollup_before, int64_t *removed)
{
    (void)self, (void)raw_before, (void)rollup_before;
    if (removed)
        *removed = 0;
    return IOT_OK;
}

/* ---- stats ------------------------------------------------------------------------------ */

static int sum_counts(void *ctx, const struct cql_value *cells, size_t n)
{
    int64_t *total = ctx, v;
    if (n >= 3 && cql_decode_bigint(cells[2], &v) == CQL_OK)
        *total += v;
    return 0;
}

static int read_count(void *ctx, const struct cql_value *cells, size_t n)
{
    int64_t *out = ctx;
    if (n >= 1)
        cql_decode_bigint(cells[0], out);
    return 1;
}

/* Messages: the sum of every writer's per-day totals (a few rows a day,
 * expiring with the data); devices: the rows of devices_seen. */
int tmc_stats(void *self, struct iot_tm_stats *out)
{
    struct tmc *t = self;
    if (!out)
        return IOT_EINVAL;
    memset(out, 0, sizeof *out);
    int64_t messages = 0, devices = 0;
    int rc = tmc_select(t, TMC_SEL_MSG_COUNTS, NULL, 5000, sum_counts, &messages);
    if (rc == IOT_OK)
        rc = tmc_select(t, TMC_COUNT_DEVICES_SEEN, NULL, 0, read_count, &devices);
    out->messages = messages > 0 ? messages : 0;
    out->devices = devices;
    return rc;
}

const struct iot_telemetry_ops iot_telemetry_cassandra = {
    .name = "cassandra",
    .version = 3,
    .caps = IOT_TM_CAP_TTL,
    .open = tmc_open,
    .close = tmc_close,
    .ping = tmc_ping,
    .write_batch = tmc_write_batch,
    .query_device = tmc_query_device,
    .query_user = tmc_query_user,
    .count_user = tmc_count_user,
    .latest = tmc_latest,
    .rollups = tmc_rollups,
    .samples = tmc_samples,
    .catalog = tmc_catalog,
    .delete_range = tmc_delete_range,
    .delete_device = tmc_delete_device,
    .delete_user = tmc_delete_user,
    .purge = tmc_purge,
    .stats = tmc_stats,
    .samples_typed = tmc_samples_typed,
    .sample_edge = tmc_sample_edge,
    .set_retention = tmc_set_retention,
    .export_scan = NULL,
};
