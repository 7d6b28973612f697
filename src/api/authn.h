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

#include "core/device_auth.h"
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

/* The device whose API key is in X-API-Key, checked for `mode`
 * (core/device_auth.h): 401 for a missing or unknown key, 403 for a
 * refused status or owner. */
bool iot_authn_device(struct iot_req *r, enum iot_device_auth mode, struct iot_device *out);

/* Per-client-IP rate limit of `action` (login, register, ...) at
 * IOTFLOW_AUTH_RATE_LIMIT per minute; answers 429 + Retry-After when over.
 * Counted by r->client_key: an IPv6 client by its /64. */
bool iot_rate_limit_ip(struct iot_req *r, const char *action);

/* 403 for a device an admin switched off (iot_device_held_off): says who
 * and how to switch it back on. */
void iot_reply_device_held_off(struct iot_req *r, const struct iot_device *d);

/* The device's own write of its status and of the location and versions
 * in `fields` (IOT_REG_OWN_*: those it sent) (PUT /devices/config), from
 * *d — a copy that may come from the key cache and be stale
 * (iot_device_write_own): 403 with the stored status when an admin has
 * switched the device off since, 409 when it changed meanwhile, store
 * errors; false when it answered. */
bool iot_authn_device_write_own(struct iot_req *r, const struct iot_device *d, unsigned fields);

#endif
