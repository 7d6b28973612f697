/* docs_util.h — what the domain modules over the documents store share:
 * reading one document as parsed JSON with its rev and order key (for
 * changes that read a document whole: metadata, preferences), and the
 * pause between optimistic write attempts that lost a race (versions,
 * writes at an exact rev). Thread-safe as the store is; a returned object
 * is the caller's (json_decref). */
#ifndef IOT_CORE_DOCS_UTIL_H
#define IOT_CORE_DOCS_UTIL_H

#include <jansson.h>
#include <stdint.h>

#include "store/docs.h"

/* The body of document `id` of `coll` as a JSON object, with its rev and
 * ts_ms (either pointer may be NULL). IOT_ENOTFOUND when absent,
 * IOT_EINTERNAL for a body that does not parse (the store checks bodies on
 * write: not expected), else the store's error. */
int iot_docs_get_object(struct iot_docs *d, enum iot_docs_coll coll, const char *id,
                        json_t **body, int64_t *rev, int64_t *ts_ms);

/* Optimistic writers retry this many times after IOT_ECONFLICT, then give
 * up with IOT_EAGAIN (503: the store is too contended to promise more). */
#define IOT_DOCS_WRITE_ATTEMPTS 16

/* Sleeps after the attempt-th lost race (0-based): a random pause under a
 * cap that grows, so that the same writers do not collide round after
 * round. */
void iot_docs_conflict_pause(int attempt);

#endif
