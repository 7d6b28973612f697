/* doc_page.h — keyset pages of documents as API answers, one helper for
 * every listing of documents (events, reports, alerts, alert rules,
 * configuration history, device search): the `limit` and `cursor` query
 * parameters, the opaque cursor made from the last document's (ts_ms, id),
 * and the count and byte budget that end a page. What differs per
 * endpoint (as docs/openapi.yaml states it) is a struct iot_doc_paging.
 * Stored bodies may be spliced into the answer as they are, never
 * re-encoded (iot_doc_page_reply). */
#ifndef IOT_API_DOC_PAGE_H
#define IOT_API_DOC_PAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/request.h"
#include "store/docs.h"
#include "util/buf.h"

/* How an endpoint reads `limit`. */
enum iot_doc_limit_rule {
    IOT_DOC_LIMIT_STRICT,    /* 1..max, anything else 400 */
    IOT_DOC_LIMIT_CLAMP,     /* larger is clamped to max, 0 is the default; negative 400 */
    IOT_DOC_LIMIT_CLAMP_ONE, /* larger is clamped to max, 0 counts as 1; negative 400 */
};

/* One endpoint's paging, fixed at compile time. */
struct iot_doc_paging {
    int64_t def, max; /* page size when `limit` is absent; the largest */
    enum iot_doc_limit_rule rule;
    char sep; /* between the cursor's number and id: "<ts><sep><id>" */
};

/* A cursor as read: the order key and id of the last document of the
 * previous page. */
struct iot_doc_cursor {
    bool set;
    int64_t ts;
    char id[IOT_DOCS_ID_MAX + 1];
};
#define IOT_DOC_CURSOR_MAX (24 + IOT_DOCS_ID_MAX + 1) /* a formatted cursor, NUL included */

/* Reads `limit` (by pg's rule) and `cursor` (absent or empty: not set;
 * 400 unless it is -?[0-9]{1,18}<sep><id>, the shape this API makes).
 * Answers and returns false on bad input. */
bool iot_doc_page_args(struct iot_req *r, const struct iot_doc_paging *pg, size_t *limit,
                       struct iot_doc_cursor *c);
/* The same into a documents filter: f->limit, and the keyset position
 * after the cursor (f->after_id then points into c, which must outlive f). */
bool iot_doc_page_filter(struct iot_req *r, const struct iot_doc_paging *pg,
                         struct iot_docs_filter *f, struct iot_doc_cursor *c);

/* "<ts><sep><id>" into buf; as a JSON string (new reference). */
void iot_doc_cursor_format(const struct iot_doc_paging *pg, int64_t ts, const char *id,
                           char buf[IOT_DOC_CURSOR_MAX]);
json_t *iot_doc_cursor_json(const struct iot_doc_paging *pg, int64_t ts, const char *id);

/* A page being filled: how many documents and body bytes it holds, and
 * its last document (where the next page starts). */
struct iot_doc_page {
    size_t limit;      /* documents a page holds at most */
    int64_t max_bytes; /* body bytes past which it ends early */
    size_t count;
    int64_t bytes;
    int64_t last_ts;
    char last_id[IOT_DOCS_ID_MAX + 1];
};
/* Counts doc into the page; true when the page is now full. */
bool iot_doc_page_take(struct iot_doc_page *p, const struct iot_doc *doc);
static inline bool iot_doc_page_full(const struct iot_doc_page *p)
{
    return p->count >= p->limit || p->bytes >= p->max_bytes;
}

/* Bodies spliced one after another, comma-separated, into out: an
 * iot_docs_find-style callback with ctx a struct iot_doc_splice. A
 * document that arrives once the page is full is not added: it sets
 * `more` (so a search for limit + 1 tells whether another page follows)
 * and stops the search. */
struct iot_doc_splice {
    struct iot_buf *out;
    struct iot_doc_page page;
    bool more;
};
int iot_doc_splice(void *ctx, const struct iot_doc *doc);

/* Answers 200 with `head` (the opening of a JSON object, e.g.
 * {"status":"success"), then "<key>":[bodies...],"count":n,"limit":l,
 * "next_cursor":"..."|null} — null exactly when no document follows. The
 * page also ends once the bodies reach the configured page byte budget.
 * Store errors are answered as such. head is consumed. */
void iot_doc_page_reply(struct iot_req *r, const struct iot_doc_paging *pg,
                        enum iot_docs_coll coll, const struct iot_docs_filter *f,
                        struct iot_buf *head, const char *key);

#endif
