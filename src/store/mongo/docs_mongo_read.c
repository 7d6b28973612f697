/* docs_mongo_read.c — the MongoDB documents store's reads: get, find (a
 * filtered, keyset-paged, sorted find) and count_by (an aggregation of
 * $match and $group with $sum, all FerretDB 1.24 offers for counting).
 * Documents reach callbacks straight from the cursor's batch. */
#include "store/mongo/docs_mongo_int.h"
#include "util/err.h"

/* Streams a cursor's documents to fn until it returns non-zero. */
static int stream_cursor(mongoc_cursor_t *cursor, enum iot_docs_coll coll, iot_docs_fn fn,
                         void *ctx, bool *any)
{
    const bson_t *b;
    while (mongoc_cursor_next(cursor, &b)) {
        struct iot_doc doc;
        const char *tags[IOT_DOCS_TAGS_MAX];
        int rc = dmongo_read_doc(b, &doc, tags);
        if (rc)
            return rc;
        *any = true;
        if (fn(ctx, &doc))
            return IOT_OK;
    }
    bson_error_t err;
    return mongoc_cursor_error(cursor, &err) ? dmongo_error(&err, "find", coll) : IOT_OK;
}

static int run_find(struct dmongo *m, enum iot_docs_coll coll, const bson_t *filter,
                    const bson_t *opts, iot_docs_fn fn, void *ctx, bool *any)
{
    struct dmongo_conn c;
    dmongo_acquire(m, coll, &c);
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(c.coll, filter, opts, NULL);
    int rc = stream_cursor(cursor, coll, fn, ctx, any);
    mongoc_cursor_destroy(cursor);
    dmongo_release(m, &c);
    return rc;
}

int dmongo_get(void *self, enum iot_docs_coll coll, const char *id, iot_docs_fn fn, void *ctx)
{
    if (iot_docs_check_coll(coll) || iot_docs_check_id(id) || !fn)
        return IOT_EINVAL;
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "_id", id);
    BSON_APPEND_INT64(&opts, "limit", 1);
    bool any = false;
    int rc = run_find(self, coll, &filter, &opts, fn, ctx, &any);
    bson_destroy(&opts);
    bson_destroy(&filter);
    return rc == IOT_OK && !any ? IOT_ENOTFOUND : rc;
}

int dmongo_find(void *self, enum iot_docs_coll coll, const struct iot_docs_filter *f,
                iot_docs_fn fn, void *ctx)
{
    if (iot_docs_check_coll(coll) || iot_docs_check_filter(f) || !fn)
        return IOT_EINVAL;
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
    dmongo_append_filter(&filter, f, true);
    int dir = f->ascending ? 1 : -1;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "ts_ms", dir);
    BSON_APPEND_INT32(&sort, "_id", dir);
    bson_append_document_end(&opts, &sort);
    if (f->limit)
        BSON_APPEND_INT64(&opts, "limit", f->limit > INT64_MAX ? INT64_MAX : (int64_t)f->limit);
    bool any = false;
    int rc = run_find(self, coll, &filter, &opts, fn, ctx, &any);
    bson_destroy(&opts);
    bson_destroy(&filter);
    return rc;
}

/* ---- count_by ---- */

/* [{$match: filter}, {$group: {_id: key, n: {$sum: 1}}}], the key being
 * {k1: "$k1", k2: "$k2"}, "$k1" or null. */
static void count_pipeline(bson_t *p, const struct iot_docs_filter *f, enum iot_docs_group group)
{
    bson_t stages, match, filter, grp, g, id, sum;
    BSON_APPEND_ARRAY_BEGIN(p, "pipeline", &stages);
    BSON_APPEND_DOCUMENT_BEGIN(&stages, "0", &match);
    BSON_APPEND_DOCUMENT_BEGIN(&match, "$match", &filter);
    dmongo_append_filter(&filter, f, false);
    bson_append_document_end(&match, &filter);
    bson_append_document_end(&stages, &match);
    BSON_APPEND_DOCUMENT_BEGIN(&stages, "1", &grp);
    BSON_APPEND_DOCUMENT_BEGIN(&grp, "$group", &g);
    if (group == IOT_DOCS_GROUP_K1_K2) {
        BSON_APPEND_DOCUMENT_BEGIN(&g, "_id", &id);
        BSON_APPEND_UTF8(&id, "k1", "$k1");
        BSON_APPEND_UTF8(&id, "k2", "$k2");
        bson_append_document_end(&g, &id);
    } else if (group == IOT_DOCS_GROUP_K1) {
        BSON_APPEND_UTF8(&g, "_id", "$k1");
    } else {
        BSON_APPEND_NULL(&g, "_id");
    }
    BSON_APPEND_DOCUMENT_BEGIN(&g, "n", &sum);
    BSON_APPEND_INT32(&sum, "$sum", 1);
    bson_append_document_end(&g, &sum);
    bson_append_document_end(&grp, &g);
    bson_append_document_end(&stages, &grp);
    bson_append_array_end(p, &stages);
}

/* A group key's string, or NULL for null or a missing field. */
static const char *key_string(const bson_iter_t *it)
{
    return BSON_ITER_HOLDS_UTF8(it) ? bson_iter_utf8(it, NULL) : NULL;
}

/* One result {_id: key, n: count} to fn. */
static int report_group(const bson_t *b, enum iot_docs_group group, iot_docs_count_fn fn,
                        void *ctx, int *stop)
{
    bson_iter_t it, key;
    const char *k1 = NULL, *k2 = NULL;
    int64_t n;
    if (!bson_iter_init_find(&it, b, "n") || !BSON_ITER_HOLDS_NUMBER(&it))
        return IOT_EINTERNAL;
    n = bson_iter_as_int64(&it);
    if (!bson_iter_init_find(&it, b, "_id"))
        return IOT_EINTERNAL;
    if (group == IOT_DOCS_GROUP_K1) {
        k1 = key_string(&it);
    } else if (group == IOT_DOCS_GROUP_K1_K2 && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        if (bson_iter_recurse(&it, &key) && bson_iter_find(&key, "k1"))
            k1 = key_string(&key);
        if (bson_iter_recurse(&it, &key) && bson_iter_find(&key, "k2"))
            k2 = key_string(&key);
    }
    if (n > 0)
        *stop = fn(ctx, k1, k2, n);
    return IOT_OK;
}

int dmongo_count_by(void *self, enum iot_docs_coll coll, const struct iot_docs_filter *f,
                    enum iot_docs_group group, iot_docs_count_fn fn, void *ctx)
{
    if (iot_docs_check_coll(coll) || iot_docs_check_filter(f) || !fn ||
        (group != IOT_DOCS_GROUP_NONE && group != IOT_DOCS_GROUP_K1 &&
         group != IOT_DOCS_GROUP_K1_K2))
        return IOT_EINVAL;
    struct dmongo *m = self;
    struct dmongo_conn c;
    dmongo_acquire(m, coll, &c);
    bson_t pipeline = BSON_INITIALIZER;
    count_pipeline(&pipeline, f, group);
    mongoc_cursor_t *cursor =
        mongoc_collection_aggregate(c.coll, MONGOC_QUERY_NONE, &pipeline, NULL, NULL);
    const bson_t *b;
    int rc = IOT_OK, stop = 0;
    while (rc == IOT_OK && !stop && mongoc_cursor_next(cursor, &b))
        rc = report_group(b, group, fn, ctx, &stop);
    bson_error_t err;
    if (rc == IOT_OK && !stop && mongoc_cursor_error(cursor, &err))
        rc = dmongo_error(&err, "aggregate", coll);
    mongoc_cursor_destroy(cursor);
    bson_destroy(&pipeline);
    dmongo_release(m, &c);
    return rc;
}
