/* mqtt_deliver.c — what the server sends on its own: a device's newest
 * configuration (at SUBSCRIBE, at a resumed session, on every change), its
 * alerts, and the end of connections whose key stops being valid. The
 * changes come from the cache's pub/sub (so from every instance sharing
 * it): the subscriber thread turns each into a post for every loop, and
 * each loop looks through its own connections. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alerting_docs.h"
#include "core/devcache.h"
#include "core/devconfig.h"
#include "mqtt/mqtt_int.h"
#include "util/err.h"
#include "util/log.h"

#define JSON_TYPE "application/json"

static uint16_t next_packet_id(struct mqtt_conn *c)
{
    if (++c->next_packet_id == 0)
        c->next_packet_id = 1;
    return c->next_packet_id;
}

static void send_publish(struct mqtt_conn *c, const char *topic, uint8_t qos, bool retain,
                         const char *body, size_t len)
{
    struct mqtt_packet p = {.type = MQTT_PUBLISH};
    struct mqtt_publish *pub = &p.u.publish;
    pub->qos = qos;
    pub->retain = retain;
    pub->topic = (struct mqtt_str){topic, strlen(topic)};
    pub->payload = (struct mqtt_bytes){(const uint8_t *)body, len};
    /* v5 §3.3.4: no more unacknowledged QoS 1 than the client's Receive
     * Maximum (3.1.1: 65535, what the packet ids allow); beyond, QoS 0. */
    if (qos && c->out_inflight >= c->client_receive_max)
        pub->qos = qos = 0;
    if (qos)
        pub->packet_id = next_packet_id(c);
    if (c->version == MQTT_V5) {
        mqtt_props_set_num(&pub->props, MQTT_PROP_PAYLOAD_FORMAT, 1); /* UTF-8 */
        mqtt_props_set_data(&pub->props, MQTT_PROP_CONTENT_TYPE, JSON_TYPE, strlen(JSON_TYPE));
    }
    if (!mqtt_conn_send(c, &p))
        return;
    atomic_fetch_add(&c->loop->srv->delivered, 1);
    if (qos)
        c->out_inflight++;
}

/* ---- configurations ---------------------------------------------------------- */

struct config_send {
    struct mqtt_conn *c;
    bool retain;
};

static int send_config_doc(void *ctx, const struct iot_doc *doc)
{
    struct config_send *cs = ctx;
    struct mqtt_conn *c = cs->c;
    if (doc->ts_ms > c->config_version || cs->retain) {
        c->config_version = doc->ts_ms;
        send_publish(c, MQTT_TOPIC_CONFIG, c->sub_config, cs->retain, doc->body, doc->body_len);
    }
    return 1; /* the newest only */
}

void mqtt_deliver_config(struct mqtt_conn *c, bool at_subscribe)
{
    if (c->closed || c->sub_config == MQTT_NO_SUBSCRIPTION)
        return;
    struct config_send cs = {c, at_subscribe};
    int rc = iot_devconfig_latest(c->loop->srv->env.docs, c->device.id, send_config_doc, &cs);
    if (rc && rc != IOT_ENOTFOUND)
        IOT_WARN("mqtt: device %lld: configuration not sent: %s", (long long)c->device.id,
                 iot_strerror(rc));
}

/* ---- posts on a loop ---------------------------------------------------------- */

/* A device notice: the key of a connection may have been rotated, its
 * device deleted or switched off, its owner deactivated. The key cache
 * entry is dropped here too (the API's subscriber may not have run yet),
 * so the check reads the registry. */
static void recheck(struct mqtt_conn *c, const struct iot_device_notice *n)
{
    const struct iot_device_gate *g = c->loop->srv->env.devices;
    if (n->deleted) {
        mqtt_conn_close(c, &(struct mqtt_close){.reason = MQTT_RC_ADMINISTRATIVE_ACTION,
                                                .send_disconnect = true,
                                                .text = "the device was deleted"});
        return;
    }
    iot_devcache_forget(g->devcache, c->device.api_key_hash);
    struct iot_device d;
    int store_rc = IOT_OK;
    switch (iot_device_authenticate_hash(g, c->device.api_key_hash, IOT_DEVICE_AUTH_ANY, &d,
                                         &store_rc)) {
    case IOT_DEVICE_OK:
        c->device = d; /* a new status, say: PUBLISH checks it */
        return;
    case IOT_DEVICE_STORE_ERROR:
        IOT_WARN("mqtt: device %lld: key not checked again: %s", (long long)c->device.id,
                 iot_strerror(store_rc));
        return;
    case IOT_DEVICE_OWNER_INACTIVE:
        mqtt_conn_close(c, &(struct mqtt_close){.reason = MQTT_RC_ADMINISTRATIVE_ACTION,
                                                .send_disconnect = true,
                                                .text = "the device's owner was deactivated"});
        return;
    default:
        mqtt_conn_close(c, &(struct mqtt_close){.reason = MQTT_RC_ADMINISTRATIVE_ACTION,
                                                .send_disconnect = true,
                                                .text = "the device's key was rotated"});
        return;
    }
}

static bool concerns(const struct mqtt_conn *c, const struct mqtt_post *p)
{
    if (c->closed || !c->connected)
        return false;
    if (p->kind == MQTT_POST_NOTICE && p->notice.owner)
        return c->device.user_id == p->notice.id;
    return c->device.id == p->device_id;
}

void mqtt_deliver_post(struct mqtt_loop *l, struct mqtt_post *p)
{
    for (struct mqtt_conn *c = l->conns, *next; c; c = next) {
        next = c->next; /* c may close */
        if (!concerns(c, p))
            continue;
        switch (p->kind) {
        case MQTT_POST_NOTICE:
            recheck(c, &p->notice);
            break;
        case MQTT_POST_CONFIG:
            if (c->sub_config != MQTT_NO_SUBSCRIPTION && c->config_version < p->version)
                mqtt_deliver_config(c, false);
            break;
        case MQTT_POST_ALERT:
            if (c->sub_alerts != MQTT_NO_SUBSCRIPTION)
                send_publish(c, MQTT_TOPIC_ALERTS, c->sub_alerts, false, p->text, p->text_len);
            break;
        default:
            break;
        }
    }
}

/* ---- the channels ------------------------------------------------------------- */

static void on_notice(void *ctx, const char *channel, const char *msg, size_t len)
{
    (void)channel;
    struct mqtt_post p = {.kind = MQTT_POST_NOTICE};
    if (!iot_device_notice_parse(msg, len, &p.notice))
        return;
    p.device_id = p.notice.id;
    mqtt_broadcast(ctx, &p);
}

static void on_config(void *ctx, const char *channel, const char *msg, size_t len)
{
    (void)channel;
    struct mqtt_post p = {.kind = MQTT_POST_CONFIG};
    if (iot_devconfig_announcement(msg, len, &p.device_id, &p.version))
        mqtt_broadcast(ctx, &p);
}

/* {"type": "alert.raised", "alert": {..., "device_id": N, ...}} */
static void on_alert(void *ctx, const char *channel, const char *msg, size_t len)
{
    (void)channel;
    struct iot_mqtt_server *s = ctx;
    if (atomic_load(&s->alert_subscribers) == 0)
        return; /* nobody listens: no parse, no posts */
    json_t *root = json_loadb(msg, len, 0, NULL);
    json_t *id = json_object_get(json_object_get(root, "alert"), "device_id");
    char *text = json_is_integer(id) ? strndup(msg, len) : NULL; /* NUL-terminated */
    if (text) {
        struct mqtt_post p = {.kind = MQTT_POST_ALERT, .device_id = json_integer_value(id),
                              .text = text, .text_len = len};
        mqtt_broadcast(s, &p);
        free(text);
    }
    json_decref(root);
}

int mqtt_deliver_subscribe(struct iot_mqtt_server *s)
{
    struct iot_cache *cache = s->env.cache;
    int rc = iot_cache_subscribe(cache, IOT_DEVICE_NOTICE_CHANNEL, on_notice, s, &s->notice_sub);
    if (rc == IOT_OK)
        rc = iot_cache_subscribe(cache, IOT_DEVCONFIG_CHANNEL, on_config, s, &s->config_sub);
    if (rc == IOT_OK)
        rc = iot_cache_subscribe(cache, IOT_ALERT_CHANNEL_ALL, on_alert, s, &s->alert_sub);
    return rc;
}

void mqtt_deliver_unsubscribe(struct iot_mqtt_server *s)
{
    struct iot_cache_sub **subs[] = {&s->notice_sub, &s->config_sub, &s->alert_sub};
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) {
        if (*subs[i])
            iot_cache_unsubscribe(s->env.cache, *subs[i]);
        *subs[i] = NULL;
    }
}
