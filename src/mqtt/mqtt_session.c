/* mqtt_session.c — sessions by (device, client id), in this instance's
 * memory: what a persistent session keeps (its subscriptions) while its
 * client is away, and who holds each identity now, so that a second
 * connection takes over from the first (§3.1.4). Sessions are not shared
 * between instances and do not survive a restart (docs/MQTT.md). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/mqtt_int.h"
#include "util/log.h"

#define SESSION_KEY_MAX (24 + MQTT_CLIENT_ID_MAX)

struct mqtt_session {
    uint64_t conn_id;       /* the connection holding it; 0 while away */
    struct mqtt_loop *loop; /* that connection's loop */
    uint8_t sub_config, sub_alerts;
    int64_t expires_at;     /* while away: dropped then (monotonic ms) */
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

/* The count of the device's attached sessions, by `delta`; its node is
 * dropped at zero. Under sessions_lock. */
static int64_t device_conns(struct iot_mqtt_server *s, int64_t device_id, int delta)
{
    char key[24];
    int len = snprintf(key, sizeof key, "%lld", (long long)device_id);
    struct iot_mtab_node *n = iot_mtab_find(&s->device_conns, key, (size_t)len);
    if (!n && delta > 0)
        n = iot_mtab_add(&s->device_conns, key, (size_t)len);
    if (!n)
        return 0;
    n->val.i64 += delta;
    int64_t count = n->val.i64;
    if (count <= 0)
        iot_mtab_remove(&s->device_conns, n);
    return count;
}

bool mqtt_session_attach(struct mqtt_conn *c, bool clean_start, bool *resumed_out)
{
    struct iot_mqtt_server *s = c->loop->srv;
    pthread_mutex_lock(&s->sessions_lock);
    struct iot_mtab_node *node;
    struct mqtt_session *ss = find(s, c, &node);
    bool resumed = false;
    /* A takeover keeps the session's place; a new attachment needs one. */
    bool takeover = ss && ss->conn_id;
    unsigned cap = s->cfg.per_device;
    if (!takeover && cap && device_conns(s, c->device.id, 0) >= (int64_t)cap) {
        pthread_mutex_unlock(&s->sessions_lock);
        *resumed_out = false;
        return false;
    }
    if (ss) {
        if (ss->conn_id)
            kick(ss);
        if (!clean_start) {
            c->sub_config = ss->sub_config;
            c->sub_alerts = ss->sub_alerts;
            resumed = true;
        }
    } else {
        char key[SESSION_KEY_MAX];
        size_t len = session_key(c, key);
        ss = calloc(1, sizeof *ss);
        node = ss ? iot_mtab_add(&s->sessions, key, len) : NULL;
        if (!node) {
            free(ss);
            ss = NULL;
        } else {
            node->val.ptr = ss;
        }
    }
    if (ss) {
        if (!takeover)
            device_conns(s, c->device.id, 1);
        ss->conn_id = c->id;
        ss->loop = c->loop;
        ss->sub_config = c->sub_config;
        ss->sub_alerts = c->sub_alerts;
        ss->expires_at = 0;
    } else {
        IOT_WARN("mqtt: out of memory: device %lld's session is not kept", (long long)c->device.id);
    }
    pthread_mutex_unlock(&s->sessions_lock);
    *resumed_out = resumed;
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
        device_conns(s, c->device.id, -1);
        /* Sessions waiting for their clients are bounded: past twice the
         * connection limit (a device cycling client ids), one ends now. */
        bool room = s->sessions.count <= 2 * (size_t)s->cfg.max_connections;
        if (!room && c->session_expiry)
            IOT_WARN("mqtt: too many persistent sessions; device %lld's is not kept",
                     (long long)c->device.id);
        if (c->session_expiry == 0 || !room) {
            free(ss);
            iot_mtab_remove(&s->sessions, node);
        } else {
            ss->conn_id = 0;
            ss->loop = NULL;
            ss->sub_config = c->sub_config;
            ss->sub_alerts = c->sub_alerts;
            ss->expires_at = mqtt_now() + (int64_t)c->session_expiry * 1000;
        }
    }
    pthread_mutex_unlock(&s->sessions_lock);
}

static bool expired(void *ctx, const struct iot_mtab_node *n)
{
    const struct mqtt_session *ss = n->val.ptr;
    return ss->conn_id == 0 && ss->expires_at <= *(const int64_t *)ctx;
}

static void free_session(void *ctx, struct iot_mtab_node *n)
{
    (void)ctx;
    free(n->val.ptr);
}

void mqtt_session_sweep(struct iot_mqtt_server *s, int64_t now)
{
    pthread_mutex_lock(&s->sessions_lock);
    iot_mtab_sweep(&s->sessions, s->sessions.nbuckets, expired, free_session, &now);
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

void mqtt_session_free_all(struct iot_mqtt_server *s)
{
    iot_mtab_clear(&s->sessions, free_session, NULL);
    iot_mtab_clear(&s->device_conns, NULL, NULL);
}
