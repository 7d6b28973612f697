/* mqtt_server.c — start and stop, the event loops, accept, posts between
 * threads and the once-a-second sweep of deadlines (mqtt_server.h). */
#include <sodium.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/client_addr.h"
#include "mqtt/mqtt_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define EVENTS_PER_WAIT 64
#define SWEEP_EVERY_MS 1000
#define RETRY_EVERY_MS 5
#define LISTEN_BACKLOG 1024

int64_t mqtt_now(void) { return iot_mono_us() / 1000; }

/* ---- posts ------------------------------------------------------------------ */

void mqtt_loop_post(struct mqtt_loop *l, struct mqtt_post *p)
{
    p->next = NULL;
    pthread_mutex_lock(&l->lock);
    bool was_empty = l->posts_head == NULL;
    if (l->posts_tail)
        l->posts_tail->next = p;
    else
        l->posts_head = p;
    l->posts_tail = p;
    pthread_mutex_unlock(&l->lock);
    /* One wake-up per batch of posts: the loop takes the whole list. */
    if (was_empty) {
        uint64_t one = 1;
        ssize_t n = write(l->evfd, &one, sizeof one);
        (void)n; /* the counter cannot overflow; a full one still wakes */
    }
}

void mqtt_broadcast(struct iot_mqtt_server *s, const struct mqtt_post *p)
{
    for (unsigned i = 0; i < s->n_loops; i++) {
        struct mqtt_post *copy = malloc(sizeof *copy);
        if (!copy)
            continue;
        *copy = *p;
        copy->text = NULL;
        if (p->text && !(copy->text = malloc(p->text_len + 1))) {
            free(copy);
            continue;
        }
        if (p->text)
            memcpy(copy->text, p->text, p->text_len + 1);
        mqtt_loop_post(&s->loops[i], copy);
    }
}

static void kick(struct mqtt_loop *l, uint64_t conn_id)
{
    for (struct mqtt_conn *c = l->conns; c; c = c->next) {
        if (c->id == conn_id && !c->closed) {
            mqtt_conn_close(c, &(struct mqtt_close){.reason = MQTT_RC_SESSION_TAKEN_OVER,
                                                    .send_disconnect = true, .will = true});
            return;
        }
    }
}

static void stop_accepting(struct mqtt_loop *l)
{
    if (l->listen_fd < 0)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->listen_fd, NULL);
    close(l->listen_fd);
    l->listen_fd = -1;
}

static void run_posts(struct mqtt_loop *l)
{
    uint64_t count;
    ssize_t n = read(l->evfd, &count, sizeof count);
    (void)n;
    pthread_mutex_lock(&l->lock);
    struct mqtt_post *p = l->posts_head;
    l->posts_head = l->posts_tail = NULL;
    pthread_mutex_unlock(&l->lock);
    while (p) {
        struct mqtt_post *next = p->next;
        switch (p->kind) {
        case MQTT_POST_COMMITTED:
            mqtt_publish_committed((struct mqtt_pending *)p);
            break;
        case MQTT_POST_KICK:
            kick(l, p->conn_id);
            free(p);
            break;
        case MQTT_POST_STOP: /* l->stop_post: not freed */
            l->stopping = true;
            break;
        case MQTT_POST_QUIESCE: /* l->quiesce_post: not freed */
            stop_accepting(l);
            break;
        default:
            mqtt_deliver_post(l, p);
            free(p->text);
            free(p);
            break;
        }
        p = next;
    }
}

/* ---- connections ---------------------------------------------------------- */

void mqtt_conn_update_events(struct mqtt_conn *c)
{
    if (c->closed)
        return;
    bool want_read = c->retry_at == 0 && c->wlen - c->woff < c->loop->srv->cfg.max_packet &&
                     !(c->version == MQTT_V311 && c->inflight >= c->loop->srv->cfg.inflight);
    bool want_write = c->wlen > c->woff;
    if (want_read == c->reading && want_write == c->want_write)
        return;
    struct epoll_event ev = {.events = (want_read ? EPOLLIN : 0) | (want_write ? EPOLLOUT : 0),
                             .data.ptr = c};
    if (epoll_ctl(c->loop->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) {
        c->reading = want_read;
        c->want_write = want_write;
    }
}

static bool pending_take(struct iot_mqtt_server *s, const char *bucket)
{
    unsigned cap = s->cfg.pending_per_ip;
    if (!cap)
        return true;
    size_t len = strlen(bucket);
    pthread_mutex_lock(&s->pending_lock);
    struct iot_mtab_node *n = iot_mtab_find(&s->pending, bucket, len);
    if (!n)
        n = iot_mtab_add(&s->pending, bucket, len);
    bool ok = n && n->val.i64 < (int64_t)cap;
    if (ok)
        n->val.i64++;
    pthread_mutex_unlock(&s->pending_lock);
    return ok;
}

void mqtt_pending_release(struct iot_mqtt_server *s, const char *bucket)
{
    if (!s->cfg.pending_per_ip)
        return;
    pthread_mutex_lock(&s->pending_lock);
    struct iot_mtab_node *n = iot_mtab_find(&s->pending, bucket, strlen(bucket));
    if (n && --n->val.i64 <= 0)
        iot_mtab_remove(&s->pending, n);
    pthread_mutex_unlock(&s->pending_lock);
}

/* One address may hold at most pending_per_ip connections that have not
 * sent their CONNECT: garbage connections from one client cannot fill the
 * connection limit, while a fleet behind one NAT address, once connected,
 * is not limited by its address. */
static void accept_all(struct mqtt_loop *l)
{
    struct iot_mqtt_server *s = l->srv;
    for (;;) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;
        int fd = accept4(l->listen_fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* The socket stays readable: stop watching it for a while
                 * rather than spin on it (the sweep watches it again). */
                IOT_WARN("mqtt: cannot accept: %s; accepting again in 1 s (IOTFLOW_MQTT_MAX_"
                         "CONNECTIONS above the descriptor limit?)", strerror(errno));
                epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->listen_fd, NULL);
                l->accept_again = mqtt_now() + SWEEP_EVERY_MS;
            }
            return;
        }
        if (atomic_load(&s->n_conns) >= (int64_t)s->cfg.max_connections) {
            close(fd); /* before CONNECT there is no way to say why */
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char addr[64] = "?", bucket[64] = "?";
        struct iot_ip ip;
        if (iot_ip_from_sockaddr((struct sockaddr *)&sa, &ip)) {
            iot_ip_format(&ip, addr, sizeof addr);
            iot_ip_bucket_format(&ip, bucket, sizeof bucket);
        }
        if (!pending_take(s, bucket)) {
            IOT_DEBUG("mqtt: %s has too many connections awaiting CONNECT", addr);
            close(fd);
            continue;
        }
        if (!mqtt_conn_new(l, fd, addr, bucket)) {
            close(fd);
            mqtt_pending_release(s, bucket);
        }
    }
}

/* Deadlines (CONNECT, keep-alive) once a second; the connections waiting
 * for room in the ingest queue every few milliseconds. */
static bool sweep(struct mqtt_loop *l, int64_t now, bool all)
{
    bool retrying = false;
    for (struct mqtt_conn *c = l->conns, *next; c; c = next) {
        next = c->next;
        if (c->closed)
            continue;
        if (!all && !c->retry_at)
            continue;
        c->refs++; /* the tick may close it */
        mqtt_conn_tick(c, now);
        retrying |= !c->closed && c->retry_at != 0;
        mqtt_conn_unref(c);
    }
    return retrying;
}

static void flush_dirty(struct mqtt_loop *l)
{
    while (l->dirty) {
        struct mqtt_conn *c = l->dirty;
        l->dirty = c->dirty_next;
        c->dirty = false;
        mqtt_conn_flush(c);
        mqtt_conn_unref(c); /* the flush list's reference */
    }
}

/* At shutdown the ingest pipeline is closed already: no will can be
 * stored (docs/MQTT.md says so). */
static void close_all(struct mqtt_loop *l)
{
    for (struct mqtt_conn *c = l->conns, *next; c; c = next) {
        next = c->next;
        if (!c->closed)
            mqtt_conn_close(c, &(struct mqtt_close){.reason = MQTT_RC_SERVER_SHUTTING_DOWN,
                                                    .send_disconnect = true});
    }
}

static void accept_again(struct mqtt_loop *l, int64_t now)
{
    if (!l->accept_again || now < l->accept_again || l->listen_fd < 0)
        return;
    l->accept_again = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->listen_fd};
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->listen_fd, &ev);
}

static void *loop_main(void *arg)
{
    struct mqtt_loop *l = arg;
    struct epoll_event ev[EVENTS_PER_WAIT];
    bool retrying = false;
    while (!l->stopping) {
        int n = epoll_wait(l->epfd, ev, EVENTS_PER_WAIT, retrying ? RETRY_EVERY_MS : SWEEP_EVERY_MS);
        for (int i = 0; i < n; i++) {
            void *tag = ev[i].data.ptr;
            if (tag == &l->listen_fd) {
                accept_all(l);
                continue;
            }
            if (tag == &l->evfd) {
                run_posts(l);
                continue;
            }
            struct mqtt_conn *c = tag;
            if (c->closed)
                continue; /* closed earlier in this turn; freed at its end */
            c->refs++; /* alive through this event, whatever it closes */
            if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                mqtt_conn_on_readable(c);
            if (!c->closed && (ev[i].events & EPOLLOUT))
                mqtt_conn_on_writable(c);
            mqtt_conn_unref(c);
        }
        int64_t now = mqtt_now();
        bool all = now >= l->next_sweep;
        retrying |= l->retrying; /* a connection stalled while handling events */
        if (all || retrying) {
            retrying = l->retrying = sweep(l, now, all);
            if (all) {
                l->next_sweep = now + SWEEP_EVERY_MS;
                if (l->index == 0)
                    mqtt_session_sweep(l->srv, now);
                accept_again(l, now);
            }
        }
        flush_dirty(l);
        mqtt_conn_bury(l);
    }
    close_all(l);
    flush_dirty(l);
    mqtt_conn_bury(l);
    return NULL;
}

/* ---- start and stop ------------------------------------------------------ */

static int listen_on(const char *host, uint16_t port, uint16_t *bound)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res = NULL;
    char service[8];
    snprintf(service, sizeof service, "%u", port);
    int gai = getaddrinfo(*host ? host : NULL, service, &hints, &res);
    if (gai) {
        IOT_ERROR("mqtt: cannot resolve %s: %s", host, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) || listen(fd, LISTEN_BACKLOG)) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        IOT_ERROR("mqtt: cannot listen on %s:%u: %s", host, port, strerror(errno));
        return -1;
    }
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    *bound = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                            : ((struct sockaddr_in *)&sa)->sin_port);
    return fd;
}

static int loop_init(struct iot_mqtt_server *s, struct mqtt_loop *l, unsigned index)
{
    l->srv = s;
    l->index = index;
    l->epfd = l->evfd = l->listen_fd = -1;
    pthread_mutex_init(&l->lock, NULL);
    /* Loop 0 binds the port asked (maybe 0); the others share the one it got. */
    uint16_t port = index == 0 ? s->cfg.port : s->port;
    if ((l->listen_fd = listen_on(s->cfg.host, port, &s->port)) < 0)
        return IOT_EUNAVAILABLE;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->evfd < 0)
        return IOT_ENOMEM;
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &l->listen_fd};
    struct epoll_event eev = {.events = EPOLLIN, .data.ptr = &l->evfd};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->listen_fd, &lev) ||
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &eev))
        return IOT_ENOMEM;
    return IOT_OK;
}

static void loop_free(struct mqtt_loop *l)
{
    if (l->listen_fd >= 0)
        close(l->listen_fd);
    if (l->evfd >= 0)
        close(l->evfd);
    if (l->epfd >= 0)
        close(l->epfd);
    for (struct mqtt_post *p = l->posts_head, *next; p; p = next) {
        next = p->next;
        if (p->kind == MQTT_POST_COMMITTED) {
            mqtt_publish_committed((struct mqtt_pending *)p);
        } else if (p->kind != MQTT_POST_STOP && p->kind != MQTT_POST_QUIESCE) {
            free(p->text);
            free(p);
        }
    }
    mqtt_conn_bury(l);
    pthread_mutex_destroy(&l->lock);
}

static void server_free(struct iot_mqtt_server *s)
{
    for (unsigned i = 0; i < s->n_loops; i++)
        loop_free(&s->loops[i]);
    mqtt_session_free_all(s);
    pthread_mutex_destroy(&s->sessions_lock);
    iot_mtab_clear(&s->pending, NULL, NULL);
    pthread_mutex_destroy(&s->pending_lock);
    free(s->loops);
    free(s);
}

/* Every connection is a descriptor: the soft limit (often 1024) is raised
 * toward the hard one so that the connection limit can be reached; what
 * cannot be is said once, here. */
static void raise_fd_limit(unsigned max_connections)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)max_connections + 1024; /* HTTP, stores, files */
    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= need)
        return;
    rlim_t to = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max : need;
    if (to > rl.rlim_cur) {
        rl.rlim_cur = to;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (to < need)
        IOT_WARN("mqtt: the descriptor limit (%llu) is below IOTFLOW_MQTT_MAX_CONNECTIONS (%u) "
                 "+ 1024: raise it (ulimit -n, LimitNOFILE=) or lower the setting",
                 (unsigned long long)to, max_connections);
}

/* Each loop answers what is posted before its STOP, then closes. */
static void stop_loops(struct iot_mqtt_server *s, unsigned started)
{
    for (unsigned i = 0; i < started; i++) {
        s->loops[i].stop_post.kind = MQTT_POST_STOP;
        mqtt_loop_post(&s->loops[i], &s->loops[i].stop_post);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(s->loops[i].thread, NULL);
}

struct iot_mqtt_server *iot_mqtt_start(const struct iot_mqtt_config *cfg,
                                       const struct iot_mqtt_env *env)
{
    struct iot_mqtt_server *s = calloc(1, sizeof *s);
    unsigned n = cfg->threads ? cfg->threads : 1;
    if (!s || !(s->loops = calloc(n, sizeof *s->loops))) {
        free(s);
        return NULL;
    }
    s->cfg = *cfg;
    s->env = *env;
    raise_fd_limit(cfg->max_connections);
    s->n_loops = n;
    atomic_init(&s->next_conn_id, 1);
    pthread_mutex_init(&s->sessions_lock, NULL);
    pthread_mutex_init(&s->pending_lock, NULL);
    unsigned char seed[IOT_MTAB_SEED_LEN];
    randombytes_buf(seed, sizeof seed);
    iot_mtab_init(&s->pending, seed);
    mqtt_session_init(s);
    int rc = IOT_OK;
    for (unsigned i = 0; i < n && rc == IOT_OK; i++)
        rc = loop_init(s, &s->loops[i], i);
    if (rc == IOT_OK && (rc = mqtt_deliver_subscribe(s)) != IOT_OK)
        IOT_ERROR("mqtt: cannot subscribe to the device notices: %s", iot_strerror(rc));
    unsigned started = 0;
    for (; rc == IOT_OK && started < n; started++)
        if (pthread_create(&s->loops[started].thread, NULL, loop_main, &s->loops[started]))
            rc = IOT_ENOMEM;
    if (rc == IOT_OK)
        return s;
    mqtt_deliver_unsubscribe(s);
    stop_loops(s, started);
    server_free(s);
    return NULL;
}

uint16_t iot_mqtt_port(const struct iot_mqtt_server *s) { return s->port; }

void iot_mqtt_quiesce(struct iot_mqtt_server *s)
{
    for (unsigned i = 0; s && i < s->n_loops; i++) {
        s->loops[i].quiesce_post.kind = MQTT_POST_QUIESCE;
        mqtt_loop_post(&s->loops[i], &s->loops[i].quiesce_post);
    }
}

void iot_mqtt_stats(struct iot_mqtt_server *s, struct iot_mqtt_stats *out)
{
    pthread_mutex_lock(&s->sessions_lock);
    out->sessions = (int64_t)s->sessions.count;
    pthread_mutex_unlock(&s->sessions_lock);
    out->connections = atomic_load(&s->n_conns);
    out->accepted = atomic_load(&s->accepted);
    out->refused_connects = atomic_load(&s->refused_connects);
    out->published = atomic_load(&s->published);
    out->rejected = atomic_load(&s->rejected);
    out->delivered = atomic_load(&s->delivered);
}

void iot_mqtt_stop(struct iot_mqtt_server *s)
{
    if (!s)
        return;
    /* No more notices from the pub/sub thread; then the PUBACKs of the
     * committed messages, posted before the STOP. */
    mqtt_deliver_unsubscribe(s);
    stop_loops(s, s->n_loops);
    server_free(s);
}
