/* users.c — /api/v1/users: read, list, update, activate, deactivate,
 * delete. A change of is_active also tells every instance to forget the
 * user's devices from its key cache, so that a deactivated user's devices
 * are refused from the next request on (authn.c). */
#include <string.h>

#include "api/app.h"
#include "api/authn.h"
#include "api/device_common.h"
#include "api/handlers.h"
#include "api/views.h"
#include "core/events.h"
#include "core/secrets.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define USERS_PAGE_DEFAULT 100
#define USERS_PAGE_MAX 1000

/* Loads the user named by the first path parameter; answers 404. */
static bool load_target(struct iot_req *r, struct iot_user *u)
{
    const char *uid = iot_req_param(r, 0);
    int rc = strlen(uid) == IOT_USER_ID_LEN
                 ? iot_reg_user_get_by_user_id(&iot_app_of(r)->registry, uid, u)
                 : IOT_ENOTFOUND;
    if (rc == IOT_ENOTFOUND) {
        iot_reply_error(r, 404, "User not found", "no user found with ID: %s", uid);
        return false;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "user");
        return false;
    }
    return true;
}

void iot_h_user_get(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_user u;
    if (!iot_authn_self_or_admin(r, iot_req_param(r, 0), &p) || !load_target(r, &u))
        return;
    iot_reply_json(r, 200, json_pack("{s:s, s:o}", "status", "success", "user", iot_json_user(&u)));
}

static int append_user(void *ctx, const struct iot_user *u)
{
    return json_array_append_new(ctx, iot_json_user(u));
}

void iot_h_user_list(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_page page;
    if (!iot_authn_admin(r, &p) ||
        !iot_req_query_int(r, "limit", USERS_PAGE_DEFAULT, USERS_PAGE_MAX, &page.limit) ||
        !iot_req_query_int(r, "offset", 0, INT64_MAX, &page.offset))
        return;
    json_t *users = json_array();
    int64_t total = 0;
    int rc = iot_reg_user_list(&iot_app_of(r)->registry, page, append_user, users, &total);
    if (rc) {
        json_decref(users);
        iot_reply_store_error(r, rc, "user");
        return;
    }
    iot_reply_json(r, 200,
                   json_pack("{s:s, s:o, s:{s:I, s:I, s:I}}", "status", "success", "users", users,
                             "meta", "total", (json_int_t)total, "limit", (json_int_t)page.limit,
                             "offset", (json_int_t)page.offset));
}

/* 409 when another user already holds the new username or email. */
static bool unique_change(struct iot_req *r, const struct iot_user *u, bool name_set, bool email_set)
{
    struct iot_registry *reg = &iot_app_of(r)->registry;
    struct iot_user other;
    if (name_set && iot_reg_user_get_by_username(reg, u->username, &other) == IOT_OK &&
        other.id != u->id) {
        iot_reply_error(r, 409, "Username already exists", "username '%s' is already in use",
                        u->username);
        return false;
    }
    if (email_set && iot_reg_user_get_by_email(reg, u->email, &other) == IOT_OK &&
        other.id != u->id) {
        iot_reply_error(r, 409, "Email already exists", "email '%s' is already in use", u->email);
        return false;
    }
    return true;
}

/* Applies the body's fields to u. Returns false after answering. */
static bool apply_user_changes(struct iot_req *r, json_t *body, const struct iot_principal *p,
                               struct iot_user *u)
{
    char password[IOT_PASSWORD_MAX + 1];
    bool is_active = u->is_active, is_admin = u->is_admin;
    int name = iot_field_text(r, body, "username", 3, IOT_USERNAME_MAX, u->username, sizeof u->username);
    int email = name < 0 ? name : iot_field_text(r, body, "email", 5, IOT_EMAIL_MAX, u->email, sizeof u->email);
    int pw = email < 0 ? email : iot_field_text(r, body, "password", 6, IOT_PASSWORD_MAX, password, sizeof password);
    int active = pw < 0 ? pw : iot_field_bool(r, body, "is_active", &is_active);
    int admin = active < 0 ? active : iot_field_bool(r, body, "is_admin", &is_admin);
    if (admin < 0)
        return false;
    if (!name && !email && !pw && !active && !admin) {
        iot_reply_error(r, 400, "No data provided",
                        "send at least one of username, email, password, is_active, is_admin");
        return false;
    }
    if (!iot_account_text_ok(r, name ? u->username : NULL, email ? u->email : NULL,
                             pw ? password : NULL))
        return false;
    if ((active || admin) && !p->admin) {
        iot_reply_error(r, 403, "Forbidden", "only an admin may change is_active or is_admin");
        return false;
    }
    if (is_admin && !is_active) {
        iot_reply_error(r, 403, "Cannot deactivate admin", "admin users cannot be deactivated");
        return false;
    }
    if (pw) {
        int rc = iot_password_hash(password, u->password_hash, sizeof u->password_hash);
        if (rc) {
            iot_reply_store_error(r, rc, "password");
            return false;
        }
    }
    u->is_active = is_active;
    u->is_admin = is_admin;
    return unique_change(r, u, name, email);
}

/* Ends every session of a user (deactivation, password change, deletion). */
static void drop_sessions(struct iot_req *r, const char *user_id)
{
    int rc = iot_cache_session_drop_user(&iot_app_of(r)->cache, user_id);
    if (rc)
        IOT_WARN("could not revoke sessions of %s: %s", user_id, iot_strerror(rc));
}

/* The event of an update: which fields changed (never their values: a
 * password hash stays out of the log) and who changed them. */
static json_t *update_details(const struct iot_user *before, const struct iot_user *after,
                              const struct iot_principal *p)
{
    json_t *changed = json_array();
    if (strcmp(before->username, after->username) != 0)
        json_array_append_new(changed, json_string("username"));
    if (strcmp(before->email, after->email) != 0)
        json_array_append_new(changed, json_string("email"));
    if (strcmp(before->password_hash, after->password_hash) != 0)
        json_array_append_new(changed, json_string("password"));
    if (before->is_active != after->is_active)
        json_array_append_new(changed, json_string("is_active"));
    if (before->is_admin != after->is_admin)
        json_array_append_new(changed, json_string("is_admin"));
    return json_pack("{s:o, s:s}", "changed", changed, "by", p->admin ? "admin" : "self");
}

void iot_h_user_update(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_user u;
    if (!iot_authn_self_or_admin(r, iot_req_param(r, 0), &p) || !load_target(r, &u))
        return;
    json_t *body = iot_req_json_object(r);
    if (!body)
        return;
    struct iot_user before = u;
    bool ok = apply_user_changes(r, body, &p, &u);
    json_decref(body);
    if (!ok)
        return;
    u.updated_at = iot_now_ms();
    int rc = iot_reg_user_update(&iot_app_of(r)->registry, &u);
    if (rc == IOT_ECONFLICT) { /* taken between the check and the write */
        iot_reply_error(r, 409, "User already exists", "username or email is already in use");
        return;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "user");
        return;
    }
    if (u.is_active != before.is_active)
        iot_owner_devices_forget(r, u.id);
    if (!u.is_active || strcmp(before.password_hash, u.password_hash) != 0)
        drop_sessions(r, u.user_id);
    iot_events_emit(iot_app_of(r)->events, IOT_EV_USER_UPDATED, u.id, 0,
                    update_details(&before, &u, &p));
    iot_reply_json(r, 200, json_pack("{s:s, s:s, s:o}", "status", "success", "message",
                                     "User updated successfully", "user", iot_json_user(&u)));
}

static void set_active(struct iot_req *r, bool active)
{
    struct iot_principal p;
    struct iot_user u;
    if (!iot_authn_admin(r, &p) || !load_target(r, &u))
        return;
    if (!active && u.is_admin) {
        iot_reply_error(r, 403, "Cannot deactivate admin", "admin users cannot be deactivated");
        return;
    }
    if (u.is_active == active) {
        iot_reply_json(r, 200, json_pack("{s:s, s:s++}", "status", "success", "message", "User '",
                                         u.username, active ? "' is already active" : "' is already deactivated"));
        return;
    }
    u.is_active = active;
    u.updated_at = iot_now_ms();
    int rc = iot_reg_user_update(&iot_app_of(r)->registry, &u);
    if (rc) {
        iot_reply_store_error(r, rc, "user");
        return;
    }
    /* Their devices' keys stop (or start) working at once, on every
     * instance: the key caches hold the owner's state with each device. */
    iot_owner_devices_forget(r, u.id);
    if (!active)
        drop_sessions(r, u.user_id);
    IOT_INFO("user %s %s", u.user_id, active ? "activated" : "deactivated");
    iot_events_emit(iot_app_of(r)->events, active ? IOT_EV_USER_ACTIVATED : IOT_EV_USER_DEACTIVATED,
                    u.id, 0, json_pack("{s:s}", "by", "admin"));
    iot_reply_json(r, 200, json_pack("{s:s, s:s++}", "status", "success", "message", "User '",
                                     u.username, active ? "' activated successfully" : "' deactivated successfully"));
}

void iot_h_user_activate(struct iot_req *r) { set_active(r, true); }
void iot_h_user_deactivate(struct iot_req *r) { set_active(r, false); }

static int forget_device(void *ctx, const struct iot_device *d)
{
    iot_device_forget(ctx, d);
    return 0;
}

void iot_h_user_delete(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_user u;
    if (!iot_authn_admin(r, &p) || !load_target(r, &u))
        return;
    if (u.is_admin) {
        iot_reply_error(r, 403, "Cannot delete admin", "admin users cannot be deleted");
        return;
    }
    struct iot_app *app = iot_app_of(r);
    struct iot_device_filter mine = {.user_id = u.id};
    struct iot_page all = {.limit = INT64_MAX};
    iot_reg_device_list(&app->registry, &mine, all, forget_device, r, NULL);
    int rc = iot_reg_user_delete(&app->registry, u.id);
    if (rc) {
        iot_reply_store_error(r, rc, "user");
        return;
    }
    /* As for a device: the clean-up was recorded with the delete and is
     * retried by the cleaner if the telemetry store fails now. */
    iot_cleaner_after_delete(app->cleaner, IOT_CLEANUP_USER, u.id);
    drop_sessions(r, u.user_id);
    IOT_INFO("user %s (%s) deleted", u.username, u.user_id);
    /* Under no user (0): the user's own events go with the user, so only
     * an admin sees this one. */
    iot_events_emit(app->events, IOT_EV_USER_DELETED, 0, 0,
                    json_pack("{s:s, s:s, s:s}", "user_id", u.user_id, "username", u.username,
                              "by", "admin"));
    iot_reply_json(r, 200, json_pack("{s:s, s:s++}", "status", "success", "message", "User '",
                                     u.username, "' deleted permanently"));
}
