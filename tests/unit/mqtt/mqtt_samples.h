/* mqtt_samples.h — one or more packets of every type for a protocol
 * version, built from structs, for the codec's round-trip test and for
 * writing the fuzzer's seeds (tests/fuzz/seeds/mqtt_packet, made by
 * `MQTT_SEED_DIR=tests/fuzz/seeds/mqtt_packet build/tests/mqtt_codec_test`).
 * Everything points at static data. */
#ifndef MQTT_SAMPLES_H
#define MQTT_SAMPLES_H

#include <string.h>

#include "mqtt/mqtt_codec.h"

#define S(lit) ((struct mqtt_str){lit, sizeof lit - 1})
#define B(lit) ((struct mqtt_bytes){(const uint8_t *)lit, sizeof lit - 1})

static const struct mqtt_user_prop sample_user[] = {
    {{"region", 6}, {"eu", 2}},
    {{"region", 6}, {"us", 2}}, /* the same name twice is allowed (§3.1.2.11.8) */
};
static const uint32_t sample_sub_ids[] = {7, 268435455};
static const struct mqtt_subscription sample_subs_v311[] = {
    {{"devices/me/config", 17}, 1},
    {{"sensors/+/temp", 14}, 0},
    {{"#", 1}, 2},
};
static const struct mqtt_subscription sample_subs_v5[] = {
    {{"devices/me/config", 17}, 1 | MQTT_SUB_NO_LOCAL | MQTT_SUB_RETAIN_AS_PUBLISHED},
    {{"a/+/#", 5}, 2 << MQTT_SUB_RETAIN_HANDLING_SHIFT},
};
static const struct mqtt_str sample_filters[] = {{"devices/me/config", 17}, {"a/#", 3}};

static void sample_connect(struct mqtt_packet *p, uint8_t version, bool full)
{
    memset(p, 0, sizeof *p);
    p->type = MQTT_CONNECT;
    struct mqtt_connect *c = &p->u.connect;
    c->version = version;
    c->clean_start = true;
    c->keep_alive = 60;
    c->client_id = S("sensor-17");
    if (!full)
        return;
    c->has_username = c->has_password = true;
    c->username = S("device-17");
    c->password = B("key\0with\xffnul");
    c->will_flag = true;
    c->will.qos = 1;
    c->will.retain = true;
    c->will.topic = S("devices/17/status");
    c->will.payload = B("offline");
    if (version != MQTT_V5)
        return;
    mqtt_props_set_num(&c->props, MQTT_PROP_SESSION_EXPIRY, 3600);
    mqtt_props_set_num(&c->props, MQTT_PROP_RECEIVE_MAXIMUM, 20);
    mqtt_props_set_num(&c->props, MQTT_PROP_MAXIMUM_PACKET_SIZE, 65536);
    mqtt_props_set_num(&c->props, MQTT_PROP_TOPIC_ALIAS_MAXIMUM, 10);
    mqtt_props_set_num(&c->props, MQTT_PROP_REQUEST_PROBLEM_INFO, 1);
    mqtt_props_set_data(&c->props, MQTT_PROP_AUTH_METHOD, "SCRAM", 5);
    mqtt_props_set_data(&c->props, MQTT_PROP_AUTH_DATA, "\x01\x02", 2);
    c->props.user = sample_user;
    c->props.n_user = 2;
    mqtt_props_set_num(&c->will.props, MQTT_PROP_WILL_DELAY, 5);
    mqtt_props_set_num(&c->will.props, MQTT_PROP_PAYLOAD_FORMAT, 1);
    mqtt_props_set_data(&c->will.props, MQTT_PROP_CONTENT_TYPE, "text/plain", 10);
}

static void sample_publish(struct mqtt_packet *p, uint8_t version, uint8_t qos)
{
    memset(p, 0, sizeof *p);
    p->type = MQTT_PUBLISH;
    struct mqtt_publish *pub = &p->u.publish;
    pub->qos = qos;
    pub->retain = qos == 0;
    pub->dup = qos == 2;
    pub->packet_id = qos ? 0x1234 : 0;
    pub->topic = S("devices/me/telemetry");
    pub->payload = B("{\"temperature\":21.5}");
    if (version != MQTT_V5 || qos == 0)
        return;
    mqtt_props_set_num(&pub->props, MQTT_PROP_PAYLOAD_FORMAT, 1);
    mqtt_props_set_num(&pub->props, MQTT_PROP_MESSAGE_EXPIRY, 120);
    mqtt_props_set_num(&pub->props, MQTT_PROP_TOPIC_ALIAS, 3);
    mqtt_props_set_data(&pub->props, MQTT_PROP_RESPONSE_TOPIC, "reply/17", 8);
    mqtt_props_set_data(&pub->props, MQTT_PROP_CORRELATION_DATA, "\x00\x01", 2);
    mqtt_props_set_data(&pub->props, MQTT_PROP_CONTENT_TYPE, "application/json", 16);
    pub->props.user = sample_user;
    pub->props.n_user = 1;
    pub->props.sub_ids = sample_sub_ids;
    pub->props.n_sub_ids = 2;
}

static void sample_simple(struct mqtt_packet *p, uint8_t type)
{
    memset(p, 0, sizeof *p);
    p->type = type;
}

/* Fills out[] (room for 32) and returns the count. */
static size_t mqtt_samples(uint8_t version, struct mqtt_packet *out)
{
    bool v5 = version == MQTT_V5;
    size_t n = 0;
    sample_connect(&out[n++], version, false);
    sample_connect(&out[n++], version, true);

    sample_simple(&out[n], MQTT_CONNACK);
    out[n].u.connack.session_present = true;
    n++;
    sample_simple(&out[n], MQTT_CONNACK);
    out[n].u.connack.reason = v5 ? MQTT_RC_NOT_AUTHORIZED : 5;
    if (v5) {
        mqtt_props_set_num(&out[n].u.connack.props, MQTT_PROP_MAXIMUM_QOS, 1);
        mqtt_props_set_num(&out[n].u.connack.props, MQTT_PROP_RETAIN_AVAILABLE, 0);
        mqtt_props_set_data(&out[n].u.connack.props, MQTT_PROP_REASON_STRING, "bad key", 7);
    }
    n++;

    for (uint8_t qos = 0; qos <= 2; qos++)
        sample_publish(&out[n++], version, qos);

    for (uint8_t type = MQTT_PUBACK; type <= MQTT_PUBCOMP; type++) {
        sample_simple(&out[n], type);
        out[n++].u.ack.packet_id = 1;
        if (!v5)
            continue;
        sample_simple(&out[n], type);
        out[n].u.ack.packet_id = 0xFFFF;
        out[n].u.ack.reason =
            type <= MQTT_PUBREC ? MQTT_RC_QUOTA_EXCEEDED : MQTT_RC_PACKET_ID_NOT_FOUND;
        n++;
        sample_simple(&out[n], type);
        out[n].u.ack.packet_id = 2;
        out[n].u.ack.reason = type <= MQTT_PUBREC ? MQTT_RC_PAYLOAD_FORMAT_INVALID : 0;
        mqtt_props_set_data(&out[n].u.ack.props, MQTT_PROP_REASON_STRING, "why", 3);
        n++;
    }

    sample_simple(&out[n], MQTT_SUBSCRIBE);
    out[n].u.subscribe.packet_id = 10;
    out[n].u.subscribe.subs = v5 ? sample_subs_v5 : sample_subs_v311;
    out[n].u.subscribe.n_subs = v5 ? 2 : 3;
    if (v5)
        mqtt_props_set_num(&out[n].u.subscribe.props, MQTT_PROP_SUBSCRIPTION_ID, 7);
    n++;

    sample_simple(&out[n], MQTT_SUBACK);
    out[n].u.suback.packet_id = 10;
    out[n].u.suback.reasons = v5 ? B("\x01\x00\xA2") : B("\x01\x00\x80");
    n++;

    sample_simple(&out[n], MQTT_UNSUBSCRIBE);
    out[n].u.unsubscribe.packet_id = 11;
    out[n].u.unsubscribe.filters = sample_filters;
    out[n].u.unsubscribe.n_filters = 2;
    n++;

    sample_simple(&out[n], MQTT_UNSUBACK);
    out[n].u.suback.packet_id = 11;
    if (v5)
        out[n].u.suback.reasons = B("\x00\x11");
    n++;

    sample_simple(&out[n++], MQTT_PINGREQ);
    sample_simple(&out[n++], MQTT_PINGRESP);
    sample_simple(&out[n++], MQTT_DISCONNECT);
    if (v5) {
        sample_simple(&out[n], MQTT_DISCONNECT);
        out[n].u.disconnect.reason = MQTT_RC_SERVER_SHUTTING_DOWN;
        mqtt_props_set_num(&out[n].u.disconnect.props, MQTT_PROP_SESSION_EXPIRY, 0);
        mqtt_props_set_data(&out[n].u.disconnect.props, MQTT_PROP_SERVER_REFERENCE, "other", 5);
        n++;
        sample_simple(&out[n++], MQTT_AUTH);
        sample_simple(&out[n], MQTT_AUTH);
        out[n].u.disconnect.reason = MQTT_RC_CONTINUE_AUTHENTICATION;
        mqtt_props_set_data(&out[n].u.disconnect.props, MQTT_PROP_AUTH_METHOD, "SCRAM", 5);
        mqtt_props_set_data(&out[n].u.disconnect.props, MQTT_PROP_AUTH_DATA, "x", 1);
        n++;
    }
    return n;
}

#endif
