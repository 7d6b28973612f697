/* cql_control.c — the control connection: one connection (apart from the
 * pools) that registers for TOPOLOGY_CHANGE and STATUS_CHANGE events, reads
 * system.local and system.peers (rpc_address, data_center, tokens) at start,
 * after reconnecting and after topology events, and turns them into hosts
 * and the token ring (cql_cluster.c). STATUS_CHANGE DOWN/UP mark hosts. It
 * moves to another host when its own fails. I/O thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cql/cql_session_int.h"

#define LOCAL_QUERY "SELECT rpc_address, data_center, tokens FROM system.local"
#define PEERS_QUERY "SELECT peer, rpc_address, data_center, tokens FROM system.peers"
#define REFRESH_DELAY_MS 1000
#define MAX_TOKENS_PER_HOST 65536

static const struct cql_str control_events[] = {
    {"TOPOLOGY_CHANGE", 15},
    {"STATUS_CHANGE", 13},
};

static void control_connect(struct cql_session *s);

/* ---- reading system.local / system.peers --------------------------------- */

static int column_index(const struct cql_rows *rows, const char *name)
{
    for (int32_t i = 0; i < rows->meta.n_columns && rows->meta.columns; i++)
        if (cql_str_eq(rows->meta.columns[i].name, name))
            return i;
    return -1;
}

/* A set<text> of decimal tokens into a new array. */
static int parse_tokens(struct cql_value v, int64_t **out, uint32_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    struct cql_coll_iter it;
    int32_t count;
    if (v.len < 0)
        return CQL_OK;
    int rc = cql_coll_open(v, &it, &count);
    if (rc)
        return rc;
    if (count > MAX_TOKENS_PER_HOST)
        return CQL_E_TOO_LARGE;
    int64_t *t = malloc(((size_t)count + 1) * sizeof *t);
    if (!t)
        return CQL_E_NOMEM;
    struct cql_value e;
    uint32_t n = 0;
    while (cql_coll_next(&it, &e)) {
        char buf[32];
        char *end;
        if (e.len <= 0 || (size_t)e.len >= sizeof buf)
            continue;
        memcpy(buf, e.ptr, (size_t)e.len);
        buf[e.len] = '\0';
        long long v64 = strtoll(buf, &end, 10);
        if (*end == '\0')
            t[n++] = v64;
    }
    *out = t;
    *n_out = n;
    return CQL_OK;
}

struct row_cols {
    int peer, rpc, dc, tokens;
};

static struct row_cols find_cols(const struct cql_rows *rows)
{
    return (struct row_cols){
        .peer = column_index(rows, "peer"),
        .rpc = column_index(rows, "rpc_address"),
        .dc = column_index(rows, "data_center"),
        .tokens = column_index(rows, "tokens"),
    };
}

static void update_host(struct cql_host *h, const struct cql_value *cells, struct row_cols c)
{
    int64_t *tokens;
    uint32_t n;
    if (c.tokens < 0 || parse_tokens(cells[c.tokens], &tokens, &n))
        return;
    struct cql_str dc = {"", 0};
    if (c.dc >= 0)
        cql_decode_text(cells[c.dc], &dc);
    cql_cluster_set_tokens(h, tokens, n, dc);
}

/* The address a peer row names: rpc_address unless unset or 0.0.0.0. */
static bool row_address(const struct cql_value *cells, struct row_cols c, struct cql_value *out)
{
    static const uint8_t zeros[16] = {0};
    if (c.rpc >= 0 && (cells[c.rpc].len == 4 || cells[c.rpc].len == 16) &&
        memcmp(cells[c.rpc].ptr, zeros, (size_t)cells[c.rpc].len) != 0) {
        *out = cells[c.rpc];
        return true;
    }
    if (c.peer >= 0 && (cells[c.peer].len == 4 || cells[c.peer].len == 16)) {
        *out = cells[c.peer];
        return true;
    }
    return false;
}

static void apply_local(struct cql_session *s, const struct cql_rows *rows, bool *seen)
{
    struct cql_value cells[8];
    struct cql_row_iter it = cql_rows_iter(rows);
    if (rows->meta.n_columns > 8 || !s->control_host || !cql_rows_next(&it, cells, 8))
        return;
    update_host(s->control_host, cells, find_cols(rows));
    seen[s->control_host->idx] = true;
}

static void apply_peers(struct cql_session *s, const struct cql_rows *rows, bool *seen)
{
    struct cql_value cells[8];
    struct row_cols c = find_cols(rows);
    struct cql_row_iter it = cql_rows_iter(rows);
    if (rows->meta.n_columns > 8)
        return;
    while (cql_rows_next(&it, cells, 8)) {
        struct cql_value addr;
        if (!row_address(cells, c, &addr))
            continue;
        struct cql_host *h = cql_cluster_find_ip(s, addr.ptr, (size_t)addr.len);
        if (!h && !(h = cql_cluster_add_peer(s, addr.ptr, (size_t)addr.len)))
            continue;
        update_host(h, cells, c);
        if (h->idx < CQL_MAX_HOSTS)
            seen[h->idx] = true;
    }
}

/* Hosts, tokens and ring from both results; pools for new hosts. */
static void apply_topology(struct cql_session *s, const struct cql_rows *local,
                           const struct cql_rows *peers)
{
    bool *seen = calloc(CQL_MAX_HOSTS, sizeof *seen);
    if (!seen)
        return;
    apply_local(s, local, seen);
    apply_peers(s, peers, seen);
    for (uint32_t i = 0; i < s->n_hosts; i++) {
        struct cql_host *h = s->hosts[i];
        cql_cluster_set_removed(h, !seen[i] && !h->contact);
    }
    free(seen);
    cql_cluster_rebuild_ring(s);
    for (uint32_t i = 0; i < s->n_hosts; i++) {
        struct cql_host *h = s->hosts[i];
        if (!h->removed && !h->up && !cql_timer_armed(&h->reconnect))
            cql_cluster_open_pool(h);
    }
    s->topology_ready = true;
    for (uint32_t i = 0; i < s->n_hosts; i++)
        if (cql_host_usable(s->hosts[i]))
            cql_session_connect_done(s, CQL_OK, NULL);
}

/* ---- control queries ----------------------------------------------------------- */

static void control_fail(struct cql_session *s, int rc, struct cql_reply *reply)
{
    if (s->control && !s->stopping)
        cql_conn_close(s->control, rc ? rc : CQL_E_PROTOCOL,
                       reply && reply->text ? reply->text : "topology query failed");
    cql_reply_free(reply);
}

static void on_peers_rows(int rc, struct cql_reply *reply, void *ctx)
{
    struct cql_session *s = ctx;
    struct cql_reply *local = s->local_rows;
    s->local_rows = NULL;
    if (rc || !cql_reply_rows(reply) || !local || s->stopping) {
        cql_reply_free(local);
        control_fail(s, rc, reply);
        return;
    }
    apply_topology(s, cql_reply_rows(local), cql_reply_rows(reply));
    cql_reply_free(local);
    cql_reply_free(reply);
}

static void on_local_rows(int rc, struct cql_reply *reply, void *ctx)
{
    struct cql_session *s = ctx;
    if (rc || !cql_reply_rows(reply) || s->stopping) {
        control_fail(s, rc, reply);
        return;
    }
    cql_reply_free(s->local_rows);
    s->local_rows = reply;
    if (cql_session_control_query(s, PEERS_QUERY, on_peers_rows))
        control_fail(s, CQL_E_NOMEM, NULL);
}

static void refresh(struct cql_session *s)
{
    if (!s->control || !cql_conn_is_ready(s->control) || s->stopping)
        return;
    if (cql_session_control_query(s, LOCAL_QUERY, on_local_rows))
        control_fail(s, CQL_E_NOMEM, NULL);
}

static void on_refresh_timer(struct cql_timer *t)
{
    refresh((struct cql_session *)((char *)t - offsetof(struct cql_session, refresh_timer)));
}

static void schedule_refresh(struct cql_session *s)
{
    if (!cql_timer_armed(&s->refresh_timer))
        cql_timer_start(s->loop, &s->refresh_timer,
                        cql_now_ns() + (uint64_t)REFRESH_DELAY_MS * 1000000u);
}

/* ---- events -------------------------------------------------------------------- */

static void on_status_change(struct cql_session *s, const struct cql_event *ev)
{
    struct cql_host *h = cql_cluster_find_ip(s, ev->node.addr, ev->node.addr_len);
    if (!h) {
        schedule_refresh(s);
        return;
    }
    if (cql_str_eq(ev->change, "DOWN"))
        cql_cluster_host_down(h);
    else if (cql_str_eq(ev->change, "UP"))
        cql_cluster_host_up(h);
}

static void on_control_event(struct cql_conn *c, const uint8_t *frame, size_t len, void *arg)
{
    struct cql_session *s = arg;
    struct cql_message m;
    if (cql_message_decode(frame, len, &m))
        return;
    if (m.env.header.opcode == CQL_OP_EVENT) {
        if (m.event.type == CQL_EVENT_STATUS_CHANGE)
            on_status_change(s, &m.event);
        else if (m.event.type == CQL_EVENT_TOPOLOGY_CHANGE)
            schedule_refresh(s);
    }
    cql_message_free(&m);
}

/* ---- schema agreement -------------------------------------------------------------
 * After a schema change, nodes learn the new schema through gossip; the next
 * statement may reach a node that does not know it yet. A SCHEMA_CHANGE
 * result is therefore held until the control node and every up peer report
 * the same schema_version, re-checked every SCHEMA_RECHECK_MS, for at most
 * CQL_SCHEMA_WAIT_MS (then it completes anyway). */

#define SCHEMA_LOCAL_QUERY "SELECT schema_version FROM system.local"
#define SCHEMA_PEERS_QUERY "SELECT peer, rpc_address, schema_version FROM system.peers"
#define SCHEMA_RECHECK_MS 200

struct schema_wait {
    struct cql_req *r;
    struct cql_reply *reply;
    struct schema_wait *next;
};

static void schema_start(struct cql_session *s);

static void complete_waits(struct cql_session *s, struct schema_wait *w)
{
    while (w) {
        struct schema_wait *next = w->next;
        cql_session_complete_ok(s, w->r, w->reply);
        free(w);
        w = next;
    }
}

/* The check under way ended (agreed, gave up, or control lost). */
static void schema_finish(struct cql_session *s)
{
    struct schema_wait *done = s->schema_checking;
    s->schema_checking = NULL;
    s->schema_check_running = false;
    cql_timer_stop(s->loop, &s->schema_timer);
    complete_waits(s, done);
    if (s->schema_incoming && !s->stopping)
        schema_start(s);
}

static void on_schema_local(int rc, struct cql_reply *reply, void *ctx);

static void schema_check(struct cql_session *s)
{
    if (s->stopping || !s->control || !cql_conn_is_ready(s->control) ||
        cql_now_ns() > s->schema_deadline_ns ||
        cql_session_control_query(s, SCHEMA_LOCAL_QUERY, on_schema_local))
        schema_finish(s);
}

static void on_schema_timer(struct cql_timer *t)
{
    schema_check((struct cql_session *)((char *)t - offsetof(struct cql_session, schema_timer)));
}

/* True when every row of an up peer has the control node's version. */
static bool peers_agree(struct cql_session *s, const struct cql_rows *rows)
{
    struct cql_value cells[8];
    struct row_cols c = find_cols(rows);
    int ver = column_index(rows, "schema_version");
    struct cql_row_iter it = cql_rows_iter(rows);
    if (ver < 0 || rows->meta.n_columns > 8)
        return true; /* cannot tell: do not hold requests forever */
    while (cql_rows_next(&it, cells, 8)) {
        struct cql_value addr;
        struct cql_host *h = row_address(cells, c, &addr)
                                 ? cql_cluster_find_ip(s, addr.ptr, (size_t)addr.len)
                                 : NULL;
        if (!h || !h->up || h->removed)
            continue;
        if (cells[ver].len != 16 || memcmp(cells[ver].ptr, s->local_schema, 16) != 0)
            return false;
    }
    return true;
}

static void on_schema_peers(int rc, struct cql_reply *reply, void *ctx)
{
    struct cql_session *s = ctx;
    const struct cql_rows *rows = cql_reply_rows(reply);
    if (rc || !rows || peers_agree(s, rows))
        schema_finish(s);
    else
        cql_timer_start(s->loop, &s->schema_timer,
                        cql_now_ns() + (uint64_t)SCHEMA_RECHECK_MS * 1000000u);
    cql_reply_free(reply);
}

static void on_schema_local(int rc, struct cql_reply *reply, void *ctx)
{
    struct cql_session *s = ctx;
    const struct cql_rows *rows = cql_reply_rows(reply);
    struct cql_value cell = {NULL, -1};
    struct cql_row_iter it;
    if (rows) {
        it = cql_rows_iter(rows);
        if (rows->meta.n_columns != 1 || !cql_rows_next(&it, &cell, 1))
            cell.len = -1;
    }
    if (rc || cell.len != 16 || cql_session_control_query(s, SCHEMA_PEERS_QUERY, on_schema_peers)) {
        cql_reply_free(reply);
        schema_finish(s);
        return;
    }
    memcpy(s->local_schema, cell.ptr, 16);
    cql_reply_free(reply);
}

/* Starts a check covering every request waiting so far. */
static void schema_start(struct cql_session *s)
{
    while (s->schema_incoming) {
        struct schema_wait *w = s->schema_incoming;
        s->schema_incoming = w->next;
        w->next = s->schema_checking;
        s->schema_checking = w;
    }
    s->schema_check_running = true;
    s->schema_deadline_ns = cql_now_ns() + (uint64_t)CQL_SCHEMA_WAIT_MS * 1000000u;
    schema_check(s);
}

void cql_control_await_schema(struct cql_session *s, struct cql_req *r, struct cql_reply *reply)
{
    struct schema_wait *w = malloc(sizeof *w);
    if (!w) {
        cql_session_complete_ok(s, r, reply);
        return;
    }
    s->schema_timer.fn = on_schema_timer;
    *w = (struct schema_wait){r, reply, s->schema_incoming};
    s->schema_incoming = w;
    if (!s->schema_check_running)
        schema_start(s);
}

/* ---- the connection itself --------------------------------------------------------- */

static void on_control_ready(struct cql_conn *c, void *arg)
{
    struct cql_session *s = arg;
    s->control_backoff_ms = s->cfg.reconnect_base_ms;
    refresh(s);
}

static void on_control_timer(struct cql_timer *t)
{
    control_connect(
        (struct cql_session *)((char *)t - offsetof(struct cql_session, control_timer)));
}

static void retry_control_later(struct cql_session *s)
{
    if (s->stopping || cql_timer_armed(&s->control_timer))
        return;
    uint32_t ms = s->control_backoff_ms ? s->control_backoff_ms : s->cfg.reconnect_base_ms;
    uint32_t next = ms * 2;
    s->control_backoff_ms = next > s->cfg.reconnect_max_ms ? s->cfg.reconnect_max_ms : next;
    cql_timer_start(s->loop, &s->control_timer, cql_now_ns() + (uint64_t)ms * 1000000u);
}

/* A failed attempt while connecting: the next contact point at once; when
 * every one failed, cql_session_connect returns this error. */
static void control_attempt_failed(struct cql_session *s, int err, const char *text)
{
    if (!s->topology_ready) {
        if (++s->connect_failures >= s->n_contacts) {
            cql_session_connect_done(s, err, text);
            s->connect_failures = 0;
        } else {
            control_connect(s);
            return;
        }
    }
    retry_control_later(s);
}

static void on_control_closed(struct cql_conn *c, int err, void *arg)
{
    struct cql_session *s = arg;
    if (s->control == c) {
        s->control = NULL;
        s->control_host = NULL;
    }
    cql_conn_free_later(c);
    if (!s->stopping)
        control_attempt_failed(s, err, cql_conn_error_text(c));
}

/* Connects to the next host that is not removed, contact points first. */
static void control_connect(struct cql_session *s)
{
    if (s->stopping || s->control)
        return;
    for (uint32_t tries = 0; tries < s->n_hosts; tries++) {
        struct cql_host *h = s->hosts[s->control_next++ % s->n_hosts];
        if (h->removed)
            continue;
        struct cql_conn_config cfg = cql_host_conn_config(h);
        cfg.events = control_events;
        cfg.n_events = sizeof control_events / sizeof control_events[0];
        struct cql_conn_events ev = {.on_ready = on_control_ready,
                                     .on_closed = on_control_closed,
                                     .on_event = on_control_event,
                                     .arg = s};
        if (cql_conn_new(s->loop, &cfg, &ev, &s->control) == CQL_OK) {
            s->control_host = h;
            return;
        }
        s->control = NULL;
    }
    control_attempt_failed(s, CQL_E_IO, "cannot open a socket");
}

void cql_cluster_start(struct cql_session *s)
{
    s->control_timer.fn = on_control_timer;
    s->refresh_timer.fn = on_refresh_timer;
    if (s->control) {
        for (uint32_t i = 0; i < s->n_hosts && s->topology_ready; i++)
            if (cql_host_usable(s->hosts[i]))
                cql_session_connect_done(s, CQL_OK, NULL);
        return;
    }
    cql_timer_stop(s->loop, &s->control_timer);
    s->connect_failures = 0;
    s->control_next = 0;
    control_connect(s);
}

void cql_control_shutdown(struct cql_session *s)
{
    cql_timer_stop(s->loop, &s->control_timer);
    cql_timer_stop(s->loop, &s->refresh_timer);
    if (s->control)
        cql_conn_close(s->control, CQL_E_SHUTDOWN, "session is shutting down");
    cql_reply_free(s->local_rows);
    s->local_rows = NULL;
    schema_finish(s); /* the changes were applied: those requests succeeded */
    struct schema_wait *rest = s->schema_incoming;
    s->schema_incoming = NULL;
    complete_waits(s, rest);
}
