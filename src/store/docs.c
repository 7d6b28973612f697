/* docs.c — the table of compiled-in documents backends, the open/close
 * entry points, the collection names and the argument checks every backend
 * runs (docs.h). */
#include "store/docs.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "store/backend.h"
#include "store/mongo/docs_mongo.h"
#include "store/sqlite/docs_sqlite.h"
#include "util/err.h"
#include "util/utf8.h"

/* A URL with no known scheme is a path for the embedded default. */
static const struct iot_backend_scheme backends[] = {
    {.scheme = "sqlite", .ops = &iot_docs_sqlite},
    {.scheme = "mongodb", .ops = &iot_docs_mongo},
};

const struct iot_docs_ops *iot_docs_backend(const char *url)
{
    return iot_backend_pick(url, backends, sizeof backends / sizeof backends[0], &iot_docs_sqlite,
                            true);
}

const char *iot_docs_backend_names(void) { return "sqlite, mongodb"; }

int iot_docs_open(const char *url, struct iot_docs *out)
{
    if (!out)
        return IOT_EINVAL;
    out->ops = NULL;
    out->self = NULL;
    const struct iot_docs_ops *ops = iot_docs_backend(url);
    if (!ops)
        return IOT_EINVAL;
    void *self = NULL;
    int rc = ops->open(url ? url : "", &self);
    if (rc)
        return rc;
    out->ops = ops;
    out->self = self;
    return IOT_OK;
}

void iot_docs_close(struct iot_docs *d)
{
    if (!d || !d->ops)
        return;
    d->ops->close(d->self);
    d->ops = NULL;
    d->self = NULL;
}

static const char *const coll_names[IOT_DOCS_N_COLLS] = {
    [IOT_DOCS_CONFIGS] = "configs",   [IOT_DOCS_EVENTS] = "events",
    [IOT_DOCS_RULES] = "alert_rules", [IOT_DOCS_ALERTS] = "alerts",
    [IOT_DOCS_REPORTS] = "reports",   [IOT_DOCS_PREFS] = "preferences",
    [IOT_DOCS_METADATA] = "metadata",
};

const char *iot_docs_coll_name(enum iot_docs_coll coll)
{
    return iot_docs_check_coll(coll) == IOT_OK ? coll_names[coll] : "?";
}

int iot_docs_check_coll(enum iot_docs_coll coll)
{
    return (int)coll >= 0 && coll < IOT_DOCS_N_COLLS ? IOT_OK : IOT_EINVAL;
}

int iot_docs_check_id(const char *id)
{
    if (!id)
        return IOT_EINVAL;
    size_t n = strlen(id);
    if (n == 0 || n > IOT_DOCS_ID_MAX || strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                    "0123456789_.:-") != n)
        return IOT_EINVAL;
    return IOT_OK;
}

/* k1, k2, a tag: 1..IOT_DOCS_KEY_MAX bytes of valid UTF-8 (NUL ends it)
 * with no control or invisible code point: keys are shown to people and
 * written to logs. */
static int check_key(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > IOT_DOCS_KEY_MAX)
        return IOT_EINVAL;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        if (!iot_utf8_next(key, n, &i, &cp) || iot_codepoint_invisible(cp))
            return IOT_EINVAL;
    }
    return IOT_OK;
}

static int check_tags(const char *const *tags, size_t n)
{
    if (n > IOT_DOCS_TAGS_MAX || (n && !tags))
        return IOT_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!tags[i] || check_key(tags[i]))
            return IOT_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(tags[i], tags[j]) == 0)
                return IOT_EINVAL;
    }
    return IOT_OK;
}

static bool lat_ok(double lat) { return isfinite(lat) && lat >= -90.0 && lat <= 90.0; }
static bool lon_ok(double lon) { return isfinite(lon) && lon >= -180.0 && lon <= 180.0; }

/* A JSON object of at most IOT_DOCS_BODY_MAX bytes. Parsed in full: a
 * store must never hold a body its readers cannot use. Integers beyond
 * int64 are valid JSON and kept as sent (the body is stored as text), so
 * they are parsed as reals here only to be checked. */
static int check_body(const char *body, size_t len)
{
    if (!body || len == 0 || len > IOT_DOCS_BODY_MAX)
        return IOT_EINVAL;
    json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, NULL);
    bool ok = v && json_is_object(v);
    json_decref(v);
    return ok ? IOT_OK : IOT_EINVAL;
}

int iot_docs_check_doc(const struct iot_doc *doc)
{
    if (!doc || iot_docs_check_id(doc->id) || doc->user_id < 0 || doc->device_id < 0)
        return IOT_EINVAL;
    if ((doc->k1 && check_key(doc->k1)) || (doc->k2 && check_key(doc->k2)))
        return IOT_EINVAL;
    if (check_tags(doc->tags, doc->n_tags))
        return IOT_EINVAL;
    if (doc->has_location && !(lat_ok(doc->lat) && lon_ok(doc->lon)))
        return IOT_EINVAL;
    return check_body(doc->body, doc->body_len);
}

int iot_docs_check_put(enum iot_docs_coll coll, const struct iot_doc *doc)
{
    if (iot_docs_check_coll(coll) || iot_docs_check_doc(doc))
        return IOT_EINVAL;
    return coll == IOT_DOCS_RULES && !doc->k1 ? IOT_EINVAL : IOT_OK;
}

int iot_docs_check_batch(enum iot_docs_coll coll, const struct iot_doc *docs, size_t n)
{
    if (iot_docs_check_coll(coll) || (n && !docs))
        return IOT_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (iot_docs_check_put(coll, &docs[i]))
            return IOT_EINVAL;
    return IOT_OK;
}

int iot_docs_check_filter(const struct iot_docs_filter *f)
{
    if (!f || f->user_id < 0 || f->device_id < 0)
        return IOT_EINVAL;
    if ((f->k1 && check_key(f->k1)) || (f->k2 && check_key(f->k2)) || (f->tag && check_key(f->tag)))
        return IOT_EINVAL;
    if (f->has_ts_min && f->has_ts_max && f->ts_min > f->ts_max)
        return IOT_EINVAL;
    if (f->has_box && !(lat_ok(f->lat_min) && lat_ok(f->lat_max) && lon_ok(f->lon_min) &&
                        lon_ok(f->lon_max) && f->lat_min <= f->lat_max && f->lon_min <= f->lon_max))
        return IOT_EINVAL;
    if (f->has_after && iot_docs_check_id(f->after_id))
        return IOT_EINVAL;
    return IOT_OK;
}

bool iot_docs_filter_has_criterion(const struct iot_docs_filter *f)
{
    return f->user_id || f->device_id || f->k1 || f->k2 || f->has_ts_min || f->has_ts_max ||
           f->tag || f->has_box;
}
