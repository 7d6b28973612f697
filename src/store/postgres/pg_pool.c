/* pg_pool.c — the fixed pool of persistent libpq connections behind the
 * PostgreSQL stores, and how it rides out a server that goes away.
 *
 * Pool: `size` connections opened at open time, each with every statement of
 * the store prepared once, handed out from a free stack under a mutex; a
 * thread that finds none free waits on a condition variable (bounded). Never
 * a connection per request.
 *
 * Failure handling, per connection and for the pool as a whole:
 *  - A connection is checked before it is handed out. An idle connection
 *    has nothing to read, so a readable socket means the server spoke first:
 *    usually a FATAL notice and EOF because the backend was terminated or the
 *    server is shutting down. Such a connection, or one a command found
 *    broken, is closed and reconnected at checkout.
 *  - The first reconnect after a loss is immediate (a killed backend on a
 *    live server). If it fails the server is considered down: further
 *    attempts wait out a backoff that starts at 100 ms and doubles with each
 *    failed probe up to 5 s, only one thread probes at a time, and every
 *    other checkout fails at once with IOT_EUNAVAILABLE instead of queueing
 *    behind a dead server. The first successful connect clears the backoff;
 *    the other connections then reconnect on their next checkout.
 *  - A connect waits at most connect_timeout (2 s unless the URL says
 *    otherwise). Reconnects happen on the requesting thread, lazily: an idle
 *    pool does not poll a dead server. */
#include "store/postgres/pg_pool.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/postgres/pg_conn.h"
#include "store/postgres/pg_migrate.h"
#include "store/postgres/pg_url.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

struct iot_pg_pool {
    pthread_mutex_t mu;
    pthread_cond_t freed; /* a connection was put back */
    char *conninfo;       /* for libpq; holds the password: never logged */
    char target[256];     /* user@host:port/db, for log lines */
    const struct iot_pg_schema *schema;
    int size;
    struct iot_pg_conn *conns;
    struct iot_pg_conn **free; /* stack of idle connections */
    int nfree;
    /* Reconnection state, under mu. backoff_ms 0: the server is believed up. */
    int backoff_ms;
    int64_t retry_at_us; /* monotonic; no attempt before this while backing off */
    bool probing;        /* a thread is trying to reach the down server */
};

/* ---- one connection ------------------------------------------------------ */

/* What the server says outside a command. A FATAL message there is the
 * server telling us why it is about to close the connection. */
static void on_notice(void *arg, const PGresult *r)
{
    struct iot_pg_conn *c = arg;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
        c->lost = true;
    if (iot_log_enabled(IOT_LOG_DEBUG)) {
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        IOT_DEBUG("postgres: server says: %s: %s", sev ? sev : "-", msg ? msg : "-");
    }
}

static void conn_drop(struct iot_pg_conn *c)
{
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    c->lost = false;
}

static int set_session(struct iot_pg_conn *c)
{
    char sql[64];
    snprintf(sql, sizeof sql, "SET statement_timeout = %d", (int)IOT_PG_STATEMENT_MS);
    return iot_pg_command(c, sql);
}

static int prepare_all(struct iot_pg_pool *p, struct iot_pg_conn *c)
{
    for (int i = 0; i < p->schema->n_stmts; i++) {
        if (!p->schema->stmts[i])
            continue;
        char name[16];
        iot_pg_stmt_name(i, name, sizeof name);
        int rc = iot_pg_conn_prepare(c, name, p->schema->stmts[i]);
        if (rc) {
            if (rc != IOT_EUNAVAILABLE)
                IOT_ERROR("postgres: cannot prepare %s statement %d: %s", p->schema->component,
                          i, iot_strerror(rc));
            return rc;
        }
    }
    return IOT_OK;
}

/* Connects c and readies it: session settings, migrations if asked, then the
 * prepared statements. On failure c is down and `why` says why, safe to log. */
static int conn_connect(struct iot_pg_pool *p, struct iot_pg_conn *c, bool migrate, char *why,
                        size_t why_size)
{
    conn_drop(c);
    snprintf(why, why_size, "setup failed");
    PGconn *pg = PQconnectdb(p->conninfo);
    if (!pg) {
        snprintf(why, why_size, "out of memory");
        return IOT_ENOMEM;
    }
    if (PQstatus(pg) != CONNECTION_OK) {
        iot_pg_url_redact(p->conninfo, PQerrorMessage(pg), why, why_size);
        PQfinish(pg);
        return IOT_EUNAVAILABLE;
    }
    c->pg = pg;
    c->lost = false;
    PQsetNoticeReceiver(pg, on_notice, c);
    int rc = PQsetnonblocking(pg, 1) == 0 ? IOT_OK : IOT_EINTERNAL;
    if (rc == IOT_OK)
        rc = set_session(c);
    if (rc == IOT_OK && migrate)
        rc = iot_pg_migrate(c, p->schema);
    if (rc == IOT_OK)
        rc = prepare_all(p, c);
    if (rc) {
        if (c->lost)
            iot_pg_url_redact(p->conninfo, PQerrorMessage(pg), why, why_size);
        conn_drop(c);
    }
    return rc;
}

/* An idle connection that is still up: nothing waiting on its socket, or
 * only chatter (notices, parameter changes) that leaves it healthy. */
static bool conn_alive(struct iot_pg_conn *c)
{
    if (!c->pg || c->lost || PQstatus(c->pg) != CONNECTION_OK)
        return false;
    struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN};
    int n = poll(&pfd, 1, 0);
    if (n == 0)
        return true;
    if (n < 0)
        return errno == EINTR;
    if (!PQconsumeInput(c->pg))
        return false;
    PQisBusy(c->pg); /* parses what came: a FATAL notice marks c lost (on_notice) */
    PGnotify *note;
    while ((note = PQnotifies(c->pg)) != NULL)
        PQfreemem(note);
    return !c->lost && PQstatus(c->pg) == CONNECTION_OK;
}

/* ---- reconnection -------------------------------------------------------- */

/* May this thread try to connect now? While the server is down only one
 * thread at a time probes, and only once the backoff has passed. */
static bool reconnect_allowed(struct iot_pg_pool *p, bool *probe)
{
    pthread_mutex_lock(&p->mu);
    bool down = p->backoff_ms > 0;
    bool allowed = !down || (!p->probing && iot_mono_us() >= p->retry_at_us);
    if (allowed && down)
        p->probing = true;
    pthread_mutex_unlock(&p->mu);
    *probe = allowed && down;
    return allowed;
}

/* Records the outcome of a connect attempt; logs only the transitions. */
static void reconnect_done(struct iot_pg_pool *p, bool probe, int rc, const char *why)
{
    pthread_mutex_lock(&p->mu);
    if (probe)
        p->probing = false;
    bool was_down = p->backoff_ms > 0;
    if (rc == IOT_OK) {
        p->backoff_ms = 0;
    } else if (!was_down || probe) {
        /* only the first failure and the probes advance the backoff: the
         * other connections failing at the same moment say nothing new */
        int next = p->backoff_ms * 2;
        p->backoff_ms = !was_down ? IOT_PG_BACKOFF_FIRST_MS
                                  : next > IOT_PG_BACKOFF_MAX_MS ? IOT_PG_BACKOFF_MAX_MS : next;
        p->retry_at_us = iot_mono_us() + (int64_t)p->backoff_ms * 1000;
    }
    pthread_mutex_unlock(&p->mu);
    if (rc == IOT_OK && was_down)
        IOT_INFO("postgres %s: connection restored", p->target);
    else if (rc != IOT_OK && !was_down)
        IOT_WARN("postgres %s: server unavailable (%s); retrying with backoff", p->target, why);
}

/* Makes a checked-out connection usable, reconnecting it if it is down. */
static int conn_ready(struct iot_pg_pool *p, struct iot_pg_conn *c)
{
    if (conn_alive(c))
        return IOT_OK;
    if (c->pg)
        IOT_DEBUG("postgres %s: connection lost, reconnecting", p->target);
    conn_drop(c);
    bool probe;
    if (!reconnect_allowed(p, &probe))
        return IOT_EUNAVAILABLE;
    char why[512];
    int rc = conn_connect(p, c, false, why, sizeof why);
    reconnect_done(p, probe, rc, why);
    return rc;
}

/* ---- checkout ------------------------------------------------------------ */

static int take_free(struct iot_pg_pool *p, struct iot_pg_conn **out)
{
    struct timespec until = iot_deadline_ms(CLOCK_MONOTONIC, IOT_PG_POOL_WAIT_MS);
    pthread_mutex_lock(&p->mu);
    int err = 0;
    while (p->nfree == 0 && err != ETIMEDOUT)
        err = pthread_cond_timedwait(&p->freed, &p->mu, &until);
    struct iot_pg_conn *c = p->nfree > 0 ? p->free[--p->nfree] : NULL;
    pthread_mutex_unlock(&p->mu);
    *out = c;
    return c ? IOT_OK : IOT_ETIMEOUT;
}

int iot_pg_get(struct iot_pg_pool *p, struct iot_pg_conn **out)
{
    struct iot_pg_conn *c;
    int rc = take_free(p, &c);
    if (rc)
        return rc;
    rc = conn_ready(p, c);
    if (rc) {
        iot_pg_put(p, c);
        return rc;
    }
    *out = c;
    return IOT_OK;
}

void iot_pg_put(struct iot_pg_pool *p, struct iot_pg_conn *c)
{
    /* a connection left inside a transaction is a bug upstream; never lend
     * it out like that */
    if (c->pg && !c->lost && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        c->lost = true;
    if (c->lost)
        conn_drop(c); /* free the socket now; reconnect at the next checkout */
    pthread_mutex_lock(&p->mu);
    p->free[p->nfree++] = c;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->mu);
}

/* ---- open / close -------------------------------------------------------- */

void iot_pg_pool_close(struct iot_pg_pool *p)
{
    if (!p)
        return;
    for (int i = 0; p->conns && i < p->size; i++)
        conn_drop(&p->conns[i]);
    free(p->conns);
    free(p->free);
    iot_pg_url_free(p->conninfo);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static int pool_alloc(char *conninfo, int size, const struct iot_pg_schema *schema,
                      struct iot_pg_pool **out)
{
    struct iot_pg_pool *p = calloc(1, sizeof *p);
    if (!p) {
        iot_pg_url_free(conninfo);
        return IOT_ENOMEM;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* waits immune to clock steps */
    pthread_cond_init(&p->freed, &attr);
    pthread_condattr_destroy(&attr);
    p->conninfo = conninfo;
    p->schema = schema;
    p->size = size;
    iot_pg_url_describe(conninfo, p->target, sizeof p->target);
    p->conns = calloc((size_t)size, sizeof *p->conns);
    p->free = calloc((size_t)size, sizeof *p->free);
    if (!p->conns || !p->free) {
        iot_pg_pool_close(p);
        return IOT_ENOMEM;
    }
    *out = p;
    return IOT_OK;
}

int iot_pg_pool_open(const char *url, const struct iot_pg_schema *schema,
                     struct iot_pg_pool **out)
{
    if (!url || !schema || !out)
        return IOT_EINVAL;
    *out = NULL;
    char *conninfo;
    int size;
    int rc = iot_pg_url_parse(url, &conninfo, &size);
    if (rc) {
        IOT_ERROR("postgres: invalid DATABASE_URL (a postgresql:// URL libpq accepts, with an "
                  "optional pool_size=1..%d)",
                  (int)IOT_PG_POOL_MAX);
        return rc;
    }
    struct iot_pg_pool *p;
    rc = pool_alloc(conninfo, size, schema, &p);
    if (rc)
        return rc;
    char why[512];
    for (int i = 0; i < size && rc == IOT_OK; i++) {
        rc = conn_connect(p, &p->conns[i], i == 0, why, sizeof why);
        if (rc == IOT_OK)
            p->free[p->nfree++] = &p->conns[i];
    }
    if (rc) {
        IOT_ERROR("postgres %s: cannot open the %s store: %s (%s)", p->target, schema->component,
                  iot_strerror(rc), why);
        iot_pg_pool_close(p);
        return rc;
    }
    IOT_INFO("postgres %s: %s store open, %d connections", p->target, schema->component, size);
    *out = p;
    return IOT_OK;
}
