/* cache_redis.c — the Redis cache backend: lifetime, key building shared by
 * its files, plain keys, counters, gauges, publish and the ops table. The
 * structured types are in cache_redis_types.c, write_batch in
 * cache_redis_batch.c, connections in redis_pool.c, the subscriber in
 * redis_pubsub.c; the argument checks are shared with the memory backend
 * (iot_cache_check_* in store/cache.c). */
#include "store/redis/cache_redis.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis/redis_int.h"
#include "store/redis/redis_pubsub.h"
#include "util/err.h"
#include "util/log.h"

/* Long enough for any "%.17g" double, plus the NUL. */
#define NUMBER_TEXT_MAX 32

/* ---- keys ---- */

void iot_redis_key_tagged(const struct iot_redis_cache *c, const char *tag, size_t tag_len,
                          const char *name, size_t len, struct iot_redis_key *out)
{
    size_t plen = c->cfg->prefix_len;
    memcpy(out->buf, c->cfg->prefix, plen);
    memcpy(out->buf + plen, tag, tag_len);
    memcpy(out->buf + plen + tag_len, name, len);
    out->len = plen + tag_len + len;
    out->buf[out->len] = '\0';
}

int iot_redis_key(const struct iot_redis_cache *c, const char *key, struct iot_redis_key *out)
{
    size_t len;
    if (iot_cache_check_key(key, &len) != IOT_OK)
        return IOT_EINVAL;
    iot_redis_key_tagged(c, "", 0, key, len, out);
    return IOT_OK;
}

/* ---- running commands ---- */

static int finish(int rc, redisReply *r, redisReply **out)
{
    if (rc == IOT_OK)
        rc = iot_redis_reply_rc(r);
    if (rc == IOT_OK && out)
        *out = r;
    else
        freeReplyObject(r);
    return rc;
}

int iot_redis_run(struct iot_redis_cache *c, struct iot_redis_argv *a, redisReply **out)
{
    redisReply *r = NULL;
    int rc = iot_redis_call(c->pool, a, &r);
    iot_redis_argv_free(a);
    return finish(rc, r, out);
}

int iot_redis_run_eval(struct iot_redis_cache *c, unsigned id, struct iot_redis_argv *a,
                       redisReply **out)
{
    redisReply *r = NULL;
    int rc = iot_redis_eval(c->pool, id, a, &r);
    iot_redis_argv_free(a);
    return finish(rc, r, out);
}

int iot_redis_prep_publish(const struct iot_redis_cache *c, const char *channel, const char *msg,
                           size_t len, struct iot_redis_key *k, struct iot_redis_argv *a)
{
    if (iot_redis_key(c, channel, k) != IOT_OK || iot_cache_check_value(msg, len) != IOT_OK)
        return IOT_EINVAL;
    iot_redis_argv_add(a, "PUBLISH", 7);
    iot_redis_argv_add(a, k->buf, k->len);
    iot_redis_argv_add(a, msg, len);
    return IOT_OK;
}

int iot_redis_prep_del(const struct iot_redis_cache *c, const char *key,
                       struct iot_redis_key *k, struct iot_redis_argv *a)
{
    if (iot_redis_key(c, key, k) != IOT_OK)
        return IOT_EINVAL;
    iot_redis_argv_add(a, "DEL", 3);
    iot_redis_argv_add(a, k->buf, k->len);
    return IOT_OK;
}

/* ---- lifetime ---- */

static int redis_open(const char *url, void **self)
{
    if (!self)
        return IOT_EINVAL;
    *self = NULL;
    if (sodium_init() < 0)
        return IOT_EINTERNAL;
    struct iot_redis_cfg cfg;
    int rc = iot_redis_parse_url(url, &cfg);
    if (rc != IOT_OK)
        return rc;
    struct iot_redis_cache *c = calloc(1, sizeof *c);
    if (!c)
        return IOT_ENOMEM;
    rc = iot_redis_pool_open(&cfg, iot_redis_scripts, IOT_RS__COUNT, &c->pool);
    sodium_memzero(cfg.password, sizeof cfg.password);
    if (rc != IOT_OK) {
        free(c);
        return rc;
    }
    c->cfg = iot_redis_pool_cfg(c->pool);
    rc = iot_redis_ps_new(c->cfg, &c->ps);
    if (rc != IOT_OK) {
        iot_redis_pool_close(c->pool);
        free(c);
        return rc;
    }
    unsigned char nonce[8];
    randombytes_buf(nonce, sizeof nonce);
    sodium_bin2hex(c->nonce, sizeof c->nonce, nonce, sizeof nonce);
    atomic_init(&c->seq, 0);
    IOT_INFO("redis cache: %s:%d db %d, prefix \"%s\"", c->cfg->host, c->cfg->port, c->cfg->db,
             c->cfg->prefix);
    *self = c;
    return IOT_OK;
}

static void redis_close(void *self)
{
    struct iot_redis_cache *c = self;
    if (!c)
        return;
    iot_redis_ps_free(c->ps);
    iot_redis_pool_close(c->pool);
    free(c);
}

static int redis_ping(void *self)
{
    struct iot_redis_cache *c = self;
    if (!c)
        return IOT_EINVAL;
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_add(&a, "PING", 4);
    return iot_redis_run(c, &a, NULL);
}

/* ---- plain keys ---- */

static int redis_set(void *self, const char *key, const char *val, size_t len, int64_t ttl_ms)
{
    struct iot_redis_cache *c = self;
    struct iot_redis_key k;
    if (iot_redis_key(c, key, &k) || iot_cache_check_value(val, len) ||
        iot_cache_check_ttl(ttl_ms))
        return IOT_EINVAL;
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_add(&a, "SET", 3);
    iot_redis_argv_add(&a, k.buf, k.len);
    iot_redis_argv_add(&a, val, len);
    if (ttl_ms > 0) {
        iot_redis_argv_add(&a, "PX", 2);
        iot_redis_argv_i64(&a, ttl_ms);
    }
    return iot_redis_run(c, &a, NULL);
}

/* GET: the string, IOT_ENOTFOUND for nil, IOT_EINVAL for another type. */
static int get_string(struct iot_redis_cache *c, const struct iot_redis_key *k, redisReply **out)
{
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_add(&a, "GET", 3);
    iot_redis_argv_add(&a, k->buf, k->len);
    redisReply *r = NULL;
    int rc = iot_redis_run(c, &a, &r);
    if (rc != IOT_OK)
        return rc;
    if (r->type != REDIS_REPLY_STRING) {
        rc = r->type == REDIS_REPLY_NIL ? IOT_ENOTFOUND : IOT_EINTERNAL;
        freeReplyObject(r);
        return rc;
    }
    *out = r;
    return IOT_OK;
}

static int redis_get(void *self, const char *key, struct iot_cache_value *out)
{
    struct iot_redis_cache *c = self;
    struct iot_redis_key k;
    if (!out)
        return IOT_EINVAL;
    out->data = NULL;
    out->len = 0;
    if (iot_redis_key(c, key, &k))
        return IOT_EINVAL;
    redisReply *r;
    int rc = get_string(c, &k, &r);
    if (rc != IOT_OK)
        return rc;
    char *p = malloc(r->len + 1);
    if (p) {
        memcpy(p, r->str, r->len);
        p[r->len] = '\0';
        out->data = p;
        out->len = r->len;
    }
    freeReplyObject(r);
    return p ? IOT_OK : IOT_ENOMEM;
}

static int redis_del(void *self, const char *key)
{
    struct iot_redis_cache *c = self;
    struct iot_redis_key k;
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    if (iot_redis_prep_del(c, key, &k, &a) != IOT_OK)
        return IOT_EINVAL;
    return iot_redis_run(c, &a, NULL);
}

/* ---- counters and gauges ---- */

static int incr_reply(const redisReply *r, int64_t *out)
{
    if (r->type != REDIS_REPLY_INTEGER)
        return IOT_EINTERNAL;
    if (out)
        *out = r->integer;
    return IOT_OK;
}

/* INCRBY alone: a counter without TTL. */
static int incr_plain(struct iot_redis_cache *c, const struct iot_redis_key *k, int64_t delta,
                      int64_t *out)
{
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_add(&a, "INCRBY", 6);
    iot_redis_argv_add(&a, k->buf, k->len);
    iot_redis_argv_i64(&a, delta);
    redisReply *r;
    int rc = iot_redis_run(c, &a, &r);
    if (rc != IOT_OK)
        return rc;
    rc = incr_reply(r, out);
    freeReplyObject(r);
    return rc;
}

/* EXEC's answer to [SET NX, INCRBY]: the INCRBY result or its error. */
static int incr_exec_reply(const redisReply *exec, int64_t *out)
{
    int rc = iot_redis_reply_rc(exec);
    if (rc != IOT_OK)
        return rc;
    if (exec->type != REDIS_REPLY_ARRAY || exec->elements != 2)
        return IOT_EINTERNAL;
    rc = iot_redis_reply_rc(exec->element[1]);
    return rc != IOT_OK ? rc : incr_reply(exec->element[1], out);
}

/* A counter whose TTL is set when it is created, and only then, atomically:
 * MULTI; SET key 0 PX ttl NX; INCRBY key delta; EXEC, in one round trip.
 * (Not Lua: a Lua number is a double, and counters are int64.) */
static int incr_with_ttl(struct iot_redis_cache *c, const struct iot_redis_key *k,
                         int64_t delta, int64_t ttl_ms, int64_t *out)
{
    struct iot_redis_argv cmds[4];
    for (int i = 0; i < 4; i++)
        iot_redis_argv_init(&cmds[i]);
    iot_redis_argv_add(&cmds[0], "MULTI", 5);
    iot_redis_argv_add(&cmds[1], "SET", 3);
    iot_redis_argv_add(&cmds[1], k->buf, k->len);
    iot_redis_argv_add(&cmds[1], "0", 1);
    iot_redis_argv_add(&cmds[1], "PX", 2);
    iot_redis_argv_i64(&cmds[1], ttl_ms);
    iot_redis_argv_add(&cmds[1], "NX", 2);
    iot_redis_argv_add(&cmds[2], "INCRBY", 6);
    iot_redis_argv_add(&cmds[2], k->buf, k->len);
    iot_redis_argv_i64(&cmds[2], delta);
    iot_redis_argv_add(&cmds[3], "EXEC", 4);
    struct iot_redis_conn *conn;
    int rc = iot_redis_acquire(c->pool, &conn);
    for (int i = 0; i < 4 && rc == IOT_OK; i++)
        rc = iot_redis_append(conn, &cmds[i]);
    redisReply *r = NULL;
    /* MULTI and the two QUEUED answers carry nothing we need. */
    for (int i = 0; i < 4 && rc == IOT_OK; i++) {
        freeReplyObject(r);
        r = NULL;
        rc = iot_redis_read(conn, &r);
        if (rc == IOT_OK && i < 3)
            rc = iot_redis_reply_rc(r);
    }
    if (conn)
        iot_redis_release(conn);
    for (int i = 0; i < 4; i++)
        iot_redis_argv_free(&cmds[i]);
    if (rc == IOT_OK)
        rc = incr_exec_reply(r, out);
    freeReplyObject(r);
    return rc;
}

static int redis_incr(void *self, const char *key, int64_t delta, int64_t ttl_ms, int64_t *out)
{
    struct iot_redis_cache *c = self;
    struct iot_redis_key k;
    if (iot_redis_key(c, key, &k) || iot_cache_check_ttl(ttl_ms))
        return IOT_EINVAL;
    if (ttl_ms == 0)
        return incr_plain(c, &k, delta, out);
    return incr_with_ttl(c, &k, delta, ttl_ms, out);
}

static int redis_gauge_set(void *self, const char *key, double value)
{
    struct iot_redis_cache *c = self;
    struct iot_redis_key k;
    /* NaN and infinities have no JSON form and would not parse back. */
    if (iot_redis_key(c, key, &k) || !isfinite(value))
        return IOT_EINVAL;
    char text[NUMBER_TEXT_MAX];
    int n = snprintf(text, sizeof text, "%.17g", value); /* round-trips exactly */
    if (n < 0 || n >= (int)sizeof text)
        return IOT_EINTERNAL;
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_add(&a, "SET", 3);
    iot_redis_argv_add(&a, k.buf, k.len);
    iot_redis_argv_add(&a, text, (size_t)n);
    return iot_redis_run(c, &a, NULL);
}

static int redis_gauge_get(void *self, const char *key, double *out)
{
    struct iot_redis_cache *c = self;
    struct iot_redis_key k;
    if (!out || iot_redis_key(c, key, &k))
        return IOT_EINVAL;
    redisReply *r;
    int rc = get_string(c, &k, &r);
    if (rc != IOT_OK)
        return rc;
    /* hiredis NUL-terminates the string, so strtod stops in bounds. */
    rc = iot_cache_parse_double(r->str, r->len, out) ? IOT_OK : IOT_EINVAL;
    freeReplyObject(r);
    return rc;
}

/* ---- publish/subscribe ---- */

static int redis_publish(void *self, const char *channel, const char *msg, size_t len)
{
    struct iot_redis_cache *c = self;
    struct iot_redis_key k;
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    if (iot_redis_prep_publish(c, channel, msg, len, &k, &a) != IOT_OK)
        return IOT_EINVAL;
    return iot_redis_run(c, &a, NULL);
}

static int redis_subscribe(void *self, const char *channel, iot_cache_msg_fn fn, void *ctx,
                           struct iot_cache_sub **out)
{
    struct iot_redis_cache *c = self;
    size_t len;
    if (!out)
        return IOT_EINVAL;
    *out = NULL;
    if (!fn || iot_cache_check_key(channel, &len))
        return IOT_EINVAL;
    return iot_redis_ps_subscribe(c->ps, channel, len, fn, ctx, out);
}

static void redis_unsubscribe(void *self, struct iot_cache_sub *sub)
{
    struct iot_redis_cache *c = self;
    if (c)
        iot_redis_ps_unsubscribe(c->ps, sub);
}

const struct iot_cache_ops iot_cache_redis = {
    .name = "redis",
    .version = 1,
    .caps = IOT_CACHE_CAP_TTL | IOT_CACHE_CAP_SHARED | IOT_CACHE_CAP_PUBSUB,
    .open = redis_open,
    .close = redis_close,
    .ping = redis_ping,
    .set = redis_set,
    .get = redis_get,
    .del = redis_del,
    .incr = redis_incr,
    .gauge_set = redis_gauge_set,
    .gauge_get = redis_gauge_get,
    .rate_hit = iot_redis_rate_hit,
    .session_put = iot_redis_session_put,
    .session_get = iot_redis_session_get,
    .session_del = iot_redis_session_del,
    .session_drop_user = iot_redis_session_drop_user,
    .presence_touch = iot_redis_presence_touch,
    .presence_get = iot_redis_presence_get,
    .presence_remove = iot_redis_presence_remove,
    .presence_count = iot_redis_presence_count,
    .hash_set = iot_redis_hash_set,
    .hash_get_all = iot_redis_hash_get_all,
    .list_push = iot_redis_list_push,
    .list_range = iot_redis_list_range,
    .publish = redis_publish,
    .subscribe = redis_subscribe,
    .unsubscribe = redis_unsubscribe,
    .write_batch = iot_redis_write_batch,
};
