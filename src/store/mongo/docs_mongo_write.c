/* docs_mongo_write.c — the MongoDB documents store's writes: put (an
 * insert, or a replace under a claim: docs_mongo_claim.c), insert_many (an
 * unordered bulk insert that skips duplicates), remove and delete_where.
 *
 * What FerretDB 1.24 changes here (see docs_mongo_int.h for the layout):
 * its updates are not atomic (hence the claims); a unique index refusing
 * an update is not reported as 11000 (dmongo_is_duplicate reads the
 * message), so a rule's name is also checked before a replace; and it has
 * no partial indexes (a plain unique (user_id, k1) on rules). */
#include <string.h>
#include <time.h>

#include "store/mongo/docs_mongo_int.h"
#include "util/err.h"

/* A replace at any rev retries while other processes' writers hold the
 * document; after this many tries (about 2 s of waits) it gives up. */
#define MAX_REPLACE_TRIES 60

/* {_id, rev: 1, inc, fields…}: a document as first written. */
static void new_doc_bson(bson_t *b, const struct iot_doc *doc)
{
    char inc[DMONGO_INC_LEN + 1];
    dmongo_new_inc(inc);
    BSON_APPEND_UTF8(b, "_id", doc->id);
    BSON_APPEND_INT64(b, "rev", 1);
    BSON_APPEND_UTF8(b, "inc", inc);
    dmongo_append_fields(b, doc, NULL);
}

static int insert_new(struct dmongo_conn *c, enum iot_docs_coll coll, const struct iot_doc *doc)
{
    bson_t b = BSON_INITIALIZER;
    new_doc_bson(&b, doc);
    bson_error_t err;
    bool ok = mongoc_collection_insert_one(c->coll, &b, NULL, NULL, &err);
    bson_destroy(&b);
    return ok ? IOT_OK : dmongo_error(&err, "insert", coll);
}

/* A rule's name (k1, always set: iot_docs_check_put) is unique per user:
 * is it free for this id? The unique index has the last word (a racing
 * writer), but FerretDB reports its refusal of an update only in SQLite's
 * words; this says it plainly. */
static int check_rule_name_free(struct dmongo_conn *c, const struct iot_doc *doc)
{
    bson_t filter = BSON_INITIALIZER, ne;
    BSON_APPEND_INT64(&filter, "user_id", doc->user_id);
    BSON_APPEND_UTF8(&filter, "k1", doc->k1);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &ne);
    BSON_APPEND_UTF8(&ne, "$ne", doc->id);
    bson_append_document_end(&filter, &ne);
    bson_error_t err;
    int64_t n = mongoc_collection_count_documents(c->coll, &filter, NULL, NULL, NULL, &err);
    bson_destroy(&filter);
    if (n < 0)
        return dmongo_error(&err, "count", IOT_DOCS_RULES);
    return n > 0 ? IOT_ECONFLICT : IOT_OK;
}

/* {$set: {fields…, rev}[, $unset: {lat, lon}]} */
static void update_bson(bson_t *b, const struct iot_doc *doc, int64_t rev)
{
    bson_t set, unset = BSON_INITIALIZER;
    BSON_APPEND_DOCUMENT_BEGIN(b, "$set", &set);
    dmongo_append_fields(&set, doc, &unset);
    BSON_APPEND_INT64(&set, "rev", rev);
    bson_append_document_end(b, &set);
    if (!bson_empty(&unset))
        BSON_APPEND_DOCUMENT(b, "$unset", &unset);
    bson_destroy(&unset);
}

/* Under the claim of h's next rev: if the document is still as h says,
 * writes doc over it at that rev. IOT_EAGAIN if it moved on or went. */
static int write_claimed(struct dmongo_conn *c, enum iot_docs_coll coll,
                         const struct iot_doc *doc, const struct dmongo_head *h)
{
    struct dmongo_head now;
    int rc = dmongo_read_head(c, coll, doc->id, &now);
    if (rc)
        return rc;
    if (!dmongo_same_head(h, &now))
        return IOT_EAGAIN;
    bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, reply;
    BSON_APPEND_UTF8(&filter, "_id", doc->id);
    update_bson(&update, doc, h->rev + 1);
    bson_error_t err;
    bson_iter_t it;
    if (!mongoc_collection_update_one(c->coll, &filter, &update, NULL, &reply, &err))
        rc = dmongo_error(&err, "update", coll);
    else if (!bson_iter_init_find(&it, &reply, "matchedCount") || bson_iter_as_int64(&it) == 0)
        rc = IOT_EAGAIN; /* removed since the read */
    bson_destroy(&reply);
    bson_destroy(&update);
    bson_destroy(&filter);
    return rc;
}

/* A short, growing pause between tries against another process's writer. */
static void back_off(int tries)
{
    long ms = tries < 10 ? 1 + tries : 40;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* One try of put at a rev (or any): IOT_EAGAIN to try again. */
static int replace_once(struct dmongo *m, struct dmongo_conn *c, enum iot_docs_coll coll,
                        const struct iot_doc *doc, int64_t expect, int64_t *rev)
{
    struct dmongo_head h;
    int rc = dmongo_read_head(c, coll, doc->id, &h);
    if (rc)
        return rc;
    if (!h.found) {
        if (expect > 0)
            return IOT_ECONFLICT;
        rc = insert_new(c, coll, doc);
        if (rc == IOT_OK)
            *rev = 1;
        else if (rc == IOT_ECONFLICT && dmongo_read_head(c, coll, doc->id, &h) == IOT_OK &&
                 h.found)
            rc = IOT_EAGAIN; /* created meanwhile by another writer: replace it */
        return rc;
    }
    if (expect > 0 && h.rev != expect)
        return IOT_ECONFLICT;
    rc = dmongo_claim(m, c, coll, doc->id, &h);
    if (rc)
        return rc == IOT_ECONFLICT && expect == IOT_DOCS_ANY_REV ? IOT_EAGAIN : rc;
    rc = write_claimed(c, coll, doc, &h);
    dmongo_unclaim(m, c, coll, doc->id, &h);
    if (rc == IOT_OK)
        *rev = h.rev + 1;
    return rc;
}

/* Writes doc at any rev (inserting it if absent) or at rev `expect`. */
static int replace(struct dmongo *m, struct dmongo_conn *c, enum iot_docs_coll coll,
                   const struct iot_doc *doc, int64_t expect, int64_t *rev)
{
    int rc = coll == IOT_DOCS_RULES ? check_rule_name_free(c, doc) : IOT_OK;
    for (int tries = 0; rc == IOT_OK || rc == IOT_EAGAIN; tries++) {
        if (tries == MAX_REPLACE_TRIES)
            return IOT_ETIMEOUT;
        if (tries)
            back_off(tries);
        rc = replace_once(m, c, coll, doc, expect, rev);
        if (rc == IOT_OK)
            return rc;
        if (rc == IOT_EAGAIN && expect > 0)
            return IOT_ECONFLICT; /* the rev it expected is gone */
    }
    return rc;
}

int dmongo_put(void *self, enum iot_docs_coll coll, const struct iot_doc *doc, int64_t expect_rev,
               int64_t *rev_out)
{
    if (iot_docs_check_put(coll, doc) || expect_rev < IOT_DOCS_ANY_REV)
        return IOT_EINVAL;
    struct dmongo *m = self;
    pthread_mutex_t *lock = dmongo_stripe(m, coll, doc->id);
    pthread_mutex_lock(lock);
    struct dmongo_conn c;
    dmongo_acquire(m, coll, &c);
    int64_t rev = 1;
    int rc = expect_rev == IOT_DOCS_NEW ? insert_new(&c, coll, doc)
                                        : replace(m, &c, coll, doc, expect_rev, &rev);
    dmongo_release(m, &c);
    pthread_mutex_unlock(lock);
    if (rc == IOT_OK && rev_out)
        *rev_out = rev;
    return rc;
}

/* ---- insert_many ---- */

/* Did the bulk insert fail only on duplicates? Then every write error in
 * the reply is one (code 11000), and there is no other kind of error. */
static bool only_duplicates(const bson_t *reply, const bson_error_t *err)
{
    if (!dmongo_is_duplicate(err))
        return false;
    bson_iter_t it, errors;
    if (bson_iter_init_find(&it, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &errors) && bson_iter_next(&errors))
        return false;
    if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &errors))
        return false;
    while (bson_iter_next(&errors)) {
        bson_iter_t code;
        if (!BSON_ITER_HOLDS_DOCUMENT(&errors) || !bson_iter_recurse(&errors, &code) ||
            !bson_iter_find(&code, "code") || bson_iter_as_int64(&code) != 11000)
            return false;
    }
    return true;
}

static int64_t reply_count(const bson_t *reply, const char *field)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, reply, field) && BSON_ITER_HOLDS_NUMBER(&it)
               ? bson_iter_as_int64(&it)
               : 0;
}

int dmongo_insert_many(void *self, enum iot_docs_coll coll, const struct iot_doc *docs, size_t n,
                       size_t *inserted)
{
    if (inserted)
        *inserted = 0;
    if (iot_docs_check_batch(coll, docs, n))
        return IOT_EINVAL;
    if (n == 0)
        return IOT_OK;
    struct dmongo *m = self;
    struct dmongo_conn c;
    dmongo_acquire(m, coll, &c);
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "ordered", false);
    mongoc_bulk_operation_t *bulk =
        mongoc_collection_create_bulk_operation_with_opts(c.coll, &opts);
    bson_error_t err;
    int rc = IOT_OK;
    for (size_t i = 0; i < n && rc == IOT_OK; i++) {
        bson_t b = BSON_INITIALIZER;
        new_doc_bson(&b, &docs[i]);
        if (!mongoc_bulk_operation_insert_with_opts(bulk, &b, NULL, &err))
            rc = dmongo_error(&err, "bulk insert", coll);
        bson_destroy(&b);
    }
    if (rc == IOT_OK) {
        bson_t reply;
        if (!mongoc_bulk_operation_execute(bulk, &reply, &err) && !only_duplicates(&reply, &err))
            rc = dmongo_error(&err, "bulk insert", coll);
        if (inserted)
            *inserted = (size_t)reply_count(&reply, "nInserted");
        bson_destroy(&reply);
    }
    mongoc_bulk_operation_destroy(bulk);
    bson_destroy(&opts);
    dmongo_release(m, &c);
    return rc;
}

/* ---- removal ---- */

int dmongo_remove(void *self, enum iot_docs_coll coll, const char *id)
{
    if (iot_docs_check_coll(coll) || iot_docs_check_id(id))
        return IOT_EINVAL;
    struct dmongo *m = self;
    pthread_mutex_t *lock = dmongo_stripe(m, coll, id);
    pthread_mutex_lock(lock);
    struct dmongo_conn c;
    dmongo_acquire(m, coll, &c);
    bson_t filter = BSON_INITIALIZER, reply;
    BSON_APPEND_UTF8(&filter, "_id", id);
    bson_error_t err;
    int rc = mongoc_collection_delete_one(c.coll, &filter, NULL, &reply, &err)
                 ? (reply_count(&reply, "deletedCount") > 0 ? IOT_OK : IOT_ENOTFOUND)
                 : dmongo_error(&err, "delete", coll);
    bson_destroy(&reply);
    bson_destroy(&filter);
    dmongo_release(m, &c);
    pthread_mutex_unlock(lock);
    return rc;
}

int dmongo_delete_where(void *self, enum iot_docs_coll coll, const struct iot_docs_filter *f,
                        int64_t *deleted)
{
    if (deleted)
        *deleted = 0;
    if (iot_docs_check_coll(coll) || iot_docs_check_filter(f) || !iot_docs_filter_has_criterion(f))
        return IOT_EINVAL;
    struct dmongo *m = self;
    struct dmongo_conn c;
    dmongo_acquire(m, coll, &c);
    bson_t filter = BSON_INITIALIZER, reply;
    dmongo_append_filter(&filter, f, false);
    bson_error_t err;
    int rc = IOT_OK;
    if (mongoc_collection_delete_many(c.coll, &filter, NULL, &reply, &err)) {
        if (deleted)
            *deleted = reply_count(&reply, "deletedCount");
    } else {
        rc = dmongo_error(&err, "delete", coll);
    }
    bson_destroy(&reply);
    bson_destroy(&filter);
    dmongo_release(m, &c);
    return rc;
}
