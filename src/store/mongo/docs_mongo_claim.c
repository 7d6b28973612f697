/* docs_mongo_claim.c — replacing a document at a given rev safely across
 * processes, on a server whose updates are not atomic.
 *
 * FerretDB 1.24 runs an update (findAndModify too) as a read, then an
 * UPDATE of the whole document by _id in another statement: two writers
 * that both read rev 3 both "win" with rev 4. Its one atomic check is a
 * unique key on insert. So a writer moving document (coll, id) from rev r
 * to r+1 first inserts a claim, {_id: "coll/id/inc/r+1"}, into the
 * write_claims collection: only one writer can hold it. It then re-reads
 * the document (still at inc and rev r? else it lost to someone) and
 * writes it; then deletes the claim. A late writer that read rev r before
 * that may take the deleted claim again, but its re-read sees r+1 and it
 * backs off.
 *
 * `inc`, a document's incarnation, is an ObjectId string set when the
 * document is created: a claim left over from an earlier document under
 * the same id (removed, then created anew at rev 1) never blocks the new
 * one. A claim whose writer died before deleting it would block its
 * document for ever: a claim older than CLAIM_LEASE_MS is taken as
 * abandoned, and whoever finds it moves the document on to r+1 unchanged
 * (the dead writer's replace is lost, as if it never ran; several finders
 * write the same thing). A writer that really held a claim that long
 * could lose its write: no op here lives that long (each round trip times
 * out at DMONGO_TIMEOUT_MS).
 *
 * On MongoDB proper, updates are atomic and all of this is merely
 * redundant: one code path, tested on the server we have. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/mongo/docs_mongo_int.h"
#include "util/err.h"

#define CLAIM_LEASE_MS 60000

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* shared by processes, unlike the monotonic clock */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void dmongo_new_inc(char inc[DMONGO_INC_LEN + 1])
{
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    bson_oid_to_string(&oid, inc);
}

int dmongo_read_head(struct dmongo_conn *c, enum iot_docs_coll coll, const char *id,
                     struct dmongo_head *h)
{
    memset(h, 0, sizeof *h);
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj;
    BSON_APPEND_UTF8(&filter, "_id", id);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "rev", 1);
    BSON_APPEND_INT32(&proj, "inc", 1);
    bson_append_document_end(&opts, &proj);
    BSON_APPEND_INT64(&opts, "limit", 1);
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(c->coll, &filter, &opts, NULL);
    const bson_t *b;
    bson_iter_t it;
    if (mongoc_cursor_next(cursor, &b)) {
        h->found = true;
        if (bson_iter_init_find(&it, b, "rev") && BSON_ITER_HOLDS_NUMBER(&it))
            h->rev = bson_iter_as_int64(&it);
        if (bson_iter_init_find(&it, b, "inc") && BSON_ITER_HOLDS_UTF8(&it))
            snprintf(h->inc, sizeof h->inc, "%s", bson_iter_utf8(&it, NULL));
    }
    bson_error_t err;
    int rc = mongoc_cursor_error(cursor, &err) ? dmongo_error(&err, "find", coll) : IOT_OK;
    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);
    bson_destroy(&filter);
    return rc;
}

bool dmongo_same_head(const struct dmongo_head *a, const struct dmongo_head *b)
{
    return a->found == b->found && a->rev == b->rev && strcmp(a->inc, b->inc) == 0;
}

void dmongo_claim_id(char out[DMONGO_CLAIM_ID_MAX], enum iot_docs_coll coll, const char *id,
                     const struct dmongo_head *h)
{
    snprintf(out, DMONGO_CLAIM_ID_MAX, "%s/%s/%s/%lld", iot_docs_coll_name(coll), id, h->inc,
             (long long)(h->rev + 1));
}

/* How long ago the claim `cid` was taken (ms), or -1 if it is gone. */
static int claim_age_ms(mongoc_collection_t *claims, const char *cid, int64_t *age)
{
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "_id", cid);
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(claims, &filter, NULL, NULL);
    const bson_t *b;
    bson_iter_t it;
    *age = -1;
    if (mongoc_cursor_next(cursor, &b) && bson_iter_init_find(&it, b, "at") &&
        BSON_ITER_HOLDS_NUMBER(&it))
        *age = wall_ms() - bson_iter_as_int64(&it);
    bson_error_t err;
    int rc = mongoc_cursor_error(cursor, &err) ? dmongo_error(&err, "find", IOT_DOCS_CONFIGS)
                                               : IOT_OK;
    mongoc_cursor_destroy(cursor);
    bson_destroy(&filter);
    return rc;
}

/* Failing here leaves the claim behind: harmless once the document has
 * left rev r (a late claimer's re-read backs off); if the write failed
 * too, it blocks the document until its lease runs out. */
static void drop_claim(mongoc_collection_t *claims, const char *cid, enum iot_docs_coll coll)
{
    bson_t claim = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&claim, "_id", cid);
    bson_error_t err;
    if (!mongoc_collection_delete_one(claims, &claim, NULL, NULL, &err))
        dmongo_error(&err, "delete", coll);
    bson_destroy(&claim);
}

/* An abandoned claim: move the document from h's rev to the next, as it
 * is (several finders may; they write the same), then drop the claim. */
static int recover(struct dmongo_conn *c, mongoc_collection_t *claims, enum iot_docs_coll coll,
                   const char *id, const struct dmongo_head *h, const char *cid)
{
    bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set;
    BSON_APPEND_UTF8(&filter, "_id", id);
    BSON_APPEND_INT64(&filter, "rev", h->rev);
    BSON_APPEND_UTF8(&filter, "inc", h->inc);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_INT64(&set, "rev", h->rev + 1);
    bson_append_document_end(&update, &set);
    bson_error_t err;
    int rc = mongoc_collection_update_one(c->coll, &filter, &update, NULL, NULL, &err)
                 ? IOT_OK
                 : dmongo_error(&err, "update", coll);
    bson_destroy(&update);
    bson_destroy(&filter);
    if (rc == IOT_OK)
        drop_claim(claims, cid, coll);
    return rc;
}

int dmongo_claim(struct dmongo *m, struct dmongo_conn *c, enum iot_docs_coll coll,
                 const char *id, const struct dmongo_head *h)
{
    char cid[DMONGO_CLAIM_ID_MAX];
    dmongo_claim_id(cid, coll, id, h);
    mongoc_collection_t *claims =
        mongoc_client_get_collection(c->client, m->db, DMONGO_CLAIMS_COLL);
    bson_t claim = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&claim, "_id", cid);
    BSON_APPEND_INT64(&claim, "at", wall_ms());
    bson_error_t err;
    int rc = mongoc_collection_insert_one(claims, &claim, NULL, NULL, &err)
                 ? IOT_OK
                 : dmongo_error(&err, "insert", coll);
    bson_destroy(&claim);
    int64_t age;
    if (rc == IOT_ECONFLICT && claim_age_ms(claims, cid, &age) == IOT_OK &&
        age > CLAIM_LEASE_MS && recover(c, claims, coll, id, h, cid) == IOT_OK)
        rc = IOT_EAGAIN;
    mongoc_collection_destroy(claims);
    return rc;
}

void dmongo_unclaim(struct dmongo *m, struct dmongo_conn *c, enum iot_docs_coll coll,
                    const char *id, const struct dmongo_head *h)
{
    char cid[DMONGO_CLAIM_ID_MAX];
    dmongo_claim_id(cid, coll, id, h);
    mongoc_collection_t *claims =
        mongoc_client_get_collection(c->client, m->db, DMONGO_CLAIMS_COLL);
    drop_claim(claims, cid, coll);
    mongoc_collection_destroy(claims);
}
