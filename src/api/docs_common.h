/* docs_common.h — what the handlers of documents (device configurations,
 * metadata, preferences, search) share: the answer to a store or size
 * error, who made a change, stored bodies answered as they are, and the
 * opaque "<ts>.<id>" cursors of keyset pages. */
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

/* Answers a copy of a stored JSON body. */
void iot_reply_body(struct iot_req *r, int status, const char *body, size_t len);

/* A page cursor: the order key and id of the last document of a page. */
struct iot_docs_cursor {
    bool set;
    int64_t ts;
    char id[IOT_DOCS_ID_MAX + 1];
};
/* Reads the "cursor" query parameter (absent or empty: not set); answers
 * 400 and returns false when it is not one this API made. */
bool iot_docs_cursor_read(struct iot_req *r, struct iot_docs_cursor *c);
/* Formats a cursor into buf (IOT_DOCS_CURSOR_MAX bytes). */
#define IOT_DOCS_CURSOR_MAX (24 + IOT_DOCS_ID_MAX + 1)
void iot_docs_cursor_format(int64_t ts, const char *id, char *buf, size_t size);

#endif
