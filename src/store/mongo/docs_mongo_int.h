/* docs_mongo_int.h — what the files of the MongoDB documents store share:
 * its state, the URL, error mapping, and the BSON form of documents and
 * filters.
 *
 * Files: docs_mongo.c (ops table, open/close, ping, indexes, the client
 * pool, error mapping), docs_mongo_url.c (the URL), docs_mongo_bson.c
 * (documents and filters to and from BSON), docs_mongo_claim.c (claims:
 * replacing at a rev safely across processes), docs_mongo_write.c (put,
 * insert_many, remove, delete_where), docs_mongo_read.c (get, find,
 * count_by).
 *
 * One MongoDB collection per docs.h collection, named by
 * iot_docs_coll_name(). A stored document:
 *
 *   {_id: id, user_id: int64, device_id: int64, ts_ms: int64, rev: int64,
 *    inc: string (the incarnation: docs_mongo_claim.c),
 *    k1: string|null, k2: string|null, tags: [string…],
 *    lat: double, lon: double (both absent without a location),
 *    body: string}
 *
 * The body is kept as a string holding the JSON text, not as a nested
 * document: it comes back byte for byte, and FerretDB (the server we test
 * on) refuses data a user's JSON may well contain — nested arrays, keys
 * with '.' or starting with '$', and NaN. */
#ifndef IOT_STORE_MONGO_DOCS_MONGO_INT_H
#define IOT_STORE_MONGO_DOCS_MONGO_INT_H

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/docs.h"

#define DMONGO_DB_MAX 63       /* bytes of a database name (MongoDB's limit is 64) */
#define DMONGO_TIMEOUT_MS 5000 /* server selection, connect and socket, unless the URL says */
#define DMONGO_STRIPES 64      /* write locks (see struct dmongo) */
#define DMONGO_INC_LEN 24      /* an incarnation: an ObjectId in hex */

struct dmongo {
    mongoc_client_pool_t *pool;
    char db[DMONGO_DB_MAX + 1];
    /* Writes to one document take the lock its (collection, id) hashes to,
     * so that this process's writers never race each other through the
     * claims of docs_mongo_claim.c (which serialise writers in several
     * processes, at the cost of retries). */
    pthread_mutex_t stripes[DMONGO_STRIPES];
};

/* ---- the URL (docs_mongo_url.c) --------------------------------------------- */

/* Parses a mongodb:// URL into a libmongoc URI with our defaults (the
 * timeouts above, appname "iotflowd") wherever the URL sets none, and
 * copies its database name (required: 1..DMONGO_DB_MAX bytes of
 * [A-Za-z0-9_-]) into db. On error, IOT_EINVAL and a message in `why` that
 * never contains the password. The caller destroys *out. */
int dmongo_url_parse(const char *url, mongoc_uri_t **out, char db[DMONGO_DB_MAX + 1], char *why,
                     size_t why_size);

/* ---- clients and errors (docs_mongo.c) --------------------------------------- */

/* A client of the pool and one of its collections; dmongo_release gives
 * both back. Blocks while every client of the pool is in use. */
struct dmongo_conn {
    mongoc_client_t *client;
    mongoc_collection_t *coll;
};
void dmongo_acquire(struct dmongo *m, enum iot_docs_coll coll, struct dmongo_conn *c);
void dmongo_release(struct dmongo *m, struct dmongo_conn *c);

/* The write lock of one document (struct dmongo). */
pthread_mutex_t *dmongo_stripe(struct dmongo *m, enum iot_docs_coll coll, const char *id);

/* A unique index refused the write: MongoDB's code 11000 (FerretDB's too on
 * inserts), or FerretDB's unmapped SQLite error on updates. */
bool dmongo_is_duplicate(const bson_error_t *e);
/* Maps a libmongoc error to an IOT_E* code, logging what is not a plain
 * conflict; `what` names the op for the log. */
int dmongo_error(const bson_error_t *e, const char *what, enum iot_docs_coll coll);

/* ---- the ops (docs_mongo_write.c, docs_mongo_read.c) ------------------------- */
int dmongo_put(void *self, enum iot_docs_coll coll, const struct iot_doc *doc, int64_t expect_rev,
               int64_t *rev_out);
int dmongo_insert_many(void *self, enum iot_docs_coll coll, const struct iot_doc *docs, size_t n,
                       size_t *inserted);
int dmongo_remove(void *self, enum iot_docs_coll coll, const char *id);
int dmongo_delete_where(void *self, enum iot_docs_coll coll, const struct iot_docs_filter *f,
                        int64_t *deleted);
int dmongo_get(void *self, enum iot_docs_coll coll, const char *id, iot_docs_fn fn, void *ctx);
int dmongo_find(void *self, enum iot_docs_coll coll, const struct iot_docs_filter *f,
                iot_docs_fn fn, void *ctx);
int dmongo_count_by(void *self, enum iot_docs_coll coll, const struct iot_docs_filter *f,
                    enum iot_docs_group group, iot_docs_count_fn fn, void *ctx);

/* ---- claims (docs_mongo_claim.c) --------------------------------------------- */

/* What a writer needs to know of a stored document. */
struct dmongo_head {
    bool found;
    int64_t rev;
    char inc[DMONGO_INC_LEN + 1];
};

#define DMONGO_CLAIMS_COLL "write_claims" /* {_id: claim id, at: wall-clock ms} */
#define DMONGO_CLAIM_ID_MAX (16 + IOT_DOCS_ID_MAX + DMONGO_INC_LEN + 24)

/* "coll/id/inc/rev": the claim on moving document id from h to its next rev. */
void dmongo_claim_id(char out[DMONGO_CLAIM_ID_MAX], enum iot_docs_coll coll, const char *id,
                     const struct dmongo_head *h);
/* A new, unique incarnation. */
void dmongo_new_inc(char inc[DMONGO_INC_LEN + 1]);
int dmongo_read_head(struct dmongo_conn *c, enum iot_docs_coll coll, const char *id,
                     struct dmongo_head *h);
bool dmongo_same_head(const struct dmongo_head *a, const struct dmongo_head *b);
/* Claims the move of document `id` from h's rev to the next: IOT_OK (ours:
 * dmongo_unclaim it when done), IOT_ECONFLICT (another writer's), IOT_EAGAIN
 * (an abandoned one, now cleared and the document moved on: read it
 * again), or an error. */
int dmongo_claim(struct dmongo *m, struct dmongo_conn *c, enum iot_docs_coll coll,
                 const char *id, const struct dmongo_head *h);
void dmongo_unclaim(struct dmongo *m, struct dmongo_conn *c, enum iot_docs_coll coll,
                    const char *id, const struct dmongo_head *h);

/* ---- BSON (docs_mongo_bson.c) ------------------------------------------------ */

/* Appends the header fields and body of `doc` (all but _id and rev). With
 * `unset` (may be NULL), lat and lon go there instead when the document
 * has no location, for a $set/$unset update of an existing one. */
void dmongo_append_fields(bson_t *b, const struct iot_doc *doc, bson_t *unset);
/* Appends the filter's criteria; with `cursor`, also the keyset position
 * (find only). */
void dmongo_append_filter(bson_t *b, const struct iot_docs_filter *f, bool cursor);
/* Reads a stored document; pointers into `b` (and `tags`, room for
 * IOT_DOCS_TAGS_MAX) stay valid while b lives. IOT_EINTERNAL for a
 * document this store did not write. */
int dmongo_read_doc(const bson_t *b, struct iot_doc *doc, const char *tags[IOT_DOCS_TAGS_MAX]);

#endif
