/* cache_redis_types.c — the Redis backend's structured types: sliding-window
 * rate limits, sessions with their per-user index, presence, hashes and
 * capped lists, and the Lua scripts that make the multi-command ones atomic.
 *
 * Why Lua where it is used: a script runs alone on the server, and it can
 * stop at the first error. MULTI cannot: after a WRONGTYPE from HSET it would
 * still run the PEXPIRE and change the TTL of a key that is not ours, where
 * the memory backend leaves such a key untouched. Callbacks (hash_get_all,
 * list_range) run after the connection went back to the pool, so they may
 * call the cache. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis/redis_int.h"
#include "util/err.h"

#define MEMBER_MAX 48 /* "<nonce>-<seq>" and device ids */

/* KEYS[1] hash; ARGV[1] TTL in ms ("0": none); ARGV[2] the most fields
 * it may hold ("0": no bound; more deletes it); then field, value pairs.
 * HSET in slices of 100 pairs keeps unpack() within Lua's stack. */
static const char script_hash_set[] =
    "local i = 3\n"
    "while i <= #ARGV do\n"
    "  local j = math.min(i + 199, #ARGV)\n"
    "  redis.call('HSET', KEYS[1], unpack(ARGV, i, j))\n"
    "  i = j + 1\n"
    "end\n"
    "if ARGV[2] ~= '0' and redis.call('HLEN', KEYS[1]) > tonumber(ARGV[2]) then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  return 1\n"
    "end\n"
    "if ARGV[1] == '0' then redis.call('PERSIST', KEYS[1])\n"
    "else redis.call('PEXPIRE', KEYS[1], ARGV[1]) end\n"
    "return 1\n";

/* KEYS[1] list; ARGV: value, last index kept (max_len - 1), TTL in ms. */
static const char script_list_push[] =
    "redis.call('LPUSH', KEYS[1], ARGV[1])\n"
    "redis.call('LTRIM', KEYS[1], 0, ARGV[2])\n"
    "if ARGV[3] == '0' then redis.call('PERSIST', KEYS[1])\n"
    "else redis.call('PEXPIRE', KEYS[1], ARGV[3]) end\n"
    "return 1\n";

/* KEYS[1] window (sorted set: member per hit, scored by its time); ARGV:
 * limit, window_ms, now_ms, now_ms - window_ms, a unique member. The
 * caller's clock, never the server's: tests inject time. Returns {1, 0}
 * when the hit is recorded, {0, retry_after_ms} when refused; as in the
 * memory backend a refused hit leaves no trace, an accepted one keeps the
 * set sorted (never older than the newest) and pushes the key's TTL. */
static const char script_rate_hit[] =
    "local limit = tonumber(ARGV[1])\n"
    "local window = tonumber(ARGV[2])\n"
    "local now = tonumber(ARGV[3])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])\n"
    "local count = redis.call('ZCARD', KEYS[1])\n"
    "if count >= limit then\n"
    "  local idx = count - limit\n"
    "  local leaving = redis.call('ZRANGE', KEYS[1], idx, idx, 'WITHSCORES')\n"
    "  local wait = tonumber(leaving[2]) + window - now\n"
    "  if wait < 1 then wait = 1 end\n"
    "  return {0, wait}\n"
    "end\n"
    "local t = ARGV[3]\n"
    "if count > 0 then\n"
    "  local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')\n"
    "  if tonumber(newest[2]) > now then t = newest[2] end\n"
    "end\n"
    "redis.call('ZADD', KEYS[1], t, ARGV[5])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "return {1, 0}\n";

/* KEYS[1] session, KEYS[2] the user's token set; ARGV: user id, TTL in ms,
 * token hash, the prefix of user-set keys. A token that belonged to another
 * user leaves that user's set. The set lives as long as its longest
 * session (forever when one has no TTL). */
static const char script_session_put[] =
    "local old = redis.call('GET', KEYS[1])\n"
    "if old and old ~= ARGV[1] then redis.call('SREM', ARGV[4] .. old, ARGV[3]) end\n"
    "local existed = redis.call('EXISTS', KEYS[2]) == 1\n"
    "if ARGV[2] == '0' then redis.call('SET', KEYS[1], ARGV[1])\n"
    "else redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end\n"
    "redis.call('SADD', KEYS[2], ARGV[3])\n"
    "if ARGV[2] == '0' then redis.call('PERSIST', KEYS[2])\n"
    "elseif not existed then redis.call('PEXPIRE', KEYS[2], ARGV[2])\n"
    "else\n"
    "  local left = redis.call('PTTL', KEYS[2])\n"
    "  if left >= 0 and left < tonumber(ARGV[2]) then\n"
    "    redis.call('PEXPIRE', KEYS[2], ARGV[2])\n"
    "  end\n"
    "end\n"
    "return 1\n";

/* KEYS[1] session; ARGV: token hash, the prefix of user-set keys. */
static const char script_session_del[] =
    "local uid = redis.call('GET', KEYS[1])\n"
    "if uid then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  redis.call('SREM', ARGV[2] .. uid, ARGV[1])\n"
    "end\n"
    "return 1\n";

/* KEYS[1] the user's token set; ARGV: user id, the prefix of session keys.
 * A token re-put for another user since is not this user's any more. */
static const char script_session_drop_user[] =
    "local tokens = redis.call('SMEMBERS', KEYS[1])\n"
    "for _, t in ipairs(tokens) do\n"
    "  local k = ARGV[2] .. t\n"
    "  if redis.call('GET', k) == ARGV[1] then redis.call('DEL', k) end\n"
    "end\n"
    "redis.call('DEL', KEYS[1])\n"
    "return #tokens\n";

/* The session scripts name keys they build from ARGV (the other user's
 * set, each token's session): fine on one server, not on Redis Cluster. */
const char *const iot_redis_scripts[IOT_RS__COUNT] = {
    [IOT_RS_HASH_SET] = script_hash_set,
    [IOT_RS_LIST_PUSH] = script_list_push,
    [IOT_RS_RATE_HIT] = script_rate_hit,
    [IOT_RS_SESSION_PUT] = script_session_put,
    [IOT_RS_SESSION_DEL] = script_session_del,
    [IOT_RS_SESSION_DROP_USER] = script_session_drop_user,
};

/* ---- rate limits ---- */

int iot_redis_rate_hit(void *self, const char *key, int64_t limit, int64_t window_ms,
                       int64_t now_ms, bool *allowed, int64_t *retry_after_ms)
{
    struct iot_redis_cache *c = self;
    struct iot_redis_key k;
    if (!allowed || iot_redis_key(c, key, &k) || iot_cache_check_rate(limit, window_ms, now_ms))
        return IOT_EINVAL;
    *allowed = false;
    if (retry_after_ms)
        *retry_after_ms = 0;
    char member[MEMBER_MAX];
    int mlen = snprintf(member, sizeof member, "%s-%llu", c->nonce,
                        (unsigned long long)atomic_fetch_add(&c->seq, 1));
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_eval(&a, c->pool, IOT_RS_RATE_HIT, 1);
    iot_redis_argv_add(&a, k.buf, k.len);
    iot_redis_argv_i64(&a, limit);
    iot_redis_argv_i64(&a, window_ms);
    iot_redis_argv_i64(&a, now_ms);
    iot_redis_argv_i64(&a, now_ms - window_ms);
    iot_redis_argv_add(&a, member, (size_t)mlen);
    redisReply *r;
    int rc = iot_redis_run_eval(c, IOT_RS_RATE_HIT, &a, &r);
    if (rc != IOT_OK)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        return IOT_EINTERNAL;
    }
    *allowed = r->element[0]->integer == 1;
    if (!*allowed && retry_after_ms)
        *retry_after_ms = r->element[1]->integer;
    freeReplyObject(r);
    return IOT_OK;
}

/* ---- sessions ---- */

static void session_key(const struct iot_redis_cache *c, const char *token_hash, size_t len,
                        struct iot_redis_key *out)
{
    iot_redis_key_tagged(c, IOT_REDIS_TAG_SESSION, IOT_REDIS_TAG_LEN(IOT_REDIS_TAG_SESSION),
                         token_hash, len, out);
}

static void user_key(const struct iot_redis_cache *c, const char *user_id, size_t len,
                     struct iot_redis_key *out)
{
    iot_redis_key_tagged(c, IOT_REDIS_TAG_USER, IOT_REDIS_TAG_LEN(IOT_REDIS_TAG_USER), user_id,
                         len, out);
}

int iot_redis_session_put(void *self, const char *token_hash, const char *user_id,
                          int64_t ttl_ms)
{
    struct iot_redis_cache *c = self;
    size_t tlen, ulen;
    if (iot_cache_check_key(token_hash, &tlen) || iot_cache_check_user_id(user_id, &ulen) ||
        iot_cache_check_ttl(ttl_ms))
        return IOT_EINVAL;
    struct iot_redis_key sk, uk, users;
    session_key(c, token_hash, tlen, &sk);
    user_key(c, user_id, ulen, &uk);
    user_key(c, "", 0, &users);
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_eval(&a, c->pool, IOT_RS_SESSION_PUT, 2);
    iot_redis_argv_add(&a, sk.buf, sk.len);
    iot_redis_argv_add(&a, uk.buf, uk.len);
    iot_redis_argv_add(&a, user_id, ulen);
    iot_redis_argv_i64(&a, ttl_ms);
    iot_redis_argv_add(&a, token_hash, tlen);
    iot_redis_argv_add(&a, users.buf, users.len);
    return iot_redis_run_eval(c, IOT_RS_SESSION_PUT, &a, NULL);
}

int iot_redis_session_get(void *self, const char *token_hash, char *user_id_out)
{
    struct iot_redis_cache *c = self;
    size_t tlen;
    if (!user_id_out || iot_cache_check_key(token_hash, &tlen))
        return IOT_EINVAL;
    struct iot_redis_key sk;
    session_key(c, token_hash, tlen, &sk);
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_add(&a, "GET", 3);
    iot_redis_argv_add(&a, sk.buf, sk.len);
    redisReply *r;
    int rc = iot_redis_run(c, &a, &r);
    if (rc != IOT_OK)
        return rc;
    if (r->type == REDIS_REPLY_NIL)
        rc = IOT_ENOTFOUND;
    else if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > IOT_CACHE_USER_ID_MAX)
        rc = IOT_EINTERNAL;
    else
        memcpy(user_id_out, r->str, r->len + 1);
    freeReplyObject(r);
    return rc;
}

int iot_redis_session_del(void *self, const char *token_hash)
{
    struct iot_redis_cache *c = self;
    size_t tlen;
    if (iot_cache_check_key(token_hash, &tlen))
        return IOT_EINVAL;
    struct iot_redis_key sk, users;
    session_key(c, token_hash, tlen, &sk);
    user_key(c, "", 0, &users);
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_eval(&a, c->pool, IOT_RS_SESSION_DEL, 1);
    iot_redis_argv_add(&a, sk.buf, sk.len);
    iot_redis_argv_add(&a, token_hash, tlen);
    iot_redis_argv_add(&a, users.buf, users.len);
    return iot_redis_run_eval(c, IOT_RS_SESSION_DEL, &a, NULL);
}

int iot_redis_session_drop_user(void *self, const char *user_id)
{
    struct iot_redis_cache *c = self;
    size_t ulen;
    if (iot_cache_check_user_id(user_id, &ulen))
        return IOT_EINVAL;
    struct iot_redis_key uk, sessions;
    user_key(c, user_id, ulen, &uk);
    session_key(c, "", 0, &sessions);
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_eval(&a, c->pool, IOT_RS_SESSION_DROP_USER, 1);
    iot_redis_argv_add(&a, uk.buf, uk.len);
    iot_redis_argv_add(&a, user_id, ulen);
    iot_redis_argv_add(&a, sessions.buf, sessions.len);
    return iot_redis_run_eval(c, IOT_RS_SESSION_DROP_USER, &a, NULL);
}

/* ---- presence ---- */

/* Scores are doubles: last-seen times are exact up to 2^53 ms (year
 * 287,396), far beyond any clock we will meet. */

static void presence_key(const struct iot_redis_cache *c, struct iot_redis_key *out)
{
    iot_redis_key_tagged(c, IOT_REDIS_TAG_PRESENCE, IOT_REDIS_TAG_LEN(IOT_REDIS_TAG_PRESENCE), "",
                         0, out);
}

static size_t device_member(int64_t device_id, char *buf, size_t size)
{
    return (size_t)snprintf(buf, size, "%lld", (long long)device_id);
}

void iot_redis_prep_presence_touch(const struct iot_redis_cache *c, int64_t device_id,
                                   int64_t seen_ms, struct iot_redis_key *k, char *member,
                                   size_t member_size, struct iot_redis_argv *a)
{
    presence_key(c, k);
    size_t mlen = device_member(device_id, member, member_size);
    /* GT keeps the later time and still adds a device not yet present. */
    iot_redis_argv_add(a, "ZADD", 4);
    iot_redis_argv_add(a, k->buf, k->len);
    iot_redis_argv_add(a, "GT", 2);
    iot_redis_argv_i64(a, seen_ms);
    iot_redis_argv_add(a, member, mlen);
}

int iot_redis_presence_touch(void *self, int64_t device_id, int64_t seen_ms)
{
    struct iot_redis_cache *c = self;
    struct iot_redis_key k;
    char member[MEMBER_MAX];
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_prep_presence_touch(c, device_id, seen_ms, &k, member, sizeof member, &a);
    return iot_redis_run(c, &a, NULL);
}

/* A score as Redis prints it ("%.17g"), back to whole milliseconds. */
static int parse_score(const redisReply *r, int64_t *out)
{
    if (r->type != REDIS_REPLY_STRING)
        return IOT_EINTERNAL;
    char *end;
    double d = strtod(r->str, &end);
    if (end != r->str + r->len || !(d >= -9.2e18 && d <= 9.2e18))
        return IOT_EINTERNAL;
    *out = (int64_t)d;
    return IOT_OK;
}

int iot_redis_presence_get(void *self, int64_t device_id, int64_t *seen_ms)
{
    struct iot_redis_cache *c = self;
    if (!seen_ms)
        return IOT_EINVAL;
    struct iot_redis_key k;
    char member[MEMBER_MAX];
    presence_key(c, &k);
    size_t mlen = device_member(device_id, member, sizeof member);
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_add(&a, "ZSCORE", 6);
    iot_redis_argv_add(&a, k.buf, k.len);
    iot_redis_argv_add(&a, member, mlen);
    redisReply *r;
    int rc = iot_redis_run(c, &a, &r);
    if (rc != IOT_OK)
        return rc;
    rc = r->type == REDIS_REPLY_NIL ? IOT_ENOTFOUND : parse_score(r, seen_ms);
    freeReplyObject(r);
    return rc;
}

int iot_redis_presence_remove(void *self, int64_t device_id)
{
    struct iot_redis_cache *c = self;
    struct iot_redis_key k;
    char member[MEMBER_MAX];
    presence_key(c, &k);
    size_t mlen = device_member(device_id, member, sizeof member);
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_add(&a, "ZREM", 4);
    iot_redis_argv_add(&a, k.buf, k.len);
    iot_redis_argv_add(&a, member, mlen);
    return iot_redis_run(c, &a, NULL);
}

/* ZCOUNT over the score index: no scan of every device. */
int iot_redis_presence_count(void *self, int64_t since_ms, int64_t *count)
{
    struct iot_redis_cache *c = self;
    if (!count)
        return IOT_EINVAL;
    struct iot_redis_key k;
    presence_key(c, &k);
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_add(&a, "ZCOUNT", 6);
    iot_redis_argv_add(&a, k.buf, k.len);
    iot_redis_argv_i64(&a, since_ms);
    iot_redis_argv_add(&a, "+inf", 4);
    redisReply *r;
    int rc = iot_redis_run(c, &a, &r);
    if (rc != IOT_OK)
        return rc;
    if (r->type == REDIS_REPLY_INTEGER)
        *count = r->integer;
    else
        rc = IOT_EINTERNAL;
    freeReplyObject(r);
    return rc;
}

/* ---- hashes ---- */

/* Each field/value pair is two arguments of an int-counted argv. */
#define HASH_FIELDS_MAX ((size_t)(INT32_MAX / 2 - 8))

int iot_redis_prep_hash_set(const struct iot_redis_cache *c, const char *key,
                            const struct iot_cache_field *fields, size_t n, int64_t ttl_ms,
                            size_t max_fields, struct iot_redis_key *k,
                            struct iot_redis_argv *a)
{
    if (iot_redis_key(c, key, k) || iot_cache_check_ttl(ttl_ms) || n > HASH_FIELDS_MAX ||
        iot_cache_check_fields(fields, n))
        return IOT_EINVAL;
    iot_redis_argv_eval(a, c->pool, IOT_RS_HASH_SET, 1);
    iot_redis_argv_add(a, k->buf, k->len);
    iot_redis_argv_i64(a, ttl_ms);
    iot_redis_argv_i64(a, max_fields > (size_t)INT64_MAX ? INT64_MAX : (int64_t)max_fields);
    for (size_t i = 0; i < n; i++) {
        iot_redis_argv_str(a, fields[i].field);
        iot_redis_argv_add(a, fields[i].value, fields[i].value_len);
    }
    return IOT_OK;
}

int iot_redis_hash_set(void *self, const char *key, const struct iot_cache_field *fields,
                       size_t n, int64_t ttl_ms)
{
    struct iot_redis_cache *c = self;
    struct iot_redis_key k;
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    int rc = iot_redis_prep_hash_set(c, key, fields, n, ttl_ms, 0, &k, &a);
    if (rc != IOT_OK) {
        iot_redis_argv_free(&a);
        return rc;
    }
    return iot_redis_run_eval(c, IOT_RS_HASH_SET, &a, NULL);
}

/* An array reply of strings; an empty one is a missing key (Redis keeps no
 * empty hashes or lists). */
static int string_array(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY)
        return IOT_EINTERNAL;
    if (r->elements == 0)
        return IOT_ENOTFOUND;
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING)
            return IOT_EINTERNAL;
    }
    return IOT_OK;
}

int iot_redis_hash_get_all(void *self, const char *key, iot_cache_field_fn fn, void *ctx)
{
    struct iot_redis_cache *c = self;
    struct iot_redis_key k;
    if (!fn || iot_redis_key(c, key, &k))
        return IOT_EINVAL;
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_add(&a, "HGETALL", 7);
    iot_redis_argv_add(&a, k.buf, k.len);
    redisReply *r;
    int rc = iot_redis_run(c, &a, &r);
    if (rc != IOT_OK)
        return rc;
    rc = string_array(r);
    if (rc == IOT_OK && r->elements % 2 != 0)
        rc = IOT_EINTERNAL;
    for (size_t i = 0; rc == IOT_OK && i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        if (fn(ctx, f->str, v->str, v->len) != 0)
            break;
    }
    freeReplyObject(r);
    return rc;
}

/* ---- capped lists ---- */

int iot_redis_list_push(void *self, const char *key, const char *val, size_t len,
                        size_t max_len, int64_t ttl_ms)
{
    struct iot_redis_cache *c = self;
    struct iot_redis_key k;
    if (iot_redis_key(c, key, &k) || iot_cache_check_value(val, len) ||
        iot_cache_check_ttl(ttl_ms) || max_len == 0)
        return IOT_EINVAL;
    int64_t last = max_len > (size_t)INT64_MAX ? INT64_MAX - 1 : (int64_t)max_len - 1;
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_eval(&a, c->pool, IOT_RS_LIST_PUSH, 1);
    iot_redis_argv_add(&a, k.buf, k.len);
    iot_redis_argv_add(&a, val, len);
    iot_redis_argv_i64(&a, last);
    iot_redis_argv_i64(&a, ttl_ms);
    return iot_redis_run_eval(c, IOT_RS_LIST_PUSH, &a, NULL);
}

/* count == 0 streams nothing, but must still tell a missing key or another
 * type, as the memory backend does: LLEN answers both. */
static int list_exists(struct iot_redis_cache *c, const struct iot_redis_key *k)
{
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_add(&a, "LLEN", 4);
    iot_redis_argv_add(&a, k->buf, k->len);
    redisReply *r;
    int rc = iot_redis_run(c, &a, &r);
    if (rc != IOT_OK)
        return rc;
    rc = r->type != REDIS_REPLY_INTEGER ? IOT_EINTERNAL
                                        : r->integer == 0 ? IOT_ENOTFOUND : IOT_OK;
    freeReplyObject(r);
    return rc;
}

int iot_redis_list_range(void *self, const char *key, size_t count, iot_cache_item_fn fn,
                         void *ctx)
{
    struct iot_redis_cache *c = self;
    struct iot_redis_key k;
    if (!fn || iot_redis_key(c, key, &k))
        return IOT_EINVAL;
    if (count == 0)
        return list_exists(c, &k);
    int64_t last = count > (size_t)INT64_MAX ? INT64_MAX - 1 : (int64_t)count - 1;
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_add(&a, "LRANGE", 6);
    iot_redis_argv_add(&a, k.buf, k.len);
    iot_redis_argv_add(&a, "0", 1);
    iot_redis_argv_i64(&a, last);
    redisReply *r;
    int rc = iot_redis_run(c, &a, &r);
    if (rc != IOT_OK)
        return rc;
    rc = string_array(r);
    for (size_t i = 0; rc == IOT_OK && i < r->elements; i++) {
        if (fn(ctx, r->element[i]->str, r->element[i]->len) != 0)
            break;
    }
    freeReplyObject(r);
    return rc;
}
