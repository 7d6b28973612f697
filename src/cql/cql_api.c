/* cql_api.c — the submitting half of the session API, run on the caller's
 * thread: options and defaults, client-side timestamps, the request frame
 * (built once, stream 0, so the I/O thread only copies it), the routing
 * token of a prepared statement's bound partition key, then the hand-off to
 * the I/O thread (cql_session_submit_req). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cql/cql_murmur3.h"
#include "cql/cql_session_int.h"

/* Reprepares a batch may need: one per prepared statement in it, bounded. */
#define MAX_BATCH_REPREPARES 32

/* Microseconds since the epoch, strictly increasing per session. */
static int64_t next_timestamp(struct cql_session *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    int64_t last = atomic_load(&s->last_timestamp);
    for (;;) {
        int64_t next = now > last ? now : last + 1;
        if (atomic_compare_exchange_weak(&s->last_timestamp, &last, next))
            return next;
    }
}

static bool consistency_ok(uint16_t c)
{
    return c == CQL_CONSISTENCY_DEFAULT || c <= CQL_CONSISTENCY_LOCAL_ONE;
}

static void apply_opts(struct cql_session *s, struct cql_spec *sp, uint16_t consistency,
                       const struct cql_opts *o)
{
    sp->consistency = consistency == CQL_CONSISTENCY_DEFAULT ? s->cfg.consistency : consistency;
    sp->serial = o && o->serial_consistency ? o->serial_consistency : s->cfg.serial_consistency;
    sp->page_size = o ? o->page_size : 0;
    sp->idempotent = o && o->idempotent;
    sp->tracing = o && o->tracing;
    sp->timeout_ms = o && o->timeout_ms ? o->timeout_ms : s->cfg.request_timeout_ms;
    sp->explicit_ts = o && o->timestamp;
    sp->timestamp = o ? o->timestamp : 0;
}

/* The timestamp a request carries: the caller's, a generated one, or none. */
static bool timestamp_of(struct cql_session *s, const struct cql_spec *sp, int64_t *ts)
{
    if (sp->explicit_ts) {
        *ts = sp->timestamp;
        return true;
    }
    if (s->cfg.no_client_timestamps)
        return false;
    *ts = next_timestamp(s);
    return true;
}

static struct cql_query_params params_of(struct cql_session *s, const struct cql_spec *sp,
                                         struct cql_slice values, struct cql_slice paging)
{
    struct cql_query_params p = {
        .consistency = sp->consistency,
        .values = values,
        .page_size = sp->page_size,
        .paging_state = paging,
        .serial_consistency = sp->serial,
        .tracing = sp->tracing,
    };
    p.has_default_timestamp = timestamp_of(s, sp, &p.default_timestamp);
    return p;
}

/* The token of the partition key bound in values, if every component is. */
static bool routing_token(const struct cql_prepared_stmt *ps, struct cql_slice values,
                          int64_t *token)
{
    const struct cql_metadata *m = &ps->msg.result.prepared.params;
    if (m->pk_count <= 0 || m->pk_count > CQL_MAX_PK)
        return false;
    struct cql_slice parts[CQL_MAX_PK];
    int32_t found = 0;
    struct cql_reader rd = cql_reader_make(values.ptr, values.len);
    for (uint32_t i = 0; cql_reader_left(&rd) > 0; i++) {
        struct cql_value v;
        if (cql_read_value(&rd, &v))
            return false;
        for (int32_t j = 0; j < m->pk_count; j++) {
            if (m->pk_indices[j] != i)
                continue;
            if (v.len < 0)
                return false; /* null or unset: no routing */
            parts[j] = (struct cql_slice){v.ptr, (size_t)v.len};
            found++;
        }
    }
    if (found != m->pk_count)
        return false;
    if (m->pk_count == 1) {
        *token = cql_murmur3_token(parts[0].ptr, parts[0].len);
        return true;
    }
    struct cql_buf key = {0};
    bool ok = cql_routing_key_write(&key, parts, (size_t)m->pk_count) == CQL_OK;
    if (ok)
        *token = cql_murmur3_token(key.data, key.len);
    cql_buf_free(&key);
    return ok;
}

/* ---- frames --------------------------------------------------------------------
 * Offsets of the text and values inside the frame follow spec 4.1.4: header
 * (9), [long string] query (4 + n) or [short bytes] id (2 + n), then
 * <consistency>(2) <flags>(1) <n>(2) <values>. */

static int build_query(struct cql_session *s, struct cql_req *r, const char *cql, size_t len,
                       struct cql_slice values, struct cql_slice paging)
{
    struct cql_query_params p = params_of(s, &r->spec, values, paging);
    int rc = cql_build_query(&r->spec.frame, 0, (struct cql_str){cql, len}, &p);
    if (rc)
        return rc;
    r->spec.text_off = CQL_FRAME_HEADER_SIZE + 4;
    r->spec.text_len = len;
    r->spec.values_off = values.len ? CQL_FRAME_HEADER_SIZE + 4 + len + 5 : 0;
    r->spec.values_len = values.len;
    return CQL_OK;
}

static int build_execute(struct cql_session *s, struct cql_req *r,
                         const struct cql_prepared_stmt *ps, struct cql_slice values,
                         struct cql_slice paging)
{
    struct cql_slice id = ps->msg.result.prepared.id;
    struct cql_query_params p = params_of(s, &r->spec, values, paging);
    int rc = cql_build_execute(&r->spec.frame, 0, id, &p);
    if (rc)
        return rc;
    r->spec.ps = ps;
    r->spec.values_off = values.len ? CQL_FRAME_HEADER_SIZE + 2 + id.len + 5 : 0;
    r->spec.values_len = values.len;
    r->has_token = routing_token(ps, values, &r->token);
    r->reprepares_left = 1;
    return CQL_OK;
}

/* Submits r, or frees it on failure (cb is then never called). */
static int submit_or_free(struct cql_session *s, struct cql_req *r, int rc)
{
    if (rc == CQL_OK)
        rc = cql_session_submit_req(s, r);
    if (rc)
        cql_req_free(r);
    return rc;
}

/* ---- the calls ------------------------------------------------------------------- */

int cql_session_query(struct cql_session *s, const char *cql, struct cql_slice values,
                      uint16_t consistency, const struct cql_opts *opts, cql_callback cb, void *ctx)
{
    if (!s || !cql || !cb || !consistency_ok(consistency))
        return CQL_E_INVALID;
    struct cql_req *r = cql_req_new(s, RK_QUERY, cb, ctx);
    if (!r)
        return CQL_E_NOMEM;
    apply_opts(s, &r->spec, consistency, opts);
    struct cql_slice paging = opts ? opts->paging_state : (struct cql_slice){0};
    return submit_or_free(s, r, build_query(s, r, cql, strlen(cql), values, paging));
}

int cql_session_execute(struct cql_session *s, const struct cql_prepared_stmt *ps,
                        struct cql_slice values, uint16_t consistency, const struct cql_opts *opts,
                        cql_callback cb, void *ctx)
{
    if (!s || !ps || !cb || !consistency_ok(consistency))
        return CQL_E_INVALID;
    struct cql_req *r = cql_req_new(s, RK_EXECUTE, cb, ctx);
    if (!r)
        return CQL_E_NOMEM;
    apply_opts(s, &r->spec, consistency, opts);
    struct cql_slice paging = opts ? opts->paging_state : (struct cql_slice){0};
    return submit_or_free(s, r, build_execute(s, r, ps, values, paging));
}

int cql_session_prepare(struct cql_session *s, const char *cql, cql_callback cb, void *ctx)
{
    if (!s || !cql || !cb)
        return CQL_E_INVALID;
    struct cql_req *r = cql_req_new(s, RK_PREPARE, cb, ctx);
    if (!r)
        return CQL_E_NOMEM;
    size_t len = strlen(cql);
    apply_opts(s, &r->spec, CQL_CONSISTENCY_DEFAULT, NULL);
    r->spec.ps = cql_prepared_find(s, cql, len); /* a hit completes without I/O */
    r->spec.idempotent = true;                   /* preparing twice is harmless */
    int rc = cql_build_prepare(&r->spec.frame, 0, (struct cql_str){cql, len});
    r->spec.text_off = CQL_FRAME_HEADER_SIZE + 4;
    r->spec.text_len = len;
    return submit_or_free(s, r, rc);
}

static int build_batch(struct cql_session *s, struct cql_req *r, uint8_t type,
                       const struct cql_batch_item *items, size_t n)
{
    struct cql_batch_stmt *st = calloc(n, sizeof *st);
    if (!st)
        return CQL_E_NOMEM;
    int rc = CQL_OK;
    /* A host that never saw them answers UNPREPARED once per distinct
     * statement of the batch: allow a re-prepare for each (bounded). */
    const struct cql_prepared_stmt *distinct[MAX_BATCH_REPREPARES];
    size_t n_distinct = 0;
    for (size_t i = 0; i < n && rc == CQL_OK; i++) {
        const struct cql_batch_item *it = &items[i];
        st[i].values = it->values;
        if (it->prepared) {
            st[i].prepared_id = it->prepared->msg.result.prepared.id;
            if (!r->has_token)
                r->has_token = routing_token(it->prepared, it->values, &r->token);
            size_t d = 0;
            while (d < n_distinct && distinct[d] != it->prepared)
                d++;
            if (d == n_distinct && n_distinct < MAX_BATCH_REPREPARES) {
                distinct[n_distinct++] = it->prepared;
                r->reprepares_left = (uint8_t)n_distinct;
            }
        } else if (it->query) {
            st[i].query = cql_str_c(it->query);
        } else {
            rc = CQL_E_INVALID;
        }
    }
    struct cql_batch b = {
        .type = type,
        .stmts = st,
        .n_stmts = n,
        .consistency = r->spec.consistency,
        .serial_consistency = r->spec.serial,
        .tracing = r->spec.tracing,
    };
    b.has_default_timestamp = timestamp_of(s, &r->spec, &b.default_timestamp);
    if (rc == CQL_OK)
        rc = cql_build_batch(&r->spec.frame, 0, &b);
    free(st);
    return rc;
}

int cql_session_batch(struct cql_session *s, uint8_t type, const struct cql_batch_item *items,
                      size_t n_items, uint16_t consistency, const struct cql_opts *opts,
                      cql_callback cb, void *ctx)
{
    if (!s || !items || n_items == 0 || n_items > UINT16_MAX || !cb || !consistency_ok(consistency))
        return CQL_E_INVALID;
    struct cql_req *r = cql_req_new(s, RK_BATCH, cb, ctx);
    if (!r)
        return CQL_E_NOMEM;
    apply_opts(s, &r->spec, consistency, opts);
    r->spec.page_size = 0;
    return submit_or_free(s, r, build_batch(s, r, type, items, n_items));
}

int cql_session_next_page(struct cql_session *s, const struct cql_reply *page, cql_callback cb,
                          void *ctx)
{
    if (!s || !cb || !page || !page->next || !cql_reply_has_more_pages(page))
        return CQL_E_INVALID;
    const struct cql_spec *prev = page->next;
    struct cql_req *r = cql_req_new(s, prev->kind, cb, ctx);
    if (!r)
        return CQL_E_NOMEM;
    r->spec.consistency = prev->consistency;
    r->spec.serial = prev->serial;
    r->spec.page_size = prev->page_size;
    r->spec.idempotent = prev->idempotent;
    r->spec.tracing = prev->tracing;
    r->spec.timeout_ms = prev->timeout_ms;
    r->spec.explicit_ts = prev->explicit_ts;
    r->spec.timestamp = prev->timestamp;
    struct cql_slice values = {prev->frame.data + prev->values_off, prev->values_len};
    struct cql_slice paging = cql_reply_paging_state(page);
    int rc;
    if (prev->kind == RK_QUERY)
        rc = build_query(s, r, (const char *)prev->frame.data + prev->text_off, prev->text_len,
                         values, paging);
    else
        rc = build_execute(s, r, prev->ps, values, paging);
    return submit_or_free(s, r, rc);
}
