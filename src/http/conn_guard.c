#include "http/conn_guard.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "http/client_addr.h"
#include "util/clock.h"
#include "util/hash_table.h"
#include "util/log.h"

enum phase { PHASE_HEADER, PHASE_BODY, PHASE_NONE };

struct iot_conn_track {
    struct iot_conn_track *prev, *next; /* under the guard's lock */
    int fd;
    _Atomic int64_t deadline_us; /* 0 = none */
    _Atomic int phase;           /* what the deadline is for, for the log */
    size_t uri_len;              /* owner thread only */
    struct iot_ip peer; /* its bucket (iot_ip_bucket): an IPv6 peer's /64 */
    bool counted;       /* peer holds a unit of by_ip */
    int64_t header_us, body_us, idle_us; /* copies of the guard's, read without it */
};

struct iot_conn_guard {
    pthread_mutex_t lock; /* the list; held while shutting a socket down */
    struct iot_conn_track head;
    int64_t header_us, body_us, idle_us;
    unsigned per_ip_cap;
    const struct iot_trusted_proxies *exempt;
    struct iot_mtab by_ip; /* bucket (struct iot_ip) → open connections (i64) */
    unsigned refused;      /* over the cap since the reaper last said so */

    pthread_t reaper;
    bool reaper_running;
    pthread_cond_t wake;
    bool stopping; /* under lock */
};

#define REAPER_PERIOD_MS 500

static void set_phase(struct iot_conn_track *t, enum phase p, int64_t timeout_us, int64_t now_us)
{
    atomic_store_explicit(&t->phase, (int)p, memory_order_relaxed);
    atomic_store_explicit(&t->deadline_us, timeout_us ? now_us + timeout_us : 0,
                          memory_order_relaxed);
}

/* Shuts down every overdue socket and counts them per phase in counts.
 * Runs under the lock, so that no tracked socket can be closed (and its
 * number reused) meanwhile. */
static void reap_overdue(struct iot_conn_guard *g, int64_t now_us, unsigned counts[2])
{
    for (struct iot_conn_track *t = g->head.next; t != &g->head; t = t->next) {
        int64_t deadline = atomic_load_explicit(&t->deadline_us, memory_order_relaxed);
        if (deadline == 0 || deadline > now_us)
            continue;
        int phase = atomic_load_explicit(&t->phase, memory_order_relaxed);
        atomic_store_explicit(&t->deadline_us, 0, memory_order_relaxed); /* once */
        if (shutdown(t->fd, SHUT_RDWR) == 0 && phase <= PHASE_BODY)
            counts[phase]++;
    }
}

/* One line per tick at most, written without the lock: a slow stderr must
 * not hold up connections opening and closing. Called and returns locked. */
static void report(struct iot_conn_guard *g, const unsigned counts[2], unsigned refused)
{
    if (refused == 0 && counts[0] + counts[1] == 0)
        return;
    pthread_mutex_unlock(&g->lock);
    if (refused)
        IOT_WARN("http: refused %u connection(s) from addresses already holding %u", refused,
                 g->per_ip_cap);
    if (counts[0] + counts[1])
        IOT_WARN("http: closed %u connection(s) whose request header was not complete "
                 "within %llds and %u whose body was not within %llds",
                 counts[0], (long long)(g->header_us / 1000000), counts[1],
                 (long long)(g->body_us / 1000000));
    pthread_mutex_lock(&g->lock);
}

static void *reaper_main(void *arg)
{
    struct iot_conn_guard *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->stopping) {
        struct timespec until = iot_deadline_ms(CLOCK_MONOTONIC, REAPER_PERIOD_MS);
        pthread_cond_timedwait(&g->wake, &g->lock, &until);
        if (g->stopping)
            break;
        unsigned counts[2] = {0, 0};
        reap_overdue(g, iot_mono_us(), counts);
        unsigned refused = g->refused;
        g->refused = 0;
        report(g, counts, refused);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

static bool start_reaper(struct iot_conn_guard *g)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return false;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&g->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return false;
    if (pthread_create(&g->reaper, NULL, reaper_main, g) != 0) {
        pthread_cond_destroy(&g->wake);
        return false;
    }
    g->reaper_running = true;
    return true;
}

struct iot_conn_guard *iot_conn_guard_new(const struct iot_conn_guard_config *cfg)
{
    struct iot_conn_guard *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    pthread_mutex_init(&g->lock, NULL);
    g->head.next = g->head.prev = &g->head;
    g->header_us = (int64_t)cfg->header_timeout * 1000000;
    g->body_us = (int64_t)cfg->body_timeout * 1000000;
    g->idle_us = (int64_t)cfg->idle_timeout * 1000000;
    g->per_ip_cap = cfg->per_ip_cap;
    g->exempt = cfg->exempt;
    /* A random SipHash key: addresses are the client's choice (an IPv6
     * client has a whole /64), so they must not be able to force
     * collisions. */
    unsigned char seed[IOT_MTAB_SEED_LEN];
    randombytes_buf(seed, sizeof seed);
    iot_mtab_init(&g->by_ip, seed);
    /* The reaper also reports refusals over the cap. */
    if ((cfg->header_timeout || cfg->body_timeout || cfg->per_ip_cap) && !start_reaper(g)) {
        IOT_ERROR("http: cannot start the slow-connection reaper: %s", strerror(errno));
        pthread_mutex_destroy(&g->lock);
        free(g);
        return NULL;
    }
    return g;
}

void iot_conn_guard_free(struct iot_conn_guard *g)
{
    if (!g)
        return;
    if (g->reaper_running) {
        pthread_mutex_lock(&g->lock);
        g->stopping = true;
        pthread_cond_signal(&g->wake);
        pthread_mutex_unlock(&g->lock);
        pthread_join(g->reaper, NULL);
        pthread_cond_destroy(&g->wake);
    }
    /* Only left over if libmicrohttpd failed to notify a close. */
    while (g->head.next != &g->head)
        iot_conn_guard_untrack(g, g->head.next);
    iot_mtab_clear(&g->by_ip, NULL, NULL);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

bool iot_conn_guard_admit(struct iot_conn_guard *g, const struct sockaddr *peer)
{
    struct iot_ip ip, bucket;
    if (!g->per_ip_cap || !iot_ip_from_sockaddr(peer, &ip) ||
        iot_trusted_proxies_contains(g->exempt, &ip))
        return true;
    iot_ip_bucket(&ip, &bucket);
    pthread_mutex_lock(&g->lock);
    struct iot_mtab_node *n = iot_mtab_find(&g->by_ip, &bucket, sizeof bucket);
    bool ok = !n || n->val.i64 < (int64_t)g->per_ip_cap;
    g->refused += !ok;
    pthread_mutex_unlock(&g->lock);
    return ok;
}

/* Under the lock. Counts the connection unless its address already holds
 * `cap` (0: no limit); false when over. A connection that cannot be counted
 * (out of memory) is simply not counted: refusing it would be worse. */
static bool count_peer(struct iot_conn_guard *g, struct iot_conn_track *t, unsigned cap)
{
    struct iot_mtab_node *n = iot_mtab_find(&g->by_ip, &t->peer, sizeof t->peer);
    if (n && cap && n->val.i64 >= (int64_t)cap)
        return false;
    if (!n)
        n = iot_mtab_add(&g->by_ip, &t->peer, sizeof t->peer);
    if (!n)
        return true;
    n->val.i64++;
    t->counted = true;
    return true;
}

static void uncount_peer(struct iot_conn_guard *g, struct iot_conn_track *t)
{
    if (!t->counted)
        return;
    struct iot_mtab_node *n = iot_mtab_find(&g->by_ip, &t->peer, sizeof t->peer);
    if (n && --n->val.i64 <= 0)
        iot_mtab_remove(&g->by_ip, n);
}

struct iot_conn_track *iot_conn_guard_track(struct iot_conn_guard *g, int fd,
                                            const struct sockaddr *peer)
{
    struct iot_conn_track *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->fd = fd;
    t->header_us = g->header_us;
    t->body_us = g->body_us;
    t->idle_us = g->idle_us;
    struct iot_ip ip;
    bool known = iot_ip_from_sockaddr(peer, &ip);
    if (known)
        iot_ip_bucket(&ip, &t->peer);
    set_phase(t, PHASE_HEADER, t->header_us, iot_mono_us());
    pthread_mutex_lock(&g->lock);
    t->next = g->head.next;
    t->prev = &g->head;
    g->head.next->prev = t;
    g->head.next = t;
    /* The accept policy's check again, now one step with the count: two
     * connections admitted at once by two worker threads cannot both take
     * an address's last place. Shut down under the lock, like the reaper's. */
    if (known && g->per_ip_cap) {
        unsigned cap = iot_trusted_proxies_contains(g->exempt, &ip) ? 0 : g->per_ip_cap;
        if (!count_peer(g, t, cap)) {
            g->refused++;
            shutdown(fd, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&g->lock);
    return t;
}

void iot_conn_guard_untrack(struct iot_conn_guard *g, struct iot_conn_track *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&g->lock);
    t->prev->next = t->next;
    t->next->prev = t->prev;
    uncount_peer(g, t);
    pthread_mutex_unlock(&g->lock);
    free(t);
}

void iot_conn_track_request_line(struct iot_conn_track *t, int64_t now_us)
{
    if (!t || !t->header_us)
        return;
    int64_t deadline = atomic_load_explicit(&t->deadline_us, memory_order_relaxed);
    if (deadline == 0 || deadline > now_us + t->header_us)
        set_phase(t, PHASE_HEADER, t->header_us, now_us);
}

void iot_conn_track_header_done(struct iot_conn_track *t, bool has_body, int64_t now_us)
{
    if (t)
        set_phase(t, has_body ? PHASE_BODY : PHASE_NONE, has_body ? t->body_us : 0, now_us);
}

void iot_conn_track_body_done(struct iot_conn_track *t)
{
    if (t)
        set_phase(t, PHASE_NONE, 0, 0);
}

void iot_conn_track_request_done(struct iot_conn_track *t, int64_t now_us)
{
    if (t)
        set_phase(t, PHASE_HEADER, t->header_us ? t->idle_us + t->header_us : 0, now_us);
}

void iot_conn_track_set_uri_len(struct iot_conn_track *t, size_t len)
{
    if (t)
        t->uri_len = len;
}

size_t iot_conn_track_uri_len(const struct iot_conn_track *t) { return t ? t->uri_len : 0; }
