/* tmcass_exec.c — running statements for the Cassandra telemetry store:
 * blocking calls, groups of concurrent requests waited for together, paged
 * reads, TTLs, and the mapping of CQL failures to IOT_E* codes. */
#include <stdio.h>
#include <string.h>

#include "store/cassandra/tmcass_int.h"
#include "util/err.h"
#include "util/log.h"

int tmc_err(int rc)
{
    switch (rc) {
    case CQL_OK: return IOT_OK;
    case CQL_E_NOMEM: return IOT_ENOMEM;
    case CQL_E_TIMEOUT:
    case CQL_E_SRV_WRITE_TIMEOUT:
    case CQL_E_SRV_READ_TIMEOUT: return IOT_ETIMEOUT;
    case CQL_E_IO:
    case CQL_E_CLOSED:
    case CQL_E_NO_HOST:
    case CQL_E_SHUTDOWN:
    case CQL_E_QUEUE_FULL:
    case CQL_E_NOT_SENT:
    case CQL_E_SRV_UNAVAILABLE:
    case CQL_E_SRV_OVERLOADED:
    case CQL_E_SRV_BOOTSTRAPPING:
    case CQL_E_SRV_READ_FAILURE:
    case CQL_E_SRV_WRITE_FAILURE:
    case CQL_E_SRV_TRUNCATE: return IOT_EUNAVAILABLE;
    case CQL_E_SRV_AUTH:
    case CQL_E_AUTH_REQUIRED:
    case CQL_E_SRV_UNAUTHORIZED: return IOT_EUNAVAILABLE;
    default: return IOT_EINTERNAL;
    }
}

static struct cql_slice slice_of(const struct cql_buf *b)
{
    return b ? (struct cql_slice){b->data, b->len} : (struct cql_slice){NULL, 0};
}

int tmc_exec(struct tmc *t, enum tmc_stmt st, const struct cql_buf *values,
             const struct cql_opts *opts, struct cql_reply **out)
{
    if (values && cql_buf_error(values))
        return IOT_ENOMEM;
    struct cql_opts o = opts ? *opts : (struct cql_opts){0};
    o.idempotent = true;
    struct cql_reply *reply = NULL;
    int rc = cql_session_execute_sync(t->s, t->ps[st], slice_of(values), t->url.consistency, &o,
                                      &reply);
    if (rc)
        IOT_DEBUG("cassandra: statement %d: %s", (int)st, cql_reply_error_text(reply));
    if (out)
        *out = reply;
    else
        cql_reply_free(reply);
    return tmc_err(rc);
}

int tmc_query(struct tmc *t, const char *cql, uint16_t consistency, struct cql_reply **out)
{
    struct cql_reply *reply = NULL;
    struct cql_opts o = {.idempotent = true};
    int rc = cql_session_query_sync(t->s, cql, (struct cql_slice){NULL, 0}, consistency, &o,
                                    &reply);
    if (rc)
        IOT_WARN("cassandra: %.60s…: %s", cql, cql_reply_error_text(reply));
    if (out)
        *out = reply;
    else
        cql_reply_free(reply);
    return tmc_err(rc);
}

/* ---- groups ------------------------------------------------------------------------- */

void tmc_group_init(struct tmc_group *g)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->done, NULL);
}

static void group_fail_locked(struct tmc_group *g, int rc, const char *text)
{
    if (g->first_error == IOT_OK) {
        g->first_error = tmc_err(rc);
        snprintf(g->error_text, sizeof g->error_text, "%s", text ? text : cql_strerror(rc));
    }
}

/* Runs on the session's I/O thread: records, wakes the waiter. */
static void group_done(int rc, struct cql_reply *reply, void *ctx)
{
    struct tmc_group *g = ctx;
    pthread_mutex_lock(&g->lock);
    if (rc != CQL_OK)
        group_fail_locked(g, rc, cql_reply_error_text(reply));
    if (--g->pending == 0)
        pthread_cond_signal(&g->done);
    pthread_mutex_unlock(&g->lock);
    cql_reply_free(reply);
}

static void group_submitted(struct tmc_group *g, int rc)
{
    if (rc == CQL_OK)
        return;
    pthread_mutex_lock(&g->lock);
    group_fail_locked(g, rc, NULL);
    g->pending--;
    pthread_mutex_unlock(&g->lock);
}

void tmc_group_exec_slice(struct tmc *t, struct tmc_group *g, enum tmc_stmt st,
                          struct cql_slice values, int64_t timestamp_us)
{
    struct cql_opts o = {.idempotent = true, .timestamp = timestamp_us};
    pthread_mutex_lock(&g->lock);
    g->pending++;
    pthread_mutex_unlock(&g->lock);
    int rc = cql_session_execute(t->s, t->ps[st], values, t->url.consistency, &o, group_done, g);
    group_submitted(g, rc);
}

void tmc_group_exec(struct tmc *t, struct tmc_group *g, enum tmc_stmt st,
                    const struct cql_buf *values, int64_t timestamp_us)
{
    if (values && cql_buf_error(values)) {
        pthread_mutex_lock(&g->lock);
        group_fail_locked(g, CQL_E_NOMEM, NULL);
        pthread_mutex_unlock(&g->lock);
        return;
    }
    tmc_group_exec_slice(t, g, st, slice_of(values), timestamp_us);
}

void tmc_group_batch(struct tmc *t, struct tmc_group *g, const struct cql_batch_item *items,
                     size_t n, int64_t timestamp_us)
{
    if (n == 0)
        return;
    struct cql_opts o = {.idempotent = true, .timestamp = timestamp_us};
    pthread_mutex_lock(&g->lock);
    g->pending++;
    pthread_mutex_unlock(&g->lock);
    int rc = cql_session_batch(t->s, CQL_BATCH_UNLOGGED, items, n, t->url.consistency, &o,
                               group_done, g);
    group_submitted(g, rc);
}

int tmc_group_wait(struct tmc_group *g)
{
    pthread_mutex_lock(&g->lock);
    while (g->pending > 0)
        pthread_cond_wait(&g->done, &g->lock);
    int rc = g->first_error;
    pthread_mutex_unlock(&g->lock);
    if (rc)
        IOT_DEBUG("cassandra: a write group failed: %s", g->error_text);
    pthread_cond_destroy(&g->done);
    pthread_mutex_destroy(&g->lock);
    return rc;
}

/* ---- paged reads -------------------------------------------------------------------------- */

#define MAX_COLUMNS 24

int tmc_select(struct tmc *t, enum tmc_stmt st, const struct cql_buf *values, int32_t page_size,
               tmc_row_fn fn, void *ctx)
{
    struct cql_opts o = {.page_size = page_size > 0 ? page_size : 1000, .idempotent = true};
    struct cql_reply *page = NULL;
    int rc = tmc_exec(t, st, values, &o, &page);
    while (rc == IOT_OK) {
        const struct cql_rows *rows = cql_reply_rows(page);
        if (!rows) {
            rc = IOT_EINTERNAL;
            break;
        }
        struct cql_row_iter it = cql_rows_iter(rows);
        struct cql_value cells[MAX_COLUMNS];
        size_t n = rows->meta.n_columns < MAX_COLUMNS ? (size_t)rows->meta.n_columns : MAX_COLUMNS;
        bool stop = false;
        while (!stop && cql_rows_next(&it, cells, MAX_COLUMNS))
            stop = fn(ctx, cells, n) != 0;
        if (stop || !cql_reply_has_more_pages(page))
            break;
        struct cql_reply *next = NULL;
        int crc = cql_session_next_page_sync(t->s, page, &next);
        cql_reply_free(page);
        page = next;
        rc = tmc_err(crc);
    }
    cql_reply_free(page);
    return rc;
}

int32_t tmc_ttl(int64_t base_ms, int64_t keep_ms, int64_t now_ms)
{
    if (keep_ms <= 0)
        return 0;
    int64_t left = base_ms + keep_ms - now_ms;
    if (left <= 1000)
        return 1;
    int64_t s = left / 1000;
    return s > 630720000 ? 630720000 : (int32_t)s; /* Cassandra's cap: 20 years */
}
