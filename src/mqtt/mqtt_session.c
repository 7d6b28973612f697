/* mqtt_session.c — sessions by (device, client id), in this instance's
 * memory: what a persistent session keeps (its subscriptions) while its
 * client is away, and who holds each identity now, so that a second
 * connection takes over from the first (§3.1.4). Sessions are not shared
 * between instances and do not survive a restart (docs/MQTT.md).
 *
 * Per device, the table also counts its attached sessions (its
 * connections: IOTFLOW_MQTT_CONNECTIONS_PER_DEVICE caps them) and its kept
 * ones waiting for their clients (capped alike, so that a device cycling
 * client ids cannot fill the table for everyone else). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/mqtt_int.h"
#include "util/log.h"

#define SESSION_KEY_MAX (24 + MQTT_CLIENT_ID_MAX)
#define KEPT_PER_DEVICE_DEFAULT 16 /* when connections per device are not capped */

struct mqtt_session {
    int64_t device_id;
    uint64_t conn_id;       /* the connection holding it; 0 while away */
    struct mqtt_loop *loop; /* that connection's loop */
    uint8_t sub_config, sub_alerts;
    int64_t expires_at;     /* while away: dropped then (monotonic ms) */
};

/* The sessions of one device (s->device_conns' values). */
struct device_sessions {
    int64_t attached, kept;
};

static size_t session_key(const struct mqtt_conn *c, char *key)
{
    int n = snprintf(key, SESSION_KEY_MAX, "%lld/", (long long)c->device.id);
    size_t id_len = strlen(c->client_id);
    memcpy(key + n, c->client_id, id_len);
    return (size_t)n + id_len;
}

static struct mqtt_session *find(struct iot_mqtt_server *s, const struct mqtt_conn *c,
                                 struct iot_mtab_node **node)
{
    char key[SESSION_KEY_MAX];
    size_t len = session_key(c, key);
    *node = iot_mtab_find(&s->sessions, key, len);
    return *node ? (*node)->val.ptr : NULL;
}

/* The counts of a device (made when `make`); NULL when absent or out of
 * memory. Under sessions_lock. */
static struct device_sessions *counts(struct iot_mqtt_server *s, int64_t device_id, bool make)
{
    char key[24];
    int len = snprintf(key, sizeof key, "%lld", (long long)device_id);
    struct iot_mtab_node *n = iot_mtab_find(&s->device_conns, key, (size_t)len);
    if (n || !make)
        return n ? n->val.ptr : NULL;
    struct device_sessions *d = calloc(1, sizeof *d);
    if (!d || !(n = iot_mtab_add(&s->device_conns, key, (size_t)len))) {
        free(d);
        return NULL;
    }
    n->val.ptr = d;
    return d;
}

/* Drops a device's counts once both are zero. */
static void counts_tidy(struct iot_mqtt_server *s, int64_t device_id)
{
    char key[24];
    int len = snprintf(key, sizeof key, "%lld", (long long)device_id);
    struct iot_mtab_node *n = iot_mtab_find(&s->device_conns, key, (size_t)len);
    struct device_sessions *d = n ? n->val.ptr : NULL;
    if (d && d->attached <= 0 && d->kept <= 0) {
        free(d);
        iot_mtab_remove(&s->device_conns, n);
    }
}

static void kick(struct mqtt_session *ss)
{
    struct mqtt_post *p = calloc(1, sizeof *p);
    if (!p) {
        IOT_WARN("mqtt: out of memory: a taken-over connection stays open");
        return;
    }
    p->kind = MQTT_POST_KICK;
    p->conn_id = ss->conn_id;
    mqtt_loop_post(ss->loop, p);
}

static struct mqtt_session *session_new(struct iot_mqtt_server *s, const struct mqtt_conn *c)
{
    char key[SESSION_KEY_MAX];
    size_t len = session_key(c, key);
    struct mqtt_session *ss = calloc(1, sizeof *ss);
    struct iot_mtab_node *node = ss ? iot_mtab_add(&s->sessions, key, len) : NULL;
    if (!node) {
        free(ss);
        return NULL;
    }
    ss->device_id = c->device.id;
    node->val.ptr = ss;
    return ss;
}

bool mqtt_session_attach(struct mqtt_conn *c, bool clean_start, bool *resumed)
{
    struct iot_mqtt_server *s = c->loop->srv;
    *resumed = false;
    pthread_mutex_lock(&s->sessions_lock);
    struct iot_mtab_node *node;
    struct mqtt_session *ss = find(s, c, &node);
    struct device_sessions *d = counts(s, c->device.id, true);
    /* A takeover keeps the session's place; a new attachment needs one. */
    bool takeover = ss && ss->conn_id;
    unsigned cap = s->cfg.per_device;
    if (!takeover && cap && d && d->attached >= (int64_t)cap) {
        counts_tidy(s, c->device.id);
        pthread_mutex_unlock(&s->sessions_lock);
        return false;
    }
    if (ss && !clean_start) {
        c->sub_config = ss->sub_config;
        c->sub_alerts = ss->sub_alerts;
        *resumed = true;
    }
    if (takeover)
        kick(ss);
    else if (ss && d)
        d->kept--; /* it was waiting */
    if (!ss && !(ss = session_new(s, c)))
        IOT_WARN("mqtt: out of memory: device %lld's session is not kept", (long long)c->device.id);
    if (ss) {
        if (!takeover && d)
            d->attached++;
        ss->conn_id = c->id;
        ss->loop = c->loop;
        ss->sub_config = c->sub_config;
        ss->sub_alerts = c->sub_alerts;
        ss->expires_at = 0;
    }
    counts_tidy(s, c->device.id);
    pthread_mutex_unlock(&s->sessions_lock);
    return true;
}

void mqtt_session_save(struct mqtt_conn *c)
{
    struct iot_mqtt_server *s = c->loop->srv;
    pthread_mutex_lock(&s->sessions_lock);
    struct iot_mtab_node *node;
    struct mqtt_session *ss = find(s, c, &node);
    if (ss && ss->conn_id == c->id) {
        ss->sub_config = c->sub_config;
        ss->sub_alerts = c->sub_alerts;
    }
    pthread_mutex_unlock(&s->sessions_lock);
}

void mqtt_session_detach(struct mqtt_conn *c)
{
    struct iot_mqtt_server *s = c->loop->srv;
    pthread_mutex_lock(&s->sessions_lock);
    struct iot_mtab_node *node;
    struct mqtt_session *ss = find(s, c, &node);
    if (ss && ss->conn_id == c->id) { /* not taken over meanwhile */
        struct device_sessions *d = counts(s, c->device.id, false);
        unsigned kept_cap = s->cfg.per_device ? s->cfg.per_device : KEPT_PER_DEVICE_DEFAULT;
        bool room = s->sessions.count <= 2 * (size_t)s->cfg.max_connections &&
                    (!d || d->kept < (int64_t)kept_cap);
        if (!room && c->session_expiry)
            IOT_WARN("mqtt: too many persistent sessions (of device %lld or in all); this one "
                     "is not kept", (long long)c->device.id);
        if (d)
            d->attached--;
        if (c->session_expiry == 0 || !room) {
            free(ss);
            iot_mtab_remove(&s->sessions, node);
        } else {
            if (d)
                d->kept++;
            ss->conn_id = 0;
            ss->loop = NULL;
            ss->sub_config = c->sub_config;
            ss->sub_alerts = c->sub_alerts;
            ss->expires_at = mqtt_now() + (int64_t)c->session_expiry * 1000;
        }
        counts_tidy(s, c->device.id);
    }
    pthread_mutex_unlock(&s->sessions_lock);
}

struct sweep_ctx {
    struct iot_mqtt_server *s;
    int64_t now;
};

static bool expired(void *ctx, const struct iot_mtab_node *n)
{
    const struct mqtt_session *ss = n->val.ptr;
    return ss->conn_id == 0 && ss->expires_at <= ((const struct sweep_ctx *)ctx)->now;
}

static void free_expired(void *ctx, struct iot_mtab_node *n)
{
    struct iot_mqtt_server *s = ((struct sweep_ctx *)ctx)->s;
    struct mqtt_session *ss = n->val.ptr;
    struct device_sessions *d = counts(s, ss->device_id, false);
    if (d)
        d->kept--;
    counts_tidy(s, ss->device_id);
    free(ss);
}

void mqtt_session_sweep(struct iot_mqtt_server *s, int64_t now)
{
    struct sweep_ctx ctx = {s, now};
    pthread_mutex_lock(&s->sessions_lock);
    iot_mtab_sweep(&s->sessions, s->sessions.nbuckets, expired, free_expired, &ctx);
    pthread_mutex_unlock(&s->sessions_lock);
}

void mqtt_session_init(struct iot_mqtt_server *s)
{
    unsigned char seed[IOT_MTAB_SEED_LEN];
    randombytes_buf(seed, sizeof seed);
    iot_mtab_init(&s->sessions, seed);
    randombytes_buf(seed, sizeof seed);
    iot_mtab_init(&s->device_conns, seed);
}

static void free_value(void *ctx, struct iot_mtab_node *n)
{
    (void)ctx;
    free(n->val.ptr);
}

void mqtt_session_free_all(struct iot_mqtt_server *s)
{
    iot_mtab_clear(&s->sessions, free_value, NULL);
    iot_mtab_clear(&s->device_conns, free_value, NULL);
}
