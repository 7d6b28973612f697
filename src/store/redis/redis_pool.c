/* redis_pool.c — the Redis backend's connection pool.
 *
 * IOT_REDIS_POOL_SIZE blocking connections, each behind its own mutex; a
 * caller takes a free one (trylock round the ring from a rotating start, else
 * waits for one). Connections are opened lazily and dropped on any I/O error
 * or timeout, since a reply stream that lost a reply cannot be trusted.
 *
 * The "gate" is the shared view of the server: once a connect fails the
 * server is down, and every op that would need a new connection fails at
 * once with IOT_EUNAVAILABLE instead of waiting for its own connect timeout.
 * One caller per backoff period (100 ms, doubling to 2 s) is let through to
 * try again; its success opens the gate for everyone. Connections idle in the
 * pool across a server restart are noticed before use (the socket is readable:
 * the server closed it), so a restart costs no failed op. */
#include "store/redis/redis_conn.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

struct iot_redis_conn {
    pthread_mutex_t lock;
    struct iot_redis_pool *pool;
    redisContext *ctx; /* NULL until connected, and after an error */
    unsigned pending;  /* commands queued whose replies were not read */
    bool broken;
};

struct iot_redis_pool {
    struct iot_redis_cfg cfg;
    struct iot_redis_script scripts[IOT_REDIS_SCRIPTS_MAX]; /* sha set by open only */
    size_t n_scripts;
    struct iot_redis_conn conns[IOT_REDIS_POOL_SIZE];
    atomic_uint next; /* where the next caller starts looking */

    pthread_mutex_t gate_lock; /* guards the three fields below */
    bool down;
    int64_t retry_at_us; /* iot_mono_us() after which one caller may try */
    int64_t backoff_ms;
};

/* ---- the gate ---- */

/* May this caller try to connect? While down, only the first caller after
 * retry_at, and it pushes retry_at one (doubled) backoff further. */
static bool gate_may_connect(struct iot_redis_pool *p)
{
    bool ok = true;
    pthread_mutex_lock(&p->gate_lock);
    if (p->down) {
        int64_t now = iot_mono_us();
        if (now < p->retry_at_us) {
            ok = false;
        } else {
            p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
            p->retry_at_us = now + p->backoff_ms * 1000;
        }
    }
    pthread_mutex_unlock(&p->gate_lock);
    return ok;
}

static void gate_failed(struct iot_redis_pool *p, int rc, const char *why)
{
    pthread_mutex_lock(&p->gate_lock);
    bool was_down = p->down;
    if (!was_down) {
        p->down = true;
        p->backoff_ms = BACKOFF_MIN_MS;
        p->retry_at_us = iot_mono_us() + BACKOFF_MIN_MS * 1000;
    }
    pthread_mutex_unlock(&p->gate_lock);
    /* One line per outage, not one per attempt. */
    if (!was_down)
        iot_log(rc == IOT_EINVAL ? IOT_LOG_ERROR : IOT_LOG_WARN,
                "redis: %s:%d unavailable (%s); cache ops fail fast, retrying every %d-%d ms",
                p->cfg.host, p->cfg.port, why, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
}

static void gate_succeeded(struct iot_redis_pool *p)
{
    pthread_mutex_lock(&p->gate_lock);
    bool was_down = p->down;
    p->down = false;
    p->backoff_ms = BACKOFF_MIN_MS;
    pthread_mutex_unlock(&p->gate_lock);
    if (was_down)
        IOT_INFO("redis: %s:%d reachable again", p->cfg.host, p->cfg.port);
}

/* ---- connections ---- */

/* An idle request/response connection has nothing to read: if its socket is
 * readable, the server closed it (restart, idle timeout, CLIENT KILL). */
static bool conn_stale(const redisContext *ctx)
{
    if (ctx->err)
        return true;
    struct pollfd pfd = {.fd = ctx->fd, .events = POLLIN};
    return poll(&pfd, 1, 0) != 0;
}

static int conn_open(struct iot_redis_conn *c)
{
    struct iot_redis_pool *p = c->pool;
    if (!gate_may_connect(p))
        return IOT_EUNAVAILABLE;
    char why[256];
    int rc = iot_redis_connect(&p->cfg, p->scripts, p->n_scripts, false, &c->ctx, why,
                               sizeof why);
    if (rc != IOT_OK) {
        gate_failed(p, rc, why);
        /* Whatever the cause, the caller sees a cache it cannot use now. */
        return rc == IOT_ENOMEM ? rc : IOT_EUNAVAILABLE;
    }
    gate_succeeded(p);
    return IOT_OK;
}

static void conn_drop(struct iot_redis_conn *c)
{
    redisFree(c->ctx);
    c->ctx = NULL;
    c->pending = 0;
    c->broken = false;
}

static struct iot_redis_conn *conn_take(struct iot_redis_pool *p)
{
    unsigned start = atomic_fetch_add(&p->next, 1);
    for (unsigned i = 0; i < IOT_REDIS_POOL_SIZE; i++) {
        struct iot_redis_conn *c = &p->conns[(start + i) % IOT_REDIS_POOL_SIZE];
        if (pthread_mutex_trylock(&c->lock) == 0)
            return c;
    }
    struct iot_redis_conn *c = &p->conns[start % IOT_REDIS_POOL_SIZE];
    pthread_mutex_lock(&c->lock);
    return c;
}

int iot_redis_acquire(struct iot_redis_pool *p, struct iot_redis_conn **out)
{
    struct iot_redis_conn *c = conn_take(p);
    if (c->ctx && conn_stale(c->ctx))
        conn_drop(c);
    if (!c->ctx) {
        int rc = conn_open(c);
        if (rc != IOT_OK) {
            pthread_mutex_unlock(&c->lock);
            *out = NULL;
            return rc;
        }
    }
    *out = c;
    return IOT_OK;
}

int iot_redis_append(struct iot_redis_conn *c, const struct iot_redis_argv *a)
{
    if (a->failed)
        return IOT_ENOMEM;
    if (redisAppendCommandArgv(c->ctx, a->argc, a->argv, a->lens) != REDIS_OK)
        return IOT_ENOMEM;
    c->pending++;
    return IOT_OK;
}

int iot_redis_read(struct iot_redis_conn *c, redisReply **out)
{
    *out = NULL;
    if (c->broken)
        return IOT_EUNAVAILABLE;
    if (c->pending == 0)
        return IOT_EINTERNAL; /* a bug: no reply is due */
    redisReply *r = NULL;
    errno = 0;
    if (redisGetReply(c->ctx, (void **)&r) != REDIS_OK || !r) {
        /* SO_RCVTIMEO expiring shows as EAGAIN on a blocking socket. */
        bool timeout = c->ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
        IOT_WARN("redis: connection to %s:%d lost: %s", c->pool->cfg.host, c->pool->cfg.port,
                 timeout ? "no answer within the command timeout" : c->ctx->errstr);
        c->broken = true;
        return timeout ? IOT_ETIMEOUT : IOT_EUNAVAILABLE;
    }
    c->pending--;
    *out = r;
    return IOT_OK;
}

void iot_redis_release(struct iot_redis_conn *c)
{
    if (!c)
        return;
    /* Unread replies would be taken for the next caller's. */
    if (c->broken || c->pending > 0)
        conn_drop(c);
    pthread_mutex_unlock(&c->lock);
}

int iot_redis_call(struct iot_redis_pool *p, const struct iot_redis_argv *a, redisReply **out)
{
    *out = NULL;
    if (a->failed)
        return IOT_ENOMEM;
    struct iot_redis_conn *c;
    int rc = iot_redis_acquire(p, &c);
    if (rc != IOT_OK)
        return rc;
    rc = iot_redis_append(c, a);
    if (rc == IOT_OK)
        rc = iot_redis_read(c, out);
    iot_redis_release(c);
    return rc;
}

/* ---- scripts ---- */

void iot_redis_argv_eval(struct iot_redis_argv *a, const struct iot_redis_pool *p, unsigned id,
                         int n_keys)
{
    iot_redis_argv_add(a, "EVALSHA", 7);
    iot_redis_argv_add(a, p->scripts[id].sha, 40);
    iot_redis_argv_i64(a, n_keys);
}

int iot_redis_eval(struct iot_redis_pool *p, unsigned id, struct iot_redis_argv *a,
                   redisReply **out)
{
    int rc = iot_redis_call(p, a, out);
    if (rc != IOT_OK || !iot_redis_is_noscript(*out))
        return rc;
    /* SCRIPT FLUSH (or a new server) since this connection loaded it. */
    freeReplyObject(*out);
    *out = NULL;
    a->argv[0] = "EVAL";
    a->lens[0] = 4;
    a->argv[1] = p->scripts[id].body;
    a->lens[1] = strlen(p->scripts[id].body);
    return iot_redis_call(p, a, out);
}

/* ---- lifetime ---- */

const struct iot_redis_cfg *iot_redis_pool_cfg(const struct iot_redis_pool *p) { return &p->cfg; }

int iot_redis_pool_open(const struct iot_redis_cfg *cfg, const char *const *script_bodies,
                        size_t n_scripts, struct iot_redis_pool **out)
{
    *out = NULL;
    if (n_scripts > IOT_REDIS_SCRIPTS_MAX)
        return IOT_EINTERNAL;
    struct iot_redis_pool *p = calloc(1, sizeof *p);
    if (!p)
        return IOT_ENOMEM;
    p->cfg = *cfg;
    p->n_scripts = n_scripts;
    for (size_t i = 0; i < n_scripts; i++)
        p->scripts[i].body = script_bodies[i];
    p->backoff_ms = BACKOFF_MIN_MS;
    pthread_mutex_init(&p->gate_lock, NULL);
    for (size_t i = 0; i < IOT_REDIS_POOL_SIZE; i++) {
        pthread_mutex_init(&p->conns[i].lock, NULL);
        p->conns[i].pool = p;
    }
    /* The first connection proves the server answers and takes us; it also
     * learns the scripts' SHA1s, which stay fixed from here on. */
    char why[256];
    int rc = iot_redis_connect(&p->cfg, p->scripts, n_scripts, true, &p->conns[0].ctx, why,
                               sizeof why);
    if (rc != IOT_OK) {
        IOT_ERROR("redis: cannot open %s:%d db %d: %s", cfg->host, cfg->port, cfg->db, why);
        iot_redis_pool_close(p);
        return rc == IOT_EINVAL || rc == IOT_ENOMEM ? rc : IOT_EUNAVAILABLE;
    }
    *out = p;
    return IOT_OK;
}

void iot_redis_pool_close(struct iot_redis_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < IOT_REDIS_POOL_SIZE; i++) {
        redisFree(p->conns[i].ctx);
        pthread_mutex_destroy(&p->conns[i].lock);
    }
    pthread_mutex_destroy(&p->gate_lock);
    explicit_bzero(p->cfg.password, sizeof p->cfg.password);
    free(p);
}
