/* cql_bench.c — throughput of our CQL client against a real Cassandra:
 * N inserts (prepared INSERT, async, a window of W requests in flight) and
 * N point reads (prepared SELECT by primary key, same window), on one
 * connection per host, consistency ONE. Prints one JSON line.
 *
 *   CASSANDRA_HOSTS=127.0.0.1:59042 cql_bench [N=100000] [W=256] [conns=1]
 *
 * Schema (the reference-driver side must use the same):
 *   CREATE KEYSPACE IF NOT EXISTS cql_bench WITH replication =
 *     {'class': 'SimpleStrategy', 'replication_factor': 1};
 *   CREATE TABLE IF NOT EXISTS cql_bench.kv (k int PRIMARY KEY, ts bigint, v double, payload text);
 *   insert: INSERT INTO cql_bench.kv (k, ts, v, payload) VALUES (?, ?, ?, ?)
 *           k = 0..N-1, ts = 1700000000000 + k, v = k * 0.5, payload = 64 x 'x'
 *   read:   SELECT ts, v, payload FROM cql_bench.kv WHERE k = ?
 *           keys visited in the order (i * 7919) % N (a permutation when N % 7919 != 0)
 * Credentials: CASSANDRA_USER / CASSANDRA_PASSWORD, default cassandra/cassandra. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cql/cql_session.h"
#include "cql/cql_types.h"

#define PAYLOAD_LEN 64

struct run {
    struct cql_session *s;
    const struct cql_prepared_stmt *ps;
    bool insert;
    uint32_t n;
    atomic_uint next, done, errors;
    uint64_t *start_ns;
    uint32_t *lat_us;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

/* The bound values as [value]s, written by hand: no allocation per call. */
static size_t encode_values(uint8_t *b, bool insert, int32_t k)
{
    put32(b, 4);
    put32(b + 4, (uint32_t)k);
    if (!insert)
        return 8;
    double v = k * 0.5;
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    put32(b + 8, 8);
    put64(b + 12, (uint64_t)(1700000000000LL + k));
    put32(b + 20, 8);
    put64(b + 24, bits);
    put32(b + 32, PAYLOAD_LEN);
    memset(b + 36, 'x', PAYLOAD_LEN);
    return 36 + PAYLOAD_LEN;
}

static void on_done(int rc, struct cql_reply *reply, void *ctx);

/* Sends request number i (key order: a permutation for reads). */
static void submit(struct run *r, uint32_t i)
{
    uint8_t vals[128];
    int32_t k = r->insert ? (int32_t)i : (int32_t)(((uint64_t)i * 7919) % r->n);
    size_t len = encode_values(vals, r->insert, k);
    r->start_ns[i] = now_ns();
    int rc = cql_session_execute(r->s, r->ps, (struct cql_slice){vals, len}, CQL_CONSISTENCY_ONE,
                                 NULL, on_done, (void *)(uintptr_t)i);
    if (rc)
        on_done(rc, NULL, (void *)(uintptr_t)i);
}

static struct run *the_run;

/* Runs on the session's I/O thread: records the latency, sends the next. */
static void on_done(int rc, struct cql_reply *reply, void *ctx)
{
    struct run *r = the_run;
    uint32_t i = (uint32_t)(uintptr_t)ctx;
    r->lat_us[i] = (uint32_t)((now_ns() - r->start_ns[i]) / 1000);
    if (rc) {
        if (atomic_fetch_add(&r->errors, 1) < 5)
            fprintf(stderr, "request %u: %s: %s\n", i, cql_strerror(rc),
                    cql_reply_error_text(reply));
    } else if (!r->insert && (!cql_reply_rows(reply) || cql_reply_rows(reply)->n_rows != 1)) {
        atomic_fetch_add(&r->errors, 1);
    }
    cql_reply_free(reply);
    uint32_t next = atomic_fetch_add(&r->next, 1);
    if (next < r->n)
        submit(r, next);
    if (atomic_fetch_add(&r->done, 1) + 1 == r->n) {
        pthread_mutex_lock(&r->lock);
        pthread_cond_signal(&r->cond);
        pthread_mutex_unlock(&r->lock);
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

struct result {
    double per_s, p50_ms, p99_ms;
    unsigned errors;
};

static struct result run_phase(struct cql_session *s, const struct cql_prepared_stmt *ps,
                               bool insert, uint32_t n, uint32_t window)
{
    struct run r = {.s = s, .ps = ps, .insert = insert, .n = n};
    r.start_ns = calloc(n, sizeof *r.start_ns);
    r.lat_us = calloc(n, sizeof *r.lat_us);
    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.cond, NULL);
    the_run = &r;
    uint64_t t0 = now_ns();
    uint32_t first = window < n ? window : n;
    atomic_store(&r.next, first);
    for (uint32_t i = 0; i < first; i++)
        submit(&r, i);
    pthread_mutex_lock(&r.lock);
    while (atomic_load(&r.done) < n)
        pthread_cond_wait(&r.cond, &r.lock);
    pthread_mutex_unlock(&r.lock);
    double secs = (double)(now_ns() - t0) / 1e9;
    qsort(r.lat_us, n, sizeof *r.lat_us, cmp_u32);
    struct result res = {
        .per_s = n / secs,
        .p50_ms = r.lat_us[n / 2] / 1000.0,
        .p99_ms = r.lat_us[(size_t)n * 99 / 100] / 1000.0,
        .errors = atomic_load(&r.errors),
    };
    pthread_cond_destroy(&r.cond);
    pthread_mutex_destroy(&r.lock);
    free(r.start_ns);
    free(r.lat_us);
    return res;
}

static int must(struct cql_session *s, const char *q)
{
    struct cql_reply *r;
    struct cql_opts o = {.timeout_ms = 60000};
    int rc = cql_session_query_sync(s, q, (struct cql_slice){0}, CQL_CONSISTENCY_ONE, &o, &r);
    if (rc)
        fprintf(stderr, "%s: %s\n", q, cql_reply_error_text(r));
    cql_reply_free(r);
    return rc;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static int setup(struct cql_session *s, const struct cql_prepared_stmt **ins,
                 const struct cql_prepared_stmt **sel)
{
    if (must(s, "CREATE KEYSPACE IF NOT EXISTS cql_bench WITH replication = "
                "{'class': 'SimpleStrategy', 'replication_factor': 1}") ||
        must(s, "CREATE TABLE IF NOT EXISTS cql_bench.kv "
                "(k int PRIMARY KEY, ts bigint, v double, payload text)") ||
        must(s, "TRUNCATE cql_bench.kv"))
        return 1;
    if (cql_session_prepare_sync(
            s, "INSERT INTO cql_bench.kv (k, ts, v, payload) VALUES (?, ?, ?, ?)", ins, NULL) ||
        cql_session_prepare_sync(s, "SELECT ts, v, payload FROM cql_bench.kv WHERE k = ?", sel,
                                 NULL))
        return 1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *hosts = getenv("CASSANDRA_HOSTS");
    if (!hosts || !*hosts) {
        fprintf(stderr, "set CASSANDRA_HOSTS (eval \"$(scripts/services.sh start cassandra)\")\n");
        return 2;
    }
    uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 100000;
    uint32_t window = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 256;
    uint32_t conns = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 1;
    if (n == 0 || window == 0 || conns == 0) {
        fprintf(stderr, "usage: cql_bench [N>0] [window>0] [connections>0]\n");
        return 2;
    }
    struct cql_session_config cfg = {
        .contact_points = hosts,
        .user = env_or("CASSANDRA_USER", "cassandra"),
        .password = env_or("CASSANDRA_PASSWORD", "cassandra"),
        .connections_per_host = conns,
        .request_timeout_ms = 30000,
    };
    struct cql_session *s;
    const char *why;
    if (cql_session_new(&cfg, &s, &why)) {
        fprintf(stderr, "session: %s\n", why);
        return 1;
    }
    if (cql_session_connect(s)) {
        fprintf(stderr, "connect: %s\n", cql_session_error_text(s));
        cql_session_free(s);
        return 1;
    }
    const struct cql_prepared_stmt *ins, *sel;
    if (setup(s, &ins, &sel)) {
        cql_session_free(s);
        return 1;
    }
    struct result w = run_phase(s, ins, true, n, window);
    struct result r = run_phase(s, sel, false, n, window);
    printf("{\"client\":\"iotcql\",\"hosts\":\"%s\",\"n\":%u,\"window\":%u,\"connections\":%u,"
           "\"insert_per_s\":%.0f,\"insert_p50_ms\":%.3f,\"insert_p99_ms\":%.3f,"
           "\"read_per_s\":%.0f,\"read_p50_ms\":%.3f,\"read_p99_ms\":%.3f,\"errors\":%u}\n",
           hosts, n, window, conns, w.per_s, w.p50_ms, w.p99_ms, r.per_s, r.p50_ms, r.p99_ms,
           w.errors + r.errors);
    cql_session_free(s);
    return w.errors + r.errors ? 1 : 0;
}
