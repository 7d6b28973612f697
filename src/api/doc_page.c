/* doc_page.c — a page of documents as an API answer (see doc_page.h). */
#include "api/doc_page.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "util/err.h"

/* The cursor is "<ts_ms>_<id>" of the last document of the previous page;
 * ids may hold '_' too, so the first one ends the number. */
static bool read_cursor(const char *c, struct iot_docs_filter *f, char *id, size_t id_size)
{
    char *end;
    errno = 0;
    long long ts = strtoll(c, &end, 10);
    if (errno || end == c || *end != '_' || (*c != '-' && (*c < '0' || *c > '9')))
        return false;
    const char *rest = end + 1;
    if (strlen(rest) >= id_size || iot_docs_check_id(rest) != IOT_OK)
        return false;
    memcpy(id, rest, strlen(rest) + 1);
    f->has_after = true;
    f->after_ts = ts;
    f->after_id = id;
    return true;
}

bool iot_doc_page_args(struct iot_req *r, int64_t def, int64_t max, struct iot_docs_filter *f,
                       char cursor_id[IOT_DOCS_ID_MAX + 1])
{
    const char *limit = iot_req_query(r, "limit");
    f->limit = (size_t)def;
    if (limit) {
        char *end;
        errno = 0;
        long long v = strtoll(limit, &end, 10);
        if (!*limit || *end || errno || v < 1 || v > max) {
            iot_reply_error(r, 400, "Invalid parameter", "'limit' must be an integer from 1 to %lld",
                            (long long)max);
            return false;
        }
        f->limit = (size_t)v;
    }
    const char *c = iot_req_query(r, "cursor");
    if (c && *c && !read_cursor(c, f, cursor_id, IOT_DOCS_ID_MAX + 1)) {
        iot_reply_error(r, 400, "Invalid cursor", "use the next_cursor of the previous page");
        return false;
    }
    return true;
}

struct page {
    struct iot_buf *out;
    size_t count, limit;
    bool more; /* a document follows the page */
    int64_t bytes, max_bytes;
    bool full;
    int64_t last_ts;
    char last_id[IOT_DOCS_ID_MAX + 1];
};

static int append_doc(void *ctx, const struct iot_doc *doc)
{
    struct page *p = ctx;
    if (p->count == p->limit || p->full) {
        p->more = true;
        return 1;
    }
    if (p->count)
        iot_buf_append(p->out, ",", 1);
    iot_buf_append(p->out, doc->body, doc->body_len);
    p->count++;
    p->last_ts = doc->ts_ms;
    snprintf(p->last_id, sizeof p->last_id, "%s", doc->id);
    p->bytes += (int64_t)doc->body_len;
    p->full = p->bytes >= p->max_bytes;
    return 0;
}

void iot_doc_page_reply(struct iot_req *r, enum iot_docs_coll coll, const struct iot_docs_filter *f,
                        struct iot_buf *head, const char *key)
{
    struct iot_app *app = iot_app_of(r);
    /* One document more than the page says whether another page follows. */
    struct page p = {.out = head, .limit = f->limit, .max_bytes = app->cfg->max_page_bytes};
    struct iot_docs_filter one_more = *f;
    one_more.limit = f->limit + 1;
    iot_buf_printf(head, ",\"%s\":[", key);
    int rc = iot_docs_find(&app->docs, coll, &one_more, append_doc, &p);
    if (rc) {
        iot_buf_free(head);
        iot_reply_store_error(r, rc, key);
        return;
    }
    iot_buf_printf(head, "],\"count\":%zu,\"limit\":%zu", p.count, f->limit);
    if (p.more)
        iot_buf_printf(head, ",\"next_cursor\":\"%lld_%s\"}", (long long)p.last_ts, p.last_id);
    else
        iot_buf_puts(head, ",\"next_cursor\":null}");
    size_t len;
    char *body = iot_buf_take(head, &len);
    iot_reply_raw(r, 200, body, len);
}
