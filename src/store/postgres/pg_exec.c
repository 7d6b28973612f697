/* pg_exec.c — running statements on a pooled connection: parameters, the
 * send-and-wait loop under a client-side deadline, the SQLSTATE mapping,
 * result readers, transactions and the run-on-a-pooled-connection helpers.
 *
 * Why libpq's asynchronous calls (PQsendQueryPrepared and a poll loop) rather
 * than PQexecPrepared: the blocking call waits forever when the network
 * swallows packets, because statement_timeout is enforced by a server that
 * can no longer tell us. Polling the socket ourselves bounds every wait by
 * IOT_PG_IO_MS; the statement is still the one prepared at connect. */
#include "store/postgres/pg_pool.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/postgres/pg_conn.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

/* ---- parameters ---------------------------------------------------------- */

static int next_param(struct iot_pg_params *p)
{
    if (p->n >= IOT_PG_MAX_PARAMS) {
        p->overflow = true;
        return -1;
    }
    return p->n++;
}

static void set_param(struct iot_pg_params *p, const char *v, int len, int format)
{
    int i = next_param(p);
    if (i < 0)
        return;
    p->values[i] = v;
    p->lengths[i] = len;
    p->formats[i] = format;
}

void iot_pg_param_int(struct iot_pg_params *p, int64_t v)
{
    int i = next_param(p);
    if (i < 0)
        return;
    snprintf(p->num[i], sizeof p->num[i], "%" PRId64, v);
    p->values[i] = p->num[i];
    p->lengths[i] = 0;
    p->formats[i] = 0;
}

void iot_pg_param_bool(struct iot_pg_params *p, bool v) { set_param(p, v ? "t" : "f", 0, 0); }

void iot_pg_param_null(struct iot_pg_params *p) { set_param(p, NULL, 0, 0); }

void iot_pg_param_time(struct iot_pg_params *p, int64_t ms)
{
    if (ms)
        iot_pg_param_int(p, ms);
    else
        iot_pg_param_null(p);
}

/* Binary format: for text the bytes themselves, length explicit. */
void iot_pg_param_text(struct iot_pg_params *p, const char *s, size_t cap)
{
    set_param(p, s, (int)strnlen(s, cap - 1), 1);
}

void iot_pg_param_literal(struct iot_pg_params *p, const char *s) { set_param(p, s, 0, 0); }

/* ---- errors -------------------------------------------------------------- */

/* Class 08 (connection exception) and the shutdown codes of class 57: the
 * session is gone, whatever libpq's status still says. */
static bool sqlstate_is_disconnect(const char *s)
{
    return s && (strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 ||
                 strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0);
}

static int map_sqlstate(const char *s)
{
    if (!s)
        return IOT_EINTERNAL;
    if (strcmp(s, "23505") == 0) /* unique_violation */
        return IOT_ECONFLICT;
    if (strcmp(s, "23503") == 0) /* foreign_key_violation: the row referred to is missing */
        return IOT_ENOTFOUND;
    if (strncmp(s, "23", 2) == 0 || strncmp(s, "22", 2) == 0) /* integrity, data */
        return IOT_EINVAL;
    /* statement_timeout, lock_not_available, serialization_failure, deadlock:
     * the server is fine, this attempt ran out of luck or time */
    if (strcmp(s, "57014") == 0 || strcmp(s, "55P03") == 0 || strcmp(s, "40001") == 0 ||
        strcmp(s, "40P01") == 0)
        return IOT_ETIMEOUT;
    if (strncmp(s, "53", 2) == 0) /* insufficient resources: disk full, too many connections */
        return IOT_EUNAVAILABLE;
    return IOT_EINTERNAL;
}

static int mark_lost(struct iot_pg_conn *c)
{
    c->lost = true;
    return IOT_EUNAVAILABLE;
}

/* IOT_OK for a successful result, else the mapped error. */
static int result_status(struct iot_pg_conn *c, const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY)
        return IOT_OK;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (PQstatus(c->pg) == CONNECTION_BAD || sqlstate_is_disconnect(state))
        return mark_lost(c);
    int rc = map_sqlstate(state);
    if (rc == IOT_EINTERNAL) {
        /* a bug or a schema out of step: worth a line. The primary message
         * names objects and values, never connection parameters. */
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        IOT_WARN("postgres: statement failed: SQLSTATE %s: %s", state ? state : "-",
                 msg ? msg : "-");
    }
    return rc;
}

/* ---- send and wait ------------------------------------------------------- */

static int64_t deadline_after_ms(int ms) { return iot_mono_us() + (int64_t)ms * 1000; }

/* Waits until libpq has sent the whole request and holds a whole result (or
 * the connection broke, which PQgetResult then reports). */
static int wait_for_result(struct iot_pg_conn *c, int64_t deadline_us)
{
    for (;;) {
        int unsent = PQflush(c->pg);
        if (unsent < 0)
            return mark_lost(c);
        if (unsent == 0 && !PQisBusy(c->pg))
            return IOT_OK;
        int64_t left_us = deadline_us - iot_mono_us();
        if (left_us <= 0) {
            /* no answer in time: the connection is in an unknown state, so
             * it is replaced, not reused */
            c->lost = true;
            return IOT_ETIMEOUT;
        }
        struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN};
        if (unsent)
            pfd.events |= POLLOUT;
        if (pfd.fd < 0)
            return mark_lost(c);
        int n = poll(&pfd, 1, (int)((left_us + 999) / 1000));
        if (n < 0 && errno != EINTR)
            return mark_lost(c);
        if (n > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(c->pg))
            return mark_lost(c);
    }
}

/* Collects the results of what was sent; keeps the first failed one if any
 * (a multi-statement command stops there), else the first. */
static int collect(struct iot_pg_conn *c, PGresult **out)
{
    int64_t deadline = deadline_after_ms(IOT_PG_IO_MS);
    PGresult *kept = NULL;
    int rc = IOT_OK, status = IOT_OK;
    for (;;) {
        rc = wait_for_result(c, deadline);
        if (rc)
            break;
        PGresult *r = PQgetResult(c->pg);
        if (!r)
            break;
        int st = result_status(c, r);
        if (!kept || (status == IOT_OK && st != IOT_OK)) {
            PQclear(kept);
            kept = r;
            status = st;
        } else {
            PQclear(r);
        }
        if (c->lost)
            break; /* nothing more will come */
    }
    if (rc == IOT_OK)
        rc = kept ? status : IOT_EINTERNAL;
    if (rc != IOT_OK || !out) {
        PQclear(kept);
        kept = NULL;
    }
    if (out)
        *out = kept;
    return rc;
}

/* A PQsend* call returned 0: the connection is gone, or we misused it. */
static int send_failed(struct iot_pg_conn *c)
{
    if (PQstatus(c->pg) == CONNECTION_BAD)
        return mark_lost(c);
    IOT_WARN("postgres: cannot send a statement on a healthy connection");
    return mark_lost(c); /* do not trust it any further */
}

static int usable(const struct iot_pg_conn *c)
{
    return c->pg && !c->lost ? IOT_OK : IOT_EUNAVAILABLE;
}

int iot_pg_exec(struct iot_pg_conn *c, int stmt, const struct iot_pg_params *params,
                PGresult **out)
{
    *out = NULL;
    if (params && params->overflow)
        return IOT_EINTERNAL;
    int rc = usable(c);
    if (rc)
        return rc;
    char name[16];
    iot_pg_stmt_name(stmt, name, sizeof name);
    int n = params ? params->n : 0;
    if (!PQsendQueryPrepared(c->pg, name, n, n ? params->values : NULL,
                             n ? params->lengths : NULL, n ? params->formats : NULL, 0))
        return send_failed(c);
    return collect(c, out);
}

int iot_pg_query(struct iot_pg_conn *c, const char *sql, const struct iot_pg_params *params,
                 PGresult **out)
{
    *out = NULL;
    if (params && params->overflow)
        return IOT_EINTERNAL;
    int rc = usable(c);
    if (rc)
        return rc;
    int n = params ? params->n : 0;
    if (!PQsendQueryParams(c->pg, sql, n, NULL, n ? params->values : NULL,
                           n ? params->lengths : NULL, n ? params->formats : NULL, 0))
        return send_failed(c);
    return collect(c, out);
}

int iot_pg_command(struct iot_pg_conn *c, const char *sql)
{
    int rc = usable(c);
    if (rc)
        return rc;
    if (!PQsendQuery(c->pg, sql))
        return send_failed(c);
    return collect(c, NULL);
}

int iot_pg_conn_prepare(struct iot_pg_conn *c, const char *name, const char *sql)
{
    int rc = usable(c);
    if (rc)
        return rc;
    if (!PQsendPrepare(c->pg, name, sql, 0, NULL))
        return send_failed(c);
    return collect(c, NULL);
}

/* ---- transactions -------------------------------------------------------- */

int iot_pg_begin(struct iot_pg_conn *c, bool snapshot)
{
    return iot_pg_command(c, snapshot ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                                      : "BEGIN");
}

int iot_pg_end(struct iot_pg_conn *c, int rc)
{
    if (c->lost || !c->pg)
        return rc ? rc : IOT_EUNAVAILABLE;
    if (rc == IOT_OK)
        rc = iot_pg_command(c, "COMMIT");
    if (rc != IOT_OK && !c->lost && PQtransactionStatus(c->pg) != PQTRANS_IDLE &&
        iot_pg_command(c, "ROLLBACK") != IOT_OK)
        c->lost = true; /* never hand out a connection stuck in a transaction */
    return rc;
}

/* ---- results ------------------------------------------------------------- */

int64_t iot_pg_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

bool iot_pg_bool(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

void iot_pg_text(const PGresult *r, int row, int col, char *dst, size_t cap)
{
    size_t n = PQgetisnull(r, row, col) ? 0 : (size_t)PQgetlength(r, row, col);
    if (n > cap - 1)
        n = cap - 1;
    if (n)
        memcpy(dst, PQgetvalue(r, row, col), n);
    dst[n] = '\0';
}

int64_t iot_pg_changed(const PGresult *r)
{
    const char *s = PQcmdTuples((PGresult *)r); /* libpq's prototype is not const */
    return s[0] ? strtoll(s, NULL, 10) : 0;
}

/* ---- work on a pooled connection ----------------------------------------- */

int iot_pg_with_conn(struct iot_pg_pool *p, unsigned flags, iot_pg_job_fn fn, void *arg)
{
    int attempts = (flags & IOT_PG_RETRY) ? 2 : 1;
    int rc = IOT_EUNAVAILABLE;
    for (int i = 0; i < attempts; i++) {
        struct iot_pg_conn *c;
        rc = iot_pg_get(p, &c);
        if (rc)
            return rc;
        rc = fn(c, arg);
        bool lost = c->lost;
        iot_pg_put(p, c);
        /* only a broken connection is worth a second try; a timeout would
         * just double the wait */
        if (!(rc == IOT_EUNAVAILABLE && lost))
            break;
    }
    return rc;
}

struct run_one {
    int stmt;
    const struct iot_pg_params *params;
    iot_pg_row_fn rd;
    void *out;
    int64_t *changed;
};

static int run_one_job(struct iot_pg_conn *c, void *arg)
{
    struct run_one *job = arg;
    PGresult *res;
    int rc = iot_pg_exec(c, job->stmt, job->params, &res);
    if (rc)
        return rc;
    if (job->rd) {
        if (PQntuples(res) > 0)
            job->rd(res, 0, job->out);
        else
            rc = IOT_ENOTFOUND;
    }
    if (job->changed)
        *job->changed = iot_pg_changed(res);
    PQclear(res);
    return rc;
}

int iot_pg_run(struct iot_pg_pool *p, int stmt, const struct iot_pg_params *params,
               unsigned flags, iot_pg_row_fn rd, void *out, int64_t *changed)
{
    struct run_one job = {
        .stmt = stmt, .params = params, .rd = rd, .out = out, .changed = changed};
    return iot_pg_with_conn(p, flags, run_one_job, &job);
}
