/* mqtt_load.c — the MQTT benchmark's load generator (bench/mqtt.py runs it):
 * N connections (MQTT 3.1.1), each keeping a window of W QoS 1 PUBLISHes in
 * flight, counting the PUBACKs that come back. After --warmup seconds it
 * counts for --duration seconds, then stops publishing and waits for the
 * PUBACKs still due, so that `acked_total` is every message the broker
 * acknowledged (what bench/mqtt.py compares with what iotflowd stored).
 * With --subscribe it also opens one subscriber on the topic and counts what
 * the broker relays to it (Mosquitto, the ceiling, relays to one reader).
 *
 * Packets are built once with the project's codec (src/mqtt) and copied per
 * send with the packet id and the payload's "seq" patched in place; a few
 * threads share the connections, each with its own epoll set.
 *
 * Prints one JSON line. Usage:
 *   mqtt_load --port P [--host 127.0.0.1] [--connections 32] [--window 32]
 *             [--threads 2] [--duration 10] [--warmup 2] [--passwords FILE]
 *             [--topic devices/me/telemetry] [--subscribe QOS] */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mqtt/mqtt_codec.h"

/* "seq" stays ten digits, so it is patched in place without a leading 0. */
#define SEQ_BASE 1000000000ull
#define SEQ_DIGITS 10
#define HIST_STEP_US 50
#define HIST_BUCKETS 40000 /* 50 µs steps up to 2 s; slower lands in the last */
#define MAX_PACKET 65536
#define DRAIN_SECONDS 30 /* how long the PUBACKs still due may take */

enum phase { WARMUP, MEASURE, STOPPING, ABORT };
static _Atomic int phase = WARMUP;

struct options {
    const char *host, *port, *passwords, *topic;
    int connections, window, threads, sub_qos; /* sub_qos -1: no subscriber */
    double duration, warmup;
};

struct conn {
    int fd;
    bool dead, want_out;
    uint64_t seq;
    uint64_t *sent_at; /* by packet id - 1; 0 = id free */
    unsigned id_space, next_id, in_flight;
    uint8_t *out; /* bytes not yet written: [out_off, out_len) */
    size_t out_off, out_len;
    uint8_t in[8192];
    size_t in_len;
};

struct worker {
    pthread_t thread;
    struct conn *conns;
    int n_conns, epfd;
    _Atomic uint64_t sent, acked, received; /* written by its thread only */
    uint64_t lost, unexpected, lat_sum_us, lat_n, lat_max_us;
    uint32_t hist[HIST_BUCKETS];
};

static struct options opt;

/* The PUBLISH every connection sends, and where its id and seq go. */
static struct {
    uint8_t bytes[512];
    size_t len, id_off, seq_off;
} tmpl;
static _Atomic int workers_running;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "mqtt_load: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void bump(_Atomic uint64_t *counter)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void send_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) { /* the subscriber's socket is non-blocking */
            poll(&(struct pollfd){.fd = fd, .events = POLLOUT}, 1, 1000);
            continue;
        }
        if (n <= 0)
            die("write", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

static size_t encode(const struct mqtt_packet *p, uint8_t *out, size_t cap)
{
    int len = mqtt_encode(p, MQTT_V311, out, cap);
    if (len <= 0)
        die("encode", mqtt_strerror(len));
    return (size_t)len;
}

/* Reads one whole packet from a blocking socket (set-up only). */
static void read_packet(int fd, uint8_t *buf, size_t cap, struct mqtt_packet *p)
{
    size_t have = 0, need = 0;
    while (mqtt_frame(buf, have, cap, &need) == MQTT_E_AGAIN) {
        ssize_t n = read(fd, buf + have, need ? need - have : 1);
        if (n <= 0)
            die("connection closed during set-up", n < 0 ? strerror(errno) : NULL);
        have += (size_t)n;
    }
    if (mqtt_decode(buf, need, MQTT_V311, p) != MQTT_OK)
        die("bad packet during set-up", NULL);
}

/* A blocking, connected, MQTT-accepted socket. */
static int open_session(const char *client_id, const char *password)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(opt.host, opt.port, &hints, &ai);
    if (rc != 0)
        die("getaddrinfo", gai_strerror(rc));
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        die("connect", strerror(errno));
    freeaddrinfo(ai);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    struct mqtt_packet p = {.type = MQTT_CONNECT};
    struct mqtt_connect *c = &p.u.connect;
    c->version = MQTT_V311;
    c->clean_start = true;
    c->keep_alive = 300;
    c->client_id = (struct mqtt_str){client_id, strlen(client_id)};
    if (password) { /* 3.1.1 wants a user name beside a password; ours ignores it */
        c->has_username = c->has_password = true;
        c->username = (struct mqtt_str){"bench", 5};
        c->password = (struct mqtt_bytes){(const uint8_t *)password, strlen(password)};
    }
    uint8_t buf[1024];
    send_all(fd, buf, encode(&p, buf, sizeof buf));
    read_packet(fd, buf, sizeof buf, &p);
    if (p.type != MQTT_CONNACK || p.u.connack.reason != 0) {
        fprintf(stderr, "mqtt_load: %s refused (type %d, code %d)\n", client_id, p.type,
                p.u.connack.reason);
        exit(1);
    }
    return fd;
}

static void build_publish(void)
{
    char payload[128];
    int plen = snprintf(payload, sizeof payload,
                        "{\"data\":{\"temperature\":21.5,\"humidity\":40,\"seq\":%llu}}",
                        (unsigned long long)SEQ_BASE);
    struct mqtt_packet p = {.type = MQTT_PUBLISH};
    p.u.publish = (struct mqtt_publish){
        .qos = 1, .packet_id = 1, .topic = {opt.topic, strlen(opt.topic)},
        .payload = {(const uint8_t *)payload, (size_t)plen}};
    tmpl.len = encode(&p, tmpl.bytes, sizeof tmpl.bytes);
    size_t payload_off = tmpl.len - (size_t)plen;
    tmpl.id_off = payload_off - 2; /* 3.1.1: the packet id just precedes the payload */
    tmpl.seq_off = payload_off + (size_t)(strstr(payload, "\"seq\":") + 6 - payload);
}

static void set_events(struct worker *w, struct conn *c, bool want_out)
{
    if (c->want_out == want_out)
        return;
    c->want_out = want_out;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void lose(struct worker *w, struct conn *c)
{
    if (!c->dead) {
        c->dead = true;
        w->lost++;
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    }
}

/* Queues PUBLISHes until the window is full (or stopping). */
static void fill_window(struct worker *w, struct conn *c)
{
    while (c->in_flight < (unsigned)opt.window && atomic_load(&phase) < STOPPING) {
        unsigned id = c->next_id;
        if (c->sent_at[id - 1]) /* its PUBACK is still due: the ids wrapped */
            return;
        c->next_id = id % c->id_space + 1;
        if (c->out_off > 0) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        uint8_t *p = c->out + c->out_len;
        memcpy(p, tmpl.bytes, tmpl.len);
        p[tmpl.id_off] = (uint8_t)(id >> 8);
        p[tmpl.id_off + 1] = (uint8_t)id;
        uint64_t seq = SEQ_BASE + c->seq++;
        for (int i = SEQ_DIGITS - 1; i >= 0; i--, seq /= 10)
            p[tmpl.seq_off + (size_t)i] = (uint8_t)('0' + seq % 10);
        c->out_len += tmpl.len;
        c->sent_at[id - 1] = now_us();
        c->in_flight++;
        bump(&w->sent);
    }
}

static void flush(struct worker *w, struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            set_events(w, c, true);
            return;
        }
        if (n <= 0) {
            lose(w, c);
            return;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    set_events(w, c, false);
}

static void on_puback(struct worker *w, struct conn *c, uint16_t id)
{
    if (id == 0 || id > c->id_space || !c->sent_at[id - 1]) {
        w->unexpected++;
        return;
    }
    uint64_t lat = now_us() - c->sent_at[id - 1];
    c->sent_at[id - 1] = 0;
    c->in_flight--;
    bump(&w->acked);
    if (atomic_load(&phase) == MEASURE) {
        w->hist[lat / HIST_STEP_US < HIST_BUCKETS ? lat / HIST_STEP_US : HIST_BUCKETS - 1]++;
        w->lat_sum_us += lat;
        w->lat_n++;
        w->lat_max_us = lat > w->lat_max_us ? lat : w->lat_max_us;
    }
}

/* Handles the whole packets at the front of c->in; false: drop the
 * connection (a malformed stream or the broker said goodbye). */
static bool on_packets(struct worker *w, struct conn *c)
{
    size_t off = 0, len;
    while (mqtt_frame(c->in + off, c->in_len - off, MAX_PACKET, &len) == MQTT_OK) {
        struct mqtt_packet p;
        if (mqtt_decode(c->in + off, len, MQTT_V311, &p) != MQTT_OK || p.type == MQTT_DISCONNECT)
            return false;
        if (p.type == MQTT_PUBACK) {
            on_puback(w, c, p.u.ack.packet_id);
        } else if (p.type == MQTT_PUBLISH) { /* the subscriber */
            bump(&w->received);
            if (p.u.publish.qos == 1) {
                struct mqtt_packet ack = {.type = MQTT_PUBACK};
                ack.u.ack.packet_id = p.u.publish.packet_id;
                uint8_t buf[8];
                send_all(c->fd, buf, encode(&ack, buf, sizeof buf));
            }
        } else if (p.type != MQTT_PINGRESP && p.type != MQTT_SUBACK) {
            w->unexpected++;
        }
        off += len;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return c->in_len < sizeof c->in;
}

static void on_readable(struct worker *w, struct conn *c)
{
    for (;;) {
        ssize_t n = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            lose(w, c);
            return;
        }
        c->in_len += (size_t)n;
        if (!on_packets(w, c)) {
            lose(w, c);
            return;
        }
    }
}

static bool all_acked(const struct worker *w)
{
    for (int i = 0; i < w->n_conns; i++)
        if (!w->conns[i].dead && w->conns[i].in_flight > 0)
            return false;
    return true;
}

/* A publisher thread, or the subscriber's (its connection has no ids):
 * publishers end once stopping and every PUBLISH is acknowledged; all end
 * on ABORT. */
static void *run_worker(void *arg)
{
    struct worker *w = arg;
    bool publisher = w->conns[0].sent_at != NULL;
    for (int i = 0; i < w->n_conns && publisher; i++) {
        fill_window(w, &w->conns[i]);
        flush(w, &w->conns[i]);
    }
    struct epoll_event evs[64];
    while (atomic_load(&phase) != ABORT &&
           !(publisher && atomic_load(&phase) == STOPPING && all_acked(w))) {
        int n = epoll_wait(w->epfd, evs, 64, 20);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(w, c);
            if (!c->dead && publisher)
                fill_window(w, c);
            if (!c->dead)
                flush(w, c);
        }
    }
    if (publisher)
        atomic_fetch_sub(&workers_running, 1);
    return NULL;
}

static void start_worker(struct worker *w)
{
    if ((w->epfd = epoll_create1(0)) < 0)
        die("epoll_create1", strerror(errno));
    for (int i = 0; i < w->n_conns; i++) {
        struct conn *c = &w->conns[i];
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
            die("epoll_ctl", strerror(errno));
    }
    if (pthread_create(&w->thread, NULL, run_worker, w) != 0)
        die("pthread_create", NULL);
}

/* The subscriber: one connection on the topic, in a worker of its own. */
static void open_subscriber(struct worker *w, int qos)
{
    char id[64];
    snprintf(id, sizeof id, "load-%d-sub", (int)getpid());
    struct conn *c = calloc(1, sizeof *c);
    c->fd = open_session(id, NULL);
    struct mqtt_subscription sub = {{opt.topic, strlen(opt.topic)}, (uint8_t)qos};
    struct mqtt_packet p = {.type = MQTT_SUBSCRIBE};
    p.u.subscribe = (struct mqtt_subscribe){.packet_id = 1, .subs = &sub, .n_subs = 1};
    uint8_t buf[1024];
    send_all(c->fd, buf, encode(&p, buf, sizeof buf));
    read_packet(c->fd, buf, sizeof buf, &p);
    if (p.type != MQTT_SUBACK || p.u.suback.reasons.len != 1 ||
        p.u.suback.reasons.ptr[0] != qos)
        die("subscription refused", NULL);
    w->conns = c;
    w->n_conns = 1;
    start_worker(w);
}

/* The publishers: opt.connections sessions spread over opt.threads
 * workers; passwords (one a line) or NULL for anonymous ones. */
static void open_publishers(struct worker *ws, FILE *passwords)
{
    struct conn *conns = calloc((size_t)opt.connections, sizeof *conns);
    unsigned id_space = (unsigned)opt.window * 4 < 1024 ? 1024 : (unsigned)opt.window * 4;
    id_space = id_space > 65535 ? 65535 : id_space;
    for (int i = 0; i < opt.connections; i++) {
        struct conn *c = &conns[i];
        char line[512], id[64], *pw = NULL;
        if (passwords) {
            if (!fgets(line, sizeof line, passwords))
                die("fewer passwords than connections", NULL);
            line[strcspn(line, "\r\n")] = 0;
            pw = line;
        }
        snprintf(id, sizeof id, "load-%d-%d", (int)getpid(), i);
        c->fd = open_session(id, pw);
        c->id_space = id_space;
        c->next_id = 1;
        c->sent_at = calloc(id_space, sizeof *c->sent_at);
        c->out = malloc(tmpl.len * (size_t)opt.window);
        if (!c->sent_at || !c->out)
            die("out of memory", NULL);
    }
    for (int t = 0, first = 0; t < opt.threads; t++) {
        int n = opt.connections / opt.threads + (t < opt.connections % opt.threads);
        ws[t].conns = conns + first;
        ws[t].n_conns = n;
        first += n;
    }
}

/* One counter (by its offset in struct worker) summed over n workers. */
static uint64_t total(struct worker *ws, int n, size_t field)
{
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += atomic_load((_Atomic uint64_t *)((char *)&ws[i] + field));
    return sum;
}
#define TOTAL(ws, n, f) total(ws, n, offsetof(struct worker, f))

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Latency percentiles (ms) over every worker's histogram. */
static double percentile(struct worker *ws, int n, uint64_t count, double q)
{
    uint64_t want = (uint64_t)((double)count * q), seen = 0;
    for (int b = 0; b < HIST_BUCKETS; b++) {
        for (int i = 0; i < n; i++)
            seen += ws[i].hist[b];
        if (seen > want)
            return (b + 0.5) * HIST_STEP_US / 1000.0;
    }
    return 0;
}

static void usage(void)
{
    fputs("usage: mqtt_load --port P [--host H] [--connections 32] [--window 32] [--threads 2]\n"
          "                 [--duration 10] [--warmup 2] [--passwords FILE] [--topic T]\n"
          "                 [--subscribe QOS]\n",
          stderr);
    exit(2);
}

static void parse_options(int argc, char **argv)
{
    static const struct option longs[] = {
        {"host", 1, 0, 'h'},     {"port", 1, 0, 'p'},        {"connections", 1, 0, 'c'},
        {"window", 1, 0, 'w'},   {"threads", 1, 0, 't'},     {"duration", 1, 0, 'd'},
        {"warmup", 1, 0, 'u'},   {"passwords", 1, 0, 'k'},   {"topic", 1, 0, 'o'},
        {"subscribe", 1, 0, 's'}, {"help", 0, 0, '?'},     {0, 0, 0, 0}};
    opt = (struct options){.host = "127.0.0.1", .topic = "devices/me/telemetry",
                           .connections = 32, .window = 32, .threads = 2, .sub_qos = -1,
                           .duration = 10, .warmup = 2};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = optarg; break;
        case 'c': opt.connections = (int)strtol(optarg, NULL, 10); break;
        case 'w': opt.window = (int)strtol(optarg, NULL, 10); break;
        case 't': opt.threads = (int)strtol(optarg, NULL, 10); break;
        case 'd': opt.duration = strtod(optarg, NULL); break;
        case 'u': opt.warmup = strtod(optarg, NULL); break;
        case 'k': opt.passwords = optarg; break;
        case 'o': opt.topic = optarg; break;
        case 's': opt.sub_qos = (int)strtol(optarg, NULL, 10); break;
        default: usage();
        }
    }
    if (!opt.port || opt.connections < 1 || opt.window < 1 || opt.window > 16384 ||
        opt.threads < 1 || opt.duration <= 0 || opt.warmup < 0 || opt.sub_qos > 1)
        usage();
    if (opt.threads > opt.connections)
        opt.threads = opt.connections;
}

int main(int argc, char **argv)
{
    parse_options(argc, argv);
    FILE *passwords = NULL;
    if (opt.passwords && !(passwords = fopen(opt.passwords, "r")))
        die(opt.passwords, strerror(errno));
    struct worker *ws = calloc((size_t)opt.threads + 1, sizeof *ws), *sub = &ws[opt.threads];
    if (!ws)
        die("out of memory", NULL);
    if (opt.sub_qos >= 0)
        open_subscriber(sub, opt.sub_qos);
    build_publish();
    open_publishers(ws, passwords);
    if (passwords)
        fclose(passwords);

    uint64_t t0 = now_us();
    atomic_store(&workers_running, opt.threads);
    for (int t = 0; t < opt.threads; t++)
        start_worker(&ws[t]);
    sleep_s(opt.warmup);
    uint64_t acked0 = TOTAL(ws, opt.threads, acked), recv0 = TOTAL(sub, 1, received);
    uint64_t t1 = now_us();
    atomic_store(&phase, MEASURE);
    sleep_s(opt.duration);
    atomic_store(&phase, STOPPING);
    uint64_t acked1 = TOTAL(ws, opt.threads, acked), recv1 = TOTAL(sub, 1, received);
    uint64_t t2 = now_us();

    /* The PUBACKs still due, then what the subscriber has still to get
     * (until it has as many as were acknowledged, or nothing comes). */
    while (atomic_load(&workers_running) > 0 && now_us() - t2 < DRAIN_SECONDS * 1000000ull)
        sleep_s(0.01);
    uint64_t t3 = now_us(), acked_total = TOTAL(ws, opt.threads, acked);
    for (uint64_t last = UINT64_MAX, got; opt.sub_qos >= 0 &&
         (got = TOTAL(sub, 1, received)) < acked_total && got != last;
         last = got)
        sleep_s(1);
    atomic_store(&phase, ABORT);
    for (int t = 0; t <= opt.threads; t++)
        if (ws[t].n_conns)
            pthread_join(ws[t].thread, NULL);
    static const uint8_t disconnect[] = {MQTT_DISCONNECT << 4, 0};
    for (int t = 0; t <= opt.threads; t++)
        for (int i = 0; i < ws[t].n_conns; i++) {
            if (!ws[t].conns[i].dead)
                (void)!write(ws[t].conns[i].fd, disconnect, sizeof disconnect);
            close(ws[t].conns[i].fd);
        }

    uint64_t lat_n = 0, lat_sum = 0, lat_max = 0, lost = 0, unexpected = 0;
    for (int t = 0; t <= opt.threads; t++) {
        lat_n += ws[t].lat_n;
        lat_sum += ws[t].lat_sum_us;
        lat_max = ws[t].lat_max_us > lat_max ? ws[t].lat_max_us : lat_max;
        lost += ws[t].lost;
        unexpected += ws[t].unexpected;
    }
    double secs = (double)(t2 - t1) / 1e6;
    uint64_t sent_total = TOTAL(ws, opt.threads, sent);
    printf("{\"connections\":%d,\"window\":%d,\"threads\":%d,\"topic\":\"%s\","
           "\"warmup_s\":%.3f,\"seconds\":%.3f,\"acked\":%llu,\"acked_per_s\":%.1f,"
           "\"sent_total\":%llu,\"acked_total\":%llu,\"unacked_at_end\":%llu,"
           "\"drain_s\":%.3f,\"connections_lost\":%llu,\"unexpected_packets\":%llu,"
           "\"latency_ms\":{\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
           "\"max\":%.3f}",
           opt.connections, opt.window, opt.threads, opt.topic, (double)(t1 - t0) / 1e6, secs,
           (unsigned long long)(acked1 - acked0), (double)(acked1 - acked0) / secs,
           (unsigned long long)sent_total, (unsigned long long)acked_total,
           (unsigned long long)(sent_total - acked_total), (double)(t3 - t2) / 1e6,
           (unsigned long long)lost, (unsigned long long)unexpected,
           lat_n ? (double)lat_sum / (double)lat_n / 1000.0 : 0.0,
           percentile(ws, opt.threads, lat_n, 0.50), percentile(ws, opt.threads, lat_n, 0.90),
           percentile(ws, opt.threads, lat_n, 0.99), (double)lat_max / 1000.0);
    if (opt.sub_qos >= 0)
        printf(",\"subscriber\":{\"qos\":%d,\"received\":%llu,\"received_per_s\":%.1f,"
               "\"received_total\":%llu}",
               opt.sub_qos, (unsigned long long)(recv1 - recv0), (double)(recv1 - recv0) / secs,
               (unsigned long long)TOTAL(sub, 1, received));
    printf("}\n");
    return lost || sent_total != acked_total ? 1 : 0;
}
