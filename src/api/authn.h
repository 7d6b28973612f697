/* authn.h — who is calling: a user (Bearer session token, or the legacy
 * X-User-ID header when IOTFLOW_TRUST_USER_ID_HEADER=1), the admin (the
 * admin token, or a user whose is_admin is true), or a device (X-API-Key).
 *
 * Each iot_authn_* function either fills its output and returns true, or
 * answers the request itself (401, 403, 429 or 503) and returns false, so a
 * handler simply returns when it gets false. */
#ifndef IOT_API_AUTHN_H
#define IOT_API_AUTHN_H

#include <stdbool.h>

#include "http/request.h"
#include "store/registry.h"

/* The caller of a user-facing endpoint. */
struct iot_principal {
    bool admin;         /* admin token, or an is_admin user */
    bool has_user;      /* `user` is the calling user */
    struct iot_user user;
};

/* A signed-in, active user is required. */
bool iot_authn_user(struct iot_req *r, struct iot_user *out);
/* The admin is required. */
bool iot_authn_admin(struct iot_req *r, struct iot_principal *out);
/* The user whose public id is `user_id`, or the admin. */
bool iot_authn_self_or_admin(struct iot_req *r, const char *user_id, struct iot_principal *out);
/* A user or the admin; has_user tells which. */
bool iot_authn_any(struct iot_req *r, struct iot_principal *out);

/* Every mode refuses (403) a device whose owner is deactivated. */
enum iot_device_auth {
    /* to work (telemetry, heartbeat, status): a device an admin switched
     * off → 403; one in maintenance it set itself → 403; an inactive one
     * that is new or switched itself off becomes active ("first use") */
    IOT_DEVICE_AUTH_ACTIVE,
    IOT_DEVICE_AUTH_ANY,  /* any status, nothing changed (config, credentials) */
    IOT_DEVICE_AUTH_READ, /* any status but switched off by an admin → 403; nothing
                             changed (reading its telemetry, live streams) */
};
/* The device whose API key is in X-API-Key. */
bool iot_authn_device(struct iot_req *r, enum iot_device_auth mode, struct iot_device *out);

/* Per-client-IP rate limit of `action` (login, register, ...) at
 * IOTFLOW_AUTH_RATE_LIMIT per minute; answers 429 + Retry-After when over.
 * Counted by r->client_key: an IPv6 client by its /64. */
bool iot_rate_limit_ip(struct iot_req *r, const char *action);

struct iot_app;
/* A fixed-window counter in the cache store (shared by every instance on
 * it), for limits that count amounts or only some events, which the
 * rate_hit log of timestamps cannot: adds `amount` to the counter of
 * `prefix` in the window of window_ms holding now (0 reads it without
 * creating it); *total is the window's sum after the add, *left_ms the time
 * to the window's end. Returns the cache's status; callers fail open. */
int iot_window_count(struct iot_app *app, const char *prefix, int64_t amount, int64_t window_ms,
                     int64_t *total, int64_t *left_ms);

/* 403 for a device an admin switched off (iot_device_held_off): says who
 * and how to switch it back on. */
void iot_reply_device_held_off(struct iot_req *r, const struct iot_device *d);

/* The device's own write of its status and of the location and versions
 * in `fields` (IOT_REG_OWN_*: those it sent) (first use, PUT
 * /devices/config), from *d — a copy that may come from the key cache and
 * be stale. The store refuses it if an admin has switched the
 * device off since (iot_reg_device_update_by_device); then the stale local
 * cache entry is dropped and this answers 403 with the stored status.
 * Answers store errors too; false when it answered. Leaves the cache alone
 * on success (the caller forgets or refreshes the entry). */
bool iot_device_write_own(struct iot_req *r, const struct iot_device *d, unsigned fields);

#endif
