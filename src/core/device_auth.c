/* device_auth.c — device keys, statuses, first-use activation and the
 * per-device rate limits (device_auth.h). */
#include "core/device_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/devcache.h"
#include "core/events.h"
#include "core/metrics.h"
#include "core/secrets.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

/* Key hash → device: the local cache first, then the registry (a miss
 * fills the cache). */
static int device_by_hash(const struct iot_device_gate *g, const char *hash,
                          struct iot_device *out)
{
    bool hit = iot_devcache_get(g->devcache, hash, out);
    iot_metrics_cache_lookup(IOT_METRICS_CACHE_API_KEY, hit);
    if (hit)
        return IOT_OK;
    int rc = iot_reg_device_get_by_key_hash(g->registry, hash, out);
    if (rc == IOT_OK)
        iot_devcache_put(g->devcache, out);
    return rc;
}

enum iot_device_verdict iot_device_write_own(const struct iot_device_gate *g,
                                             const struct iot_device *d, unsigned fields,
                                             struct iot_device *now, int *store_rc)
{
    int rc = iot_reg_device_update_by_device(g->registry, d, fields);
    if (rc == IOT_OK)
        return IOT_DEVICE_OK;
    if (rc != IOT_ECONFLICT) {
        *store_rc = rc;
        return IOT_DEVICE_STORE_ERROR;
    }
    /* The refusal is the store's, on its row: the copy in *d may be one
     * this instance cached before an admin's switch-off whose notice has
     * not arrived (or never will: the cache's pub/sub down). */
    iot_devcache_forget(g->devcache, d->api_key_hash);
    struct iot_device stored;
    rc = iot_reg_device_get(g->registry, d->id, &stored);
    if (rc == IOT_OK && iot_device_held_off(&stored)) {
        IOT_INFO("device %lld: own write refused, switched off by an admin", (long long)d->id);
        if (now)
            *now = stored;
        return IOT_DEVICE_HELD_OFF;
    }
    return IOT_DEVICE_CHANGED; /* switched on again (or gone) between the write and the read */
}

/* An inactive device that is new, or that switched itself off, switches
 * itself on by working; one an admin switched off is refused before (if
 * the cached copy knows) or by the store (if it does not). */
static enum iot_device_verdict activate_on_first_use(const struct iot_device_gate *g,
                                                     struct iot_device *d, int *store_rc)
{
    struct iot_device before = *d;
    snprintf(d->status, sizeof d->status, "active");
    d->updated_at = iot_now_ms();
    enum iot_device_verdict v = iot_device_write_own(g, d, 0, d, store_rc); /* the status only */
    if (v != IOT_DEVICE_OK) {
        if (v != IOT_DEVICE_HELD_OFF) /* *d is the stored row then; else as it was */
            *d = before;
        return v;
    }
    snprintf(d->status_set_by, sizeof d->status_set_by, IOT_STATUS_BY_DEVICE);
    /* Forget rather than cache *d: if the row was already active, its
     * status_set_by stayed as stored; the next request reads the truth. */
    iot_devcache_forget(g->devcache, d->api_key_hash);
    IOT_INFO("device %lld activated on first use", (long long)d->id);
    iot_events_emit(g->events, IOT_EV_DEVICE_STATUS_CHANGED, d->user_id, d->id,
                    json_pack("{s:s, s:s, s:s}", "from", "inactive", "to", "active", "by", "device"));
    return IOT_DEVICE_OK;
}

enum iot_device_verdict iot_device_authenticate_hash(const struct iot_device_gate *g,
                                                     const char *key_hash,
                                                     enum iot_device_auth mode,
                                                     struct iot_device *out, int *store_rc)
{
    int rc = device_by_hash(g, key_hash, out);
    if (rc == IOT_ENOTFOUND)
        return IOT_DEVICE_UNKNOWN_KEY;
    if (rc) {
        *store_rc = rc;
        return IOT_DEVICE_STORE_ERROR;
    }
    if (!out->owner_active)
        return IOT_DEVICE_OWNER_INACTIVE;
    if (mode == IOT_DEVICE_AUTH_ANY)
        return IOT_DEVICE_OK;
    if (iot_device_held_off(out))
        return IOT_DEVICE_HELD_OFF;
    if (mode == IOT_DEVICE_AUTH_READ)
        return IOT_DEVICE_OK;
    if (strcmp(out->status, "maintenance") == 0)
        return IOT_DEVICE_MAINTENANCE;
    if (strcmp(out->status, "inactive") == 0)
        return activate_on_first_use(g, out, store_rc);
    return IOT_DEVICE_OK;
}

enum iot_device_verdict iot_device_authenticate(const struct iot_device_gate *g, const char *key,
                                                size_t len, enum iot_device_auth mode,
                                                struct iot_device *out, int *store_rc)
{
    if (len > IOT_DEVICE_KEY_MAX)
        return IOT_DEVICE_UNKNOWN_KEY;
    char hash[IOT_SHA256_HEX_LEN + 1];
    iot_sha256_hex(key, len, hash, sizeof hash);
    return iot_device_authenticate_hash(g, hash, mode, out, store_rc);
}

bool iot_device_rate_take(const struct iot_device_gate *g, int64_t device_id, int64_t *retry_ms)
{
    if (g->rate_limit <= 0)
        return true;
    char key[64];
    snprintf(key, sizeof key, "rl:dev:%lld", (long long)device_id);
    bool allowed = true;
    if (iot_cache_rate_hit(g->cache, key, g->rate_limit, 60000, iot_now_ms(), &allowed,
                           retry_ms) != IOT_OK || allowed)
        return true; /* fail open: a cache outage must not stop ingest */
    iot_metrics_rate_limited(IOT_RATE_LIMIT_DEVICE_REQUESTS);
    return false;
}

bool iot_device_bytes_take(const struct iot_device_gate *g, int64_t device_id, int64_t bytes,
                           int64_t *retry_ms)
{
    if (g->byte_rate_limit <= 0)
        return true;
    char prefix[48];
    snprintf(prefix, sizeof prefix, "rl:devbytes:%lld", (long long)device_id);
    int64_t total = 0;
    if (iot_window_count(g->cache, prefix, bytes, 60000, &total, retry_ms) != IOT_OK ||
        total - bytes < g->byte_rate_limit)
        return true; /* fail open, as iot_device_rate_take */
    iot_metrics_rate_limited(IOT_RATE_LIMIT_DEVICE_BYTES);
    return false;
}

/* A count read without adding: get, not incr (which would create it). */
static int window_read(struct iot_cache *cache, const char *key, int64_t *total)
{
    struct iot_cache_value v = {0};
    int rc = iot_cache_get(cache, key, &v);
    *total = 0;
    if (rc == IOT_ENOTFOUND)
        return IOT_OK;
    if (rc)
        return rc;
    char text[24] = "";
    if (v.len < sizeof text)
        memcpy(text, v.data, v.len);
    iot_cache_value_free(&v);
    char *end;
    long long n = strtoll(text, &end, 10);
    *total = end != text && n > 0 ? n : 0;
    return IOT_OK;
}

int iot_window_count(struct iot_cache *cache, const char *prefix, int64_t amount,
                     int64_t window_ms, int64_t *total, int64_t *left_ms)
{
    if (window_ms <= 0)
        return IOT_EINVAL;
    int64_t now = iot_now_ms();
    char key[160];
    snprintf(key, sizeof key, "%s:%lld", prefix, (long long)(now / window_ms));
    *left_ms = (now / window_ms + 1) * window_ms - now;
    if (amount == 0)
        return window_read(cache, key, total);
    /* Twice the window: the key outlives its window on a backend whose
     * clock is a little behind ours. */
    return iot_cache_incr(cache, key, amount, 2 * window_ms, total);
}

/* A positive decimal id at *p, ending at `end` or a space; advances *p. */
static bool parse_id(const char **p, const char *end, int64_t *out)
{
    int64_t v = 0;
    const char *s = *p;
    while (s < end && *s >= '0' && *s <= '9' && s - *p < 18)
        v = v * 10 + (*s++ - '0');
    if (s == *p || v <= 0 || (s < end && *s != ' '))
        return false;
    *p = s;
    *out = v;
    return true;
}

/* Strict: what api/device_common.c writes and nothing else, so a stray
 * message on the channel cannot make a listener forget a key or close
 * connections. */
bool iot_device_notice_parse(const char *msg, size_t len, struct iot_device_notice *out)
{
    memset(out, 0, sizeof *out);
    const char *p = msg, *end = msg + len;
    if (len > 6 && memcmp(msg, "owner ", 6) == 0) {
        p += 6;
        out->owner = true;
        return parse_id(&p, end, &out->id) && p == end;
    }
    /* "<id> <64 lowercase hex> <0|1>" */
    if (!parse_id(&p, end, &out->id) || end - p != 1 + IOT_KEY_HASH_LEN + 2 || *p++ != ' ')
        return false;
    for (size_t i = 0; i < IOT_KEY_HASH_LEN; i++, p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
        out->key_hash[i] = *p;
    }
    if (p[0] != ' ' || (p[1] != '0' && p[1] != '1'))
        return false;
    out->deleted = p[1] == '1';
    return true;
}
