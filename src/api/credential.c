#include "api/credential.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/app.h"
#include "util/err.h"

const char *iot_credential_scheme_value(const char *header, const char *scheme)
{
    size_t n = strlen(scheme);
    if (!header || strncasecmp(header, scheme, n) != 0 || header[n] != ' ')
        return NULL;
    const char *v = header + n + 1;
    while (*v == ' ')
        v++;
    return v;
}

/* Hashes a secret into out->hash; false when it is too long to be one. */
static bool hash_secret(const char *secret, struct iot_credential *out)
{
    size_t len = strnlen(secret, IOT_CREDENTIAL_MAX + 1);
    if (len > IOT_CREDENTIAL_MAX)
        return false;
    iot_sha256_hex(secret, len, out->hash, sizeof out->hash);
    return true;
}

static bool admin_token_matches(struct iot_req *r, const char *token)
{
    const char *configured = iot_app_of(r)->cfg->admin_token;
    return configured && *configured && strnlen(token, IOT_CREDENTIAL_MAX + 1) <= IOT_CREDENTIAL_MAX &&
           iot_secret_equal(token, configured);
}

void iot_credential_user_side(struct iot_req *r, struct iot_credential *out)
{
    memset(out, 0, sizeof *out);
    const char *authz = iot_req_header(r, "Authorization");
    const char *v;
    if ((v = iot_credential_scheme_value(authz, "admin"))) {
        if (admin_token_matches(r, v))
            out->kind = IOT_CRED_ADMIN;
        return;
    }
    if ((v = iot_credential_scheme_value(authz, "Bearer"))) {
        if (hash_secret(v, out))
            out->kind = IOT_CRED_SESSION;
        return;
    }
    const char *uid = iot_req_header(r, "X-User-ID");
    if (uid && iot_app_of(r)->cfg->trust_user_id_header && strlen(uid) == IOT_USER_ID_LEN) {
        memcpy(out->user_id, uid, IOT_USER_ID_LEN + 1);
        out->kind = IOT_CRED_USER_ID;
    }
}

void iot_credential_device_key(struct iot_req *r, struct iot_credential *out)
{
    memset(out, 0, sizeof *out);
    const char *key = iot_req_header(r, "X-API-Key");
    if (key && *key && hash_secret(key, out))
        out->kind = IOT_CRED_DEVICE_KEY;
}

bool iot_credential_is_admin(struct iot_req *r)
{
    struct iot_app *app = iot_app_of(r);
    struct iot_credential c;
    iot_credential_user_side(r, &c);
    if (c.kind == IOT_CRED_ADMIN)
        return true;
    if (c.kind == IOT_CRED_SESSION && iot_cache_session_get(&app->cache, c.hash, c.user_id) != IOT_OK)
        return false;
    if (c.kind != IOT_CRED_SESSION && c.kind != IOT_CRED_USER_ID)
        return false;
    struct iot_user u;
    return iot_reg_user_get_by_user_id(&app->registry, c.user_id, &u) == IOT_OK && u.is_active &&
           u.is_admin;
}
