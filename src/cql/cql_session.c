/* cql_session.c — the session's core: creation and teardown, the I/O thread
 * and its submission queue, dispatching a request along its query plan,
 * completing it (callback, paging continuation), deadlines, the retry policy
 * applied to failed attempts, and the transparent re-prepare on UNPREPARED.
 * Request building lives in cql_api.c, hosts and routing in cql_cluster.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cql/cql_retry.h"
#include "cql/cql_session_int.h"

_Thread_local const struct cql_session *cql_io_session;

/* A PREPARE sent on the connection that answered UNPREPARED, on behalf of
 * the request (parent) that will be re-sent once it succeeds. */
struct reprepare {
    struct cql_conn_req creq;
    struct cql_session *s;
    struct cql_req *parent; /* NULL once the parent completed (timeout) */
    struct cql_conn *conn;
    const struct cql_prepared_stmt *ps;
    struct cql_buf frame;
};

static void on_req_done(struct cql_conn_req *creq, int rc, const uint8_t *frame, size_t len);
static void on_req_timeout(struct cql_timer *t);

/* ---- requests -------------------------------------------------------------- */

struct cql_req *cql_req_new(struct cql_session *s, uint8_t kind, cql_callback cb, void *ctx)
{
    struct cql_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->s = s;
    r->spec.kind = kind;
    r->cb = cb;
    r->ctx = ctx;
    r->creq.done = on_req_done;
    r->creq.stream = -1;
    r->timer.fn = on_req_timeout;
    return r;
}

void cql_req_free(struct cql_req *r)
{
    if (!r)
        return;
    cql_spec_free(&r->spec);
    cql_reply_free(r->last_error);
    free(r);
}

static void detach_child(struct cql_req *r)
{
    if (r->child) {
        r->child->parent = NULL;
        r->child = NULL;
    }
}

/* Moves the request's spec into the reply so that the next page can be
 * asked for (cql_session_next_page). */
static void keep_for_paging(struct cql_req *r, struct cql_reply *reply)
{
    if ((r->spec.kind != RK_QUERY && r->spec.kind != RK_EXECUTE) ||
        !cql_reply_has_more_pages(reply))
        return;
    struct cql_spec *next = malloc(sizeof *next);
    if (!next)
        return; /* the page is still good; only next_page will refuse */
    *next = r->spec;
    r->spec.frame = (struct cql_buf){0};
    reply->next = next;
}

/* The end of a request: the callback gets rc and reply, then r is freed. */
static void complete(struct cql_session *s, struct cql_req *r, int rc, struct cql_reply *reply)
{
    cql_timer_stop(s->loop, &r->timer);
    detach_child(r);
    if (r->last_error == reply)
        r->last_error = NULL;
    if (reply) {
        reply->rc = rc;
        if (r->host)
            snprintf(reply->host, sizeof reply->host, "%s", r->host->name);
        if (rc == CQL_OK)
            keep_for_paging(r, reply);
    }
    cql_callback cb = r->cb;
    void *ctx = r->ctx;
    bool internal = r->internal;
    cql_req_free(r);
    if (!internal) {
        atomic_fetch_sub(&s->pending, 1);
        atomic_fetch_add(&s->n_completed, 1);
        if (rc)
            atomic_fetch_add(&s->n_failed, 1);
    }
    cb(rc, reply, ctx);
}

/* Every host of the plan was tried (or none was usable). */
static void fail_exhausted(struct cql_session *s, struct cql_req *r)
{
    struct cql_reply *last = r->last_error;
    if (last) {
        complete(s, r, last->rc, last);
        return;
    }
    complete(s, r, CQL_E_NO_HOST,
             cql_reply_client(CQL_E_NO_HOST, "no host available (%u known, none up)", s->n_hosts));
}

static void complete_cached_prepare(struct cql_session *s, struct cql_req *r)
{
    struct cql_reply *reply = cql_reply_client(CQL_OK, "%s", "");
    if (reply)
        reply->prepared = r->spec.ps;
    complete(s, r, reply ? CQL_OK : CQL_E_NOMEM, reply);
}

void cql_session_dispatch(struct cql_session *s, struct cql_req *r)
{
    if (s->stopping) {
        complete(s, r, CQL_E_SHUTDOWN,
                 cql_reply_client(CQL_E_SHUTDOWN, "%s", "session is shutting down"));
        return;
    }
    if (r->spec.kind == RK_PREPARE && r->spec.ps) {
        complete_cached_prepare(s, r);
        return;
    }
    if (r->internal) {
        if (r->pinned && cql_conn_send(r->pinned, &r->creq) == CQL_OK) {
            r->conn = r->pinned;
            return;
        }
        complete(s, r, CQL_E_CLOSED,
                 cql_reply_client(CQL_E_CLOSED, "%s", "control connection lost"));
        return;
    }
    if (!r->plan_built) {
        cql_cluster_build_plan(s, r);
        r->plan_built = true;
    }
    while (r->plan_pos < r->plan_len) {
        struct cql_host *h = s->hosts[r->plan[r->plan_pos]];
        struct cql_conn *c = cql_host_usable(h) ? cql_host_pick_conn(h) : NULL;
        if (c && cql_conn_send(c, &r->creq) == CQL_OK) {
            r->host = h;
            r->conn = c;
            return;
        }
        r->plan_pos++;
    }
    fail_exhausted(s, r);
}

/* ---- failed attempts: retry policy ------------------------------------------ */

static void keep_error(struct cql_req *r, struct cql_reply *reply)
{
    if (r->last_error != reply)
        cql_reply_free(r->last_error);
    r->last_error = reply;
}

static void apply_retry(struct cql_session *s, struct cql_req *r, struct cql_reply *reply,
                        const struct cql_error_body *srv)
{
    struct cql_retry_in in = {
        .err = reply->rc,
        .srv = srv,
        .idempotent = r->spec.idempotent,
        .retries = r->retries,
    };
    enum cql_retry_action action = r->internal ? CQL_RETRY_FAIL : cql_retry_decide(&in);
    if (action == CQL_RETRY_FAIL) {
        complete(s, r, reply->rc, reply);
        return;
    }
    r->retries++;
    atomic_fetch_add(&s->n_retries, 1);
    keep_error(r, reply);
    if (action == CQL_RETRY_NEXT_HOST)
        r->plan_pos++;
    cql_session_dispatch(s, r);
}

/* The connection closed under the request (CLOSED) or before it left
 * (NOT_SENT: always safe to send elsewhere, not a retry). */
static void on_conn_failure(struct cql_session *s, struct cql_req *r, int rc, struct cql_conn *c)
{
    struct cql_reply *reply =
        cql_reply_client(CQL_E_CLOSED, "connection to %s closed: %s", c ? cql_conn_name(c) : "?",
                         c ? cql_conn_error_text(c) : "");
    if (!reply) {
        complete(s, r, CQL_E_NOMEM, NULL);
        return;
    }
    if (rc == CQL_E_NOT_SENT && !r->internal) {
        atomic_fetch_add(&s->n_redispatched, 1);
        keep_error(r, reply);
        r->plan_pos++;
        cql_session_dispatch(s, r);
        return;
    }
    apply_retry(s, r, reply, NULL);
}

/* ---- re-prepare ----------------------------------------------------------- */

static void reprepare_free(struct reprepare *rp)
{
    cql_buf_free(&rp->frame);
    free(rp);
}

/* The re-PREPARE answered: re-send the parent on the same connection. */
static void on_reprepare_done(struct cql_conn_req *creq, int rc, const uint8_t *frame, size_t len)
{
    struct reprepare *rp = (struct reprepare *)((char *)creq - offsetof(struct reprepare, creq));
    struct cql_req *r = rp->parent;
    struct cql_session *s = rp->s;
    struct cql_conn *conn = rp->conn;
    const struct cql_prepared_stmt *ps = rp->ps;
    reprepare_free(rp);
    if (!r)
        return;
    r->child = NULL;
    if (rc != CQL_OK) { /* the EXECUTE was refused, never applied: go on */
        r->plan_pos++;
        cql_session_dispatch(s, r);
        return;
    }
    struct cql_reply *reply = cql_reply_from_frame(frame, len);
    if (!reply || reply->rc) {
        complete(s, r, reply ? reply->rc : CQL_E_NOMEM, reply);
        return;
    }
    struct cql_slice old_id = ps->msg.result.prepared.id;
    bool same = cql_reply_kind(reply) == CQL_RESULT_PREPARED &&
                reply->msg.result.prepared.id.len == old_id.len &&
                memcmp(reply->msg.result.prepared.id.ptr, old_id.ptr, old_id.len) == 0;
    cql_reply_free(reply);
    if (!same) { /* ids are a hash of the text: only a schema change does this */
        complete(s, r, r->last_error->rc, r->last_error);
        return;
    }
    if (cql_conn_is_ready(conn) && cql_conn_send(conn, &r->creq) == CQL_OK) {
        r->conn = conn;
        return;
    }
    cql_session_dispatch(s, r);
}

static void start_reprepare(struct cql_session *s, struct cql_req *r, struct cql_reply *reply,
                            struct cql_conn *conn)
{
    const struct cql_prepared_stmt *ps = cql_prepared_find_id(s, reply->msg.error.unprepared_id);
    struct reprepare *rp = ps ? calloc(1, sizeof *rp) : NULL;
    if (rp && cql_build_prepare(&rp->frame, 0, (struct cql_str){ps->query, ps->query_len}) == 0) {
        rp->creq = (struct cql_conn_req){
            .frame = rp->frame.data, .len = rp->frame.len, .done = on_reprepare_done, .stream = -1};
        rp->s = s;
        rp->conn = conn;
        rp->ps = ps;
        if (cql_conn_send(conn, &rp->creq) == CQL_OK) {
            rp->parent = r;
            r->child = rp;
            r->reprepares_left--;
            atomic_fetch_add(&s->n_reprepares, 1);
            keep_error(r, reply);
            return;
        }
    }
    if (rp)
        reprepare_free(rp);
    complete(s, r, reply->rc, reply);
}

/* ---- responses ------------------------------------------------------------- */

static void on_result(struct cql_session *s, struct cql_req *r, struct cql_reply *reply)
{
    if (r->spec.kind == RK_PREPARE && cql_reply_kind(reply) == CQL_RESULT_PREPARED) {
        const char *text = (const char *)r->spec.frame.data + r->spec.text_off;
        reply->prepared =
            cql_prepared_insert(s, text, r->spec.text_len, reply->frame, reply->frame_len);
        if (!reply->prepared) {
            cql_reply_free(reply);
            complete(s, r, CQL_E_TOO_LARGE,
                     cql_reply_client(CQL_E_TOO_LARGE, "prepared statement cache full (%u)",
                                      s->cfg.max_prepared));
            return;
        }
    }
    if (cql_reply_kind(reply) == CQL_RESULT_SCHEMA_CHANGE && !r->internal && s->n_hosts > 1) {
        cql_timer_stop(s->loop, &r->timer); /* the agreement wait has its own bound */
        cql_control_await_schema(s, r, reply);
        return;
    }
    complete(s, r, CQL_OK, reply);
}

void cql_session_complete_ok(struct cql_session *s, struct cql_req *r, struct cql_reply *reply)
{
    complete(s, r, CQL_OK, reply);
}

static void on_server_error(struct cql_session *s, struct cql_req *r, struct cql_reply *reply,
                            struct cql_conn *conn)
{
    if (reply->rc == CQL_E_SRV_UNPREPARED && r->reprepares_left > 0 && conn &&
        cql_conn_is_ready(conn)) {
        start_reprepare(s, r, reply, conn);
        return;
    }
    apply_retry(s, r, reply, &reply->msg.error);
}

static void on_req_done(struct cql_conn_req *creq, int rc, const uint8_t *frame, size_t len)
{
    struct cql_req *r = (struct cql_req *)((char *)creq - offsetof(struct cql_req, creq));
    struct cql_session *s = r->s;
    struct cql_conn *conn = r->conn;
    r->conn = NULL;
    if (rc != CQL_OK) {
        on_conn_failure(s, r, rc, conn);
        return;
    }
    if (r->host)
        atomic_fetch_add(&r->host->served, 1);
    struct cql_reply *reply = cql_reply_from_frame(frame, len);
    if (!reply)
        complete(s, r, CQL_E_NOMEM, NULL);
    else if (reply->rc == CQL_OK)
        on_result(s, r, reply);
    else if (!reply->decoded)
        complete(s, r, reply->rc, reply);
    else
        on_server_error(s, r, reply, conn);
}

static void on_req_timeout(struct cql_timer *t)
{
    struct cql_req *r = (struct cql_req *)((char *)t - offsetof(struct cql_req, timer));
    struct cql_session *s = r->s;
    if (r->conn) {
        cql_conn_abandon(r->conn, &r->creq);
        r->conn = NULL;
    }
    if (!r->internal)
        atomic_fetch_add(&s->n_timeouts, 1);
    complete(s, r, CQL_E_TIMEOUT,
             cql_reply_client(CQL_E_TIMEOUT, "request timed out after %u ms%s%s",
                              r->spec.timeout_ms, r->host ? " waiting for " : "",
                              r->host ? r->host->name : ""));
}

/* Arms the deadline and sends (I/O thread, right after dequeueing). */
static void start_req(struct cql_session *s, struct cql_req *r)
{
    if (cql_timer_start(s->loop, &r->timer, r->deadline_ns)) {
        complete(s, r, CQL_E_NOMEM, NULL);
        return;
    }
    cql_session_dispatch(s, r);
}

int cql_session_control_query(struct cql_session *s, const char *cql, cql_callback cb)
{
    struct cql_req *r = cql_req_new(s, RK_CONTROL, cb, s);
    if (!r)
        return CQL_E_NOMEM;
    r->internal = true;
    r->pinned = s->control;
    r->spec.timeout_ms = s->cfg.request_timeout_ms;
    struct cql_query_params p = {.consistency = CQL_CONSISTENCY_ONE};
    int rc = cql_build_query(&r->spec.frame, 0, cql_str_c(cql), &p);
    if (rc) {
        cql_req_free(r);
        return rc;
    }
    r->creq.frame = r->spec.frame.data;
    r->creq.len = r->spec.frame.len;
    r->deadline_ns = cql_now_ns() + (uint64_t)r->spec.timeout_ms * 1000000u;
    start_req(s, r);
    return CQL_OK;
}

/* ---- submission queue ------------------------------------------------------ */

int cql_session_submit_req(struct cql_session *s, struct cql_req *r)
{
    r->creq.frame = r->spec.frame.data;
    r->creq.len = r->spec.frame.len;
    r->deadline_ns = cql_now_ns() + (uint64_t)r->spec.timeout_ms * 1000000u;
    if (atomic_fetch_add(&s->pending, 1) >= s->cfg.max_pending) {
        atomic_fetch_sub(&s->pending, 1);
        return CQL_E_QUEUE_FULL;
    }
    bool on_io = cql_io_session == s, wake = false;
    pthread_mutex_lock(&s->qlock);
    if (s->stop_requested) {
        pthread_mutex_unlock(&s->qlock);
        atomic_fetch_sub(&s->pending, 1);
        return CQL_E_SHUTDOWN;
    }
    r->qnext = NULL;
    if (s->qtail)
        s->qtail->qnext = r;
    else
        s->qhead = r;
    s->qtail = r;
    if (!on_io && !s->wake_pending)
        wake = s->wake_pending = true;
    pthread_mutex_unlock(&s->qlock);
    atomic_fetch_add(&s->n_submitted, 1);
    if (wake)
        cql_loop_wake(s->loop);
    return CQL_OK;
}

/* Takes everything queued and starts it; returns true once stop was asked. */
static bool drain(struct cql_session *s)
{
    pthread_mutex_lock(&s->qlock);
    struct cql_req *r = s->qhead;
    s->qhead = s->qtail = NULL;
    s->wake_pending = false;
    bool connect = s->connect_requested, stop = s->stop_requested;
    s->connect_requested = false;
    pthread_mutex_unlock(&s->qlock);
    if (connect && !s->stopping)
        cql_cluster_start(s);
    while (r) {
        struct cql_req *next = r->qnext;
        start_req(s, r);
        r = next;
    }
    return stop;
}

static void on_wake(void *arg)
{
    drain(arg);
}

static void io_shutdown(struct cql_session *s)
{
    s->stopping = true;
    drain(s); /* dispatch refuses: every queued request completes */
    cql_cluster_shutdown(s);
    cql_session_connect_done(s, CQL_E_SHUTDOWN, "session is shutting down");
    for (int i = 0; i < 3; i++) /* deferred frees of the closed connections */
        cql_loop_run_once(s->loop, 0);
}

static void *io_main(void *arg)
{
    struct cql_session *s = arg;
    cql_io_session = s;
    while (!drain(s)) {
        if (cql_loop_run_once(s->loop, 1000))
            break;
        cql_cluster_publish_stats(s);
    }
    io_shutdown(s);
    return NULL;
}

/* ---- connect ---------------------------------------------------------------- */

void cql_session_connect_done(struct cql_session *s, int rc, const char *text)
{
    pthread_mutex_lock(&s->clock);
    if (s->phase == CP_CONNECTING) {
        s->phase = CP_DONE;
        s->connect_rc = rc;
        snprintf(s->connect_text, sizeof s->connect_text, "%s", text ? text : "");
        pthread_cond_broadcast(&s->ccond);
    }
    pthread_mutex_unlock(&s->clock);
}

static struct timespec deadline_in_ms(uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int cql_session_connect(struct cql_session *s)
{
    if (cql_io_session == s)
        return CQL_E_INVALID;
    pthread_mutex_lock(&s->clock);
    s->phase = CP_CONNECTING;
    s->connect_rc = CQL_OK;
    s->connect_text[0] = '\0';
    pthread_mutex_unlock(&s->clock);

    pthread_mutex_lock(&s->qlock);
    s->connect_requested = true;
    pthread_mutex_unlock(&s->qlock);
    cql_loop_wake(s->loop);

    uint64_t ms = (uint64_t)s->cfg.connect_timeout_ms * (s->n_contacts + 2);
    struct timespec until = deadline_in_ms(ms);
    pthread_mutex_lock(&s->clock);
    while (s->phase == CP_CONNECTING)
        if (pthread_cond_timedwait(&s->ccond, &s->clock, &until) != 0)
            break;
    if (s->phase == CP_CONNECTING) {
        s->phase = CP_DONE;
        s->connect_rc = CQL_E_TIMEOUT;
        snprintf(s->connect_text, sizeof s->connect_text,
                 "no contact point answered within %llu ms", (unsigned long long)ms);
    }
    int rc = s->connect_rc;
    pthread_mutex_unlock(&s->clock);
    return rc;
}

const char *cql_session_error_text(struct cql_session *s)
{
    return s->connect_text;
}

/* ---- creation and teardown --------------------------------------------------- */

static char *dup_or_null(const char *p)
{
    return p ? strdup(p) : NULL;
}

static void or_default(uint32_t *v, uint32_t dflt)
{
    if (*v == 0)
        *v = dflt;
}

static int copy_config(struct cql_session *s, const struct cql_session_config *cfg,
                       const char **err_text)
{
    s->cfg = *cfg;
    struct cql_session_config *c = &s->cfg;
    if (!cfg->contact_points || !*cfg->contact_points) {
        *err_text = "no contact points";
        return CQL_E_INVALID;
    }
    if (c->consistency == 0 || c->consistency == CQL_CONSISTENCY_DEFAULT)
        c->consistency = CQL_CONSISTENCY_LOCAL_ONE;
    if (c->consistency > CQL_CONSISTENCY_LOCAL_ONE ||
        (c->serial_consistency && c->serial_consistency != CQL_CONSISTENCY_SERIAL &&
         c->serial_consistency != CQL_CONSISTENCY_LOCAL_SERIAL)) {
        *err_text = "bad consistency";
        return CQL_E_INVALID;
    }
    if (c->connections_per_host > CQL_MAX_POOL) {
        *err_text = "connections_per_host above 64";
        return CQL_E_INVALID;
    }
    or_default(&c->request_timeout_ms, 12000);
    or_default(&c->connect_timeout_ms, 5000);
    or_default(&c->connections_per_host, 1);
    or_default(&c->max_pending, 262144);
    or_default(&c->reconnect_base_ms, 100);
    or_default(&c->reconnect_max_ms, 10000);
    or_default(&c->max_prepared, 4096);
    s->contact_points = strdup(cfg->contact_points);
    s->user = dup_or_null(cfg->user);
    s->password = dup_or_null(cfg->password);
    s->keyspace = dup_or_null(cfg->keyspace);
    if (!s->contact_points || (cfg->user && !s->user) || (cfg->password && !s->password) ||
        (cfg->keyspace && !s->keyspace)) {
        *err_text = "out of memory";
        return CQL_E_NOMEM;
    }
    c->contact_points = s->contact_points;
    c->user = s->user;
    c->password = s->password;
    c->keyspace = s->keyspace;
    return CQL_OK;
}

static void init_locks(struct cql_session *s)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->qlock, NULL);
    pthread_mutex_init(&s->clock, NULL);
    pthread_mutex_init(&s->info_lock, NULL);
    pthread_mutex_init(&s->prep_lock, NULL);
    pthread_cond_init(&s->ccond, &attr);
    pthread_condattr_destroy(&attr);
}

int cql_session_new(const struct cql_session_config *cfg, struct cql_session **out,
                    const char **err_text)
{
    const char *dummy;
    if (!err_text)
        err_text = &dummy;
    *err_text = "";
    struct cql_session *s = calloc(1, sizeof *s);
    if (!s) {
        *err_text = "out of memory";
        return CQL_E_NOMEM;
    }
    init_locks(s);
    s->rng = (uint64_t)cql_now_ns() | 1;
    int rc = copy_config(s, cfg, err_text);
    if (rc == CQL_OK)
        rc = cql_cluster_add_contacts(s, s->contact_points, err_text);
    if (rc == CQL_OK && (rc = cql_loop_new(on_wake, s, &s->loop)))
        *err_text = "cannot create epoll/eventfd";
    if (rc == CQL_OK && pthread_create(&s->thread, NULL, io_main, s) != 0) {
        *err_text = "cannot start the I/O thread";
        rc = CQL_E_NOMEM;
    }
    if (rc) {
        cql_session_free(s);
        return rc;
    }
    s->thread_started = true;
    *out = s;
    return CQL_OK;
}

void cql_session_free(struct cql_session *s)
{
    if (!s)
        return;
    if (cql_io_session == s) { /* it would wait for its own thread */
        fprintf(stderr, "cql_session_free called from a completion callback\n");
        abort();
    }
    if (s->thread_started) {
        pthread_mutex_lock(&s->qlock);
        s->stop_requested = true;
        pthread_mutex_unlock(&s->qlock);
        cql_loop_wake(s->loop);
        pthread_join(s->thread, NULL);
    }
    cql_cluster_free(s);
    cql_prepared_free_all(s);
    cql_loop_free(s->loop);
    free(s->contact_points);
    free(s->user);
    free(s->password);
    free(s->keyspace);
    pthread_cond_destroy(&s->ccond);
    pthread_mutex_destroy(&s->qlock);
    pthread_mutex_destroy(&s->clock);
    pthread_mutex_destroy(&s->info_lock);
    pthread_mutex_destroy(&s->prep_lock);
    free(s);
}

void cql_session_stats(struct cql_session *s, struct cql_session_stats *out)
{
    pthread_mutex_lock(&s->info_lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->info_lock);
    out->submitted = atomic_load(&s->n_submitted);
    out->completed = atomic_load(&s->n_completed);
    out->failed = atomic_load(&s->n_failed);
    out->timeouts = atomic_load(&s->n_timeouts);
    out->retries = atomic_load(&s->n_retries);
    out->reprepares = atomic_load(&s->n_reprepares);
    out->redispatched = atomic_load(&s->n_redispatched);
    out->pending = atomic_load(&s->pending);
}
