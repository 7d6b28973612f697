/* cql_reply.c — the reply a completion callback receives: a private copy of
 * the response frame with its decoded message (or a client-side error text),
 * the answering host, and the paging continuation; plus its getters. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cql/cql_session_int.h"

static char *dup_text(const char *p, size_t n)
{
    char *t = malloc(n + 1);
    if (t) {
        if (n)
            memcpy(t, p, n);
        t[n] = '\0';
    }
    return t;
}

struct cql_reply *cql_reply_from_frame(const uint8_t *frame, size_t len)
{
    struct cql_reply *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->frame = malloc(len ? len : 1);
    if (!r->frame) {
        free(r);
        return NULL;
    }
    memcpy(r->frame, frame, len);
    r->frame_len = len;
    int rc = cql_message_decode(r->frame, len, &r->msg);
    if (rc) {
        const char *why = cql_strerror(rc);
        r->rc = rc;
        r->text = dup_text(why, strlen(why));
        return r;
    }
    r->decoded = true;
    if (r->msg.env.header.opcode == CQL_OP_ERROR) {
        r->rc = r->msg.error.err;
        r->text = dup_text(r->msg.error.message.ptr, r->msg.error.message.len);
    }
    return r;
}

struct cql_reply *cql_reply_client(int rc, const char *fmt, ...)
{
    struct cql_reply *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->rc = rc;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    r->text = dup_text(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    return r;
}

void cql_spec_free(struct cql_spec *spec)
{
    if (spec)
        cql_buf_free(&spec->frame);
}

void cql_reply_free(struct cql_reply *r)
{
    if (!r)
        return;
    if (r->decoded)
        cql_message_free(&r->msg);
    if (r->next) {
        cql_spec_free(r->next);
        free(r->next);
    }
    free(r->frame);
    free(r->text);
    free(r);
}

int cql_reply_rc(const struct cql_reply *r)
{
    return r ? r->rc : CQL_E_NOMEM;
}

const struct cql_message *cql_reply_message(const struct cql_reply *r)
{
    return r && r->decoded ? &r->msg : NULL;
}

int32_t cql_reply_kind(const struct cql_reply *r)
{
    if (!r || !r->decoded || r->msg.env.header.opcode != CQL_OP_RESULT)
        return 0;
    return r->msg.result.kind;
}

const struct cql_rows *cql_reply_rows(const struct cql_reply *r)
{
    return cql_reply_kind(r) == CQL_RESULT_ROWS ? &r->msg.result.rows : NULL;
}

bool cql_reply_has_more_pages(const struct cql_reply *r)
{
    const struct cql_rows *rows = cql_reply_rows(r);
    return rows && (rows->meta.flags & CQL_META_HAS_MORE_PAGES) && rows->meta.paging_state.len >= 0;
}

struct cql_slice cql_reply_paging_state(const struct cql_reply *r)
{
    if (!cql_reply_has_more_pages(r))
        return (struct cql_slice){NULL, 0};
    const struct cql_value *ps = &r->msg.result.rows.meta.paging_state;
    return (struct cql_slice){ps->ptr ? ps->ptr : r->frame, (size_t)ps->len};
}

const struct cql_error_body *cql_reply_error(const struct cql_reply *r)
{
    if (!r || !r->decoded || r->msg.env.header.opcode != CQL_OP_ERROR)
        return NULL;
    return &r->msg.error;
}

const char *cql_reply_error_text(const struct cql_reply *r)
{
    if (!r)
        return cql_strerror(CQL_E_NOMEM);
    return r->text ? r->text : "";
}

const char *cql_reply_host(const struct cql_reply *r)
{
    return r ? r->host : "";
}

const struct cql_prepared_stmt *cql_reply_prepared(const struct cql_reply *r)
{
    return r ? r->prepared : NULL;
}
