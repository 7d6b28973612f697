/* mqtt_packet_fuzz.c — libFuzzer target for the MQTT packet codec
 * (src/mqtt/): the input is framed as a stream of packets the way the
 * listener will read it, each packet decoded as 3.1.1 and as 5.0, its lists
 * and properties walked, and whatever decodes is encoded again: the
 * encoding must decode, and encoding that must give the same bytes (the
 * codec's round trip). Topic filter matching is run on the input split in
 * two, after checking both halves the way the listener would.
 *
 * Build for fuzzing with clang -DFUZZING -fsanitize=fuzzer,address,undefined;
 * without FUZZING it is a plain program replaying files (fuzz_replay.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/mqtt_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Larger inputs add nothing the framing has not seen. */
#define MAX_INPUT 65536

static volatile uint64_t sink;

static void touch(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        sink += b[i];
}

static void walk_props(const struct mqtt_props *p)
{
    size_t pos = 0;
    struct mqtt_user_prop up;
    while (mqtt_props_user_next(p, &pos, &up)) {
        touch(up.name.ptr, up.name.len);
        touch(up.value.ptr, up.value.len);
    }
    pos = 0;
    uint32_t id;
    while (mqtt_props_sub_id_next(p, &pos, &id))
        sink += id;
    for (unsigned i = 0; i <= MQTT_PROP_ID_MAX; i++)
        touch(p->data[i].ptr, p->data[i].len);
}

static void walk(const struct mqtt_packet *p)
{
    size_t pos = 0;
    struct mqtt_subscription sub;
    struct mqtt_str filter;
    switch (p->type) {
    case MQTT_CONNECT:
        walk_props(&p->u.connect.props);
        walk_props(&p->u.connect.will.props);
        touch(p->u.connect.client_id.ptr, p->u.connect.client_id.len);
        break;
    case MQTT_SUBSCRIBE:
        walk_props(&p->u.subscribe.props);
        while (mqtt_subscribe_next(&p->u.subscribe, &pos, &sub))
            touch(sub.filter.ptr, sub.filter.len);
        break;
    case MQTT_UNSUBSCRIBE:
        walk_props(&p->u.unsubscribe.props);
        while (mqtt_unsubscribe_next(&p->u.unsubscribe, &pos, &filter))
            touch(filter.ptr, filter.len);
        break;
    case MQTT_PUBLISH:
        walk_props(&p->u.publish.props);
        touch(p->u.publish.topic.ptr, p->u.publish.topic.len);
        break;
    default:
        break;
    }
}

static bool same_str(struct mqtt_str a, struct mqtt_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool same_props(const struct mqtt_props *a, const struct mqtt_props *b)
{
    return a->present == b->present && a->n_user == b->n_user && a->n_sub_ids == b->n_sub_ids;
}

/* The fields the encoder might drop: what it wrote decodes to them. */
static bool same_fields(const struct mqtt_packet *a, const struct mqtt_packet *b)
{
    switch (a->type) {
    case MQTT_CONNECT: {
        const struct mqtt_connect *x = &a->u.connect, *y = &b->u.connect;
        return x->version == y->version && x->clean_start == y->clean_start &&
               x->will_flag == y->will_flag && x->will.qos == y->will.qos &&
               x->will.retain == y->will.retain && x->has_username == y->has_username &&
               x->has_password == y->has_password && x->keep_alive == y->keep_alive &&
               same_str(x->client_id, y->client_id) && same_props(&x->props, &y->props) &&
               same_props(&x->will.props, &y->will.props) && x->password.len == y->password.len;
    }
    case MQTT_PUBLISH: {
        const struct mqtt_publish *x = &a->u.publish, *y = &b->u.publish;
        return x->qos == y->qos && x->dup == y->dup && x->retain == y->retain &&
               x->packet_id == y->packet_id && same_str(x->topic, y->topic) &&
               x->payload.len == y->payload.len && same_props(&x->props, &y->props);
    }
    case MQTT_CONNACK:
        return a->u.connack.reason == b->u.connack.reason &&
               a->u.connack.session_present == b->u.connack.session_present;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        return a->u.ack.packet_id == b->u.ack.packet_id && a->u.ack.reason == b->u.ack.reason &&
               same_props(&a->u.ack.props, &b->u.ack.props);
    case MQTT_SUBSCRIBE:
        return a->u.subscribe.n_subs == b->u.subscribe.n_subs;
    case MQTT_UNSUBSCRIBE:
        return a->u.unsubscribe.n_filters == b->u.unsubscribe.n_filters;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        return a->u.suback.reasons.len == b->u.suback.reasons.len;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        return a->u.disconnect.reason == b->u.disconnect.reason &&
               same_props(&a->u.disconnect.props, &b->u.disconnect.props);
    default:
        return true;
    }
}

/* What decodes encodes to bytes that decode to the same fields, and
 * encode to themselves. */
static void round_trip(const struct mqtt_packet *p, uint8_t version, size_t in_len)
{
    int size = mqtt_encode(p, version, NULL, 0);
    if (size <= 0)
        abort(); /* a decoded packet must be encodable */
    uint8_t *first = malloc((size_t)size), *second = malloc((size_t)size);
    if (!first || !second)
        abort();
    if (mqtt_encode(p, version, first, (size_t)size) != size)
        abort();
    /* The encoder picks the shortest forms, so it never grows a packet
     * (a v5 ack's omitted reason and properties only shrink it). */
    if ((size_t)size > in_len)
        abort();
    struct mqtt_packet again;
    if (mqtt_decode(first, (size_t)size, version, &again) != MQTT_OK || again.type != p->type ||
        !same_fields(p, &again))
        abort();
    if (mqtt_encode(&again, version, second, (size_t)size) != size ||
        memcmp(first, second, (size_t)size) != 0)
        abort();
    free(first);
    free(second);
}

static void fuzz_packet(const uint8_t *data, size_t len)
{
    static const uint8_t versions[] = {MQTT_V311, MQTT_V5};
    for (size_t v = 0; v < 2; v++) {
        struct mqtt_packet p;
        if (mqtt_decode(data, len, versions[v], &p) != MQTT_OK)
            continue;
        walk(&p);
        uint8_t version = p.type == MQTT_CONNECT ? p.u.connect.version : versions[v];
        round_trip(&p, version, len);
    }
}

static void fuzz_stream(const uint8_t *data, size_t size)
{
    while (size > 0) {
        size_t len;
        if (mqtt_frame(data, size, MAX_INPUT, &len) != MQTT_OK)
            return;
        fuzz_packet(data, len);
        data += len;
        size -= len;
    }
}

/* The input as "filter\0topic". */
static void fuzz_topics(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul)
        return;
    const char *filter = (const char *)data, *topic = (const char *)nul + 1;
    size_t filter_len = (size_t)(nul - data), topic_len = size - filter_len - 1;
    if (mqtt_topic_filter_valid(filter, filter_len) && mqtt_topic_name_valid(topic, topic_len)) {
        bool m = mqtt_topic_matches(filter, filter_len, topic, topic_len);
        /* A filter without wildcards matches exactly itself. */
        if (!memchr(filter, '+', filter_len) && !memchr(filter, '#', filter_len) &&
            m != (filter_len == topic_len && memcmp(filter, topic, topic_len) == 0))
            abort();
        /* Every valid topic name is a filter matching itself. */
        if (!mqtt_topic_matches(topic, topic_len, topic, topic_len))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    fuzz_stream(data, size);
    fuzz_topics(data, size);
    return 0;
}

#ifndef FUZZING
#include "fuzz_replay.h"

int main(int argc, char **argv)
{
    return fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);
}
#endif
