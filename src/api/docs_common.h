/* docs_common.h — what the handlers of documents (device configurations,
 * metadata, preferences, search) share: the answer to a store or size
 * error, who made a change, stored bodies answered as they are. (Their
 * pages are api/doc_page.h's.) */
#ifndef IOT_API_DOCS_COMMON_H
#define IOT_API_DOCS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/authn.h"
#include "http/request.h"
#include "store/docs.h"

/* A store error, or IOT_ELIMIT as 413 ("what" is too large: at most
 * `limit` bytes) and IOT_EAGAIN (writers kept colliding) as 503. */
void iot_reply_docs_error(struct iot_req *r, int rc, const char *what, size_t limit);

/* Who made a change, as the documents record it: the user's public id,
 * or "admin" for the admin token. Borrowed from p. */
const char *iot_docs_actor(const struct iot_principal *p);

/* After a document write for a device or a user (the other id 0): true
 * when it is gone. A delete that committed between the caller's lookup
 * and its write would leave the new document behind its clean-up (which
 * may have run already); so for a device or user gone, this removes what
 * the write left in `coll` (the caller then answers 404). */
struct iot_app;
bool iot_docs_orphaned(struct iot_app *app, enum iot_docs_coll coll, int64_t device_id,
                       int64_t user_id);

#endif
