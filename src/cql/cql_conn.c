/* cql_conn.c — one native-protocol connection (see cql_conn.h): socket and
 * epoll interest, stream ids from a free list, the write buffer and its
 * flush, incremental framing of the read buffer, the handshake state
 * machine, and closing (which fails every request still held). */
#include "cql/cql_conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "cql/cql_error.h"
#include "cql/cql_frame.h"
#include "cql/cql_msg.h"

#define READ_CHUNK ((size_t)64 << 10)
#define READS_PER_EVENT 16

enum conn_state { ST_CONNECTING, ST_HANDSHAKE, ST_READY, ST_CLOSED };

/* Handshake steps: which response is expected next on stream 0. */
enum hs_step { HS_OPTIONS, HS_STARTUP, HS_AUTH, HS_USE, HS_REGISTER };

struct cql_conn {
    struct cql_io io;
    struct cql_loop *loop;
    struct cql_conn_config cfg;
    struct cql_conn_events ev;
    enum conn_state state;
    enum hs_step step;

    struct cql_buf rbuf; /* unconsumed bytes are data[rstart .. len) */
    size_t rstart;
    struct cql_buf wbuf; /* unwritten bytes are data[wpos .. len) */
    size_t wpos;
    uint64_t queued_seq, written_seq; /* bytes ever queued / written */

    struct cql_conn_req **slots; /* by stream id; ORPHAN for abandoned */
    uint16_t *free_ids;
    uint32_t n_free, orphans;
    struct cql_conn_req *wait_head, *wait_tail;
    uint32_t n_waiting;

    struct cql_timer hs_timer;
    struct cql_defer flush_defer, free_defer;
    int err;
    char err_text[256];
};

/* The slot value of a stream whose request was abandoned. */
static struct cql_conn_req orphan_marker;
#define ORPHAN (&orphan_marker)

static void conn_flush(struct cql_conn *c);
static void conn_on_io(struct cql_io *io, uint32_t events);

static struct cql_conn *conn_of_io(struct cql_io *io)
{
    return (struct cql_conn *)((char *)io - offsetof(struct cql_conn, io));
}

static void set_error(struct cql_conn *c, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(c->err_text, sizeof c->err_text, "%s: ", c->cfg.name ? c->cfg.name : "?");
    if (n > 0 && (size_t)n < sizeof c->err_text)
        vsnprintf(c->err_text + n, sizeof c->err_text - (size_t)n, fmt, ap);
    va_end(ap);
    c->err = err;
}

/* ---- accessors ------------------------------------------------------------ */

bool cql_conn_is_ready(const struct cql_conn *c)
{
    return c->state == ST_READY;
}

bool cql_conn_is_closed(const struct cql_conn *c)
{
    return c->state == ST_CLOSED;
}

const char *cql_conn_name(const struct cql_conn *c)
{
    return c->cfg.name ? c->cfg.name : "";
}

const char *cql_conn_error_text(const struct cql_conn *c)
{
    return c->err_text;
}

struct cql_conn_counts cql_conn_counts(const struct cql_conn *c)
{
    return (struct cql_conn_counts){
        .in_flight = CQL_MAX_STREAMS - c->n_free,
        .orphans = c->orphans,
        .waiting = c->n_waiting,
    };
}

/* ---- epoll interest ------------------------------------------------------- */

static void update_interest(struct cql_conn *c)
{
    if (c->state == ST_CLOSED)
        return;
    uint32_t want = EPOLLIN;
    if (c->state == ST_CONNECTING || c->wpos < c->wbuf.len)
        want |= EPOLLOUT;
    if (c->state == ST_CONNECTING)
        want = EPOLLOUT;
    if (cql_loop_set(c->loop, &c->io, want))
        cql_conn_close(c, CQL_E_IO, "epoll_ctl failed");
}

static void on_flush_defer(struct cql_defer *d)
{
    struct cql_conn *c = (struct cql_conn *)((char *)d - offsetof(struct cql_conn, flush_defer));
    conn_flush(c);
}

/* Bytes were appended to the write buffer: write them before the next poll,
 * together with whatever else this turn queues. */
static void want_flush(struct cql_conn *c)
{
    cql_loop_defer(c->loop, &c->flush_defer);
}

/* ---- stream ids and the wait queue --------------------------------------- */

static void wait_push(struct cql_conn *c, struct cql_conn_req *r)
{
    r->waiting = true;
    r->next = NULL;
    r->prev = c->wait_tail;
    if (c->wait_tail)
        c->wait_tail->next = r;
    else
        c->wait_head = r;
    c->wait_tail = r;
    c->n_waiting++;
}

static void wait_unlink(struct cql_conn *c, struct cql_conn_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        c->wait_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        c->wait_tail = r->prev;
    r->prev = r->next = NULL;
    r->waiting = false;
    c->n_waiting--;
}

static bool can_write_now(const struct cql_conn *c)
{
    return c->n_free > 0 && c->wbuf.len - c->wpos < CQL_CONN_WBUF_SOFT_MAX;
}

/* Takes a stream id and copies the frame into the write buffer with it. */
static int write_req(struct cql_conn *c, struct cql_conn_req *r)
{
    if (r->len < CQL_FRAME_HEADER_SIZE)
        return CQL_E_INVALID;
    size_t at = c->wbuf.len;
    cql_write_raw(&c->wbuf, r->frame, r->len);
    if (cql_buf_error(&c->wbuf)) {
        cql_buf_truncate(&c->wbuf, at);
        return CQL_E_NOMEM;
    }
    uint16_t id = c->free_ids[--c->n_free];
    cql_frame_set_stream(c->wbuf.data + at, (int16_t)id);
    c->slots[id] = r;
    r->stream = (int16_t)id;
    c->queued_seq += r->len;
    r->end_seq = c->queued_seq;
    want_flush(c);
    return CQL_OK;
}

static void release_id(struct cql_conn *c, uint16_t id)
{
    c->slots[id] = NULL;
    c->free_ids[c->n_free++] = id;
}

/* Moves waiting requests into the write buffer while ids and room last. */
static void pump_waiting(struct cql_conn *c)
{
    while (c->wait_head && c->state == ST_READY && can_write_now(c)) {
        struct cql_conn_req *r = c->wait_head;
        wait_unlink(c, r);
        if (write_req(c, r)) {
            wait_push(c, r); /* out of memory: try again on the next release */
            return;
        }
    }
}

int cql_conn_send(struct cql_conn *c, struct cql_conn_req *r)
{
    if (c->state != ST_READY)
        return CQL_E_CLOSED;
    r->stream = -1;
    r->waiting = false;
    if (c->wait_head || !can_write_now(c)) {
        wait_push(c, r);
        return CQL_OK;
    }
    return write_req(c, r);
}

bool cql_conn_abandon(struct cql_conn *c, struct cql_conn_req *r)
{
    if (r->waiting) {
        wait_unlink(c, r);
        return false;
    }
    if (r->stream >= 0 && c->slots[r->stream] == r) {
        c->slots[r->stream] = ORPHAN;
        c->orphans++;
        r->stream = -1;
        return true;
    }
    return false;
}

/* ---- writing -------------------------------------------------------------- */

static void conn_flush(struct cql_conn *c)
{
    if (c->state == ST_CLOSED || c->state == ST_CONNECTING)
        return;
    while (c->wpos < c->wbuf.len) {
        ssize_t n = send(c->io.fd, c->wbuf.data + c->wpos, c->wbuf.len - c->wpos, MSG_NOSIGNAL);
        if (n > 0) {
            c->wpos += (size_t)n;
            c->written_seq += (uint64_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            set_error(c, CQL_E_IO, "write: %s", strerror(errno));
            cql_conn_close(c, CQL_E_IO, NULL);
            return;
        }
    }
    if (c->wpos == c->wbuf.len) {
        cql_buf_reset(&c->wbuf);
        c->wpos = 0;
    } else if (c->wpos > c->wbuf.len / 2) {
        memmove(c->wbuf.data, c->wbuf.data + c->wpos, c->wbuf.len - c->wpos);
        c->wbuf.len -= c->wpos;
        c->wpos = 0;
    }
    pump_waiting(c);
    update_interest(c); /* EPOLLOUT while bytes remain; no syscall if unchanged */
}

/* ---- closing -------------------------------------------------------------- */

/* Completes every waiting request with NOT_SENT and every in-flight one with
 * CLOSED, or NOT_SENT if none of its bytes could have reached the server. */
static void fail_requests(struct cql_conn *c)
{
    while (c->wait_head) {
        struct cql_conn_req *r = c->wait_head;
        wait_unlink(c, r);
        r->done(r, CQL_E_NOT_SENT, NULL, 0);
    }
    for (uint32_t id = 0; id < CQL_MAX_STREAMS; id++) {
        struct cql_conn_req *r = c->slots[id];
        if (!r)
            continue;
        release_id(c, (uint16_t)id);
        if (r == ORPHAN) {
            c->orphans--;
            continue;
        }
        bool unsent = r->end_seq - r->len >= c->written_seq;
        r->stream = -1;
        r->done(r, unsent ? CQL_E_NOT_SENT : CQL_E_CLOSED, NULL, 0);
    }
}

void cql_conn_close(struct cql_conn *c, int err, const char *why)
{
    if (c->state == ST_CLOSED)
        return;
    if (why)
        set_error(c, err, "%s", why);
    else if (!c->err_text[0])
        set_error(c, err, "%s", cql_strerror(err));
    c->err = err;
    c->state = ST_CLOSED;
    cql_loop_del(c->loop, &c->io);
    if (c->io.fd >= 0)
        close(c->io.fd);
    c->io.fd = -1;
    cql_timer_stop(c->loop, &c->hs_timer);
    fail_requests(c);
    if (c->ev.on_closed)
        c->ev.on_closed(c, err, c->ev.arg);
}

/* ---- handshake ------------------------------------------------------------- */

static void hs_fail(struct cql_conn *c, int err, const char *what)
{
    set_error(c, err, "%s", what);
    cql_conn_close(c, err, NULL);
}

/* A handshake request on stream 0, straight into the write buffer. */
static void hs_sent(struct cql_conn *c, int rc, enum hs_step step)
{
    if (rc) {
        hs_fail(c, rc, "cannot build handshake request");
        return;
    }
    c->step = step;
    want_flush(c);
}

static void hs_become_ready(struct cql_conn *c)
{
    c->state = ST_READY;
    cql_timer_stop(c->loop, &c->hs_timer);
    /* The server answered the last handshake request, so every byte queued so
     * far was written: count request bytes from here. */
    c->queued_seq = c->written_seq = 0;
    update_interest(c);
    if (c->ev.on_ready)
        c->ev.on_ready(c, c->ev.arg);
}

static void hs_after_use(struct cql_conn *c)
{
    if (c->cfg.n_events > 0)
        hs_sent(c, cql_build_register(&c->wbuf, 0, c->cfg.events, c->cfg.n_events), HS_REGISTER);
    else
        hs_become_ready(c);
}

static void hs_after_auth(struct cql_conn *c)
{
    const char *ks = c->cfg.keyspace;
    if (!ks || !*ks) {
        hs_after_use(c);
        return;
    }
    char q[300];
    int n = snprintf(q, sizeof q, "USE %s", ks);
    if (n < 0 || (size_t)n >= sizeof q) {
        hs_fail(c, CQL_E_INVALID, "keyspace name too long");
        return;
    }
    struct cql_query_params p = {.consistency = CQL_CONSISTENCY_ONE};
    hs_sent(c, cql_build_query(&c->wbuf, 0, (struct cql_str){q, (size_t)n}, &p), HS_USE);
}

static void hs_send_credentials(struct cql_conn *c)
{
    if (!c->cfg.user) {
        hs_fail(c, CQL_E_AUTH_REQUIRED, "server requires authentication, no credentials set");
        return;
    }
    int rc = cql_build_auth_password(&c->wbuf, 0, cql_str_c(c->cfg.user),
                                     cql_str_c(c->cfg.password ? c->cfg.password : ""));
    hs_sent(c, rc, HS_AUTH);
}

static void hs_server_error(struct cql_conn *c, const struct cql_error_body *e)
{
    set_error(c, e->err, "%.*s", (int)e->message.len, e->message.ptr);
    cql_conn_close(c, e->err, NULL);
}

/* The response to the handshake step c->step. */
static void hs_on_frame(struct cql_conn *c, const uint8_t *frame, size_t len)
{
    struct cql_message m;
    int rc = cql_message_decode(frame, len, &m);
    if (rc) {
        hs_fail(c, rc, "malformed handshake response");
        return;
    }
    uint8_t op = m.env.header.opcode;
    if (op == CQL_OP_ERROR) {
        hs_server_error(c, &m.error);
    } else if (c->step == HS_OPTIONS && op == CQL_OP_SUPPORTED) {
        hs_sent(c, cql_build_startup(&c->wbuf, 0, NULL), HS_STARTUP);
    } else if ((c->step == HS_STARTUP && op == CQL_OP_READY) ||
               (c->step == HS_AUTH && op == CQL_OP_AUTH_SUCCESS)) {
        hs_after_auth(c);
    } else if (c->step == HS_STARTUP && op == CQL_OP_AUTHENTICATE) {
        hs_send_credentials(c);
    } else if (c->step == HS_AUTH && op == CQL_OP_AUTH_CHALLENGE) {
        hs_send_credentials(c); /* PLAIN has one answer: the same token */
    } else if (c->step == HS_USE && op == CQL_OP_RESULT) {
        hs_after_use(c);
    } else if (c->step == HS_REGISTER && op == CQL_OP_READY) {
        hs_become_ready(c);
    } else {
        hs_fail(c, CQL_E_PROTOCOL, "unexpected handshake response");
    }
    cql_message_free(&m);
}

static void on_hs_timeout(struct cql_timer *t)
{
    struct cql_conn *c = (struct cql_conn *)((char *)t - offsetof(struct cql_conn, hs_timer));
    hs_fail(c, CQL_E_TIMEOUT, "connect/handshake timed out");
}

/* The socket connected (or failed to). */
static void on_connected(struct cql_conn *c)
{
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        soerr = errno;
    if (soerr) {
        set_error(c, CQL_E_IO, "connect: %s", strerror(soerr));
        cql_conn_close(c, CQL_E_IO, NULL);
        return;
    }
    c->state = ST_HANDSHAKE;
    update_interest(c);
    hs_sent(c, cql_build_options(&c->wbuf, 0), HS_OPTIONS);
}

/* ---- reading --------------------------------------------------------------- */

static void on_response(struct cql_conn *c, int16_t stream, const uint8_t *frame, size_t len)
{
    if (stream < 0) {
        if (stream == -1 && c->ev.on_event && c->state == ST_READY)
            c->ev.on_event(c, frame, len, c->ev.arg);
        return;
    }
    struct cql_conn_req *r = c->slots[stream];
    if (!r)
        return; /* an answer to nothing we sent: ignore it */
    release_id(c, (uint16_t)stream);
    pump_waiting(c); /* the freed id goes to the oldest waiting request */
    if (r == ORPHAN) {
        c->orphans--;
        return;
    }
    r->stream = -1;
    r->done(r, CQL_OK, frame, len);
}

/* Hands every whole frame in the read buffer to its request. */
static void process_frames(struct cql_conn *c)
{
    while (c->state != ST_CLOSED) {
        const uint8_t *p = c->rbuf.data + c->rstart;
        size_t have = c->rbuf.len - c->rstart, frame_len, missing;
        int rc = cql_frame_scan(p, have, CQL_VERSION_RESPONSE, &frame_len, &missing);
        if (rc == CQL_E_AGAIN)
            break;
        if (rc) {
            set_error(c, rc, "bad frame from server: %s", cql_strerror(rc));
            cql_conn_close(c, rc, NULL);
            return;
        }
        c->rstart += frame_len;
        if (c->state == ST_HANDSHAKE) {
            if ((int16_t)((p[2] << 8) | p[3]) == 0)
                hs_on_frame(c, p, frame_len);
        } else {
            on_response(c, (int16_t)((p[2] << 8) | p[3]), p, frame_len);
        }
    }
    if (c->rstart == c->rbuf.len) {
        c->rbuf.len = 0;
        c->rstart = 0;
    }
}

/* Room for at least READ_CHUNK more bytes, or for the rest of a big frame. */
static int make_room(struct cql_conn *c)
{
    if (c->rstart > 0) {
        memmove(c->rbuf.data, c->rbuf.data + c->rstart, c->rbuf.len - c->rstart);
        c->rbuf.len -= c->rstart;
        c->rstart = 0;
    }
    size_t want = READ_CHUNK;
    size_t frame_len, missing;
    if (c->rbuf.len > 0 &&
        cql_frame_scan(c->rbuf.data, c->rbuf.len, CQL_VERSION_RESPONSE, &frame_len, &missing) ==
            CQL_E_AGAIN &&
        missing > want)
        want = missing;
    if (c->rbuf.cap - c->rbuf.len >= want)
        return CQL_OK;
    int rc = cql_buf_reserve(&c->rbuf, want);
    c->rbuf.err = 0;
    return rc;
}

static void conn_read(struct cql_conn *c)
{
    for (int i = 0; i < READS_PER_EVENT && c->state != ST_CLOSED; i++) {
        if (make_room(c)) {
            cql_conn_close(c, CQL_E_NOMEM, "no memory for the read buffer");
            return;
        }
        size_t room = c->rbuf.cap - c->rbuf.len;
        ssize_t n = recv(c->io.fd, c->rbuf.data + c->rbuf.len, room, 0);
        if (n > 0) {
            c->rbuf.len += (size_t)n;
            process_frames(c);
            if ((size_t)n < room)
                return;
        } else if (n == 0) {
            cql_conn_close(c, CQL_E_CLOSED, "connection closed by the server");
            return;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        } else {
            set_error(c, CQL_E_IO, "read: %s", strerror(errno));
            cql_conn_close(c, CQL_E_IO, NULL);
            return;
        }
    }
}

static void conn_on_io(struct cql_io *io, uint32_t events)
{
    struct cql_conn *c = conn_of_io(io);
    if (c->state == ST_CLOSED)
        return;
    if (c->state == ST_CONNECTING) {
        on_connected(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_read(c);
    if ((events & EPOLLOUT) && c->state != ST_CLOSED)
        conn_flush(c);
}

static void on_free_defer(struct cql_defer *d)
{
    cql_conn_free((struct cql_conn *)((char *)d - offsetof(struct cql_conn, free_defer)));
}

void cql_conn_free_later(struct cql_conn *c)
{
    cql_loop_defer(c->loop, &c->free_defer);
}

/* ---- creation --------------------------------------------------------------- */

static int open_socket(struct cql_conn *c)
{
    int fd = socket(c->cfg.addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return CQL_E_IO;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    c->io.fd = fd;
    if (connect(fd, c->cfg.addr, c->cfg.addrlen) < 0 && errno != EINPROGRESS) {
        set_error(c, CQL_E_IO, "connect: %s", strerror(errno));
        return CQL_E_IO;
    }
    return cql_loop_add(c->loop, &c->io, EPOLLOUT);
}

static int alloc_streams(struct cql_conn *c)
{
    c->slots = calloc(CQL_MAX_STREAMS, sizeof *c->slots);
    c->free_ids = malloc(CQL_MAX_STREAMS * sizeof *c->free_ids);
    if (!c->slots || !c->free_ids)
        return CQL_E_NOMEM;
    /* Popped from the end: low ids first. */
    for (uint32_t i = 0; i < CQL_MAX_STREAMS; i++)
        c->free_ids[i] = (uint16_t)(CQL_MAX_STREAMS - 1 - i);
    c->n_free = CQL_MAX_STREAMS;
    return CQL_OK;
}

int cql_conn_new(struct cql_loop *loop, const struct cql_conn_config *cfg,
                 const struct cql_conn_events *ev, struct cql_conn **out)
{
    struct cql_conn *c = calloc(1, sizeof *c);
    if (!c)
        return CQL_E_NOMEM;
    c->loop = loop;
    c->cfg = *cfg;
    c->ev = *ev;
    c->io = (struct cql_io){.fn = conn_on_io, .fd = -1};
    c->hs_timer.fn = on_hs_timeout;
    c->flush_defer.fn = on_flush_defer;
    c->free_defer.fn = on_free_defer;
    c->state = ST_CONNECTING;
    int rc = alloc_streams(c);
    if (rc == CQL_OK)
        rc = open_socket(c);
    uint32_t ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 5000;
    if (rc == CQL_OK)
        rc = cql_timer_start(loop, &c->hs_timer, cql_now_ns() + (uint64_t)ms * 1000000u);
    if (rc) {
        cql_loop_del(loop, &c->io);
        if (c->io.fd >= 0)
            close(c->io.fd);
        free(c->slots);
        free(c->free_ids);
        free(c);
        return rc;
    }
    *out = c;
    return CQL_OK;
}

void cql_conn_free(struct cql_conn *c)
{
    if (!c)
        return;
    c->ev.on_closed = NULL; /* the owner is freeing it: no callback */
    cql_conn_close(c, CQL_E_CLOSED, NULL);
    cql_loop_undefer(c->loop, &c->flush_defer);
    cql_loop_undefer(c->loop, &c->free_defer);
    cql_buf_free(&c->rbuf);
    cql_buf_free(&c->wbuf);
    free(c->slots);
    free(c->free_ids);
    free(c);
}
