/* cql_sync.c — futures and blocking wrappers over the callback API: each
 * _async call pairs a new future with cql_future_complete (completing it by
 * hand when submitting fails), each _sync call waits on such a future. The
 * blocking calls refuse to run on the session's I/O thread (they would wait
 * for themselves). */
#include "cql/cql_future.h"
#include "cql/cql_session_int.h"

#include <string.h>

/* Completes f with a submit error so that the future is always done. */
static struct cql_future *settle(struct cql_future *f, int rc)
{
    if (rc)
        cql_future_complete(rc, NULL, f);
    return f;
}

static int wait_for(struct cql_future *f, struct cql_reply **out)
{
    if (out)
        *out = NULL;
    if (!f)
        return CQL_E_NOMEM;
    int rc = cql_future_get(f, out);
    cql_future_free(f);
    return rc;
}

static bool on_io_thread(const struct cql_session *s)
{
    return s && cql_io_session == s;
}

struct cql_future *cql_session_query_async(struct cql_session *s, const char *cql,
                                           struct cql_slice values, uint16_t consistency,
                                           const struct cql_opts *opts)
{
    struct cql_future *f = cql_future_new();
    if (!f)
        return NULL;
    return settle(f, cql_session_query(s, cql, values, consistency, opts, cql_future_complete, f));
}

struct cql_future *cql_session_execute_async(struct cql_session *s,
                                             const struct cql_prepared_stmt *ps,
                                             struct cql_slice values, uint16_t consistency,
                                             const struct cql_opts *opts)
{
    struct cql_future *f = cql_future_new();
    if (!f)
        return NULL;
    return settle(f, cql_session_execute(s, ps, values, consistency, opts, cql_future_complete, f));
}

int cql_session_query_sync(struct cql_session *s, const char *cql, struct cql_slice values,
                           uint16_t consistency, const struct cql_opts *opts,
                           struct cql_reply **out)
{
    if (on_io_thread(s))
        return CQL_E_INVALID;
    return wait_for(cql_session_query_async(s, cql, values, consistency, opts), out);
}

int cql_session_execute_sync(struct cql_session *s, const struct cql_prepared_stmt *ps,
                             struct cql_slice values, uint16_t consistency,
                             const struct cql_opts *opts, struct cql_reply **out)
{
    if (on_io_thread(s))
        return CQL_E_INVALID;
    return wait_for(cql_session_execute_async(s, ps, values, consistency, opts), out);
}

int cql_session_batch_sync(struct cql_session *s, uint8_t type, const struct cql_batch_item *items,
                           size_t n_items, uint16_t consistency, const struct cql_opts *opts,
                           struct cql_reply **out)
{
    if (on_io_thread(s))
        return CQL_E_INVALID;
    struct cql_future *f = cql_future_new();
    if (f)
        settle(f, cql_session_batch(s, type, items, n_items, consistency, opts, cql_future_complete,
                                    f));
    return wait_for(f, out);
}

int cql_session_next_page_sync(struct cql_session *s, const struct cql_reply *page,
                               struct cql_reply **out)
{
    if (on_io_thread(s))
        return CQL_E_INVALID;
    struct cql_future *f = cql_future_new();
    if (f)
        settle(f, cql_session_next_page(s, page, cql_future_complete, f));
    return wait_for(f, out);
}

int cql_session_prepare_sync(struct cql_session *s, const char *cql,
                             const struct cql_prepared_stmt **out, struct cql_reply **err_reply)
{
    *out = NULL;
    if (err_reply)
        *err_reply = NULL;
    if (!s || !cql || on_io_thread(s))
        return CQL_E_INVALID;
    if ((*out = cql_prepared_find(s, cql, strlen(cql))))
        return CQL_OK;
    struct cql_future *f = cql_future_new();
    if (f)
        settle(f, cql_session_prepare(s, cql, cql_future_complete, f));
    struct cql_reply *reply;
    int rc = wait_for(f, &reply);
    if (rc == CQL_OK)
        *out = cql_reply_prepared(reply);
    if (rc && err_reply)
        *err_reply = reply;
    else
        cql_reply_free(reply);
    return rc;
}
