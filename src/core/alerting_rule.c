/* alerting_rule.c — alert rules: validation, JSON form, the operators
 * (alerting_rule.h). */
#include "core/alerting_rule.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/secrets.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/json_out.h"

static const char *const op_names[] = {">", ">=", "<", "<=", "==", "!="};
static const char *const severity_names[] = {"info", "warning", "error", "critical"};
static const char *const scope_names[] = {"device", "group", "all"};

#define N_OF(a) (sizeof(a) / sizeof *(a))

static bool name_index(const char *const *names, size_t n, const char *s, int *out)
{
    for (size_t i = 0; s && i < n; i++) {
        if (strcmp(names[i], s) == 0) {
            *out = (int)i;
            return true;
        }
    }
    return false;
}

const char *iot_alert_op_name(enum iot_alert_op op) { return op_names[op]; }
const char *iot_alert_severity_name(enum iot_alert_severity s) { return severity_names[s]; }

bool iot_alert_op_parse(const char *s, enum iot_alert_op *out)
{
    int i;
    if (!name_index(op_names, N_OF(op_names), s, &i))
        return false;
    *out = (enum iot_alert_op)i;
    return true;
}

bool iot_alert_severity_parse(const char *s, enum iot_alert_severity *out)
{
    int i;
    if (!name_index(severity_names, N_OF(severity_names), s, &i))
        return false;
    *out = (enum iot_alert_severity)i;
    return true;
}

bool iot_alert_op_holds(enum iot_alert_op op, double value, double threshold)
{
    switch (op) {
    case IOT_ALERT_GT: return value > threshold;
    case IOT_ALERT_GE: return value >= threshold;
    case IOT_ALERT_LT: return value < threshold;
    case IOT_ALERT_LE: return value <= threshold;
    case IOT_ALERT_EQ: return value == threshold;
    case IOT_ALERT_NE: return value != threshold;
    }
    return false;
}

void iot_alert_rule_defaults(struct iot_alert_rule *rule)
{
    memset(rule, 0, sizeof *rule);
    rule->scope = IOT_ALERT_SCOPE_ALL;
    rule->enabled = true;
    rule->auto_resolve = true;
}

/* ---- reading a request ------------------------------------------------------ */

struct reader {
    json_t *obj;
    bool create;
    char *err;
    size_t err_size;
};

static int fail(struct reader *rd, const char *fmt, const char *key)
{
    snprintf(rd->err, rd->err_size, fmt, key);
    return IOT_EINVAL;
}

/* The field, NULL when absent. A required field that is absent (or null)
 * on create fails; null is no value of any other field either. */
static json_t *field(struct reader *rd, const char *key, bool required, int *rc)
{
    json_t *v = json_object_get(rd->obj, key);
    if (v && json_is_null(v) && !(required && rd->create)) {
        *rc = fail(rd, "'%s' must not be null", key);
        return NULL;
    }
    if (v && json_is_null(v))
        v = NULL;
    *rc = !v && required && rd->create ? fail(rd, "'%s' is required", key) : IOT_OK;
    return v;
}

static int read_name(struct reader *rd, struct iot_alert_rule *rule)
{
    int rc;
    json_t *v = field(rd, "name", true, &rc);
    if (rc || !v)
        return rc;
    if (!json_is_string(v))
        return fail(rd, "'%s' must be a string", "name");
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    size_t chars = iot_alert_text_chars(s, len);
    if (chars == 0 || chars > IOT_ALERT_RULE_NAME_CHARS)
        return fail(rd, "'%s' must be 1 to 64 characters long", "name");
    if (strlen(s) != len)
        return fail(rd, "'%s' must not contain NUL characters", "name");
    memcpy(rule->name, s, len + 1);
    return IOT_OK;
}

static int read_measurement(struct reader *rd, struct iot_alert_rule *rule)
{
    int rc;
    json_t *v = field(rd, "measurement", true, &rc);
    if (rc || !v)
        return rc;
    if (!json_is_string(v) || !iot_tm_name_valid(json_string_value(v)))
        return fail(rd, "'%s' must be a measurement name: 1 to 64 characters of A-Z a-z 0-9 _ . -",
                    "measurement");
    snprintf(rule->measurement, sizeof rule->measurement, "%s", json_string_value(v));
    return IOT_OK;
}

static int read_operator(struct reader *rd, struct iot_alert_rule *rule)
{
    int rc;
    json_t *v = field(rd, "operator", true, &rc);
    if (rc || !v)
        return rc;
    if (!json_is_string(v) || !iot_alert_op_parse(json_string_value(v), &rule->op))
        return fail(rd, "'%s' must be one of >, >=, <, <=, ==, !=", "operator");
    return IOT_OK;
}

static int read_severity(struct reader *rd, struct iot_alert_rule *rule)
{
    int rc;
    json_t *v = field(rd, "severity", true, &rc);
    if (rc || !v)
        return rc;
    if (!json_is_string(v) || !iot_alert_severity_parse(json_string_value(v), &rule->severity))
        return fail(rd, "'%s' must be one of info, warning, error, critical", "severity");
    return IOT_OK;
}

static int read_threshold(struct reader *rd, struct iot_alert_rule *rule)
{
    int rc;
    json_t *v = field(rd, "threshold", true, &rc);
    if (rc || !v)
        return rc;
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return fail(rd, "'%s' must be a finite number", "threshold");
    rule->threshold = json_number_value(v);
    return IOT_OK;
}

/* A number of seconds in [0, max] into milliseconds. */
static int read_seconds(struct reader *rd, const char *key, double max, int64_t *out_ms)
{
    int rc;
    json_t *v = field(rd, key, false, &rc);
    if (rc || !v)
        return rc;
    double s = json_is_number(v) ? json_number_value(v) : -1;
    if (!(s >= 0 && s <= max)) {
        snprintf(rd->err, rd->err_size, "'%s' must be a number of seconds from 0 to %.0f", key, max);
        return IOT_EINVAL;
    }
    *out_ms = (int64_t)llround(s * 1000.0);
    return IOT_OK;
}

static int read_flag(struct reader *rd, const char *key, bool *out)
{
    int rc;
    json_t *v = field(rd, key, false, &rc);
    if (rc || !v)
        return rc;
    if (!json_is_boolean(v))
        return fail(rd, "'%s' must be true or false", key);
    *out = json_is_true(v);
    return IOT_OK;
}

/* A positive integer; 7.0 counts as 7 (JSON has one number type), up to
 * 2^53 where every integer is a double — the API's rule for ids. */
static bool positive_id(json_t *v, int64_t *out)
{
    double d = json_is_real(v) ? json_real_value(v) : 0;
    if (json_is_integer(v) && json_integer_value(v) > 0)
        *out = json_integer_value(v);
    else if (d >= 1 && d <= 9007199254740992.0 && d == (double)(int64_t)d)
        *out = (int64_t)d;
    else
        return false;
    return true;
}

static int read_scope(struct reader *rd, struct iot_alert_rule *rule)
{
    json_t *dev = json_object_get(rd->obj, "device_id");
    json_t *grp = json_object_get(rd->obj, "group_id");
    if (!rd->create && !dev && !grp)
        return IOT_OK; /* an update that leaves the scope alone */
    bool has_dev = dev && !json_is_null(dev), has_grp = grp && !json_is_null(grp);
    if (has_dev && has_grp)
        return fail(rd, "give %s: device_id, group_id, or neither (all your devices)",
                    "one scope at most");
    rule->device_id = rule->group_id = 0;
    rule->scope = IOT_ALERT_SCOPE_ALL;
    if (has_dev && !positive_id(dev, &rule->device_id))
        return fail(rd, "'%s' must be a positive integer", "device_id");
    if (has_grp && !positive_id(grp, &rule->group_id))
        return fail(rd, "'%s' must be a positive integer", "group_id");
    if (has_dev)
        rule->scope = IOT_ALERT_SCOPE_DEVICE;
    if (has_grp)
        rule->scope = IOT_ALERT_SCOPE_GROUP;
    return IOT_OK;
}

int iot_alert_rule_read(json_t *obj, bool create, struct iot_alert_rule *rule, char *err,
                        size_t err_size)
{
    struct reader rd = {obj, create, err, err_size};
    int rc = read_name(&rd, rule);
    if (!rc)
        rc = read_scope(&rd, rule);
    if (!rc)
        rc = read_measurement(&rd, rule);
    if (!rc)
        rc = read_operator(&rd, rule);
    if (!rc)
        rc = read_threshold(&rd, rule);
    if (!rc)
        rc = read_severity(&rd, rule);
    if (!rc)
        rc = read_seconds(&rd, "duration_s", IOT_ALERT_DURATION_MAX_S, &rule->duration_ms);
    if (!rc)
        rc = read_seconds(&rd, "cooldown_s", IOT_ALERT_COOLDOWN_MAX_S, &rule->cooldown_ms);
    if (!rc)
        rc = read_flag(&rd, "auto_resolve", &rule->auto_resolve);
    if (!rc)
        rc = read_flag(&rd, "enabled", &rule->enabled);
    return rc;
}

size_t iot_alert_text_chars(const char *s, size_t len)
{
    size_t chars = 0;
    for (size_t i = 0; i < len; i++)
        chars += ((unsigned char)s[i] & 0xC0) != 0x80; /* not a continuation byte */
    return chars;
}

void iot_alert_rule_key(const char *name, char out[IOT_DOCS_KEY_MAX + 1])
{
    struct iot_doc probe = {.id = "probe", .k1 = name, .body = "{}", .body_len = 2};
    if (iot_docs_check_doc(&probe) == IOT_OK) {
        snprintf(out, IOT_DOCS_KEY_MAX + 1, "%s", name);
        return;
    }
    char hex[IOT_SHA256_HEX_LEN + 1];
    iot_sha256_hex(name, strlen(name), hex, sizeof hex);
    snprintf(out, IOT_DOCS_KEY_MAX + 1, "#%.40s", hex);
}

/* ---- the stored form --------------------------------------------------------- */

static json_t *id_or_null(int64_t id) { return id ? json_integer(id) : json_null(); }

json_t *iot_alert_rule_json(const struct iot_alert_rule *rule)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:f, s:s, s:f, s:f, s:b, s:b, s:o, s:o}",
                     "id", rule->id, "name", rule->name, "scope", scope_names[rule->scope],
                     "device_id", id_or_null(rule->device_id), "group_id",
                     id_or_null(rule->group_id), "measurement", rule->measurement, "operator",
                     op_names[rule->op], "threshold", rule->threshold, "severity",
                     severity_names[rule->severity], "duration_s",
                     (double)rule->duration_ms / 1000.0, "cooldown_s",
                     (double)rule->cooldown_ms / 1000.0, "auto_resolve", rule->auto_resolve,
                     "enabled", rule->enabled, "created_at", iot_json_time(rule->created_at),
                     "updated_at", iot_json_time(rule->updated_at));
}

static int64_t stored_time(json_t *body, const char *key)
{
    int64_t ms = 0;
    const char *s = json_string_value(json_object_get(body, key));
    return s && iot_parse_iso8601(s, &ms) == 0 ? ms : 0;
}

int iot_alert_rule_from_json(json_t *body, struct iot_alert_rule *rule)
{
    char err[128];
    iot_alert_rule_defaults(rule);
    const char *id = json_string_value(json_object_get(body, "id"));
    if (!json_is_object(body) || !id || strlen(id) != IOT_ALERT_ID_LEN ||
        iot_alert_rule_read(body, true, rule, err, sizeof err) != IOT_OK)
        return IOT_EINVAL;
    memcpy(rule->id, id, IOT_ALERT_ID_LEN + 1);
    rule->created_at = stored_time(body, "created_at");
    rule->updated_at = stored_time(body, "updated_at");
    return IOT_OK;
}
