/* views.c — records as JSON, and the reading and checking of request
 * fields (views.h). */
#include "api/views.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/account_rules.h"
#include "util/clock.h"
#include "util/err.h"

json_t *iot_json_user(const struct iot_user *u)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:b, s:b, s:o, s:o, s:o}", "id", (json_int_t)u->id,
                     "user_id", u->user_id, "username", u->username, "email", u->email,
                     "is_active", u->is_active, "is_admin", u->is_admin, "created_at",
                     iot_json_time(u->created_at), "updated_at", iot_json_time(u->updated_at),
                     "last_login", iot_json_time(u->last_login));
}

/* status_set_by tells an owner why a device stays off ("admin": only an
 * admin switches it back on; "device", "new": it switches itself on). */
json_t *iot_json_device(const struct iot_device *d)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o}", "id",
                     (json_int_t)d->id, "name", d->name, "description", d->description,
                     "device_type", d->device_type, "status", d->status, "status_set_by",
                     d->status_set_by[0] ? d->status_set_by : IOT_STATUS_BY_NEW, "location",
                     d->location,
                     "firmware_version", d->firmware_version, "hardware_version",
                     d->hardware_version, "user_id", (json_int_t)d->user_id, "created_at",
                     iot_json_time(d->created_at), "updated_at", iot_json_time(d->updated_at),
                     "last_seen", iot_json_time(d->last_seen));
}

json_t *iot_json_masked_key(const struct iot_device *d)
{
    char masked[IOT_KEY_PREFIX_LEN + 8];
    snprintf(masked, sizeof masked, "%s\u2026", d->api_key_prefix);
    return json_string(masked);
}

json_t *iot_json_group(const struct iot_group *g)
{
    return json_pack("{s:I, s:s, s:s, s:I, s:s?, s:o, s:o, s:I}", "id", (json_int_t)g->id, "name",
                     g->name, "description", g->description, "user_id", (json_int_t)g->user_id,
                     "color", g->color[0] ? g->color : NULL, "created_at",
                     iot_json_time(g->created_at), "updated_at", iot_json_time(g->updated_at),
                     "device_count", (json_int_t)g->device_count);
}

int iot_field_text(struct iot_req *r, json_t *obj, const char *key, size_t min, size_t max,
                   char *buf, size_t size)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return IOT_FIELD_ABSENT;
    if (json_is_null(v) && min == 0) {
        buf[0] = '\0';
        return IOT_FIELD_SET;
    }
    if (!json_is_string(v)) {
        iot_reply_error(r, 400, "Validation error", "'%s' must be a string", key);
        return IOT_EINVAL;
    }
    size_t len = json_string_length(v);
    if (len < min || len > max || len >= size) {
        if (min > 0 && len == 0)
            iot_reply_error(r, 400, "Validation error", "'%s' must not be empty", key);
        else
            iot_reply_error(r, 400, "Validation error", "'%s' must be %zu to %zu bytes long", key,
                            min, max);
        return IOT_EINVAL;
    }
    memcpy(buf, json_string_value(v), len + 1);
    return IOT_FIELD_SET;
}

bool iot_field_missing(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return !v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0);
}

bool iot_account_text_ok(struct iot_req *r, const char *username, const char *email,
                         const char *password)
{
    const char *why = NULL;
    if (username)
        why = iot_username_problem(username, strlen(username));
    if (!why && email)
        why = iot_email_problem(email, strlen(email));
    if (!why && password)
        why = iot_password_problem(password, strlen(password));
    if (why)
        iot_reply_error(r, 400, "Validation error", "%s", why);
    return why == NULL;
}

int iot_field_bool(struct iot_req *r, json_t *obj, const char *key, bool *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return IOT_FIELD_ABSENT;
    if (!json_is_boolean(v)) {
        iot_reply_error(r, 400, "Validation error", "'%s' must be true or false", key);
        return IOT_EINVAL;
    }
    *out = json_is_true(v);
    return IOT_FIELD_SET;
}

bool iot_json_id(const json_t *v, int64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *out = json_integer_value(v);
        return true;
    }
    /* JSON has one number type: 7.0 is the integer 7 (as JSON Schema says);
     * up to 2^53, where every integer is exactly a double. */
    double d = json_is_real(v) ? json_real_value(v) : 0;
    if (d >= 1 && d <= 9007199254740992.0 && d == (double)(int64_t)d) {
        *out = (int64_t)d;
        return true;
    }
    return false;
}

int iot_field_id(struct iot_req *r, json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return IOT_FIELD_ABSENT;
    if (!iot_json_id(v, out)) {
        iot_reply_error(r, 400, "Validation error", "'%s' must be a positive integer", key);
        return IOT_EINVAL;
    }
    return IOT_FIELD_SET;
}

bool iot_parse_id(const char *s, int64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v <= 0)
        return false;
    *out = v;
    return true;
}

bool iot_device_status_valid(const char *status)
{
    return strcmp(status, "active") == 0 || strcmp(status, "inactive") == 0 ||
           strcmp(status, "maintenance") == 0;
}
