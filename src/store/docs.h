/* docs.h — the documents store interface: JSON documents in a fixed set of
 * collections (device configurations, the event log, alert rules, alerts,
 * analytics reports, user preferences, device metadata).
 *
 * A document is a JSON object (the body, stored and returned byte for byte)
 * plus a few header fields the store indexes and filters on: an id, the
 * owning user and device, an order key, two short string keys, tags and a
 * location. What the keys mean is the collection's business (table below);
 * the store never looks inside a body. The domain rules (versions, alert
 * state changes, who may see what) live in src/core/, on top of this.
 *
 * Implementations: SQLite with JSON1 (src/store/sqlite, the embedded
 * default, a file in the data directory) and MongoDB over libmongoc
 * (src/store/mongo; MONGODB_URL), tested against FerretDB. Every op may be
 * called from any thread. Callers use the iot_docs_* wrappers at the bottom.
 *
 * The header fields per collection (0 / NULL where a field is unused):
 *
 *   collection  ts_ms            k1            k2         other
 *   configs     the version      -             -          device_id, user_id
 *   events      time (ms)        event type    -          device_id (or 0), user_id
 *   rules       created (ms)     rule name     -          user_id; k1 required, (user_id, k1) unique
 *   alerts      raised (ms)      status        severity   device_id, user_id
 *   reports     made (ms)        -             -          device_id, user_id
 *   prefs       updated (ms)     -             -          user_id
 *   metadata    updated (ms)     -             -          device_id, user_id, tags, location
 */
#ifndef IOT_STORE_DOCS_H
#define IOT_STORE_DOCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store_metrics.h"

enum iot_docs_coll {
    IOT_DOCS_CONFIGS,
    IOT_DOCS_EVENTS,
    IOT_DOCS_RULES,
    IOT_DOCS_ALERTS,
    IOT_DOCS_REPORTS,
    IOT_DOCS_PREFS,
    IOT_DOCS_METADATA,
    IOT_DOCS_N_COLLS
};

#define IOT_DOCS_ID_MAX 64            /* bytes of an id, [A-Za-z0-9_.:-]+ */
#define IOT_DOCS_KEY_MAX 64           /* bytes of k1, k2 and each tag (UTF-8, no NUL) */
#define IOT_DOCS_TAGS_MAX 32          /* tags per document */
#define IOT_DOCS_BODY_MAX (1024 * 1024) /* bytes of a body */

/* A document as written and as read. On reads every pointer is borrowed
 * for the duration of the callback only. `rev` is the store's: 1 after the
 * first write, one more on each replace; ignored on writes. */
struct iot_doc {
    const char *id;
    int64_t user_id;   /* owner (registry row id); 0: none */
    int64_t device_id; /* registry row id; 0: none */
    int64_t ts_ms;     /* the order key (see the table above) */
    int64_t rev;
    const char *k1; /* NULL: none */
    const char *k2; /* NULL: none */
    const char *const *tags;
    size_t n_tags;
    bool has_location;
    double lat; /* [-90, 90] */
    double lon; /* [-180, 180] */
    const char *body; /* a JSON object; NUL-terminated on reads */
    size_t body_len;
};

/* What find, count_by and delete_where select: every set criterion must
 * hold. Zero-initialise, then set what you need. */
struct iot_docs_filter {
    int64_t user_id;   /* 0: any */
    int64_t device_id; /* 0: any */
    const char *k1;    /* NULL: any */
    const char *k2;    /* NULL: any */
    bool has_ts_min;
    int64_t ts_min; /* inclusive */
    bool has_ts_max;
    int64_t ts_max; /* inclusive */
    const char *tag; /* NULL: any; else the document carries this tag */
    bool has_box;    /* the location lies in the box, edges included */
    double lat_min, lat_max, lon_min, lon_max; /* lon_min <= lon_max */

    /* find only: order, keyset cursor and page size. The order is
     * (ts_ms, id), newest first unless `ascending`. With has_after, only
     * documents strictly after (after_ts, after_id) in that order. */
    bool ascending;
    bool has_after;
    int64_t after_ts;
    const char *after_id;
    size_t limit; /* 0: no limit */
};

/* count_by's grouping. */
enum iot_docs_group {
    IOT_DOCS_GROUP_NONE, /* one count, k1 = k2 = NULL */
    IOT_DOCS_GROUP_K1,
    IOT_DOCS_GROUP_K1_K2,
};

/* Read callbacks; return 0 to go on, non-zero to stop (the op then returns
 * IOT_OK). k1/k2 are NULL for documents without them. */
typedef int (*iot_docs_fn)(void *ctx, const struct iot_doc *doc);
typedef int (*iot_docs_count_fn)(void *ctx, const char *k1, const char *k2, int64_t count);

/* put's expectation about the stored document. */
#define IOT_DOCS_ANY_REV (-1) /* insert or replace, whatever is there */
#define IOT_DOCS_NEW 0        /* insert only: IOT_ECONFLICT if the id exists */
/* (> 0: replace only the document at exactly that rev, else IOT_ECONFLICT) */

#define IOT_DOCS_CAP_SHARED 0x1u /* several processes see the same documents */

/* The interface. Ops return IOT_OK or a negative IOT_E* code: IOT_EINVAL
 * for a document or filter the checks below refuse, IOT_ENOTFOUND for an
 * absent id, IOT_ECONFLICT for a unique key taken or a rev that does not
 * match, IOT_ETIMEOUT / IOT_EUNAVAILABLE when a server does not answer
 * (callers answer 503 and may retry). No write is ever half-applied to one
 * document. New slots are appended, never reordered. */
struct iot_docs_ops {
    const char *name; /* "sqlite", "mongodb" */
    unsigned version; /* 1 */
    unsigned caps;    /* IOT_DOCS_CAP_* */

    /* `url`: "sqlite:PATH" or a bare path for SQLite, "mongodb://…/db". */
    int (*open)(const char *url, void **self);
    void (*close)(void *self); /* NULL is a no-op */
    int (*ping)(void *self);

    /* Writes `doc` under doc->id with the given expectation (above);
     * *rev_out (may be NULL) receives the new rev. */
    int (*put)(void *self, enum iot_docs_coll coll, const struct iot_doc *doc, int64_t expect_rev,
               int64_t *rev_out);
    /* Inserts n new documents; one whose id (or unique key) is already
     * taken is skipped, so that a retried batch stores each document once.
     * *inserted (may be NULL) receives how many were stored. Not atomic as
     * a whole: after an error, some may be stored. */
    int (*insert_many)(void *self, enum iot_docs_coll coll, const struct iot_doc *docs, size_t n,
                       size_t *inserted);
    /* Calls fn once with the document, or returns IOT_ENOTFOUND. */
    int (*get)(void *self, enum iot_docs_coll coll, const char *id, iot_docs_fn fn, void *ctx);
    /* Removes one document; IOT_ENOTFOUND if absent. */
    int (*remove)(void *self, enum iot_docs_coll coll, const char *id);
    /* Streams the matching documents in the filter's order. */
    int (*find)(void *self, enum iot_docs_coll coll, const struct iot_docs_filter *f, iot_docs_fn fn,
                void *ctx);
    /* Counts the matching documents by group (cursor, order and limit are
     * ignored); groups come in no set order, and a group with no document
     * is not reported. */
    int (*count_by)(void *self, enum iot_docs_coll coll, const struct iot_docs_filter *f,
                    enum iot_docs_group group, iot_docs_count_fn fn, void *ctx);
    /* Removes every matching document (cursor, order and limit ignored); a
     * filter with no criterion at all is refused (IOT_EINVAL).
     * *deleted (may be NULL) receives how many. */
    int (*delete_where)(void *self, enum iot_docs_coll coll, const struct iot_docs_filter *f,
                        int64_t *deleted);
};

struct iot_docs {
    const struct iot_docs_ops *ops;
    void *self;
};

/* Compiled-in backends, picked by src/store/backend.c's rule. */
const struct iot_docs_ops *iot_docs_backend(const char *url);
const char *iot_docs_backend_names(void);
int iot_docs_open(const char *url, struct iot_docs *out);
void iot_docs_close(struct iot_docs *d);
/* "configs", "events", … (the MongoDB collection and SQLite table names). */
const char *iot_docs_coll_name(enum iot_docs_coll coll);

/* ---- for backends ------------------------------------------------------------
 * The argument checks every backend runs at the top of its ops, so that all
 * backends refuse the same input; each returns IOT_OK or IOT_EINVAL. */

/* The collection exists. */
int iot_docs_check_coll(enum iot_docs_coll coll);
/* An id: 1..IOT_DOCS_ID_MAX bytes of [A-Za-z0-9_.:-]. */
int iot_docs_check_id(const char *id);
/* A whole document for writing: id, keys and tags (valid UTF-8, no NUL,
 * 1..IOT_DOCS_KEY_MAX bytes, at most IOT_DOCS_TAGS_MAX tags, no tag twice),
 * a location in range, a body that is a JSON object of at most
 * IOT_DOCS_BODY_MAX bytes, non-negative ids. */
int iot_docs_check_doc(const struct iot_doc *doc);
/* The collection and the document, and what the collection requires of
 * it: a rule has a name (k1), which its unique key includes. */
int iot_docs_check_put(enum iot_docs_coll coll, const struct iot_doc *doc);
/* insert_many's arguments: every document passes iot_docs_check_put
 * (docs may be NULL only when n is 0). */
int iot_docs_check_batch(enum iot_docs_coll coll, const struct iot_doc *docs, size_t n);
/* A filter: keys and tag as above, ranges in order and in range, after_id
 * valid when has_after. */
int iot_docs_check_filter(const struct iot_docs_filter *f);
/* The filter selects on at least one criterion (delete_where's guard). */
bool iot_docs_filter_has_criterion(const struct iot_docs_filter *f);

static inline int iot_docs_ping(struct iot_docs *d) { IOT_STORE_TIMED(IOT_STORE_DOCS, d->ops, d->ops->ping(d->self)); }
static inline int iot_docs_put(struct iot_docs *d, enum iot_docs_coll c, const struct iot_doc *doc, int64_t expect_rev, int64_t *rev) { IOT_STORE_TIMED(IOT_STORE_DOCS, d->ops, d->ops->put(d->self, c, doc, expect_rev, rev)); }
static inline int iot_docs_insert_many(struct iot_docs *d, enum iot_docs_coll c, const struct iot_doc *docs, size_t n, size_t *ins) { IOT_STORE_TIMED(IOT_STORE_DOCS, d->ops, d->ops->insert_many(d->self, c, docs, n, ins)); }
static inline int iot_docs_get(struct iot_docs *d, enum iot_docs_coll c, const char *id, iot_docs_fn fn, void *ctx) { IOT_STORE_TIMED(IOT_STORE_DOCS, d->ops, d->ops->get(d->self, c, id, fn, ctx)); }
static inline int iot_docs_remove(struct iot_docs *d, enum iot_docs_coll c, const char *id) { IOT_STORE_TIMED(IOT_STORE_DOCS, d->ops, d->ops->remove(d->self, c, id)); }
static inline int iot_docs_find(struct iot_docs *d, enum iot_docs_coll c, const struct iot_docs_filter *f, iot_docs_fn fn, void *ctx) { IOT_STORE_TIMED(IOT_STORE_DOCS, d->ops, d->ops->find(d->self, c, f, fn, ctx)); }
static inline int iot_docs_count_by(struct iot_docs *d, enum iot_docs_coll c, const struct iot_docs_filter *f, enum iot_docs_group g, iot_docs_count_fn fn, void *ctx) { IOT_STORE_TIMED(IOT_STORE_DOCS, d->ops, d->ops->count_by(d->self, c, f, g, fn, ctx)); }
static inline int iot_docs_delete_where(struct iot_docs *d, enum iot_docs_coll c, const struct iot_docs_filter *f, int64_t *n) { IOT_STORE_TIMED(IOT_STORE_DOCS, d->ops, d->ops->delete_where(d->self, c, f, n)); }

#endif
