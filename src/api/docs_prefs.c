/* docs_prefs.c — GET/PUT /users/{user_id}/preferences (core/prefs.h), for
 * the user itself or the admin. Both answer
 * {"user_id": "<32 hex>", "preferences": {...}, "updated_at": ISO | null}:
 * the stored preferences over the defaults. PUT replaces what is stored. */
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/authn.h"
#include "api/docs_common.h"
#include "api/handlers_docs.h"
#include "api/views.h"
#include "core/prefs.h"
#include "util/clock.h"
#include "util/err.h"

/* The user of path parameter 0, when the caller is that user or the admin. */
static bool load_user(struct iot_req *r, struct iot_user *u)
{
    struct iot_principal p;
    const char *uid = iot_req_param(r, 0);
    if (!iot_authn_self_or_admin(r, uid, &p))
        return false;
    if (p.has_user && strcmp(p.user.user_id, uid) == 0) {
        *u = p.user;
        return true;
    }
    int rc = strlen(uid) == IOT_USER_ID_LEN
                 ? iot_reg_user_get_by_user_id(&iot_app_of(r)->registry, uid, u)
                 : IOT_ENOTFOUND;
    if (rc == IOT_ENOTFOUND)
        iot_reply_error(r, 404, "User not found", "no user found with ID: %s", uid);
    else if (rc)
        iot_reply_store_error(r, rc, "user");
    return rc == IOT_OK;
}

static void reply_prefs(struct iot_req *r, const struct iot_user *u)
{
    json_t *prefs;
    int64_t updated;
    int rc = iot_prefs_load(&iot_app_of(r)->docs, u->id, &prefs, &updated);
    if (rc) {
        iot_reply_store_error(r, rc, "preferences");
        return;
    }
    iot_reply_json(r, 200, json_pack("{s:s, s:o, s:o}", "user_id", u->user_id, "preferences",
                                     prefs, "updated_at", iot_json_time(updated)));
}

void iot_h_user_prefs_get(struct iot_req *r)
{
    struct iot_user u;
    if (load_user(r, &u))
        reply_prefs(r, &u);
}

void iot_h_user_prefs_put(struct iot_req *r)
{
    struct iot_user u;
    if (!load_user(r, &u))
        return;
    json_t *body = iot_req_json_object(r);
    if (!body)
        return;
    char why[200], *text;
    size_t len;
    int rc = iot_prefs_check(body, &text, &len, why, sizeof why);
    json_decref(body);
    if (rc == IOT_EINVAL) {
        iot_reply_error(r, 400, "Validation error", "%s", why);
        return;
    }
    if (rc == IOT_OK)
        rc = iot_prefs_store(&iot_app_of(r)->docs, u.id, text, len, iot_now_ms());
    free(text);
    if (rc) {
        iot_reply_docs_error(r, rc, "preferences", IOT_PREFS_MAX);
        return;
    }
    if (iot_docs_orphaned(iot_app_of(r), IOT_DOCS_PREFS, 0, u.id)) {
        iot_reply_error(r, 404, "User not found", "user %s was deleted meanwhile", u.user_id);
        return;
    }
    reply_prefs(r, &u);
}
