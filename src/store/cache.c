/* The cache backend table, the few iot_cache_* functions that are not
 * inline wrappers, and the argument checks the backends share. A backend is
 * chosen from the URL: no URL, "" or "memory" is the in-process cache;
 * "redis://…" is Redis. */
#include "store/cache.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store/backend.h"
#include "store/memory/cache_memory.h"
#include "store/redis/cache_redis.h"
#include "util/err.h"

/* The cache takes no paths: "memory" is spelt out, or no URL at all. */
static const struct iot_backend_scheme cache_backends[] = {
    {.scheme = "memory", .ops = &iot_cache_memory},
    {.scheme = "redis", .ops = &iot_cache_redis},
};

/* Kept in step with cache_backends[] (no runtime formatting needed). */
static const char cache_backend_names[] = "memory, redis";

const struct iot_cache_ops *iot_cache_backend(const char *url)
{
    return iot_backend_pick(url, cache_backends, sizeof cache_backends / sizeof cache_backends[0],
                            &iot_cache_memory, false);
}

const char *iot_cache_backend_names(void) { return cache_backend_names; }

int iot_cache_open(const char *url, struct iot_cache *out)
{
    if (!out)
        return IOT_EINVAL;
    out->ops = NULL;
    out->self = NULL;
    const struct iot_cache_ops *ops = iot_cache_backend(url);
    if (!ops)
        return IOT_EINVAL;
    void *self = NULL;
    int rc = ops->open(url, &self);
    if (rc)
        return rc;
    out->ops = ops;
    out->self = self;
    return IOT_OK;
}

void iot_cache_close(struct iot_cache *c)
{
    if (!c || !c->ops)
        return;
    c->ops->close(c->self);
    c->ops = NULL;
    c->self = NULL;
}

void iot_cache_value_free(struct iot_cache_value *v)
{
    if (!v)
        return;
    free(v->data);
    v->data = NULL;
    v->len = 0;
}

/* ---- for backends: argument checks ---- */

/* A non-empty string of at most max bytes; *len receives its length. */
static int check_text(const char *s, size_t max, size_t *len)
{
    if (!s)
        return IOT_EINVAL;
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return IOT_EINVAL;
    *len = n;
    return IOT_OK;
}

int iot_cache_check_key(const char *key, size_t *len)
{
    return check_text(key, IOT_CACHE_KEY_MAX, len);
}

int iot_cache_check_value(const char *val, size_t len)
{
    if ((!val && len > 0) || len > IOT_CACHE_VALUE_MAX)
        return IOT_EINVAL;
    return IOT_OK;
}

int iot_cache_check_ttl(int64_t ttl_ms) { return ttl_ms < 0 ? IOT_EINVAL : IOT_OK; }

int iot_cache_check_user_id(const char *user_id, size_t *len)
{
    return check_text(user_id, IOT_CACHE_USER_ID_MAX, len);
}

int iot_cache_check_fields(const struct iot_cache_field *fields, size_t n)
{
    if (!fields || n == 0)
        return IOT_EINVAL;
    for (size_t i = 0; i < n; i++) {
        size_t flen;
        if (iot_cache_check_key(fields[i].field, &flen) ||
            iot_cache_check_value(fields[i].value, fields[i].value_len))
            return IOT_EINVAL;
    }
    return IOT_OK;
}

int iot_cache_check_rate(int64_t limit, int64_t window_ms, int64_t now_ms)
{
    if (limit <= 0 || limit > IOT_CACHE_RATE_LIMIT_MAX || window_ms <= 0 || now_ms < 0)
        return IOT_EINVAL;
    return IOT_OK;
}

bool iot_cache_parse_double(const char *s, size_t len, double *out)
{
    if (len == 0 || isspace((unsigned char)s[0]))
        return false;
    char *end;
    double d = strtod(s, &end);
    if (end != s + len || !isfinite(d))
        return false;
    *out = d;
    return true;
}

/* ---- write_batch without pipelining ---- */

static int write_one(const struct iot_cache_ops *ops, void *self, const struct iot_cache_write *w)
{
    switch (w->kind) {
    case IOT_CACHE_W_HASH_SET:
        /* the op table's hash_set has no bound: its backend handles it */
        if (w->max_fields)
            return IOT_EINVAL;
        return ops->hash_set(self, w->key, w->fields, w->n_fields, w->ttl_ms);
    case IOT_CACHE_W_PRESENCE_TOUCH:
        return ops->presence_touch(self, w->device_id, w->seen_ms);
    case IOT_CACHE_W_PUBLISH:
        return ops->publish(self, w->key, w->msg, w->len);
    case IOT_CACHE_W_DEL:
        return ops->del(self, w->key);
    }
    return IOT_EINVAL;
}

int iot_cache_write_batch_each(const struct iot_cache_ops *ops, void *self,
                               const struct iot_cache_write *w, size_t n)
{
    int first = IOT_OK;
    for (size_t i = 0; i < n; i++) {
        int rc = write_one(ops, self, &w[i]);
        if (rc && first == IOT_OK)
            first = rc;
    }
    return first;
}
