/* cql_fake_peer.c — the scripted CQL server of cql_fake_peer.h: a poll loop
 * over a listening socket and its connections, request decoding with the
 * codec, built-in answers for the handshake and the control connection's
 * queries, response builders, and outstanding-stream bookkeeping.
 * #include it from a test file (helper .c files are not compiled alone). */
#include "unit/cql/cql_fake_peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cql/cql_msg.h"
#include "cql/cql_types.h"

#define FAKE_MAX_CONNS 128
#define FAKE_STREAMS 32768

struct fake_conn {
    struct fake_peer *peer;
    int fd;
    uint32_t index;
    bool closed, registered;
    struct cql_buf in, out;
    uint8_t outstanding[FAKE_STREAMS / 8];
    uint32_t n_outstanding;
};

struct fake_peer {
    struct fake_peer_config cfg;
    char ip[32];
    char addr[64];
    uint16_t port;
    int lfd;
    pthread_t thread;
    atomic_bool stop, drop_all, stop_listening, relisten;
    atomic_int relisten_rc;
    atomic_bool push;
    char push_change[8], push_ip[32];
    pthread_mutex_t lock; /* guards the counters below */
    uint32_t counts[256];
    uint32_t max_outstanding, dup_streams;
    uint32_t n_conns;
    struct fake_conn *conns[FAKE_MAX_CONNS];
};

/* ---- counters ------------------------------------------------------------- */

uint32_t fake_peer_count(struct fake_peer *p, uint8_t opcode)
{
    pthread_mutex_lock(&p->lock);
    uint32_t n = p->counts[opcode];
    pthread_mutex_unlock(&p->lock);
    return n;
}

uint32_t fake_peer_conns(struct fake_peer *p)
{
    pthread_mutex_lock(&p->lock);
    uint32_t n = p->n_conns;
    pthread_mutex_unlock(&p->lock);
    return n;
}

uint32_t fake_peer_max_outstanding(struct fake_peer *p)
{
    pthread_mutex_lock(&p->lock);
    uint32_t n = p->max_outstanding;
    pthread_mutex_unlock(&p->lock);
    return n;
}

uint32_t fake_peer_dup_streams(struct fake_peer *p)
{
    pthread_mutex_lock(&p->lock);
    uint32_t n = p->dup_streams;
    pthread_mutex_unlock(&p->lock);
    return n;
}

uint16_t fake_peer_port(const struct fake_peer *p)
{
    return p->port;
}

const char *fake_peer_addr(const struct fake_peer *p)
{
    return p->addr;
}

uint32_t fake_conn_index(const struct fake_conn *c)
{
    return c->index;
}

bool fake_conn_closed(const struct fake_conn *c)
{
    return c->closed;
}

void fake_peer_drop_all(struct fake_peer *p)
{
    atomic_store(&p->drop_all, true);
}

void fake_peer_push_status(struct fake_peer *p, const char *change, const char *ip)
{
    snprintf(p->push_change, sizeof p->push_change, "%s", change);
    snprintf(p->push_ip, sizeof p->push_ip, "%s", ip);
    atomic_store(&p->push, true);
    while (atomic_load(&p->push))
        usleep(1000);
}

void fake_peer_stop_listening(struct fake_peer *p)
{
    atomic_store(&p->stop_listening, true);
    while (atomic_load(&p->stop_listening))
        usleep(1000);
}

/* ---- outstanding streams ----------------------------------------------------- */

static void stream_in(struct fake_conn *c, int16_t stream)
{
    if (stream < 0)
        return;
    struct fake_peer *p = c->peer;
    uint8_t bit = (uint8_t)(1u << (stream & 7));
    pthread_mutex_lock(&p->lock);
    if (c->outstanding[stream >> 3] & bit)
        p->dup_streams++;
    else
        c->n_outstanding++;
    c->outstanding[stream >> 3] |= bit;
    if (c->n_outstanding > p->max_outstanding)
        p->max_outstanding = c->n_outstanding;
    pthread_mutex_unlock(&p->lock);
}

static void stream_out(struct fake_conn *c, int16_t stream)
{
    if (stream < 0)
        return;
    uint8_t bit = (uint8_t)(1u << (stream & 7));
    pthread_mutex_lock(&c->peer->lock);
    if (c->outstanding[stream >> 3] & bit)
        c->n_outstanding--;
    c->outstanding[stream >> 3] &= (uint8_t)~bit;
    pthread_mutex_unlock(&c->peer->lock);
}

/* ---- building responses ------------------------------------------------------- */

static size_t begin(struct fake_conn *c, uint8_t flags, int16_t stream, uint8_t opcode)
{
    return cql_frame_begin(&c->out, CQL_VERSION_RESPONSE, flags, stream, opcode);
}

static void end(struct fake_conn *c, size_t start, int16_t stream)
{
    if (cql_frame_end(&c->out, start) == CQL_OK)
        stream_out(c, stream);
}

void fake_send_raw(struct fake_conn *c, const void *ptr, size_t n)
{
    const uint8_t *p = ptr;
    size_t off = 0, frame_len, missing;
    while (off < n &&
           cql_frame_scan(p + off, n - off, CQL_VERSION_RESPONSE, &frame_len, &missing) == CQL_OK) {
        stream_out(c, (int16_t)((p[off + 2] << 8) | p[off + 3]));
        off += frame_len;
    }
    cql_write_raw(&c->out, ptr, n);
}

void fake_send_void(struct fake_conn *c, int16_t stream)
{
    size_t at = begin(c, 0, stream, CQL_OP_RESULT);
    cql_write_int(&c->out, CQL_RESULT_VOID);
    end(c, at, stream);
}

struct col {
    const char *name;
    uint16_t type, elem;
};

static void write_meta(struct cql_buf *b, const char *ks, const char *table, const struct col *cols,
                       size_t n)
{
    cql_write_int(b, CQL_META_GLOBAL_TABLES_SPEC);
    cql_write_int(b, (int32_t)n);
    cql_write_string(b, ks, strlen(ks));
    cql_write_string(b, table, strlen(table));
    for (size_t i = 0; i < n; i++) {
        cql_write_string(b, cols[i].name, strlen(cols[i].name));
        cql_write_short(b, cols[i].type);
        if (cols[i].elem)
            cql_write_short(b, cols[i].elem);
    }
}

void fake_send_rows_int(struct fake_conn *c, int16_t stream, const int32_t *vals, size_t n)
{
    fake_send_rows_page(c, stream, vals, n, NULL);
}

void fake_send_rows_page(struct fake_conn *c, int16_t stream, const int32_t *vals, size_t n,
                         const char *paging_state)
{
    size_t at = begin(c, 0, stream, CQL_OP_RESULT);
    cql_write_int(&c->out, CQL_RESULT_ROWS);
    int32_t flags = CQL_META_GLOBAL_TABLES_SPEC;
    if (paging_state)
        flags |= CQL_META_HAS_MORE_PAGES;
    cql_write_int(&c->out, flags);
    cql_write_int(&c->out, 1);
    if (paging_state)
        cql_write_bytes(&c->out, paging_state, (int32_t)strlen(paging_state));
    cql_write_string(&c->out, "ks", 2);
    cql_write_string(&c->out, "t", 1);
    cql_write_string(&c->out, "v", 1);
    cql_write_short(&c->out, CQL_TYPE_INT);
    cql_write_int(&c->out, (int32_t)n);
    for (size_t i = 0; i < n; i++)
        cql_encode_int(&c->out, vals[i]);
    end(c, at, stream);
}

void fake_send_error(struct fake_conn *c, int16_t stream, int32_t code, const char *msg,
                     const void *extra, size_t extra_len)
{
    size_t at = begin(c, 0, stream, CQL_OP_ERROR);
    cql_write_int(&c->out, code);
    cql_write_string(&c->out, msg, strlen(msg));
    cql_write_raw(&c->out, extra, extra_len);
    end(c, at, stream);
}

void fake_send_prepared(struct fake_conn *c, int16_t stream, const char *id)
{
    size_t at = begin(c, 0, stream, CQL_OP_RESULT);
    cql_write_int(&c->out, CQL_RESULT_PREPARED);
    cql_write_short_bytes(&c->out, id, strlen(id));
    /* bind metadata: global spec, 1 column, 1 pk index (0) */
    cql_write_int(&c->out, CQL_META_GLOBAL_TABLES_SPEC);
    cql_write_int(&c->out, 1);
    cql_write_int(&c->out, 1);
    cql_write_short(&c->out, 0);
    cql_write_string(&c->out, "ks", 2);
    cql_write_string(&c->out, "t", 1);
    cql_write_string(&c->out, "k", 1);
    cql_write_short(&c->out, CQL_TYPE_INT);
    static const struct col res[] = {{"v", CQL_TYPE_INT, 0}};
    write_meta(&c->out, "ks", "t", res, 1);
    end(c, at, stream);
}

static void encode_inet(struct cql_buf *b, const char *ip)
{
    struct in_addr a;
    inet_pton(AF_INET, ip, &a);
    cql_encode_blob(b, &a, 4);
}

static void encode_token_set(struct cql_buf *b, const char *token)
{
    size_t mark = cql_encode_coll_begin(b);
    cql_encode_text(b, token, strlen(token));
    cql_encode_coll_end(b, mark, 1);
}

static void send_local(struct fake_conn *c, int16_t stream)
{
    static const struct col cols[] = {{"rpc_address", CQL_TYPE_INET, 0},
                                      {"data_center", CQL_TYPE_VARCHAR, 0},
                                      {"tokens", CQL_TYPE_SET, CQL_TYPE_VARCHAR}};
    struct fake_peer *p = c->peer;
    size_t at = begin(c, 0, stream, CQL_OP_RESULT);
    cql_write_int(&c->out, CQL_RESULT_ROWS);
    write_meta(&c->out, "system", "local", cols, 3);
    cql_write_int(&c->out, 1);
    encode_inet(&c->out, p->ip);
    cql_encode_text(&c->out, "dc1", 3);
    encode_token_set(&c->out, p->cfg.token ? p->cfg.token : "0");
    end(c, at, stream);
}

static void send_peers(struct fake_conn *c, int16_t stream)
{
    static const struct col cols[] = {{"peer", CQL_TYPE_INET, 0},
                                      {"rpc_address", CQL_TYPE_INET, 0},
                                      {"data_center", CQL_TYPE_VARCHAR, 0},
                                      {"tokens", CQL_TYPE_SET, CQL_TYPE_VARCHAR}};
    struct fake_peer *p = c->peer;
    size_t at = begin(c, 0, stream, CQL_OP_RESULT);
    cql_write_int(&c->out, CQL_RESULT_ROWS);
    write_meta(&c->out, "system", "peers", cols, 4);
    cql_write_int(&c->out, (int32_t)p->cfg.n_peers);
    for (size_t i = 0; i < p->cfg.n_peers; i++) {
        encode_inet(&c->out, p->cfg.peers[i].ip);
        encode_inet(&c->out, p->cfg.peers[i].ip);
        cql_encode_text(&c->out, "dc1", 3);
        encode_token_set(&c->out, p->cfg.peers[i].token);
    }
    end(c, at, stream);
}

static void send_simple(struct fake_conn *c, int16_t stream, uint8_t opcode)
{
    size_t at = begin(c, 0, stream, opcode);
    if (opcode == CQL_OP_AUTHENTICATE) {
        const char *cls = "org.apache.cassandra.auth.PasswordAuthenticator";
        cql_write_string(&c->out, cls, strlen(cls));
    } else if (opcode == CQL_OP_AUTH_SUCCESS) {
        cql_write_bytes(&c->out, NULL, -1);
    } else if (opcode == CQL_OP_SUPPORTED) {
        struct cql_str keys[2] = {cql_str_c("CQL_VERSION"), cql_str_c("COMPRESSION")};
        struct cql_str v1[1] = {cql_str_c("3.4.7")};
        const struct cql_str *vals[2] = {v1, NULL};
        size_t nv[2] = {1, 0};
        cql_write_string_multimap(&c->out, keys, vals, nv, 2);
    }
    end(c, at, stream);
}

static void send_status_event(struct fake_conn *c, const char *change, const char *ip)
{
    size_t at = begin(c, 0, -1, CQL_OP_EVENT);
    cql_write_string(&c->out, "STATUS_CHANGE", 13);
    cql_write_string(&c->out, change, strlen(change));
    struct cql_inet in = {.addr_len = 4, .port = c->peer->port};
    inet_pton(AF_INET, ip, in.addr);
    cql_write_inet(&c->out, &in);
    end(c, at, -1);
}

/* ---- decoding requests -------------------------------------------------------- */

static int read_params(struct cql_reader *r, struct fake_req *q)
{
    if (cql_read_consistency(r, &q->consistency) || cql_read_byte(r, &q->flags))
        return -1;
    if (q->flags & CQL_QUERY_VALUES) {
        if (cql_read_short(r, &q->n_values))
            return -1;
        size_t at = r->pos;
        for (uint16_t i = 0; i < q->n_values; i++) {
            struct cql_value v;
            if (cql_read_value(r, &v))
                return -1;
        }
        q->values = (struct cql_slice){r->ptr + at, r->pos - at};
    }
    if ((q->flags & CQL_QUERY_PAGE_SIZE) && cql_read_int(r, &q->page_size))
        return -1;
    q->paging_state = (struct cql_value){NULL, CQL_VALUE_NULL};
    if ((q->flags & CQL_QUERY_PAGING_STATE) && cql_read_bytes(r, &q->paging_state))
        return -1;
    uint16_t serial;
    if ((q->flags & CQL_QUERY_SERIAL_CONSISTENCY) && cql_read_consistency(r, &serial))
        return -1;
    if ((q->flags & CQL_QUERY_DEFAULT_TIMESTAMP) && cql_read_long(r, &q->timestamp))
        return -1;
    return 0;
}

static int decode_req(const uint8_t *frame, size_t len, struct fake_req *q)
{
    *q = (struct fake_req){0};
    if (cql_frame_header_decode(frame, len, CQL_VERSION_REQUEST, &q->h))
        return -1;
    struct cql_reader r = cql_reader_make(frame + CQL_FRAME_HEADER_SIZE, q->h.length);
    switch (q->h.opcode) {
    case CQL_OP_QUERY:
        if (cql_read_long_string(&r, &q->query))
            return -1;
        return read_params(&r, q);
    case CQL_OP_PREPARE:
        return cql_read_long_string(&r, &q->query) ? -1 : 0;
    case CQL_OP_EXECUTE:
        if (cql_read_short_bytes(&r, &q->prepared_id))
            return -1;
        return read_params(&r, q);
    case CQL_OP_BATCH:
        if (cql_read_byte(&r, &q->batch_type) || cql_read_short(&r, &q->batch_n))
            return -1;
        return 0;
    default:
        return 0;
    }
}

static bool credentials_ok(struct fake_peer *p, const uint8_t *frame, size_t len)
{
    struct cql_reader r =
        cql_reader_make(frame + CQL_FRAME_HEADER_SIZE, len - CQL_FRAME_HEADER_SIZE);
    struct cql_value tok;
    if (cql_read_bytes(&r, &tok) || tok.len < 2)
        return false;
    char want[256];
    int n = snprintf(want, sizeof want, "%c%s%c%s", 0, p->cfg.user, 0,
                     p->cfg.password ? p->cfg.password : "");
    return n == tok.len && memcmp(want, tok.ptr, (size_t)n) == 0;
}

static bool str_has(struct cql_str s, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= s.len; i++)
        if (memcmp(s.ptr + i, needle, n) == 0)
            return true;
    return false;
}

/* Built-in answers; false when the request is the handler's. */
static bool answer_builtin(struct fake_conn *c, const struct fake_req *q, const uint8_t *frame,
                           size_t len)
{
    struct fake_peer *p = c->peer;
    int16_t st = q->h.stream;
    switch (q->h.opcode) {
    case CQL_OP_OPTIONS:
        send_simple(c, st, CQL_OP_SUPPORTED);
        return true;
    case CQL_OP_STARTUP:
        send_simple(c, st, p->cfg.user ? CQL_OP_AUTHENTICATE : CQL_OP_READY);
        return true;
    case CQL_OP_AUTH_RESPONSE:
        if (credentials_ok(p, frame, len))
            send_simple(c, st, CQL_OP_AUTH_SUCCESS);
        else
            fake_send_error(c, st, 0x0100, "Provided username and/or password are incorrect", NULL,
                            0);
        return true;
    case CQL_OP_REGISTER:
        c->registered = true;
        send_simple(c, st, CQL_OP_READY);
        return true;
    case CQL_OP_QUERY:
        if (str_has(q->query, "FROM system.local")) {
            send_local(c, st);
            return true;
        }
        if (str_has(q->query, "FROM system.peers")) {
            send_peers(c, st);
            return true;
        }
        return false;
    default:
        return false;
    }
}

/* ---- connections ----------------------------------------------------------------- */

static void conn_flush(struct fake_conn *c)
{
    size_t off = 0;
    while (!c->closed && off < c->out.len) {
        size_t n = c->peer->cfg.split_writes ? 1 : c->out.len - off;
        ssize_t w = send(c->fd, c->out.data + off, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
        if (c->peer->cfg.split_writes)
            usleep(20);
    }
    cql_buf_reset(&c->out);
}

void fake_close(struct fake_conn *c)
{
    if (c->closed)
        return;
    conn_flush(c);
    shutdown(c->fd, SHUT_RDWR);
    close(c->fd);
    c->closed = true;
}

static void handle_frame(struct fake_conn *c, const uint8_t *frame, size_t len)
{
    struct fake_peer *p = c->peer;
    struct fake_req q;
    if (decode_req(frame, len, &q)) {
        fake_close(c);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->counts[q.h.opcode]++;
    pthread_mutex_unlock(&p->lock);
    stream_in(c, q.h.stream);
    if (answer_builtin(c, &q, frame, len))
        return;
    if (!p->cfg.handler || !p->cfg.handler(p, c, &q, p->cfg.arg))
        fake_send_void(c, q.h.stream);
}

static void conn_read(struct fake_conn *c)
{
    if (cql_buf_reserve(&c->in, 65536)) {
        fake_close(c);
        return;
    }
    ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
    if (n <= 0) {
        if (n < 0 && errno == EINTR)
            return;
        fake_close(c);
        return;
    }
    c->in.len += (size_t)n;
    size_t off = 0, frame_len, missing;
    while (!c->closed) {
        int rc = cql_frame_scan(c->in.data + off, c->in.len - off, CQL_VERSION_REQUEST, &frame_len,
                                &missing);
        if (rc == CQL_E_AGAIN)
            break;
        if (rc) {
            fake_close(c);
            return;
        }
        handle_frame(c, c->in.data + off, frame_len);
        off += frame_len;
    }
    if (c->closed)
        return;
    memmove(c->in.data, c->in.data + off, c->in.len - off);
    c->in.len -= off;
}

static void accept_one(struct fake_peer *p)
{
    int fd = accept(p->lfd, NULL, NULL);
    if (fd < 0)
        return;
    pthread_mutex_lock(&p->lock);
    uint32_t idx = p->n_conns;
    pthread_mutex_unlock(&p->lock);
    struct fake_conn *c = idx < FAKE_MAX_CONNS ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->peer = p;
    c->fd = fd;
    c->index = idx;
    pthread_mutex_lock(&p->lock);
    p->conns[p->n_conns++] = c;
    pthread_mutex_unlock(&p->lock);
}

static int open_listener(struct fake_peer *p)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(p->port)};
    inet_pton(AF_INET, p->ip, &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    socklen_t sl = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &sl);
    p->port = ntohs(a.sin_port);
    p->lfd = fd;
    snprintf(p->addr, sizeof p->addr, "%s:%u", p->ip, p->port);
    return 0;
}

/* ---- the thread ---------------------------------------------------------------- */

static void flush_all(struct fake_peer *p)
{
    for (uint32_t i = 0; i < p->n_conns; i++)
        if (!p->conns[i]->closed && p->conns[i]->out.len)
            conn_flush(p->conns[i]);
}

static void housekeeping(struct fake_peer *p)
{
    if (atomic_load(&p->drop_all)) {
        for (uint32_t i = 0; i < p->n_conns; i++)
            fake_close(p->conns[i]);
        atomic_store(&p->drop_all, false);
    }
    if (atomic_load(&p->stop_listening)) {
        if (p->lfd >= 0)
            close(p->lfd);
        p->lfd = -1;
        for (uint32_t i = 0; i < p->n_conns; i++)
            fake_close(p->conns[i]);
        atomic_store(&p->stop_listening, false);
    }
    if (atomic_load(&p->push)) {
        for (uint32_t i = 0; i < p->n_conns; i++)
            if (!p->conns[i]->closed && p->conns[i]->registered)
                send_status_event(p->conns[i], p->push_change, p->push_ip);
        atomic_store(&p->push, false);
    }
    if (atomic_load(&p->relisten)) {
        atomic_store(&p->relisten_rc, p->lfd >= 0 ? 0 : open_listener(p));
        atomic_store(&p->relisten, false);
    }
    if (p->cfg.tick)
        p->cfg.tick(p, p->cfg.arg);
    flush_all(p);
}

static void *peer_main(void *arg)
{
    struct fake_peer *p = arg;
    struct pollfd fds[FAKE_MAX_CONNS + 1];
    struct fake_conn *owners[FAKE_MAX_CONNS + 1];
    while (!atomic_load(&p->stop)) {
        nfds_t n = 0;
        if (p->lfd >= 0) {
            fds[n] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
            owners[n++] = NULL;
        }
        for (uint32_t i = 0; i < p->n_conns; i++)
            if (!p->conns[i]->closed) {
                fds[n] = (struct pollfd){.fd = p->conns[i]->fd, .events = POLLIN};
                owners[n++] = p->conns[i];
            }
        int ready = poll(fds, n, 2);
        for (nfds_t i = 0; ready > 0 && i < n; i++) {
            if (!(fds[i].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
            if (owners[i])
                conn_read(owners[i]);
            else
                accept_one(p);
        }
        flush_all(p);
        housekeeping(p);
    }
    return NULL;
}

int fake_peer_listen_again(struct fake_peer *p)
{
    atomic_store(&p->relisten, true);
    while (atomic_load(&p->relisten))
        usleep(1000);
    return atomic_load(&p->relisten_rc);
}

int fake_peer_start(const struct fake_peer_config *cfg, struct fake_peer **out)
{
    struct fake_peer *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->cfg = *cfg;
    snprintf(p->ip, sizeof p->ip, "%s", cfg->ip ? cfg->ip : "127.0.0.1");
    p->port = cfg->port;
    p->lfd = -1;
    pthread_mutex_init(&p->lock, NULL);
    if (open_listener(p) || pthread_create(&p->thread, NULL, peer_main, p)) {
        if (p->lfd >= 0)
            close(p->lfd);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return -1;
    }
    *out = p;
    return 0;
}

void fake_peer_stop(struct fake_peer *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    for (uint32_t i = 0; i < p->n_conns; i++) {
        fake_close(p->conns[i]);
        cql_buf_free(&p->conns[i]->in);
        cql_buf_free(&p->conns[i]->out);
        free(p->conns[i]);
    }
    if (p->lfd >= 0)
        close(p->lfd);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
