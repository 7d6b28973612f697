/* authn.c — who is calling (authn.h): session tokens, the legacy
 * X-User-ID header, the admin token (with failed attempts throttled per
 * client IP), and device keys, through the process-local key cache so that
 * the telemetry hot path costs no registry round trip. A cached device
 * carries its owner's is_active and who set its status, so "owner
 * deactivated" and "switched off by an admin" are checked from the cache
 * too; the changes that alter either make every instance forget the entry
 * (device_common.c, the device notice channel). */
#include "api/authn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/app.h"
#include "api/credential.h"
#include "core/events.h"
#include "core/metrics.h"
#include "core/secrets.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"


static bool user_from_session(struct iot_req *r, const char *token, struct iot_user *out)
{
    struct iot_app *app = iot_app_of(r);
    if (strlen(token) > IOT_CREDENTIAL_MAX) {
        iot_reply_error(r, 401, "Invalid token", "the session token is not valid");
        return false;
    }
    char hash[IOT_SHA256_HEX_LEN + 1], user_id[IOT_USER_ID_LEN + 1];
    iot_sha256_hex(token, strlen(token), hash, sizeof hash);
    int rc = iot_cache_session_get(&app->cache, hash, user_id);
    if (rc == IOT_OK)
        rc = iot_reg_user_get_by_user_id(&app->registry, user_id, out);
    if (rc == IOT_ENOTFOUND || (rc == IOT_OK && !out->is_active)) {
        iot_reply_error(r, 401, "Invalid token", "the session token is invalid or has expired");
        return false;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "session");
        return false;
    }
    return true;
}

static bool user_from_header(struct iot_req *r, const char *user_id, struct iot_user *out)
{
    struct iot_app *app = iot_app_of(r);
    int rc = strlen(user_id) == IOT_USER_ID_LEN
                 ? iot_reg_user_get_by_user_id(&app->registry, user_id, out)
                 : IOT_ENOTFOUND;
    if (rc == IOT_ENOTFOUND || (rc == IOT_OK && !out->is_active)) {
        iot_reply_error(r, 401, "Authentication failed", "invalid user_id or user is not active");
        return false;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "user");
        return false;
    }
    return true;
}

/* ---- admin token guessing ----------------------------------------------------
 * Failed admin-token attempts are counted per client IP (r->client_key: an
 * IPv6 client by its /64) in fixed one-minute windows (iot_window_count:
 * "rl:admin-fail:<key>:<window>" in the cache, so every instance
 * sharing the cache counts together). Only failures count: a busy admin
 * client is never slowed down. Once an IP has IOTFLOW_ADMIN_FAIL_LIMIT
 * failures in the window, every admin-token request from it is answered
 * 429 until the window ends, checked BEFORE the token is compared: were a
 * right token still let through, "429 or 200" would tell a guesser which
 * guess is right at full speed. So the real admin behind that IP waits too
 * (at most a minute). One WARN line per IP and window (at its first
 * failure), however many guesses follow. A cache outage fails open, like
 * the login limit: the token is still compared in constant time. */
#define ADMIN_FAIL_WINDOW_MS 60000

static void reply_admin_locked(struct iot_req *r, int64_t limit, int64_t left_ms)
{
    iot_metrics_rate_limited(IOT_RATE_LIMIT_ADMIN_AUTH);
    iot_reply_retry_after(r, (left_ms + 999) / 1000);
    iot_reply_error(r, 429, "Too many failed admin authentications",
                    "more than %lld invalid admin tokens from this address within a minute; "
                    "admin requests from it are refused until the minute ends",
                    (long long)limit);
}

static void count_admin_failure(struct iot_req *r, const char *prefix, int64_t limit)
{
    int64_t n = 0, left_ms;
    int rc = iot_window_count(&iot_app_of(r)->cache, prefix, 1, ADMIN_FAIL_WINDOW_MS, &n, &left_ms);
    if (rc == IOT_OK && n == 1)
        IOT_WARN("invalid admin token from %s (further failures from it this minute are not "
                 "logged; past %lld it gets 429)", r->client_ip, (long long)limit);
    else if (rc != IOT_OK)
        IOT_DEBUG("admin failure not counted (%s)", iot_strerror(rc));
}

static bool admin_token_ok(struct iot_req *r, const char *token)
{
    struct iot_app *app = iot_app_of(r);
    const char *configured = app->cfg->admin_token;
    if (!configured || !*configured) {
        iot_reply_error(r, 403, "Admin API disabled", "no admin token is configured on this server");
        return false;
    }
    int64_t limit = app->cfg->admin_fail_limit, failures = 0, left_ms = 0;
    char prefix[96];
    snprintf(prefix, sizeof prefix, "rl:admin-fail:%s", r->client_key);
    if (limit > 0 &&
        iot_window_count(&app->cache, prefix, 0, ADMIN_FAIL_WINDOW_MS, &failures, &left_ms) == IOT_OK &&
        failures >= limit) {
        reply_admin_locked(r, limit, left_ms);
        return false;
    }
    if (strlen(token) > IOT_CREDENTIAL_MAX || !iot_secret_equal(token, configured)) {
        if (limit > 0)
            count_admin_failure(r, prefix, limit);
        else
            IOT_WARN("invalid admin token from %s", r->client_ip);
        iot_reply_error(r, 403, "Invalid admin token", "the admin token is not valid");
        return false;
    }
    return true;
}

/* Resolves whatever credentials the request carries. Returns false after
 * answering when they are present but wrong; true with nothing set when
 * there are none. */
static bool resolve(struct iot_req *r, struct iot_principal *p)
{
    memset(p, 0, sizeof *p);
    const char *authz = iot_req_header(r, "Authorization");
    const char *v;
    if ((v = iot_credential_scheme_value(authz, "admin"))) {
        if (!admin_token_ok(r, v))
            return false;
        p->admin = true;
        return true;
    }
    if ((v = iot_credential_scheme_value(authz, "Bearer"))) {
        if (!user_from_session(r, v, &p->user))
            return false;
    } else {
        const char *uid = iot_req_header(r, "X-User-ID");
        if (!uid || !iot_app_of(r)->cfg->trust_user_id_header)
            return true;
        if (!user_from_header(r, uid, &p->user))
            return false;
    }
    p->has_user = true;
    p->admin = p->user.is_admin;
    return true;
}

static void reply_unauthenticated(struct iot_req *r)
{
    const char *how = iot_app_of(r)->cfg->trust_user_id_header
                          ? "send 'Authorization: Bearer <token>' or 'X-User-ID'"
                          : "send 'Authorization: Bearer <token>' from POST /api/v1/auth/login";
    iot_reply_error(r, 401, "Authentication required", "%s", how);
}

bool iot_authn_any(struct iot_req *r, struct iot_principal *out)
{
    if (!resolve(r, out))
        return false;
    if (!out->has_user && !out->admin) {
        reply_unauthenticated(r);
        return false;
    }
    return true;
}

bool iot_authn_user(struct iot_req *r, struct iot_user *out)
{
    struct iot_principal p;
    if (!iot_authn_any(r, &p))
        return false;
    if (!p.has_user) {
        iot_reply_error(r, 401, "Authentication required",
                        "this endpoint acts for a user; the admin token is not a user");
        return false;
    }
    *out = p.user;
    return true;
}

bool iot_authn_admin(struct iot_req *r, struct iot_principal *out)
{
    if (!resolve(r, out))
        return false;
    if (out->admin)
        return true;
    if (out->has_user)
        iot_reply_error(r, 403, "Forbidden", "admin privileges required");
    else
        iot_reply_error(r, 401, "Admin token required", "send 'Authorization: admin <token>'");
    return false;
}

bool iot_authn_self_or_admin(struct iot_req *r, const char *user_id, struct iot_principal *out)
{
    if (!iot_authn_any(r, out))
        return false;
    if (out->admin || strcmp(out->user.user_id, user_id) == 0)
        return true;
    iot_reply_error(r, 403, "Forbidden", "you can only access your own account");
    return false;
}

static void reply_device_refused(struct iot_req *r, enum iot_device_verdict v,
                                 const struct iot_device *d, int store_rc)
{
    switch (v) {
    case IOT_DEVICE_OK:
        return;
    case IOT_DEVICE_UNKNOWN_KEY:
        iot_reply_error(r, 401, "Invalid API key", "the provided API key is not valid");
        return;
    case IOT_DEVICE_OWNER_INACTIVE:
        iot_reply_error(r, 403, "Owner account deactivated",
                        "the account that owns this device is deactivated; its devices are "
                        "refused until an admin activates it again "
                        "(PATCH /api/v1/users/{user_id}/activate)");
        return;
    case IOT_DEVICE_HELD_OFF:
        iot_reply_device_held_off(r, d);
        return;
    case IOT_DEVICE_MAINTENANCE:
        iot_reply_error(r, 403, "Device in maintenance", "the device is in maintenance mode");
        return;
    case IOT_DEVICE_CHANGED:
        iot_reply_error(r, 409, "Device changed concurrently",
                        "an admin changed device %lld while it was writing; retry",
                        (long long)d->id);
        return;
    case IOT_DEVICE_STORE_ERROR:
        iot_reply_store_error(r, store_rc, "device");
        return;
    }
}

bool iot_authn_device_write_own(struct iot_req *r, const struct iot_device *d, unsigned fields)
{
    struct iot_device now = *d;
    int store_rc = IOT_OK;
    enum iot_device_verdict v =
        iot_device_write_own(&iot_app_of(r)->devices, d, fields, &now, &store_rc);
    reply_device_refused(r, v, &now, store_rc);
    return v == IOT_DEVICE_OK;
}

_Static_assert(IOT_DEVICE_KEY_MAX == IOT_CREDENTIAL_MAX, "a device key is a credential");

bool iot_authn_device(struct iot_req *r, enum iot_device_auth mode, struct iot_device *out)
{
    const char *key = iot_req_header(r, "X-API-Key");
    if (!key || !*key) {
        iot_reply_error(r, 401, "API key required", "send the device key in the X-API-Key header");
        return false;
    }
    int store_rc = IOT_OK;
    enum iot_device_verdict v =
        iot_device_authenticate(&iot_app_of(r)->devices, key,
                                strnlen(key, IOT_CREDENTIAL_MAX + 1), mode, out, &store_rc);
    reply_device_refused(r, v, out, store_rc);
    return v == IOT_DEVICE_OK;
}

bool iot_rate_limit_ip(struct iot_req *r, const char *action)
{
    struct iot_app *app = iot_app_of(r);
    int64_t limit = app->cfg->auth_rate_limit;
    if (limit <= 0)
        return true;
    char key[128];
    snprintf(key, sizeof key, "rl:%s:%s", action, r->client_key);
    bool allowed = true;
    int64_t retry_ms = 0;
    int rc = iot_cache_rate_hit(&app->cache, key, limit, 60000, iot_now_ms(), &allowed, &retry_ms);
    if (rc) {
        /* Fail open: a cache outage must not lock every user out. */
        IOT_WARN("rate limit check failed (%s); allowing", iot_strerror(rc));
        return true;
    }
    if (allowed)
        return true;
    iot_metrics_rate_limited(IOT_RATE_LIMIT_CLIENT_AUTH);
    iot_reply_retry_after(r, (retry_ms + 999) / 1000);
    iot_reply_error(r, 429, "Too many requests", "at most %lld %s requests per minute; retry later",
                    (long long)limit, action);
    return false;
}

void iot_reply_device_held_off(struct iot_req *r, const struct iot_device *d)
{
    iot_reply_error(r, 403, "Device switched off by an admin",
                    "an admin set device %lld to '%s'; its key is refused for telemetry and it "
                    "cannot change its own status until an admin sets it back to 'active' "
                    "(PUT /api/v1/admin/devices/%lld/status)",
                    (long long)d->id, d->status, (long long)d->id);
}
