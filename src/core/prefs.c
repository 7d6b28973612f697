/* prefs.c — user preferences (prefs.h): the checks of the known keys, the
 * defaults, and the one document per user. */
#include "core/prefs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/docs_util.h"
#include "util/err.h"
#include "util/json_out.h"

#define TIMEZONE_PARTS_MAX 3

static bool zone_part_valid(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-") >= n;
}

bool iot_prefs_timezone_valid(const char *tz)
{
    size_t len = strlen(tz);
    if (len == 0 || len > IOT_PREFS_TIMEZONE_MAX)
        return false;
    int parts = 0;
    for (const char *p = tz;; parts++) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (parts == TIMEZONE_PARTS_MAX || !zone_part_valid(p, n))
            return false;
        if (!slash)
            return true;
        p = slash + 1;
    }
}

static int refuse(char *why, size_t size, const char *text)
{
    snprintf(why, size, "%s", text);
    return IOT_EINVAL;
}

static int check_known(const json_t *prefs, char *why, size_t size)
{
    const json_t *units = json_object_get(prefs, "units");
    const json_t *tz = json_object_get(prefs, "timezone");
    const json_t *notifications = json_object_get(prefs, "notifications");
    const json_t *dashboard = json_object_get(prefs, "dashboard");
    if (units && !(json_is_string(units) && (strcmp(json_string_value(units), "metric") == 0 ||
                                             strcmp(json_string_value(units), "imperial") == 0)))
        return refuse(why, size, "'units' must be \"metric\" or \"imperial\"");
    if (tz && !(json_is_string(tz) && iot_prefs_timezone_valid(json_string_value(tz))))
        return refuse(why, size, "'timezone' must be a time zone name such as \"UTC\" or"
                                 " \"Europe/Paris\" (at most 64 bytes)");
    if (notifications && !json_is_object(notifications))
        return refuse(why, size, "'notifications' must be an object");
    if (dashboard && !json_is_object(dashboard))
        return refuse(why, size, "'dashboard' must be an object");
    return IOT_OK;
}

int iot_prefs_check(const json_t *prefs, char **text, size_t *len, char *why, size_t why_size)
{
    *text = NULL;
    *len = 0;
    if (!json_is_object(prefs))
        return refuse(why, why_size, "preferences must be a JSON object");
    int rc = check_known(prefs, why, why_size);
    if (rc)
        return rc;
    char *s = iot_json_dumps(prefs);
    if (!s)
        return IOT_ENOMEM;
    size_t n = strlen(s);
    if (n > IOT_PREFS_MAX) {
        free(s);
        snprintf(why, why_size, "preferences exceed %d bytes", IOT_PREFS_MAX);
        return IOT_ELIMIT;
    }
    *text = s;
    *len = n;
    return IOT_OK;
}

json_t *iot_prefs_defaults(void)
{
    return json_pack("{s:s, s:s, s:{}, s:{}}", "units", "metric", "timezone", "UTC",
                     "notifications", "dashboard");
}

static void doc_id(int64_t user_id, char *buf, size_t size)
{
    snprintf(buf, size, "u%lld", (long long)user_id);
}

int iot_prefs_load(struct iot_docs *d, int64_t user_id, json_t **prefs, int64_t *updated_ms)
{
    char id[IOT_DOCS_ID_MAX + 1];
    doc_id(user_id, id, sizeof id);
    json_t *stored = NULL;
    int64_t ts_ms = 0;
    int rc = iot_docs_get_object(d, IOT_DOCS_PREFS, id, &stored, NULL, &ts_ms);
    if (rc && rc != IOT_ENOTFOUND)
        return rc;
    json_t *out = iot_prefs_defaults();
    if (!out) {
        json_decref(stored);
        return IOT_ENOMEM;
    }
    if (stored)
        json_object_update(out, stored);
    json_decref(stored);
    *prefs = out;
    *updated_ms = ts_ms;
    return IOT_OK;
}

int iot_prefs_store(struct iot_docs *d, int64_t user_id, const char *text, size_t len,
                    int64_t now_ms)
{
    char id[IOT_DOCS_ID_MAX + 1];
    doc_id(user_id, id, sizeof id);
    struct iot_doc doc = {.id = id, .user_id = user_id, .ts_ms = now_ms, .body = text,
                          .body_len = len};
    return iot_docs_put(d, IOT_DOCS_PREFS, &doc, IOT_DOCS_ANY_REV, NULL);
}
