/* Tests of the MQTT packet codec (src/mqtt/): every packet type round-trips
 * in both versions, byte-exact vectors written from the specifications,
 * framing at every split point and at the maximum packet size, every
 * malformed or protocol-violating input the decoder refuses, the encoder's
 * refusals, and topic filters and matching. With MQTT_SEED_DIR set it also
 * writes the samples as the fuzzer's seeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>

#include "unit/cql/cql_test_util.h"
#include "unit/mqtt/mqtt_samples.h"

static const uint8_t versions[] = {MQTT_V311, MQTT_V5};

/* encode → decode → encode gives the same bytes; returns the length. */
static size_t round_trip(const struct mqtt_packet *p, uint8_t version, uint8_t *buf, size_t cap,
                         struct mqtt_packet *decoded)
{
    int size = mqtt_encode(p, version, NULL, 0);
    assert_true(size > 0);
    int n = mqtt_encode(p, version, buf, cap);
    assert_int_equal(n, size);
    assert_int_equal(mqtt_decode(buf, (size_t)n, version, decoded), MQTT_OK);
    assert_int_equal(decoded->type, p->type);
    uint8_t again[1024];
    int m = mqtt_encode(decoded, version, again, sizeof again);
    assert_bytes(again, (size_t)m, buf, (size_t)n);
    return (size_t)n;
}

static void test_round_trip_every_packet(void **state)
{
    (void)state;
    for (size_t v = 0; v < 2; v++) {
        struct mqtt_packet samples[32], got;
        size_t n = mqtt_samples(versions[v], samples);
        for (size_t i = 0; i < n; i++) {
            uint8_t buf[1024];
            round_trip(&samples[i], versions[v], buf, sizeof buf, &got);
        }
    }
}

static void test_decoded_fields(void **state)
{
    (void)state;
    struct mqtt_packet p, got;
    uint8_t buf[1024];
    sample_connect(&p, MQTT_V5, true);
    round_trip(&p, MQTT_V5, buf, sizeof buf, &got);
    const struct mqtt_connect *c = &got.u.connect;
    assert_int_equal(c->version, MQTT_V5);
    assert_true(c->clean_start && c->will_flag && c->will.retain);
    assert_int_equal(c->will.qos, 1);
    assert_int_equal(c->keep_alive, 60);
    assert_int_equal(c->props.num[MQTT_PROP_SESSION_EXPIRY], 3600);
    assert_int_equal(c->props.num[MQTT_PROP_RECEIVE_MAXIMUM], 20);
    assert_int_equal(c->props.num[MQTT_PROP_MAXIMUM_PACKET_SIZE], 65536);
    assert_int_equal(c->will.props.num[MQTT_PROP_WILL_DELAY], 5);
    assert_int_equal(c->password.len, 12);
    assert_memory_equal(c->username.ptr, "device-17", 9);
    size_t pos = 0, count = 0;
    struct mqtt_user_prop up;
    while (mqtt_props_user_next(&c->props, &pos, &up)) {
        assert_memory_equal(up.value.ptr, count == 0 ? "eu" : "us", 2);
        count++;
    }
    assert_int_equal(count, 2);

    sample_publish(&p, MQTT_V5, 1);
    round_trip(&p, MQTT_V5, buf, sizeof buf, &got);
    assert_int_equal(got.u.publish.packet_id, 0x1234);
    assert_int_equal(got.u.publish.props.n_sub_ids, 2);
    uint32_t id;
    pos = 0;
    assert_true(mqtt_props_sub_id_next(&got.u.publish.props, &pos, &id));
    assert_int_equal(id, 7);
    assert_true(mqtt_props_sub_id_next(&got.u.publish.props, &pos, &id));
    assert_int_equal(id, 268435455);
    assert_false(mqtt_props_sub_id_next(&got.u.publish.props, &pos, &id));
    assert_memory_equal(got.u.publish.payload.ptr, "{\"temperature\":21.5}", 20);

    struct mqtt_packet samples[32];
    size_t n = mqtt_samples(MQTT_V311, samples);
    for (size_t i = 0; i < n; i++)
        if (samples[i].type == MQTT_SUBSCRIBE) {
            round_trip(&samples[i], MQTT_V311, buf, sizeof buf, &got);
            struct mqtt_subscription sub;
            pos = count = 0;
            while (mqtt_subscribe_next(&got.u.subscribe, &pos, &sub))
                assert_int_equal(sub.options, sample_subs_v311[count++].options);
            assert_int_equal(count, 3);
            assert_int_equal(got.u.subscribe.n_subs, 3);
        }
}

/* mosquitto_pub -V mqttv311 -i pub-1 -u dev -P key -k 60 sends this
 * CONNECT: flags 0xC2 (user name, password, clean session), 3.1.1 §3.1. */
static const uint8_t connect_v311[] = {0x10, 0x1B, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xC2,
                                       0x00, 0x3C, 0x00, 0x05, 'p', 'u', 'b', '-', '1', 0x00,
                                       0x03, 'd',  'e',  'v',  0x00, 0x03, 'k', 'e', 'y'};

static void test_vector_connect_v311(void **state)
{
    (void)state;
    struct mqtt_packet p;
    assert_int_equal(mqtt_decode(connect_v311, sizeof connect_v311, MQTT_V5, &p), MQTT_OK);
    const struct mqtt_connect *c = &p.u.connect;
    assert_int_equal(c->version, MQTT_V311);
    assert_true(c->clean_start && c->has_username && c->has_password && !c->will_flag);
    assert_int_equal(c->keep_alive, 60);
    assert_memory_equal(c->client_id.ptr, "pub-1", 5);
    assert_memory_equal(c->username.ptr, "dev", 3);
    assert_memory_equal(c->password.ptr, "key", 3);
    uint8_t buf[64];
    int n = mqtt_encode(&p, MQTT_V311, buf, sizeof buf);
    assert_bytes(buf, (size_t)n, connect_v311, sizeof connect_v311);
}

/* A v5 CONNECT with Session Expiry 10 and an empty client id (§3.1). */
static const uint8_t connect_v5[] = {0x10, 0x12, 0x00, 0x04, 'M',  'Q',  'T',  'T',  0x05, 0x02,
                                     0x00, 0x3C, 0x05, 0x11, 0x00, 0x00, 0x00, 0x0A, 0x00, 0x00};

static void test_vector_connect_v5(void **state)
{
    (void)state;
    struct mqtt_packet p;
    assert_int_equal(mqtt_decode(connect_v5, sizeof connect_v5, MQTT_V311, &p), MQTT_OK);
    assert_int_equal(p.u.connect.version, MQTT_V5);
    assert_true(mqtt_props_has(&p.u.connect.props, MQTT_PROP_SESSION_EXPIRY));
    assert_int_equal(p.u.connect.props.num[MQTT_PROP_SESSION_EXPIRY], 10);
    assert_int_equal(p.u.connect.client_id.len, 0);
    uint8_t buf[64];
    int n = mqtt_encode(&p, MQTT_V5, buf, sizeof buf);
    assert_bytes(buf, (size_t)n, connect_v5, sizeof connect_v5);
}

static void test_vector_publish_and_acks(void **state)
{
    (void)state;
    /* 3.1.1 QoS 1 PUBLISH to "a/b", packet id 10, payload "hi". */
    static const uint8_t publish[] = {0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'i'};
    struct mqtt_packet p;
    assert_int_equal(mqtt_decode(publish, sizeof publish, MQTT_V311, &p), MQTT_OK);
    assert_int_equal(p.u.publish.qos, 1);
    assert_int_equal(p.u.publish.packet_id, 10);
    assert_int_equal(p.u.publish.payload.len, 2);
    /* The same in 5.0 needs a property length: here 0. */
    static const uint8_t publish_v5[] = {0x32, 0x0A, 0x00, 0x03, 'a', '/',
                                         'b',  0x00, 0x0A, 0x00, 'h', 'i'};
    assert_int_equal(mqtt_decode(publish_v5, sizeof publish_v5, MQTT_V5, &p), MQTT_OK);
    assert_memory_equal(p.u.publish.payload.ptr, "hi", 2);

    /* v5 PUBACK short forms (§3.4.2.1): id alone, id + reason. */
    uint8_t buf[16];
    assert_int_equal(mqtt_decode((const uint8_t *)"\x40\x02\x00\x0A", 4, MQTT_V5, &p), MQTT_OK);
    assert_int_equal(p.u.ack.reason, 0);
    assert_int_equal(mqtt_encode(&p, MQTT_V5, buf, sizeof buf), 4);
    assert_int_equal(mqtt_decode((const uint8_t *)"\x40\x03\x00\x0A\x99", 5, MQTT_V5, &p), MQTT_OK);
    assert_int_equal(p.u.ack.reason, MQTT_RC_PAYLOAD_FORMAT_INVALID);
    assert_int_equal(mqtt_encode(&p, MQTT_V5, buf, sizeof buf), 5);
    assert_bytes(buf, 5, "\x40\x03\x00\x0A\x99", 5);
    /* PINGREQ, v5 DISCONNECT with nothing after it (reason 0). */
    assert_int_equal(mqtt_decode((const uint8_t *)"\xC0\x00", 2, MQTT_V311, &p), MQTT_OK);
    assert_int_equal(p.type, MQTT_PINGREQ);
    assert_int_equal(mqtt_decode((const uint8_t *)"\xE0\x00", 2, MQTT_V5, &p), MQTT_OK);
    assert_int_equal(p.u.disconnect.reason, 0);
    /* 3.1.1 SUBACK granting QoS 1 and refusing the second filter. */
    assert_int_equal(mqtt_decode((const uint8_t *)"\x90\x04\x00\x01\x01\x80", 6, MQTT_V311, &p),
                     MQTT_OK);
    assert_int_equal(p.u.suback.reasons.len, 2);
}

/* Every prefix of every sample is "need more", and the size is known as
 * soon as the Remaining Length is in. */
static void test_partial_at_every_split(void **state)
{
    (void)state;
    for (size_t v = 0; v < 2; v++) {
        struct mqtt_packet samples[32], got;
        size_t n = mqtt_samples(versions[v], samples);
        for (size_t i = 0; i < n; i++) {
            uint8_t buf[2048];
            int len = mqtt_encode(&samples[i], versions[v], buf, 1024);
            assert_true(len > 0);
            for (size_t cut = 0; cut < (size_t)len; cut++) {
                size_t plen;
                assert_int_equal(mqtt_frame(buf, cut, 1 << 20, &plen), MQTT_E_AGAIN);
                assert_true(plen == 0 || plen == (size_t)len);
                assert_int_equal(mqtt_decode(buf, cut, versions[v], &got), MQTT_E_AGAIN);
            }
            /* Followed by another packet: only the first is framed. */
            memcpy(buf + len, buf, (size_t)len);
            size_t plen;
            assert_int_equal(mqtt_frame(buf, 2 * (size_t)len, 1 << 20, &plen), MQTT_OK);
            assert_int_equal(plen, len);
            assert_int_equal(mqtt_decode(buf, 2 * (size_t)len, versions[v], &got),
                             MQTT_E_MALFORMED);
        }
    }
}

static void test_remaining_length_and_maximum(void **state)
{
    (void)state;
    size_t plen;
    /* The largest length, 268,435,455 (§1.5.5): too large for us, framed
     * as soon as its four bytes are in. */
    const uint8_t biggest[] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};
    assert_int_equal(mqtt_frame(biggest, 5, 1 << 20, &plen), MQTT_E_TOO_LARGE);
    assert_int_equal(mqtt_frame(biggest, 5, SIZE_MAX, &plen), MQTT_E_AGAIN);
    assert_int_equal(plen, 1 + 4 + 268435455);
    /* A fifth byte, and non-minimal forms. */
    assert_int_equal(mqtt_frame((const uint8_t *)"\x30\xFF\xFF\xFF\xFF\x01", 6, SIZE_MAX, &plen),
                     MQTT_E_MALFORMED);
    assert_int_equal(mqtt_frame((const uint8_t *)"\xC0\x80\x00", 3, SIZE_MAX, &plen),
                     MQTT_E_MALFORMED);
    assert_int_equal(mqtt_frame((const uint8_t *)"\x30\xFF\x80\x00", 4, SIZE_MAX, &plen),
                     MQTT_E_MALFORMED);
    /* 128 takes two bytes. */
    assert_int_equal(mqtt_frame((const uint8_t *)"\x30\x80\x01", 3, SIZE_MAX, &plen),
                     MQTT_E_AGAIN);
    assert_int_equal(plen, 3 + 128);

    /* The caller's maximum: a packet of exactly that size passes. */
    struct mqtt_packet p;
    sample_publish(&p, MQTT_V5, 1);
    uint8_t buf[512];
    int len = mqtt_encode(&p, MQTT_V5, buf, sizeof buf);
    assert_int_equal(mqtt_frame(buf, (size_t)len, (size_t)len, &plen), MQTT_OK);
    assert_int_equal(mqtt_frame(buf, 2, (size_t)len - 1, &plen), MQTT_E_TOO_LARGE);
}

struct bad_case {
    uint8_t version;
    const char *bytes;
    size_t len;
    int want;
    const char *why;
};

#define BAD(v, lit, want, why) {v, lit, sizeof lit - 1, want, why}
#define V3 MQTT_V311
#define V5 MQTT_V5
#define MAL MQTT_E_MALFORMED
#define PROTO MQTT_E_PROTOCOL

static const struct bad_case bad_cases[] = {
    BAD(V5, "\x00\x00", MAL, "type 0 is reserved"),
    BAD(V3, "\xF0\x00", MAL, "AUTH does not exist in 3.1.1"),
    BAD(V5, "\xC1\x00", MAL, "PINGREQ flags must be 0"),
    BAD(V5, "\x62\x02\x00\x01\x00", MAL, "leftover after PUBREL"),
    BAD(V3, "\x60\x02\x00\x01", MAL, "PUBREL flags must be 0010"),
    BAD(V3, "\x80\x06\x00\x01\x00\x01\x61\x00", MAL, "SUBSCRIBE flags must be 0010"),
    BAD(V3, "\xC0\x01\x00", MAL, "PINGREQ with a body"),
    BAD(V3, "\xE0\x01\x00", MAL, "3.1.1 DISCONNECT with a body"),
    BAD(V3, "\x10\x0C\x00\x06MQIsdp\x03\x02\x00\x3C", MQTT_E_UNSUPPORTED, "MQTT 3.1"),
    BAD(V3, "\x10\x0A\x00\x04MQTT\x06\x02\x00\x3C", MQTT_E_UNSUPPORTED, "level 6"),
    BAD(V3, "\x10\x0C\x00\x04MQTT\x04\x03\x00\x3C\x00\x00", MAL, "CONNECT reserved flag"),
    BAD(V3, "\x10\x0C\x00\x04MQTT\x04\x1E\x00\x3C\x00\x00", MAL, "will QoS 3"),
    BAD(V3, "\x10\x0C\x00\x04MQTT\x04\x0A\x00\x3C\x00\x00", MAL, "will QoS without will"),
    BAD(V3, "\x10\x0C\x00\x04MQTT\x04\x22\x00\x3C\x00\x00", MAL, "will retain without will"),
    BAD(V3, "\x10\x0E\x00\x04MQTT\x04\x42\x00\x3C\x00\x00\x00\x00", MAL,
        "3.1.1 password without user name"),
    BAD(V3, "\x10\x0B\x00\x04MQTT\x04\x02\x00\x3C\x00", MAL, "client id cut short"),
    BAD(V3, "\x10\x0D\x00\x04MQTT\x04\x02\x00\x3C\x00\x01\x00", MAL, "U+0000 in client id"),
    BAD(V3, "\x10\x0F\x00\x04MQTT\x04\x02\x00\x3C\x00\x03\xED\xA0\x80", MAL,
        "surrogate in client id"),
    BAD(V3, "\x10\x0E\x00\x04MQTT\x04\x02\x00\x3C\x00\x02\xC0\x80", MAL, "overlong NUL"),
    BAD(V3, "\x10\x0D\x00\x04MQTT\x04\x02\x00\x3C\x00\x00\x00", MAL, "trailing byte"),
    BAD(V3, "\x10\x14\x00\x04MQTT\x04\x06\x00\x3C\x00\x00\x00\x03" "a/#\x00\x01x", PROTO,
        "wildcard in will topic"),
    BAD(V5, "\x10\x10\x00\x04MQTT\x05\x02\x00\x3C\x03\x21\x00\x00\x00\x00", PROTO,
        "receive maximum 0"),
    BAD(V5, "\x10\x12\x00\x04MQTT\x05\x02\x00\x3C\x05\x27\x00\x00\x00\x00\x00\x00", PROTO,
        "maximum packet size 0"),
    BAD(V5, "\x10\x0F\x00\x04MQTT\x05\x02\x00\x3C\x02\x17\x02\x00\x00", PROTO,
        "request problem information 2"),
    BAD(V5, "\x10\x17\x00\x04MQTT\x05\x02\x00\x3C\x0A\x11\x00\x00\x00\x01\x11\x00\x00\x00\x02"
            "\x00\x00",
        PROTO, "session expiry twice"),
    BAD(V5, "\x10\x0F\x00\x04MQTT\x05\x02\x00\x3C\x02\x23\x00\x01\x00\x00", MAL,
        "topic alias in CONNECT"),
    BAD(V5, "\x10\x0E\x00\x04MQTT\x05\x02\x00\x3C\x01\x7F\x00\x00", MAL, "unknown property"),
    BAD(V5, "\x10\x0F\x00\x04MQTT\x05\x02\x00\x3C\x05\x11\x00\x00\x00\x00", MAL,
        "property length beyond the packet"),
    BAD(V5, "\x10\x10\x00\x04MQTT\x05\x02\x00\x3C\x03\x16\x00\x00\x00\x00", PROTO,
        "auth data without auth method"),
    BAD(V3, "\x20\x02\x02\x00", MAL, "CONNACK reserved flags"),
    BAD(V3, "\x20\x02\x00\x06", PROTO, "3.1.1 CONNACK return code 6"),
    BAD(V3, "\x20\x02\x01\x05", PROTO, "session present with a refusal"),
    BAD(V5, "\x20\x03\x00\x10\x00", PROTO, "0x10 is no CONNACK reason"),
    BAD(V5, "\x20\x02\x00\x00", MAL, "v5 CONNACK without property length"),
    BAD(V3, "\x36\x05\x00\x01\x61\x00\x01", MAL, "PUBLISH QoS 3"),
    BAD(V3, "\x38\x03\x00\x01\x61", PROTO, "DUP on QoS 0"),
    BAD(V3, "\x32\x05\x00\x01\x61\x00\x00", PROTO, "packet id 0"),
    BAD(V3, "\x30\x03\x00\x01\x2B", PROTO, "'+' in a topic name"),
    BAD(V3, "\x30\x05\x00\x03\x61\x2F\x23", PROTO, "'#' in a topic name"),
    BAD(V3, "\x30\x02\x00\x00", PROTO, "empty topic in 3.1.1"),
    BAD(V5, "\x30\x03\x00\x00\x00", PROTO, "empty topic without alias"),
    BAD(V5, "\x30\x06\x00\x00\x03\x23\x00\x00", PROTO, "topic alias 0"),
    BAD(V5, "\x30\x05\x00\x00\x02\x01\x02", PROTO, "payload format 2"),
    BAD(V5, "\x30\x06\x00\x01\x61\x02\x0B\x00", PROTO, "subscription id 0"),
    BAD(V5, "\x30\x09\x00\x01\x61\x06\x02\x00\x00\x00\x01\x02", MAL,
        "message expiry cut short"),
    BAD(V5, "\x30\x06\x00\x01\x61\x02\x0B\x80", MAL, "variable byte integer cut short"),
    BAD(V5, "\x30\x07\x00\x01\x61\x03\x0B\x80\x00", MAL, "non-minimal subscription id"),
    BAD(V5, "\x30\x06\x00\x01\x61\x02\x11\x00", MAL, "session expiry in PUBLISH"),
    BAD(V3, "\x40\x02\x00\x00", PROTO, "PUBACK packet id 0"),
    BAD(V3, "\x40\x03\x00\x01\x00", MAL, "3.1.1 PUBACK with a reason"),
    BAD(V5, "\x40\x03\x00\x01\x92", PROTO, "0x92 is no PUBACK reason"),
    BAD(V5, "\x70\x03\x00\x01\x10", PROTO, "0x10 is no PUBCOMP reason"),
    BAD(V3, "\x40\x01\x00", MAL, "PUBACK cut short"),
    BAD(V3, "\x82\x02\x00\x01", PROTO, "SUBSCRIBE without filters"),
    BAD(V3, "\x82\x06\x00\x00\x00\x01\x61\x00", PROTO, "SUBSCRIBE packet id 0"),
    BAD(V3, "\x82\x06\x00\x01\x00\x01\x61\x04", MAL, "3.1.1 reserved option bits"),
    BAD(V3, "\x82\x06\x00\x01\x00\x01\x61\x03", MAL, "3.1.1 subscription QoS 3"),
    BAD(V5, "\x82\x07\x00\x01\x00\x00\x01\x61\x03", PROTO, "5.0 subscription QoS 3"),
    BAD(V5, "\x82\x07\x00\x01\x00\x00\x01\x61\x40", MAL, "5.0 reserved option bits"),
    BAD(V5, "\x82\x07\x00\x01\x00\x00\x01\x61\x30", PROTO, "retain handling 3"),
    BAD(V5, "\x82\x10\x00\x01\x00\x00\x0A$share/g/a\x04", PROTO, "no local on a shared filter"),
    BAD(V3, "\x82\x05\x00\x01\x00\x01\x61", MAL, "options byte missing"),
    BAD(V3, "\x82\x08\x00\x01\x00\x03\x61\x23\x62\x00", PROTO, "'#' inside a level"),
    BAD(V3, "\x82\x08\x00\x01\x00\x03\x23\x2F\x61\x00", PROTO, "'#' not last"),
    BAD(V3, "\x82\x07\x00\x01\x00\x02\x61\x2B\x00", PROTO, "'+' inside a level"),
    BAD(V5, "\x82\x0B\x00\x01\x04\x0B\x01\x0B\x02\x00\x01\x61\x00", PROTO,
        "two subscription ids in SUBSCRIBE"),
    BAD(V3, "\x90\x02\x00\x01", PROTO, "SUBACK without codes"),
    BAD(V3, "\x90\x03\x00\x01\x03", PROTO, "3.1.1 SUBACK code 3"),
    BAD(V5, "\x90\x04\x00\x01\x00\x11", PROTO, "0x11 is no SUBACK reason"),
    BAD(V3, "\xA2\x02\x00\x01", PROTO, "UNSUBSCRIBE without filters"),
    BAD(V3, "\xA2\x05\x00\x01\x00\x01\x2B\x2B", MAL, "UNSUBSCRIBE filter cut short"),
    BAD(V3, "\xB0\x03\x00\x01\x00", MAL, "3.1.1 UNSUBACK with a code"),
    BAD(V5, "\xB0\x04\x00\x01\x00\x02", PROTO, "0x02 is no UNSUBACK reason"),
    BAD(V5, "\xE0\x01\x01", PROTO, "0x01 is no DISCONNECT reason"),
    BAD(V5, "\xE0\x03\x00\x01\x12", MAL, "assigned client id in DISCONNECT"),
    BAD(V5, "\xF0\x01\x87", PROTO, "0x87 is no AUTH reason"),
    BAD(V5, "\xF1\x00", MAL, "AUTH flags"),
};

static void test_malformed_and_protocol_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        struct mqtt_packet p;
        int rc = mqtt_decode((const uint8_t *)c->bytes, c->len, c->version, &p);
        if (rc != c->want) {
            fprintf(stderr, "case %zu (%s): got %s, want %s\n", i, c->why, mqtt_strerror(rc),
                    mqtt_strerror(c->want));
            fail();
        }
    }
}

/* Edge cases that are valid and must not be refused. */
static const struct bad_case good_cases[] = {
    BAD(V5, "\x30\x06\x00\x00\x03\x23\x00\x01", MQTT_OK, "empty topic with a topic alias"),
    BAD(V5, "\x10\x0F\x00\x04MQTT\x05\x40\x00\x00\x00\x00\x00\x00\x00", MQTT_OK,
        "5.0 password without user name"),
    BAD(V3, "\x10\x0C\x00\x04MQTT\x04\x00\x00\x00\x00\x00", MQTT_OK,
        "empty client id, persistent session (the listener's to refuse)"),
    BAD(V5, "\x30\x0D\x00\x01\x61\x09\x0B\x01\x0B\x02\x26\x00\x00\x00\x00", MQTT_OK,
        "two subscription ids and an empty user property in PUBLISH"),
    BAD(V5, "\x82\x10\x00\x01\x00\x00\x0A$share/g/a\x00", MQTT_OK, "shared subscription"),
    BAD(V3, "\x30\x03\x00\x01\x24", MQTT_OK, "topic \"$\", empty payload"),
    BAD(V5, "\xE0\x01\x04", MQTT_OK, "disconnect with will, no properties"),
    BAD(V5, "\x62\x03\x00\x01\x92", MQTT_OK, "PUBREL packet id not found"),
};

static void test_valid_edge_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
        const struct bad_case *c = &good_cases[i];
        struct mqtt_packet p;
        int rc = mqtt_decode((const uint8_t *)c->bytes, c->len, c->version, &p);
        if (rc != MQTT_OK) {
            fprintf(stderr, "case %zu (%s): %s\n", i, c->why, mqtt_strerror(rc));
            fail();
        }
        uint8_t buf[64];
        uint8_t version = p.type == MQTT_CONNECT ? p.u.connect.version : c->version;
        assert_int_equal(mqtt_encode(&p, version, buf, sizeof buf), (int)c->len);
        assert_bytes(buf, c->len, c->bytes, c->len);
    }
}

static void test_encoder_refusals(void **state)
{
    (void)state;
    struct mqtt_packet p;
    uint8_t buf[256];
    sample_publish(&p, MQTT_V311, 1);
    int size = mqtt_encode(&p, MQTT_V311, NULL, 0);
    assert_int_equal(mqtt_encode(&p, MQTT_V311, buf, (size_t)size - 1), MQTT_E_BUFFER);
    p.u.publish.topic = S("a/+");
    assert_int_equal(mqtt_encode(&p, MQTT_V311, buf, sizeof buf), MQTT_E_INVALID);
    sample_publish(&p, MQTT_V311, 1);
    p.u.publish.packet_id = 0;
    assert_int_equal(mqtt_encode(&p, MQTT_V311, buf, sizeof buf), MQTT_E_INVALID);
    /* A property the packet may not carry. */
    sample_publish(&p, MQTT_V5, 1);
    mqtt_props_set_num(&p.u.publish.props, MQTT_PROP_SESSION_EXPIRY, 1);
    assert_int_equal(mqtt_encode(&p, MQTT_V5, NULL, 0), MQTT_E_INVALID);
    /* A string longer than its two-byte length. */
    static char big[70000];
    memset(big, 'a', sizeof big);
    sample_connect(&p, MQTT_V311, false);
    p.u.connect.client_id = (struct mqtt_str){big, sizeof big};
    assert_int_equal(mqtt_encode(&p, MQTT_V311, NULL, 0), MQTT_E_INVALID);
    p.u.connect.version = 3;
    assert_int_equal(mqtt_encode(&p, MQTT_V311, NULL, 0), MQTT_E_INVALID);
}

static void test_topics(void **state)
{
    (void)state;
    static const char *const good_filters[] = {"#", "+", "a/#", "+/+", "/+", "a//b", "+/tennis/#",
                                               "sport/tennis/player1", "$SYS/#", "/"};
    static const char *const bad_filters[] = {"", "a#", "a/#/b", "#/", "a+", "+a/b", "a/b+/c",
                                              "##"};
    for (size_t i = 0; i < sizeof good_filters / sizeof *good_filters; i++)
        assert_true(mqtt_topic_filter_valid(good_filters[i], strlen(good_filters[i])));
    for (size_t i = 0; i < sizeof bad_filters / sizeof *bad_filters; i++)
        assert_false(mqtt_topic_filter_valid(bad_filters[i], strlen(bad_filters[i])));
    assert_true(mqtt_topic_name_valid("a/b", 3));
    assert_false(mqtt_topic_name_valid("", 0));
    assert_false(mqtt_topic_name_valid("a/#", 3));

    struct {
        const char *filter, *topic;
        bool want;
    } m[] = {
        {"sport/tennis/player1/#", "sport/tennis/player1", true},
        {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
        {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
        {"sport/#", "sport", true},
        {"sport/tennis/+", "sport/tennis/player1", true},
        {"sport/tennis/+", "sport/tennis/player1/ranking", false},
        {"sport/+", "sport", false},
        {"sport/+", "sport/", true},
        {"+/+", "/finance", true},
        {"/+", "/finance", true},
        {"+", "/finance", false},
        {"#", "$SYS/x", false},
        {"+/monitor/Clients", "$SYS/monitor/Clients", false},
        {"$SYS/#", "$SYS/monitor/Clients", true},
        {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
        {"a/b", "a/b", true},
        {"a/b", "a/b/c", false},
        {"a/b/c", "a/b", false},
        {"a//b", "a//b", true},
        {"#", "a/b", true},
    };
    for (size_t i = 0; i < sizeof m / sizeof *m; i++) {
        bool got = mqtt_topic_matches(m[i].filter, strlen(m[i].filter), m[i].topic,
                                      strlen(m[i].topic));
        if (got != m[i].want) {
            fprintf(stderr, "%s vs %s: got %d\n", m[i].filter, m[i].topic, got);
            fail();
        }
    }
}

static void test_names_and_reasons(void **state)
{
    (void)state;
    assert_string_equal(mqtt_type_name(MQTT_PUBLISH), "PUBLISH");
    assert_string_equal(mqtt_type_name(0), "UNKNOWN");
    assert_int_equal(mqtt_err_reason(MQTT_E_MALFORMED), 0x81);
    assert_int_equal(mqtt_err_reason(MQTT_E_PROTOCOL), 0x82);
    assert_int_equal(mqtt_err_reason(MQTT_E_TOO_LARGE), 0x95);
    assert_int_equal(mqtt_err_reason(MQTT_E_UNSUPPORTED), 0x84);
    assert_string_equal(mqtt_strerror(MQTT_E_AGAIN), "incomplete packet");
}

/* MQTT_SEED_DIR=dir: the samples as seed files for the fuzzer. */
static void test_write_seeds(void **state)
{
    (void)state;
    const char *dir = getenv("MQTT_SEED_DIR");
    if (!dir)
        skip();
    for (size_t v = 0; v < 2; v++) {
        struct mqtt_packet samples[32];
        size_t n = mqtt_samples(versions[v], samples);
        for (size_t i = 0; i < n; i++) {
            uint8_t buf[1024];
            int len = mqtt_encode(&samples[i], versions[v], buf, sizeof buf);
            char path[512];
            snprintf(path, sizeof path, "%s/v%u-%02zu-%s", dir, versions[v], i,
                     mqtt_type_name(samples[i].type));
            FILE *f = fopen(path, "wb");
            assert_non_null(f);
            assert_int_equal(fwrite(buf, 1, (size_t)len, f), (size_t)len);
            fclose(f);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_packet),
        cmocka_unit_test(test_decoded_fields),
        cmocka_unit_test(test_vector_connect_v311),
        cmocka_unit_test(test_vector_connect_v5),
        cmocka_unit_test(test_vector_publish_and_acks),
        cmocka_unit_test(test_partial_at_every_split),
        cmocka_unit_test(test_remaining_length_and_maximum),
        cmocka_unit_test(test_malformed_and_protocol_errors),
        cmocka_unit_test(test_valid_edge_cases),
        cmocka_unit_test(test_encoder_refusals),
        cmocka_unit_test(test_topics),
        cmocka_unit_test(test_names_and_reasons),
        cmocka_unit_test(test_write_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
