/* cql_cluster.c — the hosts of a session: contact points, peers added by the
 * control connection (cql_control.c), each host's connection pool, up/down
 * state with background reconnects (exponential backoff with jitter), the
 * token ring, and the query plan of a request (token-aware replicas first,
 * then the other up hosts round-robin). Everything here runs on the I/O
 * thread except cql_cluster_add_contacts (session creation) and
 * cql_session_hosts (any thread, under info_lock). */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cql/cql_session_int.h"

/* ---- hosts ------------------------------------------------------------------ */

static void host_fill_identity(struct cql_host *h)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (h->addr.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&h->addr;
        memcpy(h->ip, &a->sin_addr, 4);
        h->ip_len = 4;
        port = ntohs(a->sin_port);
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(h->name, sizeof h->name, "%s:%u", ip, port);
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&h->addr;
        memcpy(h->ip, &a->sin6_addr, 16);
        h->ip_len = 16;
        port = ntohs(a->sin6_port);
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(h->name, sizeof h->name, "[%s]:%u", ip, port);
    }
}

static void on_reconnect_timer(struct cql_timer *t);

/* Appends a host for addr (under info_lock); NULL without memory or room. */
static struct cql_host *host_add(struct cql_session *s, const struct sockaddr *addr, socklen_t len)
{
    if (s->n_hosts >= CQL_MAX_HOSTS || len > sizeof(struct sockaddr_storage))
        return NULL;
    struct cql_host *h = calloc(1, sizeof *h);
    uint32_t pool_size = s->cfg.connections_per_host;
    if (h)
        h->pool = calloc(pool_size, sizeof *h->pool);
    struct cql_host **hosts =
        h && h->pool ? realloc(s->hosts, (s->n_hosts + 1) * sizeof *hosts) : NULL;
    if (!hosts) {
        if (h)
            free(h->pool);
        free(h);
        return NULL;
    }
    h->s = s;
    memcpy(&h->addr, addr, len);
    h->addrlen = len;
    host_fill_identity(h);
    h->backoff_ms = s->cfg.reconnect_base_ms;
    h->reconnect.fn = on_reconnect_timer;
    pthread_mutex_lock(&s->info_lock);
    s->hosts = hosts;
    h->idx = s->n_hosts;
    s->hosts[s->n_hosts++] = h;
    pthread_mutex_unlock(&s->info_lock);
    return h;
}

struct cql_host *cql_cluster_find_ip(struct cql_session *s, const uint8_t *ip, size_t len)
{
    for (uint32_t i = 0; i < s->n_hosts; i++)
        if (s->hosts[i]->ip_len == len && memcmp(s->hosts[i]->ip, ip, len) == 0)
            return s->hosts[i];
    return NULL;
}

struct cql_host *cql_cluster_add_peer(struct cql_session *s, const uint8_t *ip, size_t len)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    if (len == 4) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(s->port);
        memcpy(&a->sin_addr, ip, 4);
        sl = sizeof *a;
    } else if (len == 16) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(s->port);
        memcpy(&a->sin6_addr, ip, 16);
        sl = sizeof *a;
    } else {
        return NULL;
    }
    return host_add(s, (struct sockaddr *)&ss, sl);
}

/* ---- contact points -------------------------------------------------------- */

/* Splits "host", "host:port", "[v6]" or "[v6]:port" into host and port. */
static int split_host_port(const char *item, size_t n, char *host, size_t hcap, char *port,
                           size_t pcap)
{
    const char *h = item, *p = NULL;
    size_t hl = n;
    if (n > 0 && item[0] == '[') {
        const char *close = memchr(item, ']', n);
        if (!close)
            return CQL_E_INVALID;
        h = item + 1;
        hl = (size_t)(close - h);
        if (close + 1 < item + n) {
            if (close[1] != ':')
                return CQL_E_INVALID;
            p = close + 2;
        }
    } else {
        const char *colon = memchr(item, ':', n);
        if (colon && !memchr(colon + 1, ':', (size_t)(item + n - colon - 1))) {
            hl = (size_t)(colon - item);
            p = colon + 1;
        }
    }
    size_t pl = p ? (size_t)(item + n - p) : 0;
    if (hl == 0 || hl >= hcap || (p && (pl == 0 || pl >= pcap)))
        return CQL_E_INVALID;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (p) {
        memcpy(port, p, pl);
        port[pl] = '\0';
    } else {
        snprintf(port, pcap, "9042");
    }
    return CQL_OK;
}

static int add_contact(struct cql_session *s, const char *item, size_t n, const char **err_text)
{
    char host[256], port[16];
    if (split_host_port(item, n, host, sizeof host, port, sizeof port)) {
        *err_text = "bad contact point (host, host:port or [v6]:port)";
        return CQL_E_INVALID;
    }
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res) {
        *err_text = "cannot resolve a contact point";
        return CQL_E_INVALID;
    }
    struct cql_host *h = host_add(s, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (!h) {
        *err_text = "too many contact points or out of memory";
        return CQL_E_NOMEM;
    }
    h->contact = true;
    if (s->n_contacts++ == 0)
        s->port = (uint16_t)strtoul(port, NULL, 10);
    return CQL_OK;
}

int cql_cluster_add_contacts(struct cql_session *s, const char *list, const char **err_text)
{
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        size_t n = (size_t)(end - p);
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n > 0) {
            int rc = add_contact(s, p, n, err_text);
            if (rc)
                return rc;
        }
        p = end;
    }
    if (s->n_contacts == 0) {
        *err_text = "no contact points";
        return CQL_E_INVALID;
    }
    return CQL_OK;
}

/* ---- up/down and pools ---------------------------------------------------------- */

static void set_up(struct cql_host *h, bool up)
{
    if (h->up == up)
        return;
    pthread_mutex_lock(&h->s->info_lock);
    h->up = up;
    pthread_mutex_unlock(&h->s->info_lock);
}

/* Backoff with jitter: the current delay times 0.75 .. 1.25, then doubled. */
static uint64_t next_delay_ms(struct cql_session *s, uint32_t *backoff_ms)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    uint64_t d = *backoff_ms;
    uint64_t jittered = d * 3 / 4 + s->rng % (d / 2 + 1);
    uint64_t doubled = (uint64_t)*backoff_ms * 2;
    *backoff_ms = doubled > s->cfg.reconnect_max_ms ? s->cfg.reconnect_max_ms : (uint32_t)doubled;
    return jittered;
}

static void schedule_reconnect(struct cql_host *h)
{
    struct cql_session *s = h->s;
    if (s->stopping || h->removed || cql_timer_armed(&h->reconnect))
        return;
    uint64_t ms = next_delay_ms(s, &h->backoff_ms);
    cql_timer_start(s->loop, &h->reconnect, cql_now_ns() + ms * 1000000u);
}

static struct pool_slot *slot_of(struct cql_host *h, struct cql_conn *c)
{
    for (uint32_t i = 0; i < h->s->cfg.connections_per_host; i++)
        if (h->pool[i].conn == c)
            return &h->pool[i];
    return NULL;
}

static void on_pool_ready(struct cql_conn *c, void *arg)
{
    struct cql_host *h = arg;
    struct pool_slot *slot = slot_of(h, c);
    if (!slot)
        return;
    slot->ready = true;
    h->n_ready++;
    h->backoff_ms = h->s->cfg.reconnect_base_ms;
    set_up(h, true);
    if (h->s->topology_ready)
        cql_session_connect_done(h->s, CQL_OK, NULL);
}

static bool any_host_up(const struct cql_session *s)
{
    for (uint32_t i = 0; i < s->n_hosts; i++)
        if (s->hosts[i]->up && !s->hosts[i]->removed)
            return true;
    return false;
}

static void on_pool_closed(struct cql_conn *c, int err, void *arg)
{
    struct cql_host *h = arg;
    struct cql_session *s = h->s;
    struct pool_slot *slot = slot_of(h, c);
    if (slot) {
        if (slot->ready)
            h->n_ready--;
        *slot = (struct pool_slot){0};
    }
    cql_conn_free_later(c);
    if (h->n_ready == 0)
        set_up(h, false);
    /* A server refusal (wrong password, unknown keyspace) ends a connect
     * attempt at once: retrying would only repeat it. */
    if ((cql_err_is_server(err) || err == CQL_E_AUTH_REQUIRED) && !any_host_up(s))
        cql_session_connect_done(s, err, cql_conn_error_text(c));
    schedule_reconnect(h);
}

struct cql_conn_config cql_host_conn_config(const struct cql_host *h)
{
    const struct cql_session *s = h->s;
    return (struct cql_conn_config){
        .addr = (const struct sockaddr *)&h->addr,
        .addrlen = h->addrlen,
        .name = h->name,
        .user = s->cfg.user,
        .password = s->cfg.password,
        .connect_timeout_ms = s->cfg.connect_timeout_ms,
    };
}

/* Opens every empty slot of h's pool. */
void cql_cluster_open_pool(struct cql_host *h)
{
    struct cql_session *s = h->s;
    if (s->stopping || h->removed)
        return;
    struct cql_conn_config cfg = cql_host_conn_config(h);
    cfg.keyspace = s->cfg.keyspace;
    struct cql_conn_events ev = {.on_ready = on_pool_ready, .on_closed = on_pool_closed, .arg = h};
    for (uint32_t i = 0; i < s->cfg.connections_per_host; i++) {
        if (h->pool[i].conn)
            continue;
        if (cql_conn_new(s->loop, &cfg, &ev, &h->pool[i].conn)) {
            h->pool[i].conn = NULL;
            schedule_reconnect(h);
        }
    }
}

static void on_reconnect_timer(struct cql_timer *t)
{
    struct cql_host *h = (struct cql_host *)((char *)t - offsetof(struct cql_host, reconnect));
    cql_cluster_open_pool(h);
}

static void close_pool(struct cql_host *h, int err, const char *why)
{
    for (uint32_t i = 0; i < h->s->cfg.connections_per_host; i++)
        if (h->pool[i].conn)
            cql_conn_close(h->pool[i].conn, err, why); /* on_pool_closed clears the slot */
}

void cql_cluster_host_down(struct cql_host *h)
{
    set_up(h, false);
    close_pool(h, CQL_E_CLOSED, "host reported down");
}

void cql_cluster_host_up(struct cql_host *h)
{
    if (h->up || h->removed)
        return;
    cql_timer_stop(h->s->loop, &h->reconnect);
    h->backoff_ms = h->s->cfg.reconnect_base_ms;
    cql_cluster_open_pool(h);
}

void cql_cluster_set_removed(struct cql_host *h, bool removed)
{
    if (h->removed == removed)
        return;
    pthread_mutex_lock(&h->s->info_lock);
    h->removed = removed;
    pthread_mutex_unlock(&h->s->info_lock);
    if (removed) {
        cql_timer_stop(h->s->loop, &h->reconnect);
        close_pool(h, CQL_E_CLOSED, "host left the cluster");
    }
}

void cql_cluster_set_tokens(struct cql_host *h, int64_t *tokens, uint32_t n, struct cql_str dc)
{
    free(h->tokens);
    h->tokens = tokens;
    pthread_mutex_lock(&h->s->info_lock);
    h->n_tokens = n;
    size_t dl = dc.len < sizeof h->dc - 1 ? dc.len : sizeof h->dc - 1;
    if (dl)
        memcpy(h->dc, dc.ptr, dl);
    h->dc[dl] = '\0';
    pthread_mutex_unlock(&h->s->info_lock);
}

int cql_cluster_rebuild_ring(struct cql_session *s)
{
    size_t n = 0;
    for (uint32_t i = 0; i < s->n_hosts; i++)
        if (!s->hosts[i]->removed)
            n += s->hosts[i]->n_tokens;
    struct cql_ring_entry *e = malloc((n ? n : 1) * sizeof *e);
    if (!e)
        return CQL_E_NOMEM;
    size_t k = 0;
    for (uint32_t i = 0; i < s->n_hosts; i++) {
        struct cql_host *h = s->hosts[i];
        for (uint32_t t = 0; !h->removed && t < h->n_tokens; t++)
            e[k++] = (struct cql_ring_entry){h->tokens[t], h->idx};
    }
    int rc = cql_ring_build(&s->ring, e, k);
    free(e);
    return rc;
}

/* ---- routing --------------------------------------------------------------------- */

bool cql_host_usable(const struct cql_host *h)
{
    return h->up && !h->removed && h->n_ready > 0;
}

static bool usable_idx(uint32_t idx, void *arg)
{
    const struct cql_session *s = arg;
    return idx < s->n_hosts && cql_host_usable(s->hosts[idx]);
}

/* The ready connection with the fewest requests on it. */
struct cql_conn *cql_host_pick_conn(struct cql_host *h)
{
    struct cql_conn *best = NULL;
    uint32_t best_load = UINT32_MAX;
    for (uint32_t i = 0; i < h->s->cfg.connections_per_host; i++) {
        struct cql_conn *c = h->pool[i].conn;
        if (!c || !h->pool[i].ready || !cql_conn_is_ready(c))
            continue;
        struct cql_conn_counts n = cql_conn_counts(c);
        uint32_t load = n.in_flight + n.waiting;
        if (load < best_load) {
            best = c;
            best_load = load;
        }
    }
    return best;
}

static bool in_plan(const struct cql_req *r, uint32_t n, uint32_t idx)
{
    for (uint32_t i = 0; i < n; i++)
        if (r->plan[i] == idx)
            return true;
    return false;
}

void cql_cluster_build_plan(struct cql_session *s, struct cql_req *r)
{
    uint32_t n = 0;
    if (r->has_token && !s->cfg.no_token_aware && s->ring.n > 0)
        n = (uint32_t)cql_ring_replicas(&s->ring, r->token, usable_idx, s, r->plan, CQL_PLAN_MAX);
    uint32_t start = s->rr++;
    for (uint32_t i = 0; i < s->n_hosts && n < CQL_PLAN_MAX; i++) {
        uint32_t idx = (start + i) % s->n_hosts;
        if (cql_host_usable(s->hosts[idx]) && !in_plan(r, n, idx))
            r->plan[n++] = idx;
    }
    r->plan_len = (uint8_t)n;
    r->plan_pos = 0;
}

/* ---- introspection, shutdown ------------------------------------------------------ */

static void add_counts(struct cql_session_stats *st, struct cql_conn *c)
{
    if (!c)
        return;
    struct cql_conn_counts n = cql_conn_counts(c);
    st->in_flight += n.in_flight;
    st->orphans += n.orphans;
    st->waiting += n.waiting;
    st->connections_ready += cql_conn_is_ready(c);
}

void cql_cluster_publish_stats(struct cql_session *s)
{
    struct cql_session_stats st = {0};
    for (uint32_t i = 0; i < s->n_hosts; i++)
        for (uint32_t k = 0; k < s->cfg.connections_per_host; k++)
            add_counts(&st, s->hosts[i]->pool[k].conn);
    pthread_mutex_lock(&s->info_lock);
    s->stats.in_flight = st.in_flight;
    s->stats.orphans = st.orphans;
    s->stats.waiting = st.waiting;
    s->stats.connections_ready = st.connections_ready;
    pthread_mutex_unlock(&s->info_lock);
}

size_t cql_session_hosts(struct cql_session *s, struct cql_host_info *out, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&s->info_lock);
    for (uint32_t i = 0; i < s->n_hosts; i++) {
        const struct cql_host *h = s->hosts[i];
        if (h->removed)
            continue;
        if (n < cap) {
            struct cql_host_info *o = &out[n];
            memcpy(o->name, h->name, sizeof o->name);
            memcpy(o->dc, h->dc, sizeof o->dc);
            o->up = h->up;
            o->n_tokens = h->n_tokens;
            o->served = atomic_load(&h->served);
        }
        n++;
    }
    pthread_mutex_unlock(&s->info_lock);
    return n;
}

void cql_cluster_shutdown(struct cql_session *s)
{
    cql_control_shutdown(s);
    for (uint32_t i = 0; i < s->n_hosts; i++) {
        cql_timer_stop(s->loop, &s->hosts[i]->reconnect);
        close_pool(s->hosts[i], CQL_E_SHUTDOWN, "session is shutting down");
    }
}

void cql_cluster_free(struct cql_session *s)
{
    for (uint32_t i = 0; i < s->n_hosts; i++) {
        free(s->hosts[i]->tokens);
        free(s->hosts[i]->pool);
        free(s->hosts[i]);
    }
    free(s->hosts);
    s->hosts = NULL;
    s->n_hosts = 0;
    cql_ring_free(&s->ring);
}
