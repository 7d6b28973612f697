/* doc_page.h — one page of documents as an API answer: the documents
 * store's keyset paging (newest first, an opaque cursor made from the last
 * document's (ts_ms, id)) with a byte budget, the stored bodies spliced
 * into the answer as they are, never re-encoded. Used by the event log
 * and the reports. */
#ifndef IOT_API_DOC_PAGE_H
#define IOT_API_DOC_PAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "http/request.h"
#include "store/docs.h"
#include "util/buf.h"

/* Reads the `limit` (0 < limit <= max, default def; else 400) and
 * `cursor` (400 when it is not one this API gave) query parameters into
 * f, whose after_id then points into cursor_id. Answers and returns false
 * on bad input. */
bool iot_doc_page_args(struct iot_req *r, int64_t def, int64_t max, struct iot_docs_filter *f,
                       char cursor_id[IOT_DOCS_ID_MAX + 1]);

/* Answers 200 with `head` (the opening of a JSON object, e.g.
 * {"status":"success"), then "<key>":[bodies...],"count":n,"limit":l,
 * "next_cursor":"..."|null} — null exactly when no document follows. The
 * page also ends once the bodies reach the configured page byte budget. Store errors are answered as such. head
 * is consumed. */
void iot_doc_page_reply(struct iot_req *r, enum iot_docs_coll coll, const struct iot_docs_filter *f,
                        struct iot_buf *head, const char *key);

#endif
