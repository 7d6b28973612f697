/* tmcass_json.c — typed values out of a stored message's data JSON, for the
 * reads and repairs that work from raw rows (samples, sample_edge, the
 * latest value and catalog repairs of delete_range).
 *
 * A value reads back as the SQLite store's JSON functions type it: a JSON
 * integer is an exact integer, a real stays a real (2.0 is not 2, -0.0
 * keeps its sign), true/false are booleans, a string is a string; null,
 * objects and arrays are no measurement value. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "store/cassandra/tmcass_int.h"
#include "util/err.h"

/* Copies a string value into the scratch buffer (kept for reuse). */
static int scratch_copy(struct tmc_json_scratch *s, const char *p, size_t len, const char **out)
{
    if (len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < len + 1)
            cap *= 2;
        char *grown = realloc(s->buf, cap);
        if (!grown)
            return IOT_ENOMEM;
        s->buf = grown;
        s->cap = cap;
    }
    if (len)
        memcpy(s->buf, p, len);
    s->buf[len] = '\0';
    *out = s->buf;
    return IOT_OK;
}

int tmc_json_value(const json_t *j, struct iot_tm_value *v, struct tmc_json_scratch *scratch)
{
    memset(v, 0, sizeof *v);
    switch (json_typeof(j)) {
    case JSON_INTEGER:
        v->type = IOT_TM_NUMBER;
        v->is_int = true;
        v->i = (int64_t)json_integer_value(j);
        v->num = (double)v->i;
        return IOT_OK;
    case JSON_REAL:
        v->type = IOT_TM_NUMBER;
        v->num = json_real_value(j);
        return IOT_OK;
    case JSON_TRUE:
    case JSON_FALSE:
        v->type = IOT_TM_BOOL;
        v->boolean = json_is_true(j);
        return IOT_OK;
    case JSON_STRING:
        v->type = IOT_TM_STRING;
        v->str_len = json_string_length(j);
        if (!scratch)
            return IOT_EINVAL;
        return scratch_copy(scratch, json_string_value(j), v->str_len, &v->str);
    default:
        return IOT_ENOTFOUND;
    }
}

json_t *tmc_json_parse(const char *data, size_t len)
{
    /* JSON_ALLOW_NUL: a string value may hold \u0000 (stored as given). */
    json_t *root = data && len ? json_loadb(data, len, JSON_ALLOW_NUL, NULL) : NULL;
    if (root && !json_is_object(root)) {
        json_decref(root);
        root = NULL;
    }
    return root;
}

int tmc_value_of(const char *data, size_t len, const char *name, struct iot_tm_value *v,
                 struct tmc_json_scratch *scratch)
{
    json_t *root = tmc_json_parse(data, len);
    if (!root)
        return IOT_ENOTFOUND; /* not an object: holds no measurement */
    const json_t *j = json_object_get(root, name);
    int rc = j ? tmc_json_value(j, v, scratch) : IOT_ENOTFOUND;
    json_decref(root);
    return rc;
}

void tmc_json_scratch_free(struct tmc_json_scratch *s)
{
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
}
