/* docs_mongo_bson.c — documents and filters to and from BSON, in the layout
 * docs_mongo_int.h describes. Only operators FerretDB 1.24 implements are
 * used: equality (on array fields too: `tags: t` matches an element),
 * $gte/$lte/$lt, $or. */
#include "store/mongo/docs_mongo_int.h"

#include <string.h>

#include "util/err.h"

static void append_key(bson_t *b, const char *name, const char *value)
{
    if (value)
        BSON_APPEND_UTF8(b, name, value);
    else
        BSON_APPEND_NULL(b, name);
}

void dmongo_append_fields(bson_t *b, const struct iot_doc *doc, bson_t *unset)
{
    BSON_APPEND_INT64(b, "user_id", doc->user_id);
    BSON_APPEND_INT64(b, "device_id", doc->device_id);
    BSON_APPEND_INT64(b, "ts_ms", doc->ts_ms);
    append_key(b, "k1", doc->k1);
    append_key(b, "k2", doc->k2);
    bson_t tags;
    BSON_APPEND_ARRAY_BEGIN(b, "tags", &tags);
    for (size_t i = 0; i < doc->n_tags; i++) {
        char key[16];
        const char *k;
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        bson_append_utf8(&tags, k, -1, doc->tags[i], -1);
    }
    bson_append_array_end(b, &tags);
    if (doc->has_location) {
        BSON_APPEND_DOUBLE(b, "lat", doc->lat);
        BSON_APPEND_DOUBLE(b, "lon", doc->lon);
    } else if (unset) {
        BSON_APPEND_UTF8(unset, "lat", "");
        BSON_APPEND_UTF8(unset, "lon", "");
    }
    bson_append_utf8(b, "body", -1, doc->body, (int)doc->body_len);
}

static void append_range(bson_t *b, const char *field, const char *lo_op, double lo,
                         const char *hi_op, double hi)
{
    bson_t r;
    bson_append_document_begin(b, field, -1, &r);
    bson_append_double(&r, lo_op, -1, lo);
    bson_append_double(&r, hi_op, -1, hi);
    bson_append_document_end(b, &r);
}

static void append_ts_range(bson_t *b, const struct iot_docs_filter *f)
{
    if (!f->has_ts_min && !f->has_ts_max)
        return;
    bson_t r;
    BSON_APPEND_DOCUMENT_BEGIN(b, "ts_ms", &r);
    if (f->has_ts_min)
        BSON_APPEND_INT64(&r, "$gte", f->ts_min);
    if (f->has_ts_max)
        BSON_APPEND_INT64(&r, "$lte", f->ts_max);
    bson_append_document_end(b, &r);
}

/* Strictly after (after_ts, after_id) in the find's order:
 * {$or: [{ts_ms: {$lt: t}}, {ts_ms: t, _id: {$lt: id}}]}, $gt ascending. */
static void append_cursor(bson_t *b, const struct iot_docs_filter *f)
{
    const char *op = f->ascending ? "$gt" : "$lt";
    bson_t or, a, b2, cmp;
    BSON_APPEND_ARRAY_BEGIN(b, "$or", &or);
    BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &a);
    BSON_APPEND_DOCUMENT_BEGIN(&a, "ts_ms", &cmp);
    BSON_APPEND_INT64(&cmp, op, f->after_ts);
    bson_append_document_end(&a, &cmp);
    bson_append_document_end(&or, &a);
    BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &b2);
    BSON_APPEND_INT64(&b2, "ts_ms", f->after_ts);
    BSON_APPEND_DOCUMENT_BEGIN(&b2, "_id", &cmp);
    BSON_APPEND_UTF8(&cmp, op, f->after_id);
    bson_append_document_end(&b2, &cmp);
    bson_append_document_end(&or, &b2);
    bson_append_array_end(b, &or);
}

void dmongo_append_filter(bson_t *b, const struct iot_docs_filter *f, bool cursor)
{
    if (f->user_id)
        BSON_APPEND_INT64(b, "user_id", f->user_id);
    if (f->device_id)
        BSON_APPEND_INT64(b, "device_id", f->device_id);
    if (f->k1)
        BSON_APPEND_UTF8(b, "k1", f->k1);
    if (f->k2)
        BSON_APPEND_UTF8(b, "k2", f->k2);
    append_ts_range(b, f);
    if (f->tag)
        BSON_APPEND_UTF8(b, "tags", f->tag);
    if (f->has_box) {
        append_range(b, "lat", "$gte", f->lat_min, "$lte", f->lat_max);
        append_range(b, "lon", "$gte", f->lon_min, "$lte", f->lon_max);
    }
    if (cursor && f->has_after)
        append_cursor(b, f);
}

/* ---- reading ---- */

static bool read_int64(const bson_iter_t *it, int64_t *out)
{
    if (!BSON_ITER_HOLDS_INT64(it) && !BSON_ITER_HOLDS_INT32(it))
        return false;
    *out = bson_iter_as_int64(it);
    return true;
}

static bool read_key(const bson_iter_t *it, const char **out)
{
    if (BSON_ITER_HOLDS_NULL(it)) {
        *out = NULL;
        return true;
    }
    if (!BSON_ITER_HOLDS_UTF8(it))
        return false;
    *out = bson_iter_utf8(it, NULL);
    return true;
}

static bool read_tags(const bson_iter_t *it, struct iot_doc *doc, const char **tags)
{
    bson_iter_t child;
    if (!BSON_ITER_HOLDS_ARRAY(it) || !bson_iter_recurse(it, &child))
        return false;
    doc->n_tags = 0;
    while (bson_iter_next(&child)) {
        if (doc->n_tags == IOT_DOCS_TAGS_MAX || !BSON_ITER_HOLDS_UTF8(&child))
            return false;
        tags[doc->n_tags++] = bson_iter_utf8(&child, NULL);
    }
    doc->tags = doc->n_tags ? tags : NULL;
    return true;
}

static bool read_double(const bson_iter_t *it, double *out)
{
    if (!BSON_ITER_HOLDS_NUMBER(it))
        return false;
    *out = bson_iter_as_double(it);
    return true;
}

/* One field into doc; false if it has the wrong type. */
static bool read_field(const bson_iter_t *it, struct iot_doc *doc, const char **tags)
{
    const char *name = bson_iter_key(it);
    if (strcmp(name, "_id") == 0) {
        doc->id = BSON_ITER_HOLDS_UTF8(it) ? bson_iter_utf8(it, NULL) : NULL;
        return doc->id != NULL;
    }
    if (strcmp(name, "user_id") == 0)
        return read_int64(it, &doc->user_id);
    if (strcmp(name, "device_id") == 0)
        return read_int64(it, &doc->device_id);
    if (strcmp(name, "ts_ms") == 0)
        return read_int64(it, &doc->ts_ms);
    if (strcmp(name, "rev") == 0)
        return read_int64(it, &doc->rev);
    if (strcmp(name, "k1") == 0)
        return read_key(it, &doc->k1);
    if (strcmp(name, "k2") == 0)
        return read_key(it, &doc->k2);
    if (strcmp(name, "tags") == 0)
        return read_tags(it, doc, tags);
    if (strcmp(name, "lat") == 0) {
        doc->has_location = true;
        return read_double(it, &doc->lat);
    }
    if (strcmp(name, "lon") == 0)
        return read_double(it, &doc->lon);
    if (strcmp(name, "body") == 0) {
        uint32_t len = 0;
        doc->body = BSON_ITER_HOLDS_UTF8(it) ? bson_iter_utf8(it, &len) : NULL;
        doc->body_len = len;
        return doc->body != NULL;
    }
    return true; /* a field a later version added: not ours to judge */
}

int dmongo_read_doc(const bson_t *b, struct iot_doc *doc, const char *tags[IOT_DOCS_TAGS_MAX])
{
    memset(doc, 0, sizeof *doc);
    bson_iter_t it;
    if (!bson_iter_init(&it, b))
        return IOT_EINTERNAL;
    while (bson_iter_next(&it))
        if (!read_field(&it, doc, tags))
            return IOT_EINTERNAL;
    return doc->id && doc->body ? IOT_OK : IOT_EINTERNAL;
}
