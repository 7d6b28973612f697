/* auth.c — POST /api/v1/auth/register, /login, /logout.
 *
 * Usernames and emails are one account whatever their case (the registry
 * enforces it), so login by username works in any case; the rules on what
 * a username, email and password may contain are core/account_rules.h. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "api/app.h"
#include "api/authn.h"
#include "api/handlers.h"
#include "api/views.h"
#include "core/events.h"
#include "core/secrets.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define USERNAME_MIN 3
#define EMAIL_MIN 5 /* a@b.c */
#define PASSWORD_MIN 6

static bool read_new_user(struct iot_req *r, json_t *body, struct iot_user *u, char *password,
                          size_t password_size)
{
    if (iot_field_missing(body, "username") || iot_field_missing(body, "email") ||
        iot_field_missing(body, "password")) {
        iot_reply_error(r, 400, "Missing required fields",
                        "username, email, and password are required");
        return false;
    }
    if (iot_field_text(r, body, "username", USERNAME_MIN, IOT_USERNAME_MAX, u->username,
                       sizeof u->username) < 0 ||
        iot_field_text(r, body, "email", EMAIL_MIN, IOT_EMAIL_MAX, u->email, sizeof u->email) < 0 ||
        iot_field_text(r, body, "password", PASSWORD_MIN, IOT_PASSWORD_MAX, password,
                       password_size) < 0)
        return false;
    return iot_account_text_ok(r, u->username, u->email, password);
}

/* 409 with the original's wording when username or email is taken, in
 * any case ("ALICE" is taken when "alice" exists: the lookups ignore case). */
static bool user_is_new(struct iot_req *r, const struct iot_user *u)
{
    struct iot_registry *reg = &iot_app_of(r)->registry;
    struct iot_user existing;
    int rc = iot_reg_user_get_by_username(reg, u->username, &existing);
    if (rc == IOT_OK) {
        iot_reply_error(r, 409, "Username already exists", "user with username '%s' already exists",
                        u->username);
        return false;
    }
    if (rc == IOT_ENOTFOUND)
        rc = iot_reg_user_get_by_email(reg, u->email, &existing);
    if (rc == IOT_OK) {
        iot_reply_error(r, 409, "Email already exists", "user with email '%s' already exists",
                        u->email);
        return false;
    }
    if (rc != IOT_ENOTFOUND) {
        iot_reply_store_error(r, rc, "user");
        return false;
    }
    return true;
}

void iot_h_auth_register(struct iot_req *r)
{
    if (!iot_rate_limit_ip(r, "register"))
        return;
    json_t *body = iot_req_json_object(r);
    if (!body)
        return;
    struct iot_user u = {.is_active = true};
    char password[IOT_PASSWORD_MAX + 1];
    bool ok = read_new_user(r, body, &u, password, sizeof password) && user_is_new(r, &u);
    json_decref(body);
    if (!ok)
        return;
    int rc = iot_password_hash(password, u.password_hash, sizeof u.password_hash);
    if (rc == IOT_OK)
        rc = iot_reg_user_create(&iot_app_of(r)->registry, &u);
    if (rc == IOT_ECONFLICT) {
        iot_reply_error(r, 409, "User already exists", "username or email is already taken");
        return;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "user");
        return;
    }
    IOT_INFO("user registered: %s (%s)", u.username, u.user_id);
    iot_events_emit(iot_app_of(r)->events, IOT_EV_USER_REGISTERED, u.id, 0,
                    json_pack("{s:s}", "username", u.username));
    iot_reply_json(r, 201, json_pack("{s:s, s:s, s:o}", "status", "success", "message",
                                     "Registration successful", "user", iot_json_user(&u)));
}

/* A hash to verify against when the username is unknown, so that a failed
 * login takes as long whether or not the account exists. */
static char dummy_hash[IOT_PWHASH_MAX + 1];
static void make_dummy_hash(void)
{
    char random_password[33];
    iot_random_hex(random_password, 32);
    iot_password_hash(random_password, dummy_hash, sizeof dummy_hash);
}

static bool check_credentials(struct iot_req *r, const char *username, const char *password,
                              struct iot_user *u)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    int rc = iot_reg_user_get_by_username(&iot_app_of(r)->registry, username, u);
    if (rc != IOT_OK && rc != IOT_ENOTFOUND) {
        iot_reply_store_error(r, rc, "user");
        return false;
    }
    if (rc == IOT_ENOTFOUND) {
        pthread_once(&once, make_dummy_hash);
        iot_password_verify(dummy_hash, password);
    }
    if (rc == IOT_ENOTFOUND || !iot_password_verify(u->password_hash, password)) {
        iot_reply_error(r, 401, "Authentication failed", "invalid username or password");
        return false;
    }
    /* Checked after the password so the state of an account is only told to
     * someone who knows its password. */
    if (!u->is_active) {
        iot_reply_error(r, 401, "Account inactive", "this account has been deactivated");
        return false;
    }
    return true;
}

static int open_session(struct iot_req *r, const struct iot_user *u, char *token, size_t size)
{
    struct iot_app *app = iot_app_of(r);
    char hash[IOT_SHA256_HEX_LEN + 1];
    iot_token_new(token, size);
    iot_sha256_hex(token, strlen(token), hash, sizeof hash);
    return iot_cache_session_put(&app->cache, hash, u->user_id, app->cfg->session_ttl * 1000);
}

void iot_h_auth_login(struct iot_req *r)
{
    if (!iot_rate_limit_ip(r, "login"))
        return;
    json_t *body = iot_req_json_object(r);
    if (!body)
        return;
    char username[IOT_USERNAME_MAX + 1] = "", password[IOT_PASSWORD_MAX + 1] = "";
    json_t *ju = json_object_get(body, "username"), *jp = json_object_get(body, "password");
    bool present = json_is_string(ju) && json_string_length(ju) > 0 && json_is_string(jp) &&
                   json_string_length(jp) > 0;
    /* Too long to be anyone's credentials: a plain authentication failure. */
    bool fits = present && json_string_length(ju) <= IOT_USERNAME_MAX &&
                json_string_length(jp) <= IOT_PASSWORD_MAX;
    if (fits) {
        snprintf(username, sizeof username, "%s", json_string_value(ju));
        snprintf(password, sizeof password, "%s", json_string_value(jp));
    }
    json_decref(body);
    if (!present) {
        iot_reply_error(r, 400, "Missing credentials", "username and password are required");
        return;
    }
    if (!fits) {
        iot_reply_error(r, 401, "Authentication failed", "invalid username or password");
        return;
    }
    struct iot_user u;
    if (!check_credentials(r, username, password, &u))
        return;
    u.last_login = iot_now_ms();
    char token[IOT_TOKEN_LEN + 1];
    int rc = iot_reg_user_update(&iot_app_of(r)->registry, &u);
    if (rc == IOT_OK)
        rc = open_session(r, &u, token, sizeof token);
    if (rc) {
        iot_reply_store_error(r, rc, "session");
        return;
    }
    iot_reply_json(r, 200,
                   json_pack("{s:s, s:s, s:o, s:s, s:s, s:I}", "status", "success", "message",
                             "Login successful", "user", iot_json_user(&u), "token", token,
                             "token_type", "Bearer", "expires_in",
                             (json_int_t)iot_app_of(r)->cfg->session_ttl));
}

void iot_h_auth_logout(struct iot_req *r)
{
    const char *authz = iot_req_header(r, "Authorization");
    if (authz && strncasecmp(authz, "Bearer ", 7) == 0) {
        const char *token = authz + 7;
        char hash[IOT_SHA256_HEX_LEN + 1];
        iot_sha256_hex(token, strnlen(token, 256), hash, sizeof hash);
        int rc = iot_cache_session_del(&iot_app_of(r)->cache, hash);
        if (rc && rc != IOT_ENOTFOUND) {
            iot_reply_store_error(r, rc, "session");
            return;
        }
    }
    iot_reply_json(r, 200, json_pack("{s:s, s:s}", "status", "success", "message", "Logout successful"));
}
