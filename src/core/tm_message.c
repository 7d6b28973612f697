#include "core/tm_message.h"

#include <math.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/secrets.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/json_out.h"

#define TS_MIN INT64_C(946684800000) /* 2000-01-01T00:00:00Z */
#define TS_MAX_AHEAD INT64_C(86400000)

/* seq: a random prefix per process and a counter, so two messages of a
 * device with the same timestamp never share an identity, even across
 * restarts or instances. */
static atomic_int_fast64_t seq_counter;
static atomic_int_fast64_t seq_prefix;

static int64_t next_seq(void)
{
    int64_t prefix = atomic_load(&seq_prefix);
    if (prefix == 0) {
        char hex[9];
        iot_random_hex(hex, 7); /* 28 random bits */
        int64_t fresh = (strtoll(hex, NULL, 16) | 1) << 32;
        atomic_compare_exchange_strong(&seq_prefix, &prefix, fresh);
        prefix = atomic_load(&seq_prefix);
    }
    return prefix | (atomic_fetch_add(&seq_counter, 1) & 0xffffffff);
}

json_t *iot_tm_value_json(const struct iot_tm_value *v)
{
    switch (v->type) {
    case IOT_TM_BOOL:
        return json_boolean(v->boolean);
    case IOT_TM_STRING:
        return json_stringn(v->str, v->str_len);
    case IOT_TM_NUMBER:
        return v->is_int ? json_integer((json_int_t)v->i) : json_real(v->num);
    }
    return json_null();
}

static int read_value(json_t *jv, struct iot_tm_value *v)
{
    if (json_is_integer(jv)) {
        *v = (struct iot_tm_value){.type = IOT_TM_NUMBER, .num = (double)json_integer_value(jv),
                                   .is_int = true, .i = json_integer_value(jv)};
    } else if (json_is_real(jv)) {
        double d = json_real_value(jv);
        if (!isfinite(d))
            return IOT_EINVAL;
        *v = (struct iot_tm_value){.type = IOT_TM_NUMBER, .num = d};
    } else if (json_is_boolean(jv)) {
        *v = (struct iot_tm_value){.type = IOT_TM_BOOL, .boolean = json_is_true(jv)};
    } else if (json_is_string(jv) && json_string_length(jv) <= IOT_TM_STRING_MAX) {
        *v = (struct iot_tm_value){.type = IOT_TM_STRING, .str = json_string_value(jv),
                                   .str_len = json_string_length(jv)};
    } else {
        return IOT_EINVAL;
    }
    return IOT_OK;
}

static int fail(char *err, size_t size, const char *prefix, const char *fmt, const char *arg)
{
    char detail[160];
    snprintf(detail, sizeof detail, fmt, arg);
    snprintf(err, size, "%s%s", prefix, detail);
    return IOT_EINVAL;
}

static int read_points(json_t *data, struct iot_tm_message *m, const char *prefix, char *err,
                       size_t size)
{
    if (!json_is_object(data))
        return fail(err, size, prefix, "%s", "'data' must be an object of measurements");
    size_t n = json_object_size(data);
    if (n == 0)
        return fail(err, size, prefix, "%s", "'data' must hold at least one measurement");
    if (n > IOT_TM_POINTS_MAX)
        return fail(err, size, prefix, "%s", "'data' holds more than 100 measurements");
    struct iot_tm_point *points = calloc(n, sizeof *points);
    if (!points)
        return IOT_ENOMEM;
    m->points = points;
    m->n_points = n;
    const char *name;
    json_t *jv;
    size_t i = 0;
    json_object_foreach(data, name, jv) {
        if (!iot_tm_name_valid(name))
            return fail(err, size, prefix,
                        "measurement name '%.64s' must be 1-64 characters of A-Z a-z 0-9 _ . -", name);
        points[i].name = name;
        if (read_value(jv, &points[i].value))
            return fail(err, size, prefix,
                        "measurement '%s' must be a number, a boolean or a string of at most 1024 bytes",
                        name);
        i++;
    }
    return IOT_OK;
}

static int read_metadata(json_t *meta, const char *prefix, char *err, size_t size)
{
    if (!json_is_object(meta))
        return fail(err, size, prefix, "%s", "'metadata' must be an object of strings");
    if (json_object_size(meta) > IOT_TM_META_MAX_KEYS)
        return fail(err, size, prefix, "%s", "'metadata' holds more than 32 entries");
    const char *key;
    json_t *v;
    json_object_foreach(meta, key, v) {
        if (strlen(key) > IOT_TM_NAME_MAX || !json_is_string(v) ||
            json_string_length(v) > IOT_TM_META_VALUE_MAX)
            return fail(err, size, prefix,
                        "metadata '%.64s' must be a string of at most 256 bytes (key at most 64)", key);
    }
    return IOT_OK;
}

static int read_timestamp(json_t *ts, int64_t now_ms, int64_t *out, const char *prefix, char *err,
                          size_t size)
{
    if (!ts || json_is_null(ts)) {
        *out = now_ms;
        return IOT_OK;
    }
    if (!json_is_string(ts) || iot_parse_iso8601(json_string_value(ts), out))
        return fail(err, size, prefix, "%s",
                    "'timestamp' must be an ISO-8601 date-time such as 2026-11-27T11:00:14.123Z");
    if (*out < TS_MIN || *out > now_ms + TS_MAX_AHEAD)
        return fail(err, size, prefix, "%s",
                    "'timestamp' must lie between 2000-01-01 and one day from now");
    return IOT_OK;
}

/* Serialises a JSON object compactly into a fresh heap buffer, reals (if
 * it may hold any: the rewrite costs a second buffer) in their shortest
 * round-trip form. */
static int dump(json_t *obj, bool reals, const char **out, size_t *len, size_t max)
{
    char *text = reals ? iot_json_dumps(obj) : json_dumps(obj, JSON_COMPACT);
    if (!text)
        return IOT_ENOMEM;
    *len = strlen(text);
    *out = text;
    return *len > max ? IOT_EINVAL : IOT_OK;
}

/* The measurements (validated: names need no escaping, values are scalars)
 * as compact JSON, the text iot_json_dumps(data) gives (integers exact,
 * reals shortest round-trip, -0.0 kept), written here because this runs for
 * every message ingested. A string value needs
 * escaping: then json_dumps writes it all. */
static int dump_data(json_t *data, const struct iot_tm_message *m, const char **out, size_t *len)
{
    bool strings = false, reals = false;
    for (size_t i = 0; i < m->n_points; i++) {
        const struct iot_tm_value *v = &m->points[i].value;
        strings |= v->type == IOT_TM_STRING;
        reals |= v->type == IOT_TM_NUMBER && !v->is_int;
    }
    if (strings)
        return dump(data, reals, out, len, IOT_TM_DATA_JSON_MAX);
    size_t cap = m->n_points * (IOT_TM_NAME_MAX + 48) + 2, n = 0;
    char *text = malloc(cap);
    if (!text)
        return IOT_ENOMEM;
    text[n++] = '{';
    const char *name;
    json_t *jv;
    json_object_foreach(data, name, jv) {
        int w;
        if (json_is_integer(jv))
            w = snprintf(text + n, cap - n, "%s\"%s\":%" JSON_INTEGER_FORMAT, n > 1 ? "," : "",
                         name, json_integer_value(jv));
        else if (json_is_boolean(jv))
            w = snprintf(text + n, cap - n, "%s\"%s\":%s", n > 1 ? "," : "", name,
                         json_is_true(jv) ? "true" : "false");
        else if ((w = snprintf(text + n, cap - n, "%s\"%s\":", n > 1 ? "," : "", name)) > 0) {
            int r = cap - n - (size_t)w >= IOT_JSON_REAL_MAX
                        ? iot_json_real_text(json_real_value(jv), text + n + w)
                        : -1;
            w = r < 0 ? -1 : w + r;
        }
        if (w < 0 || (size_t)w >= cap - n) {
            free(text);
            return IOT_EINTERNAL;
        }
        n += (size_t)w;
    }
    text[n++] = '}';
    text[n] = '\0';
    *out = text;
    *len = n;
    return n > IOT_TM_DATA_JSON_MAX ? IOT_EINVAL : IOT_OK;
}

static int parse_message(json_t *obj, int64_t now_ms, struct iot_tm_message *m, const char *prefix,
                         char *err, size_t size)
{
    if (!json_is_object(obj))
        return fail(err, size, prefix, "%s", "a message must be a JSON object");
    json_t *data = json_object_get(obj, "data");
    if (!data || json_is_null(data))
        return fail(err, size, prefix, "%s", "'data' is required");
    int rc = read_points(data, m, prefix, err, size);
    if (rc)
        return rc;
    json_t *meta = json_object_get(obj, "metadata");
    if (meta && !json_is_null(meta) && (rc = read_metadata(meta, prefix, err, size)))
        return rc;
    if ((rc = read_timestamp(json_object_get(obj, "timestamp"), now_ms, &m->ts, prefix, err, size)))
        return rc;
    if ((rc = dump_data(data, m, &m->data_json, &m->data_len)))
        return rc == IOT_EINVAL ? fail(err, size, prefix, "%s", "'data' is too large") : rc;
    if (meta && json_is_object(meta) && json_object_size(meta) > 0 &&
        (rc = dump(meta, false, &m->meta_json, &m->meta_len, IOT_TM_DATA_JSON_MAX)))
        return rc;
    m->seq = next_seq();
    m->fresh = true; /* a new seq: never written before */
    return IOT_OK;
}

/* Parses n message objects (got from `items` by index) into out. */
static int parse_messages(json_t *items, size_t n, bool batch, int64_t device_id, int64_t user_id,
                          int64_t now_ms, struct iot_tm_parsed *out, char *err, size_t size)
{
    out->msgs = calloc(n ? n : 1, sizeof *out->msgs);
    if (!out->msgs)
        return IOT_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct iot_tm_message *m = &out->msgs[i];
        m->device_id = device_id;
        m->user_id = user_id;
        out->n = i + 1; /* so that free sees what this one allocated */
        char prefix[48] = "";
        if (batch)
            snprintf(prefix, sizeof prefix, "messages[%zu]: ", i);
        int rc = parse_message(batch ? json_array_get(items, i) : items, now_ms, m, prefix, err, size);
        if (rc)
            return rc;
    }
    return IOT_OK;
}

int iot_tm_parse_one(json_t *body, int64_t device_id, int64_t user_id, int64_t now_ms,
                     struct iot_tm_parsed *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    out->root = json_incref(body);
    return parse_messages(body, 1, false, device_id, user_id, now_ms, out, err, err_size);
}

int iot_tm_parse_batch(json_t *body, int64_t device_id, int64_t user_id, int64_t now_ms,
                       struct iot_tm_parsed *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    out->root = json_incref(body);
    json_t *array = json_is_object(body) ? json_object_get(body, "messages") : body;
    if (!json_is_array(array))
        return fail(err, err_size, "", "%s",
                    "a batch is an array of messages, or {\"messages\": [...]}");
    size_t n = json_array_size(array);
    if (n == 0 || n > IOT_TM_BATCH_MAX)
        return fail(err, err_size, "", "%s", "a batch holds 1 to 1000 messages");
    return parse_messages(array, n, true, device_id, user_id, now_ms, out, err, err_size);
}

int iot_tm_points_from_stored(const char *data, size_t len, struct iot_tm_message *m,
                              json_t **root, char *err, size_t err_size)
{
    *root = NULL;
    m->points = NULL;
    m->n_points = 0;
    if (len > IOT_TM_DATA_JSON_MAX)
        return fail(err, err_size, "", "%s", "'data' is too large");
    json_error_t jerr;
    json_t *obj = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj) {
        snprintf(err, err_size, "'data' is not JSON: %s", jerr.text);
        return IOT_EINVAL;
    }
    int rc = read_points(obj, m, "", err, err_size);
    if (rc) {
        free((void *)m->points);
        m->points = NULL;
        m->n_points = 0;
        json_decref(obj);
        return rc;
    }
    *root = obj;
    return IOT_OK;
}

void iot_tm_parsed_free(struct iot_tm_parsed *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free((void *)p->msgs[i].points);
        free((void *)p->msgs[i].data_json);
        free((void *)p->msgs[i].meta_json);
    }
    free(p->msgs);
    json_decref(p->root);
    memset(p, 0, sizeof *p);
}
