/* docs_read.h — reading one document of the documents store as parsed
 * JSON with its rev and order key, for the domain modules that change a
 * document by reading it whole (metadata, preferences). Thread-safe as the
 * store is; the returned object is the caller's (json_decref). */
#ifndef IOT_CORE_DOCS_READ_H
#define IOT_CORE_DOCS_READ_H

#include <jansson.h>
#include <stdint.h>

#include "store/docs.h"

/* The body of document `id` of `coll` as a JSON object, with its rev and
 * ts_ms (either pointer may be NULL). IOT_ENOTFOUND when absent,
 * IOT_EINTERNAL for a body that does not parse (the store checks bodies on
 * write: not expected), else the store's error. */
int iot_docs_get_object(struct iot_docs *d, enum iot_docs_coll coll, const char *id,
                        json_t **body, int64_t *rev, int64_t *ts_ms);

#endif
