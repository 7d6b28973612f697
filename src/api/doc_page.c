/* doc_page.c — keyset pages of documents as API answers (see doc_page.h). */
#include "api/doc_page.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "util/err.h"

static bool read_limit(struct iot_req *r, const struct iot_doc_paging *pg, size_t *limit)
{
    int64_t v;
    if (pg->rule != IOT_DOC_LIMIT_STRICT) {
        if (!iot_req_query_int(r, "limit", pg->def, pg->max, &v))
            return false;
        if (v == 0)
            v = pg->rule == IOT_DOC_LIMIT_CLAMP ? pg->def : 1;
        *limit = (size_t)v;
        return true;
    }
    const char *s = iot_req_query(r, "limit");
    v = pg->def;
    if (s) {
        char *end;
        errno = 0;
        long long n = strtoll(s, &end, 10);
        if (!*s || *end || errno || n < 1 || n > pg->max) {
            iot_reply_error(r, 400, "Invalid parameter",
                            "'limit' must be an integer from 1 to %lld", (long long)pg->max);
            return false;
        }
        v = n;
    }
    *limit = (size_t)v;
    return true;
}

/* At most 18 digits: every such number fits an int64, so what the cursor
 * grammar accepts always parses (no overflow to refuse separately). */
#define CURSOR_TS_DIGITS_MAX 18

/* The id's own characters ([A-Za-z0-9_.:-]) need no escaping in a query
 * string, and may hold the separator too: the first non-digit ends the
 * number. */
static bool read_cursor(struct iot_req *r, char sep, struct iot_doc_cursor *c)
{
    memset(c, 0, sizeof *c);
    const char *s = iot_req_query(r, "cursor");
    if (!s || !*s)
        return true;
    const char *digits = s + (*s == '-');
    size_t n = strspn(digits, "0123456789");
    const char *id = digits + n + 1;
    if (n == 0 || n > CURSOR_TS_DIGITS_MAX || digits[n] != sep || iot_docs_check_id(id)) {
        iot_reply_error(r, 400, "Invalid cursor", "use the next_cursor of the previous page");
        return false;
    }
    c->set = true;
    c->ts = strtoll(s, NULL, 10);
    snprintf(c->id, sizeof c->id, "%s", id);
    return true;
}

bool iot_doc_page_args(struct iot_req *r, const struct iot_doc_paging *pg, size_t *limit,
                       struct iot_doc_cursor *c)
{
    return read_limit(r, pg, limit) && read_cursor(r, pg->sep, c);
}

bool iot_doc_page_filter(struct iot_req *r, const struct iot_doc_paging *pg,
                         struct iot_docs_filter *f, struct iot_doc_cursor *c)
{
    if (!iot_doc_page_args(r, pg, &f->limit, c))
        return false;
    if (c->set) {
        f->has_after = true;
        f->after_ts = c->ts;
        f->after_id = c->id;
    }
    return true;
}

void iot_doc_cursor_format(const struct iot_doc_paging *pg, int64_t ts, const char *id,
                           char buf[IOT_DOC_CURSOR_MAX])
{
    snprintf(buf, IOT_DOC_CURSOR_MAX, "%lld%c%s", (long long)ts, pg->sep, id);
}

json_t *iot_doc_cursor_json(const struct iot_doc_paging *pg, int64_t ts, const char *id)
{
    char buf[IOT_DOC_CURSOR_MAX];
    iot_doc_cursor_format(pg, ts, id, buf);
    return json_string(buf);
}

bool iot_doc_page_take(struct iot_doc_page *p, const struct iot_doc *doc)
{
    p->count++;
    p->bytes += (int64_t)doc->body_len;
    p->last_ts = doc->ts_ms;
    snprintf(p->last_id, sizeof p->last_id, "%s", doc->id);
    return iot_doc_page_full(p);
}

int iot_doc_splice(void *ctx, const struct iot_doc *doc)
{
    struct iot_doc_splice *s = ctx;
    if (iot_doc_page_full(&s->page)) {
        s->more = true;
        return 1;
    }
    if (s->page.count)
        iot_buf_append(s->out, ",", 1);
    iot_buf_append(s->out, doc->body, doc->body_len);
    iot_doc_page_take(&s->page, doc);
    return 0;
}

void iot_doc_page_reply(struct iot_req *r, const struct iot_doc_paging *pg,
                        enum iot_docs_coll coll, const struct iot_docs_filter *f,
                        struct iot_buf *head, const char *key)
{
    struct iot_app *app = iot_app_of(r);
    /* One document more than the page says whether another page follows. */
    struct iot_doc_splice s = {
        .out = head, .page = {.limit = f->limit, .max_bytes = app->cfg->max_page_bytes}};
    struct iot_docs_filter one_more = *f;
    one_more.limit = f->limit + 1;
    iot_buf_printf(head, ",\"%s\":[", key);
    int rc = iot_docs_find(&app->docs, coll, &one_more, iot_doc_splice, &s);
    if (rc) {
        iot_buf_free(head);
        iot_reply_store_error(r, rc, key);
        return;
    }
    iot_buf_printf(head, "],\"count\":%zu,\"limit\":%zu", s.page.count, f->limit);
    if (s.more) {
        char cursor[IOT_DOC_CURSOR_MAX];
        iot_doc_cursor_format(pg, s.page.last_ts, s.page.last_id, cursor);
        iot_buf_printf(head, ",\"next_cursor\":\"%s\"}", cursor);
    } else {
        iot_buf_puts(head, ",\"next_cursor\":null}");
    }
    size_t len;
    char *body = iot_buf_take(head, &len);
    iot_reply_raw(r, 200, body, len);
}
