/* credential.h — which credential a request carries, read without answering.
 *
 * authn.h decides whether a request may go on and answers 401/403 itself.
 * This module reads the same headers with the same precedence but never
 * answers, so that a live stream can remember what it was opened with and
 * re-check it later (api/stream_access.h), and a public endpoint can tell
 * the admin apart without refusing anyone (api/health.c). Secrets are kept
 * only as SHA-256. No state; every function is thread-safe. */
#ifndef IOT_API_CREDENTIAL_H
#define IOT_API_CREDENTIAL_H

#include <stdbool.h>

#include "core/secrets.h"
#include "http/request.h"
#include "store/registry.h"

/* The longest credential (token, key) either module reads; a longer one is
 * refused before it is hashed. */
#define IOT_CREDENTIAL_MAX 256

/* The value of an Authorization header after "<scheme> " (scheme matched
 * without case, further spaces skipped), or NULL for another scheme. */
const char *iot_credential_scheme_value(const char *header, const char *scheme);

enum iot_cred_kind {
    IOT_CRED_NONE,       /* none, or one that cannot be right */
    IOT_CRED_ADMIN,      /* Authorization: admin <token>, matching IOTFLOW_ADMIN_TOKEN */
    IOT_CRED_SESSION,    /* Authorization: Bearer <token>; hash = SHA-256 of the token */
    IOT_CRED_USER_ID,    /* X-User-ID when IOTFLOW_TRUST_USER_ID_HEADER=1; user_id */
    IOT_CRED_DEVICE_KEY, /* X-API-Key; hash = SHA-256 of the key */
};

struct iot_credential {
    enum iot_cred_kind kind;
    char hash[IOT_SHA256_HEX_LEN + 1];
    char user_id[IOT_USER_ID_LEN + 1];
};

/* The caller's user-side credential, in authn.c's order: Authorization
 * (admin, then Bearer), else a trusted X-User-ID. A wrong admin token, an
 * overlong token or an untrusted X-User-ID gives IOT_CRED_NONE. */
void iot_credential_user_side(struct iot_req *r, struct iot_credential *out);
/* The device key in X-API-Key, or IOT_CRED_NONE. */
void iot_credential_device_key(struct iot_req *r, struct iot_credential *out);

/* True when the caller is the admin: the admin token, or the session (or
 * trusted X-User-ID) of an active is_admin user. Never answers the
 * request; a store error counts as "not the admin". */
bool iot_credential_is_admin(struct iot_req *r);

#endif
