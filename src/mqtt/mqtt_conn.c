/* mqtt_conn.c — one client connection on its loop: reading and framing,
 * the packets that are not PUBLISH (CONNECT, SUBSCRIBE, UNSUBSCRIBE,
 * PINGREQ, DISCONNECT), writing, deadlines and closing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mqtt/mqtt_int.h"
#include "util/err.h"
#include "util/log.h"

#define READ_CHUNK 16384
/* Before CONNECT nobody is known: a stranger's first packet (client id,
 * key, will) gets this much memory, not the whole maximum packet. */
#define CONNECT_MAX (64 * 1024)

/* 3.1.1 CONNACK return codes (§3.2.2.3). */
enum {
    V311_UNACCEPTABLE_VERSION = 1,
    V311_IDENTIFIER_REJECTED = 2,
    V311_SERVER_UNAVAILABLE = 3,
    V311_BAD_USERNAME_OR_PASSWORD = 4,
    V311_NOT_AUTHORIZED = 5,
};

/* ---- life ----------------------------------------------------------------- */

struct mqtt_conn *mqtt_conn_new(struct mqtt_loop *l, int fd, const char *addr,
                                const char *bucket)
{
    struct iot_mqtt_server *s = l->srv;
    struct mqtt_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = l;
    c->fd = fd;
    c->refs = 1;
    c->id = atomic_fetch_add(&s->next_conn_id, 1);
    c->sub_config = c->sub_alerts = MQTT_NO_SUBSCRIPTION;
    c->problem_info = true;
    c->deadline = mqtt_now() + (int64_t)s->cfg.connect_timeout * 1000;
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    snprintf(c->bucket, sizeof c->bucket, "%s", bucket);
    c->pending_counted = s->cfg.pending_per_ip != 0; /* the accept counted it */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev)) {
        free(c);
        return NULL;
    }
    c->reading = true;
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    atomic_fetch_add(&s->n_conns, 1);
    atomic_fetch_add(&s->accepted, 1);
    return c;
}

/* Its CONNECT is done, or it closed: its address's count drops, once. */
static void pending_done(struct mqtt_conn *c)
{
    if (c->pending_counted) {
        c->pending_counted = false;
        mqtt_pending_release(c->loop->srv, c->bucket);
    }
}

void mqtt_conn_unref(struct mqtt_conn *c)
{
    if (--c->refs > 0)
        return;
    c->grave_next = c->loop->graveyard;
    c->loop->graveyard = c;
}

void mqtt_conn_bury(struct mqtt_loop *l)
{
    while (l->graveyard) {
        struct mqtt_conn *c = l->graveyard;
        l->graveyard = c->grave_next;
        free(c->rbuf);
        free(c->wbuf);
        free(c->will_payload);
        free(c);
    }
}

static void set_alerts_subscription(struct mqtt_conn *c, uint8_t qos)
{
    struct iot_mqtt_server *s = c->loop->srv;
    if (c->sub_alerts == MQTT_NO_SUBSCRIPTION && qos != MQTT_NO_SUBSCRIPTION)
        atomic_fetch_add(&s->alert_subscribers, 1);
    else if (c->sub_alerts != MQTT_NO_SUBSCRIPTION && qos == MQTT_NO_SUBSCRIPTION)
        atomic_fetch_sub(&s->alert_subscribers, 1);
    c->sub_alerts = qos;
}

void mqtt_conn_close(struct mqtt_conn *c, const struct mqtt_close *how)
{
    if (c->closed)
        return;
    if (how->send_disconnect && c->connected && c->version == MQTT_V5) {
        struct mqtt_packet p = {.type = MQTT_DISCONNECT, .u.disconnect.reason = how->reason};
        if (how->text && c->problem_info)
            mqtt_props_set_data(&p.u.disconnect.props, MQTT_PROP_REASON_STRING, how->text,
                                strlen(how->text));
        if (mqtt_conn_send(c, &p))
            mqtt_conn_flush(c); /* best effort: the socket closes next */
        if (c->closed)
            return; /* the flush failed and closed it */
    }
    if (how->will && c->has_will && c->connected)
        mqtt_publish_will(c);
    if (c->connected)
        mqtt_session_detach(c);
    set_alerts_subscription(c, MQTT_NO_SUBSCRIPTION);
    pending_done(c);
    c->closed = true;
    struct mqtt_loop *l = c->loop;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    atomic_fetch_sub(&l->srv->n_conns, 1);
    if (c->connected)
        IOT_DEBUG("mqtt: device %lld (%s) disconnected, reason 0x%02x", (long long)c->device.id,
                  c->addr, how->reason);
    mqtt_publish_forget(c);
    mqtt_conn_unref(c); /* the loop's */
}

void mqtt_conn_fail(struct mqtt_conn *c, uint8_t reason, const char *text)
{
    IOT_DEBUG("mqtt: closing %s: reason 0x%02x%s%s", c->addr, reason, text ? ": " : "",
              text ? text : "");
    mqtt_conn_close(c, &(struct mqtt_close){.reason = reason, .send_disconnect = true,
                                            .will = true, .text = text});
}

/* ---- writing ---------------------------------------------------------------- */

static bool reserve_out(struct mqtt_conn *c, size_t more)
{
    if (c->wcap - c->wlen >= more)
        return true;
    if (c->woff) { /* slide what is left to the front first */
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
        if (c->wcap - c->wlen >= more)
            return true;
    }
    size_t cap = c->wcap ? c->wcap : 4096;
    while (cap - c->wlen < more)
        cap *= 2;
    uint8_t *b = realloc(c->wbuf, cap);
    if (!b)
        return false;
    c->wbuf = b;
    c->wcap = cap;
    return true;
}

/* The properties of a packet that may carry a Reason String. */
static struct mqtt_props *reason_props(struct mqtt_packet *p)
{
    switch (p->type) {
    case MQTT_CONNACK:
        return &p->u.connack.props;
    case MQTT_PUBACK:
        return &p->u.ack.props;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        return &p->u.suback.props;
    case MQTT_DISCONNECT:
        return &p->u.disconnect.props;
    default:
        return NULL;
    }
}

static void mark_dirty(struct mqtt_conn *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->refs++; /* the flush list's */
    c->dirty_next = c->loop->dirty;
    c->loop->dirty = c;
}

/* Output owed to a client that does not read is capped: past it the
 * connection ends (mqtt_conn_flush), rather than the server's memory. */
static size_t out_cap(const struct mqtt_conn *c) { return 2 * c->loop->srv->cfg.max_packet + 65536; }

bool mqtt_conn_send(struct mqtt_conn *c, const struct mqtt_packet *p)
{
    if (c->closed)
        return false;
    struct mqtt_packet q = *p;
    int size = mqtt_encode(&q, c->version, NULL, 0);
    /* v5 §3.1.2.11.4: nothing above the client's maximum is sent; an answer
     * goes without its Reason String (§3.4.2.2.2), a PUBLISH not at all. */
    struct mqtt_props *props = reason_props(&q);
    if (size > 0 && c->client_max_packet && (uint32_t)size > c->client_max_packet && props) {
        props->present &= ~(UINT64_C(1) << MQTT_PROP_REASON_STRING);
        size = mqtt_encode(&q, c->version, NULL, 0);
    }
    if (size < 0) {
        IOT_WARN("mqtt: cannot encode %s for %s: %s", mqtt_type_name(p->type), c->addr,
                 mqtt_strerror(size));
        return false;
    }
    if (c->client_max_packet && (uint32_t)size > c->client_max_packet && !props)
        return false;
    if (c->wlen - c->woff + (size_t)size > out_cap(c)) {
        c->overflowed = true;
        mark_dirty(c);
        return false;
    }
    if (!reserve_out(c, (size_t)size))
        return false;
    mqtt_encode(&q, c->version, c->wbuf + c->wlen, (size_t)size);
    c->wlen += (size_t)size;
    mark_dirty(c);
    return true;
}

void mqtt_conn_flush(struct mqtt_conn *c)
{
    if (c->overflowed && !c->closed) {
        c->overflowed = false;
        mqtt_conn_fail(c, MQTT_RC_QUOTA_EXCEEDED, "the client does not read what it is sent");
        return;
    }
    while (!c->closed && c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        /* The peer is gone: what was owed cannot be told. */
        mqtt_conn_close(c, &(struct mqtt_close){.will = true});
        return;
    }
    if (c->closed)
        return;
    if (c->woff == c->wlen) {
        c->woff = c->wlen = 0;
        if (c->wcap > 4 * READ_CHUNK) { /* one large answer does not stay allocated */
            free(c->wbuf);
            c->wbuf = NULL;
            c->wcap = 0;
        }
    }
    mqtt_conn_update_events(c);
}

void mqtt_conn_on_writable(struct mqtt_conn *c) { mqtt_conn_flush(c); }

/* ---- CONNECT ------------------------------------------------------------------ */

static void refuse_connect(struct mqtt_conn *c, uint8_t v5_reason, uint8_t v311_code,
                           const char *why)
{
    struct mqtt_packet p = {.type = MQTT_CONNACK};
    p.u.connack.reason = c->version == MQTT_V5 ? v5_reason : v311_code;
    if (c->version == MQTT_V5 && why && c->problem_info)
        mqtt_props_set_data(&p.u.connack.props, MQTT_PROP_REASON_STRING, why, strlen(why));
    atomic_fetch_add(&c->loop->srv->refused_connects, 1);
    IOT_INFO("mqtt: connection from %s refused: %s", c->addr, why);
    if (mqtt_conn_send(c, &p))
        mqtt_conn_flush(c);
    mqtt_conn_close(c, &(struct mqtt_close){0});
}

static bool is_telemetry_topic(const struct mqtt_str *t, bool *batch)
{
    *batch = mqtt_str_is(t, MQTT_TOPIC_BATCH);
    return *batch || mqtt_str_is(t, MQTT_TOPIC_TELEMETRY);
}

/* The will is kept (a copy) for when the connection ends badly; false
 * after refusing the CONNECT. */
static bool take_will(struct mqtt_conn *c, const struct mqtt_connect *k)
{
    if (!k->will_flag)
        return true;
    if (!is_telemetry_topic(&k->will.topic, &c->will_batch)) {
        refuse_connect(c, MQTT_RC_TOPIC_NAME_INVALID, V311_NOT_AUTHORIZED,
                       "a will may only be published to " MQTT_TOPIC_TELEMETRY "(/batch)");
        return false;
    }
    if (k->will.retain && c->version == MQTT_V5) {
        refuse_connect(c, MQTT_RC_RETAIN_NOT_SUPPORTED, V311_NOT_AUTHORIZED,
                       "retained messages are not supported");
        return false;
    }
    c->will_payload = malloc(k->will.payload.len ? k->will.payload.len : 1);
    if (!c->will_payload) {
        refuse_connect(c, MQTT_RC_SERVER_UNAVAILABLE, V311_SERVER_UNAVAILABLE, "out of memory");
        return false;
    }
    memcpy(c->will_payload, k->will.payload.ptr, k->will.payload.len);
    c->will_len = k->will.payload.len;
    c->has_will = true;
    return true;
}

/* The device whose key is the password. */
static bool authenticate(struct mqtt_conn *c, const struct mqtt_connect *k)
{
    if (!k->has_password || k->password.len == 0) {
        refuse_connect(c, MQTT_RC_BAD_USERNAME_OR_PASSWORD, V311_BAD_USERNAME_OR_PASSWORD,
                       "the password must be the device's API key");
        return false;
    }
    int store_rc = IOT_OK;
    enum iot_device_verdict v =
        iot_device_authenticate(c->loop->srv->env.devices, (const char *)k->password.ptr,
                                k->password.len, IOT_DEVICE_AUTH_ANY, &c->device, &store_rc);
    switch (v) {
    case IOT_DEVICE_OK:
        return true;
    case IOT_DEVICE_UNKNOWN_KEY:
        refuse_connect(c, MQTT_RC_BAD_USERNAME_OR_PASSWORD, V311_BAD_USERNAME_OR_PASSWORD,
                       "the provided API key is not valid");
        return false;
    case IOT_DEVICE_STORE_ERROR:
        IOT_WARN("mqtt: device key check failed: %s", iot_strerror(store_rc));
        refuse_connect(c, MQTT_RC_SERVER_UNAVAILABLE, V311_SERVER_UNAVAILABLE,
                       "the device registry is unavailable; retry later");
        return false;
    default: /* the owner is deactivated (the other refusals need another mode) */
        refuse_connect(c, MQTT_RC_NOT_AUTHORIZED, V311_NOT_AUTHORIZED,
                       "the account that owns this device is deactivated");
        return false;
    }
}

static bool take_client_id(struct mqtt_conn *c, const struct mqtt_connect *k, bool *assigned)
{
    *assigned = false;
    if (k->client_id.len > MQTT_CLIENT_ID_MAX) {
        refuse_connect(c, MQTT_RC_CLIENT_ID_NOT_VALID, V311_IDENTIFIER_REJECTED,
                       "the client id is longer than 256 bytes");
        return false;
    }
    if (k->client_id.len) {
        memcpy(c->client_id, k->client_id.ptr, k->client_id.len);
        c->client_id[k->client_id.len] = '\0';
        return true;
    }
    /* 3.1.1 §3.1.3.1: an empty id only with a clean session. */
    if (c->version == MQTT_V311 && !k->clean_start) {
        refuse_connect(c, MQTT_RC_CLIENT_ID_NOT_VALID, V311_IDENTIFIER_REJECTED,
                       "an empty client id needs a clean session");
        return false;
    }
    snprintf(c->client_id, sizeof c->client_id, "iotflow-%llu", (unsigned long long)c->id);
    *assigned = true;
    return true;
}

static void send_connack(struct mqtt_conn *c, bool session_present, bool assigned,
                         uint16_t keepalive, bool keepalive_changed, bool expiry_lowered)
{
    const struct iot_mqtt_config *cfg = &c->loop->srv->cfg;
    struct mqtt_packet p = {.type = MQTT_CONNACK};
    p.u.connack.session_present = session_present;
    if (c->version == MQTT_V5) {
        struct mqtt_props *pr = &p.u.connack.props;
        mqtt_props_set_num(pr, MQTT_PROP_RECEIVE_MAXIMUM, cfg->inflight);
        mqtt_props_set_num(pr, MQTT_PROP_MAXIMUM_QOS, 1);
        mqtt_props_set_num(pr, MQTT_PROP_RETAIN_AVAILABLE, 0);
        mqtt_props_set_num(pr, MQTT_PROP_MAXIMUM_PACKET_SIZE, (uint32_t)cfg->max_packet);
        mqtt_props_set_num(pr, MQTT_PROP_WILDCARD_SUB_AVAILABLE, 0);
        mqtt_props_set_num(pr, MQTT_PROP_SUB_ID_AVAILABLE, 0);
        mqtt_props_set_num(pr, MQTT_PROP_SHARED_SUB_AVAILABLE, 0);
        if (assigned)
            mqtt_props_set_data(pr, MQTT_PROP_ASSIGNED_CLIENT_ID, c->client_id,
                                strlen(c->client_id));
        if (keepalive_changed)
            mqtt_props_set_num(pr, MQTT_PROP_SERVER_KEEP_ALIVE, keepalive);
        if (expiry_lowered)
            mqtt_props_set_num(pr, MQTT_PROP_SESSION_EXPIRY, c->session_expiry);
    }
    mqtt_conn_send(c, &p);
}

static void on_connect(struct mqtt_conn *c, const struct mqtt_connect *k)
{
    const struct iot_mqtt_config *cfg = &c->loop->srv->cfg;
    c->version = k->version;
    const struct mqtt_props *pr = &k->props;
    if (mqtt_props_has(pr, MQTT_PROP_REQUEST_PROBLEM_INFO))
        c->problem_info = pr->num[MQTT_PROP_REQUEST_PROBLEM_INFO] != 0;
    if (mqtt_props_has(pr, MQTT_PROP_AUTH_METHOD)) {
        refuse_connect(c, MQTT_RC_BAD_AUTHENTICATION_METHOD, V311_NOT_AUTHORIZED,
                       "no authentication method is supported: send the API key as password");
        return;
    }
    bool assigned;
    if (!take_client_id(c, k, &assigned) || !take_will(c, k) || !authenticate(c, k))
        return;
    c->client_receive_max = mqtt_props_has(pr, MQTT_PROP_RECEIVE_MAXIMUM)
                                ? (uint16_t)pr->num[MQTT_PROP_RECEIVE_MAXIMUM]
                                : UINT16_MAX;
    /* Keep-alive 0 (none) or above the maximum gets the maximum: an idle
     * connection must not hold its place forever. 3.1.1 cannot be told. */
    uint16_t keepalive = k->keep_alive;
    bool keepalive_changed = keepalive == 0 || keepalive > cfg->keepalive_max;
    if (keepalive_changed)
        keepalive = (uint16_t)cfg->keepalive_max;
    c->keepalive_ms = keepalive * 1000u;
    uint32_t asked = c->version == MQTT_V5 ? pr->num[MQTT_PROP_SESSION_EXPIRY]
                                           : (k->clean_start ? 0 : UINT32_MAX);
    c->session_expiry = asked < cfg->session_expiry_max ? asked : cfg->session_expiry_max;
    bool present;
    if (!mqtt_session_attach(c, k->clean_start, &present)) {
        char why[96];
        snprintf(why, sizeof why, "device %lld already has %u connections",
                 (long long)c->device.id, cfg->per_device);
        refuse_connect(c, MQTT_RC_QUOTA_EXCEEDED, V311_SERVER_UNAVAILABLE, why);
        return;
    }
    send_connack(c, present, assigned, keepalive, keepalive_changed,
                 c->version == MQTT_V5 && c->session_expiry < asked);
    /* From now on (not for the CONNACK, which must arrive). */
    if (mqtt_props_has(pr, MQTT_PROP_MAXIMUM_PACKET_SIZE))
        c->client_max_packet = pr->num[MQTT_PROP_MAXIMUM_PACKET_SIZE];
    c->connected = true;
    pending_done(c);
    IOT_INFO("mqtt: device %lld connected from %s (MQTT %s, client id \"%s\"%s)",
             (long long)c->device.id, c->addr, c->version == MQTT_V5 ? "5.0" : "3.1.1",
             c->client_id, present ? ", session resumed" : "");
    if (c->sub_alerts != MQTT_NO_SUBSCRIPTION) { /* resumed: count it */
        uint8_t q = c->sub_alerts;
        c->sub_alerts = MQTT_NO_SUBSCRIPTION;
        set_alerts_subscription(c, q);
    }
    if (c->sub_config != MQTT_NO_SUBSCRIPTION)
        mqtt_deliver_config(c, true);
}

/* ---- SUBSCRIBE, UNSUBSCRIBE, DISCONNECT ---------------------------------------- */

/* The reason for one subscription; *send_config when the newest
 * configuration is to follow the SUBACK. */
static uint8_t subscribe_one(struct mqtt_conn *c, const struct mqtt_subscription *sub,
                             bool *send_config)
{
    uint8_t qos = (sub->options & MQTT_SUB_QOS_MASK) ? 1 : 0;
    if (mqtt_str_is(&sub->filter, MQTT_TOPIC_CONFIG)) {
        unsigned handling = (sub->options >> MQTT_SUB_RETAIN_HANDLING_SHIFT) & 3;
        bool is_new = c->sub_config == MQTT_NO_SUBSCRIPTION;
        c->sub_config = qos;
        *send_config |= handling == 0 || (handling == 1 && is_new);
        return qos;
    }
    if (mqtt_str_is(&sub->filter, MQTT_TOPIC_ALERTS)) {
        set_alerts_subscription(c, qos);
        return qos;
    }
    if (c->version == MQTT_V311)
        return 0x80;
    if (sub->filter.len >= 7 && memcmp(sub->filter.ptr, "$share/", 7) == 0)
        return MQTT_RC_SHARED_SUBS_NOT_SUPPORTED;
    if (memchr(sub->filter.ptr, '+', sub->filter.len) || memchr(sub->filter.ptr, '#', sub->filter.len))
        return MQTT_RC_WILDCARD_SUBS_NOT_SUPPORTED;
    return MQTT_RC_NOT_AUTHORIZED;
}

static void on_subscribe(struct mqtt_conn *c, const struct mqtt_subscribe *sp)
{
    if (mqtt_props_has(&sp->props, MQTT_PROP_SUBSCRIPTION_ID)) {
        mqtt_conn_fail(c, MQTT_RC_SUB_IDS_NOT_SUPPORTED, "subscription identifiers are not supported");
        return;
    }
    /* Each subscription takes at least 3 bytes of the payload. */
    uint8_t *reasons = malloc(sp->raw.len / 3 + 1);
    if (!reasons) {
        mqtt_conn_fail(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
        return;
    }
    size_t pos = 0, n = 0;
    struct mqtt_subscription sub;
    bool send_config = false;
    while (mqtt_subscribe_next(sp, &pos, &sub))
        reasons[n++] = subscribe_one(c, &sub, &send_config);
    struct mqtt_packet p = {.type = MQTT_SUBACK};
    p.u.suback.packet_id = sp->packet_id;
    p.u.suback.reasons = (struct mqtt_bytes){reasons, n};
    mqtt_conn_send(c, &p);
    free(reasons);
    mqtt_session_save(c);
    if (send_config)
        mqtt_deliver_config(c, true);
}

static void on_unsubscribe(struct mqtt_conn *c, const struct mqtt_unsubscribe *u)
{
    uint8_t *reasons = malloc(u->raw.len / 2 + 1);
    if (!reasons) {
        mqtt_conn_fail(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
        return;
    }
    size_t pos = 0, n = 0;
    struct mqtt_str f;
    while (mqtt_unsubscribe_next(u, &pos, &f)) {
        bool had = false;
        if (mqtt_str_is(&f, MQTT_TOPIC_CONFIG)) {
            had = c->sub_config != MQTT_NO_SUBSCRIPTION;
            c->sub_config = MQTT_NO_SUBSCRIPTION;
        } else if (mqtt_str_is(&f, MQTT_TOPIC_ALERTS)) {
            had = c->sub_alerts != MQTT_NO_SUBSCRIPTION;
            set_alerts_subscription(c, MQTT_NO_SUBSCRIPTION);
        }
        reasons[n++] = had ? MQTT_RC_SUCCESS : MQTT_RC_NO_SUBSCRIPTION_EXISTED;
    }
    struct mqtt_packet p = {.type = MQTT_UNSUBACK};
    p.u.suback.packet_id = u->packet_id;
    if (c->version == MQTT_V5)
        p.u.suback.reasons = (struct mqtt_bytes){reasons, n};
    mqtt_conn_send(c, &p);
    free(reasons);
    mqtt_session_save(c);
}

static void on_disconnect(struct mqtt_conn *c, const struct mqtt_disconnect *d)
{
    if (c->version == MQTT_V5 && mqtt_props_has(&d->props, MQTT_PROP_SESSION_EXPIRY)) {
        uint32_t asked = d->props.num[MQTT_PROP_SESSION_EXPIRY];
        if (c->session_expiry == 0 && asked > 0) { /* v5 §3.14.2.2.2 */
            mqtt_conn_fail(c, MQTT_RC_PROTOCOL_ERROR, "a session without expiry cannot get one");
            return;
        }
        uint32_t max = c->loop->srv->cfg.session_expiry_max;
        c->session_expiry = asked < max ? asked : max;
    }
    /* v5 §3.1.2.5: only a normal disconnection (0x00) discards the will;
     * 0x04 asks for it and an error reason is no normal end either. */
    bool will = c->version == MQTT_V5 && d->reason != MQTT_RC_SUCCESS;
    mqtt_conn_close(c, &(struct mqtt_close){.will = will});
}

/* ---- reading ---------------------------------------------------------------- */

/* The protocol level byte of a CONNECT (after its fixed header and the
 * 6-byte protocol name), to answer a bad CONNECT in its own version. */
static uint8_t connect_level(const uint8_t *data, size_t len)
{
    size_t i = 1;
    while (i < len && i < 5 && (data[i] & 0x80))
        i++;
    i += 1 + 6;
    return i < len ? data[i] : 0;
}

static void on_first_packet_error(struct mqtt_conn *c, const uint8_t *data, size_t len, int err)
{
    if (err == MQTT_E_UNSUPPORTED) {
        c->version = MQTT_V311; /* 3.1.1 §3.1.2.2: return code 1, then close */
        refuse_connect(c, MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION, V311_UNACCEPTABLE_VERSION,
                       "only MQTT 3.1.1 and 5.0 are spoken");
        return;
    }
    if (connect_level(data, len) == MQTT_V5) {
        c->version = MQTT_V5;
        refuse_connect(c, mqtt_err_reason(err), V311_NOT_AUTHORIZED, mqtt_strerror(err));
        return;
    }
    IOT_DEBUG("mqtt: bad CONNECT from %s: %s", c->addr, mqtt_strerror(err));
    mqtt_conn_close(c, &(struct mqtt_close){0});
}

static void handle_packet(struct mqtt_conn *c, const uint8_t *data, size_t len)
{
    struct mqtt_packet p;
    if (!c->connected) {
        if ((data[0] >> 4) != MQTT_CONNECT) { /* §3.1: the first packet must be CONNECT */
            mqtt_conn_close(c, &(struct mqtt_close){0});
            return;
        }
        int rc = mqtt_decode(data, len, MQTT_V5, &p);
        if (rc)
            on_first_packet_error(c, data, len, rc);
        else
            on_connect(c, &p.u.connect);
        return;
    }
    int rc = mqtt_decode(data, len, c->version, &p);
    if (rc) {
        mqtt_conn_fail(c, mqtt_err_reason(rc), mqtt_strerror(rc));
        return;
    }
    switch (p.type) {
    case MQTT_PUBLISH:
        mqtt_publish_in(c, &p.u.publish);
        break;
    case MQTT_PUBACK: /* a delivery of ours arrived: nothing else is kept for it */
        if (c->out_inflight)
            c->out_inflight--;
        break;
    case MQTT_SUBSCRIBE:
        on_subscribe(c, &p.u.subscribe);
        break;
    case MQTT_UNSUBSCRIBE:
        on_unsubscribe(c, &p.u.unsubscribe);
        break;
    case MQTT_PINGREQ:
        mqtt_conn_send(c, &(struct mqtt_packet){.type = MQTT_PINGRESP});
        break;
    case MQTT_DISCONNECT:
        on_disconnect(c, &p.u.disconnect);
        break;
    default: /* a second CONNECT, QoS 2 flow, AUTH, or what only a server sends */
        mqtt_conn_fail(c, MQTT_RC_PROTOCOL_ERROR, mqtt_type_name(p.type));
        break;
    }
}

void mqtt_conn_process(struct mqtt_conn *c)
{
    const struct iot_mqtt_config *cfg = &c->loop->srv->cfg;
    size_t off = 0;
    while (!c->closed && c->retry_at == 0 && off < c->rlen) {
        if (c->version == MQTT_V311 && c->connected && c->inflight >= cfg->inflight)
            break; /* 3.1.1 has no Receive Maximum: wait for PUBACKs to leave */
        size_t plen = 0, max = c->connected || cfg->max_packet < CONNECT_MAX ? cfg->max_packet
                                                                             : CONNECT_MAX;
        int rc = mqtt_frame(c->rbuf + off, c->rlen - off, max, &plen);
        if (rc == MQTT_E_AGAIN)
            break;
        if (rc) {
            if (c->connected)
                mqtt_conn_fail(c, mqtt_err_reason(rc), mqtt_strerror(rc));
            else
                mqtt_conn_close(c, &(struct mqtt_close){0});
            return;
        }
        handle_packet(c, c->rbuf + off, plen);
        off += plen;
        if (c->connected)
            c->deadline = mqtt_now() + c->keepalive_ms * 3 / 2;
    }
    if (c->closed)
        return;
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    if (c->rlen == 0 && c->rcap > 4 * READ_CHUNK) { /* after one large packet */
        free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = 0;
    }
    mqtt_conn_update_events(c);
}

static bool reserve_in(struct mqtt_conn *c)
{
    if (c->rcap - c->rlen >= READ_CHUNK)
        return true;
    size_t limit = c->loop->srv->cfg.max_packet + READ_CHUNK;
    size_t cap = c->rcap ? c->rcap * 2 : READ_CHUNK;
    while (cap - c->rlen < READ_CHUNK && cap < limit)
        cap *= 2;
    if (cap > limit)
        cap = limit;
    if (cap <= c->rcap)
        return c->rcap > c->rlen;
    uint8_t *b = realloc(c->rbuf, cap);
    if (!b)
        return false;
    c->rbuf = b;
    c->rcap = cap;
    return true;
}

void mqtt_conn_on_readable(struct mqtt_conn *c)
{
    if (!reserve_in(c)) {
        mqtt_conn_fail(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
        return;
    }
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        /* Gone without DISCONNECT: the will is stored. */
        mqtt_conn_close(c, &(struct mqtt_close){.will = true});
        return;
    }
    if (n > 0) {
        c->rlen += (size_t)n;
        mqtt_conn_process(c);
    }
}

void mqtt_conn_tick(struct mqtt_conn *c, int64_t now)
{
    if (c->retry_at && now >= c->retry_at) {
        c->retry_at = 0;
        /* Still stalled: the keep-alive waits too, since it is the server
         * that does not read the client's PINGREQs. */
        if (!mqtt_publish_retry(c))
            return;
        mqtt_conn_process(c);
        if (c->closed)
            return;
    }
    if (c->deadline && now > c->deadline) {
        if (!c->connected)
            mqtt_conn_close(c, &(struct mqtt_close){0});
        else
            mqtt_conn_fail(c, MQTT_RC_KEEP_ALIVE_TIMEOUT, "no packet within 1.5 x keep-alive");
    }
}
