/* mqtt_codec.c — framing, the fixed header, and every packet's variable
 * header and payload (mqtt_codec.h). Section numbers are MQTT 5.0's unless
 * "3.1.1" is said; the two versions share them for the fixed header. */
#include "mqtt/mqtt_wire.h"

const char *mqtt_strerror(int err)
{
    switch (err) {
    case MQTT_OK:
        return "ok";
    case MQTT_E_AGAIN:
        return "incomplete packet";
    case MQTT_E_MALFORMED:
        return "malformed packet";
    case MQTT_E_PROTOCOL:
        return "protocol error";
    case MQTT_E_TOO_LARGE:
        return "packet too large";
    case MQTT_E_UNSUPPORTED:
        return "unsupported protocol version";
    case MQTT_E_BUFFER:
        return "output buffer too small";
    case MQTT_E_INVALID:
        return "invalid packet to encode";
    default:
        return "unknown error";
    }
}

uint8_t mqtt_err_reason(int err)
{
    switch (err) {
    case MQTT_E_MALFORMED:
        return MQTT_RC_MALFORMED_PACKET;
    case MQTT_E_PROTOCOL:
        return MQTT_RC_PROTOCOL_ERROR;
    case MQTT_E_TOO_LARGE:
        return MQTT_RC_PACKET_TOO_LARGE;
    case MQTT_E_UNSUPPORTED:
        return MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION;
    default:
        return MQTT_RC_UNSPECIFIED_ERROR;
    }
}

const char *mqtt_type_name(uint8_t type)
{
    static const char *const names[] = {
        NULL,     "CONNECT", "CONNACK",     "PUBLISH",  "PUBACK",      "PUBREC",
        "PUBREL", "PUBCOMP", "SUBSCRIBE",   "SUBACK",   "UNSUBSCRIBE", "UNSUBACK",
        "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
    };
    return type >= 1 && type <= 15 ? names[type] : "UNKNOWN";
}

int mqtt_frame(const uint8_t *data, size_t len, size_t max_packet, size_t *packet_len)
{
    *packet_len = 0;
    uint32_t remaining = 0;
    size_t i = 1; /* the Remaining Length's bytes are data[1..4] */
    for (;; i++) {
        if (i > 4)
            return MQTT_E_MALFORMED; /* a fifth length byte (§1.5.5) */
        if (i >= len)
            return MQTT_E_AGAIN;
        uint8_t b = data[i];
        remaining |= (uint32_t)(b & 0x7F) << (7 * (i - 1));
        if (!(b & 0x80)) {
            if (i > 1 && b == 0)
                return MQTT_E_MALFORMED; /* not the minimal encoding */
            break;
        }
    }
    size_t total = 1 + i + (size_t)remaining;
    if (total > max_packet)
        return MQTT_E_TOO_LARGE;
    *packet_len = total;
    return len >= total ? MQTT_OK : MQTT_E_AGAIN;
}

/* The low nibble of the first byte (§2.1.3): fixed for all but PUBLISH. */
static uint8_t required_flags(uint8_t type)
{
    return type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE ? 0x2 : 0x0;
}

static bool in_list(uint8_t reason, const char *list)
{
    for (const char *p = list; *p; p++)
        if ((uint8_t)*p == reason)
            return true;
    return reason == 0; /* success is valid everywhere a reason is */
}

/* The reason codes each v5 packet may carry (§2.4's table; the lists are
 * without 0x00, which in_list always accepts). */
static const char connack_reasons[] = "\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8A\x8C\x90"
                                      "\x95\x97\x99\x9A\x9B\x9C\x9D\x9F";
static const char puback_reasons[] = "\x10\x80\x83\x87\x90\x91\x97\x99"; /* and PUBREC */
static const char pubrel_reasons[] = "\x92";                             /* and PUBCOMP */
static const char suback_reasons[] = "\x01\x02\x80\x83\x87\x8F\x91\x97\x9E\xA1\xA2";
static const char unsuback_reasons[] = "\x11\x80\x83\x87\x8F\x91";
static const char disconnect_reasons[] = "\x04\x80\x81\x82\x83\x87\x89\x8B\x8D\x8E\x8F\x90\x93"
                                         "\x94\x95\x96\x97\x98\x99\x9A\x9B\x9C\x9D\x9E\x9F\xA0"
                                         "\xA1\xA2";
static const char auth_reasons[] = "\x18\x19";
/* 3.1.1 §3.9.3: granted QoS or failure. */
static const char suback_v311_codes[] = "\x01\x02\x80";

static const char *ack_reasons(uint8_t type)
{
    return type == MQTT_PUBACK || type == MQTT_PUBREC ? puback_reasons : pubrel_reasons;
}

static int need_packet_id(struct mqtt_reader *r, uint16_t *id)
{
    int rc = mqtt_rd_u16(r, id);
    if (rc != MQTT_OK)
        return rc;
    return *id != 0 ? MQTT_OK : MQTT_E_PROTOCOL; /* §2.2.1 */
}

/* ---- CONNECT (§3.1) ---- */

#define CF_RESERVED 0x01
#define CF_CLEAN 0x02
#define CF_WILL 0x04
#define CF_WILL_QOS_SHIFT 3
#define CF_WILL_RETAIN 0x20
#define CF_PASSWORD 0x40
#define CF_USERNAME 0x80

static int connect_flags(uint8_t flags, uint8_t version, struct mqtt_connect *c)
{
    c->clean_start = flags & CF_CLEAN;
    c->will_flag = flags & CF_WILL;
    c->will.qos = (flags >> CF_WILL_QOS_SHIFT) & 3;
    c->will.retain = flags & CF_WILL_RETAIN;
    c->has_password = flags & CF_PASSWORD;
    c->has_username = flags & CF_USERNAME;
    if (flags & CF_RESERVED)
        return MQTT_E_MALFORMED; /* §3.1.2.3 */
    if (c->will.qos == 3)
        return MQTT_E_MALFORMED; /* §3.1.2.6 */
    if (!c->will_flag && (c->will.qos || c->will.retain))
        return MQTT_E_MALFORMED; /* §3.1.2.6, §3.1.2.7 */
    /* 3.1.1 §3.1.2.9: no password without a user name (5.0 allows it). */
    if (version == MQTT_V311 && c->has_password && !c->has_username)
        return MQTT_E_MALFORMED;
    return MQTT_OK;
}

static int connect_header(struct mqtt_reader *r, struct mqtt_connect *c)
{
    struct mqtt_str name;
    uint8_t level, flags;
    int rc;
    if ((rc = mqtt_rd_str(r, &name)) != MQTT_OK || (rc = mqtt_rd_u8(r, &level)) != MQTT_OK)
        return rc;
    /* §3.1.2.1-2: an MQIsdp (3.1) or unknown level is refused with
     * "unsupported protocol version" (3.1.1 return code 0x01). */
    if (name.len != 4 || memcmp(name.ptr, "MQTT", 4) != 0 ||
        (level != MQTT_V311 && level != MQTT_V5))
        return MQTT_E_UNSUPPORTED;
    c->version = level;
    if ((rc = mqtt_rd_u8(r, &flags)) != MQTT_OK || (rc = connect_flags(flags, level, c)) != MQTT_OK)
        return rc;
    if ((rc = mqtt_rd_u16(r, &c->keep_alive)) != MQTT_OK)
        return rc;
    if (level == MQTT_V5 && (rc = mqtt_props_decode(r, MQTT_CTX_CONNECT, &c->props)) != MQTT_OK)
        return rc;
    /* §3.1.2.11.10: authentication data without a method. */
    if (mqtt_props_has(&c->props, MQTT_PROP_AUTH_DATA) &&
        !mqtt_props_has(&c->props, MQTT_PROP_AUTH_METHOD))
        return MQTT_E_PROTOCOL;
    return MQTT_OK;
}

static int decode_will(struct mqtt_reader *r, uint8_t version, struct mqtt_will *w)
{
    int rc;
    if (version == MQTT_V5 && (rc = mqtt_props_decode(r, MQTT_CTX_WILL, &w->props)) != MQTT_OK)
        return rc;
    if ((rc = mqtt_rd_str(r, &w->topic)) != MQTT_OK)
        return rc;
    if (!mqtt_topic_name_valid(w->topic.ptr, w->topic.len))
        return MQTT_E_PROTOCOL;
    return mqtt_rd_bin(r, &w->payload);
}

static int decode_connect(struct mqtt_reader *r, struct mqtt_connect *c)
{
    int rc;
    if ((rc = connect_header(r, c)) != MQTT_OK)
        return rc;
    /* 3.1.1 §3.1.3.1: an empty client id with a persistent session is the
     * server's to refuse (CONNACK 0x02), not a malformed packet. */
    if ((rc = mqtt_rd_str(r, &c->client_id)) != MQTT_OK)
        return rc;
    if (c->will_flag && (rc = decode_will(r, c->version, &c->will)) != MQTT_OK)
        return rc;
    if (c->has_username && (rc = mqtt_rd_str(r, &c->username)) != MQTT_OK)
        return rc;
    if (c->has_password && (rc = mqtt_rd_bin(r, &c->password)) != MQTT_OK)
        return rc;
    return MQTT_OK;
}

static uint8_t connect_flags_of(const struct mqtt_connect *c)
{
    uint8_t f = 0;
    if (c->clean_start)
        f |= CF_CLEAN;
    if (c->will_flag)
        f |= (uint8_t)(CF_WILL | (c->will.qos & 3) << CF_WILL_QOS_SHIFT |
                       (c->will.retain ? CF_WILL_RETAIN : 0));
    if (c->has_password)
        f |= CF_PASSWORD;
    if (c->has_username)
        f |= CF_USERNAME;
    return f;
}

static int encode_connect(struct mqtt_writer *w, const struct mqtt_connect *c)
{
    int rc;
    mqtt_wr_bin(w, "MQTT", 4);
    mqtt_wr_u8(w, c->version);
    mqtt_wr_u8(w, connect_flags_of(c));
    mqtt_wr_u16(w, c->keep_alive);
    if (c->version == MQTT_V5 &&
        (rc = mqtt_props_encode(w, &c->props, MQTT_CTX_CONNECT)) != MQTT_OK)
        return rc;
    mqtt_wr_bin(w, c->client_id.ptr, c->client_id.len);
    if (c->will_flag) {
        if (c->version == MQTT_V5 &&
            (rc = mqtt_props_encode(w, &c->will.props, MQTT_CTX_WILL)) != MQTT_OK)
            return rc;
        mqtt_wr_bin(w, c->will.topic.ptr, c->will.topic.len);
        mqtt_wr_bin(w, c->will.payload.ptr, c->will.payload.len);
    }
    if (c->has_username)
        mqtt_wr_bin(w, c->username.ptr, c->username.len);
    if (c->has_password)
        mqtt_wr_bin(w, c->password.ptr, c->password.len);
    return MQTT_OK;
}

/* ---- CONNACK (§3.2) ---- */

static int decode_connack(struct mqtt_reader *r, uint8_t version, struct mqtt_connack *c)
{
    uint8_t flags;
    int rc;
    if ((rc = mqtt_rd_u8(r, &flags)) != MQTT_OK || (rc = mqtt_rd_u8(r, &c->reason)) != MQTT_OK)
        return rc;
    if (flags & 0xFE)
        return MQTT_E_MALFORMED; /* §3.2.2.1: reserved bits */
    c->session_present = flags & 1;
    if (version == MQTT_V311 ? c->reason > 5 : !in_list(c->reason, connack_reasons))
        return MQTT_E_PROTOCOL;
    if (c->session_present && c->reason != 0)
        return MQTT_E_PROTOCOL; /* §3.2.2.1.1 */
    if (version == MQTT_V5)
        return mqtt_props_decode(r, MQTT_CTX_CONNACK, &c->props);
    return MQTT_OK;
}

static int encode_connack(struct mqtt_writer *w, uint8_t version, const struct mqtt_connack *c)
{
    mqtt_wr_u8(w, c->session_present ? 1 : 0);
    mqtt_wr_u8(w, c->reason);
    return version == MQTT_V5 ? mqtt_props_encode(w, &c->props, MQTT_CTX_CONNACK) : MQTT_OK;
}

/* ---- PUBLISH (§3.3) ---- */

static int publish_flags(uint8_t flags, struct mqtt_publish *p)
{
    p->dup = flags & 0x8;
    p->qos = (flags >> 1) & 3;
    p->retain = flags & 1;
    if (p->qos == 3)
        return MQTT_E_MALFORMED; /* §3.3.1.2 */
    if (p->qos == 0 && p->dup)
        return MQTT_E_PROTOCOL; /* §3.3.1.1 */
    return MQTT_OK;
}

/* A topic name, or in 5.0 an empty one standing for a Topic Alias
 * (§3.3.2.3.4); wildcards never (§3.3.2.1). */
static int publish_topic_ok(uint8_t version, const struct mqtt_publish *p)
{
    if (p->topic.len == 0)
        return version == MQTT_V5 && mqtt_props_has(&p->props, MQTT_PROP_TOPIC_ALIAS)
                   ? MQTT_OK
                   : MQTT_E_PROTOCOL;
    return mqtt_topic_name_valid(p->topic.ptr, p->topic.len) ? MQTT_OK : MQTT_E_PROTOCOL;
}

static int decode_publish(struct mqtt_reader *r, uint8_t version, uint8_t flags,
                          struct mqtt_publish *p)
{
    int rc;
    if ((rc = publish_flags(flags, p)) != MQTT_OK || (rc = mqtt_rd_str(r, &p->topic)) != MQTT_OK)
        return rc;
    if (p->qos > 0 && (rc = need_packet_id(r, &p->packet_id)) != MQTT_OK)
        return rc;
    if (version == MQTT_V5 && (rc = mqtt_props_decode(r, MQTT_CTX_PUBLISH, &p->props)) != MQTT_OK)
        return rc;
    if ((rc = publish_topic_ok(version, p)) != MQTT_OK)
        return rc;
    p->payload = (struct mqtt_bytes){r->p + r->pos, mqtt_rd_left(r)};
    r->pos = r->len;
    return MQTT_OK;
}

static int encode_publish(struct mqtt_writer *w, uint8_t version, const struct mqtt_publish *p)
{
    int rc;
    mqtt_wr_bin(w, p->topic.ptr, p->topic.len);
    if (p->qos > 0)
        mqtt_wr_u16(w, p->packet_id);
    if (version == MQTT_V5 && (rc = mqtt_props_encode(w, &p->props, MQTT_CTX_PUBLISH)) != MQTT_OK)
        return rc;
    mqtt_wr_bytes(w, p->payload.ptr, p->payload.len);
    return MQTT_OK;
}

/* ---- reason code + properties, possibly left out (§3.4.2.1, §3.14.2.1,
 * §3.15.2.1): PUBACK family, DISCONNECT, AUTH ---- */

static int decode_reason_tail(struct mqtt_reader *r, unsigned ctx, const char *reasons,
                              uint8_t *reason, struct mqtt_props *props)
{
    int rc;
    memset(props, 0, sizeof *props);
    *reason = 0;
    if (mqtt_rd_left(r) == 0)
        return MQTT_OK;
    if ((rc = mqtt_rd_u8(r, reason)) != MQTT_OK)
        return rc;
    if (!in_list(*reason, reasons))
        return MQTT_E_PROTOCOL;
    return mqtt_rd_left(r) > 0 ? mqtt_props_decode(r, ctx, props) : MQTT_OK;
}

/* The shortest form that says it: nothing for success without
 * properties, the reason code alone without properties. */
static int encode_reason_tail(struct mqtt_writer *w, unsigned ctx, uint8_t reason,
                              const struct mqtt_props *props)
{
    bool empty = mqtt_props_empty(props);
    if (reason == 0 && empty)
        return MQTT_OK;
    mqtt_wr_u8(w, reason);
    return empty ? MQTT_OK : mqtt_props_encode(w, props, ctx);
}

static int decode_ack(struct mqtt_reader *r, uint8_t version, uint8_t type, struct mqtt_ack *a)
{
    int rc = need_packet_id(r, &a->packet_id);
    if (rc != MQTT_OK || version == MQTT_V311)
        return rc;
    return decode_reason_tail(r, MQTT_CTX_PUBACK, ack_reasons(type), &a->reason, &a->props);
}

static int encode_ack(struct mqtt_writer *w, uint8_t version, const struct mqtt_ack *a)
{
    mqtt_wr_u16(w, a->packet_id);
    return version == MQTT_V5 ? encode_reason_tail(w, MQTT_CTX_PUBACK, a->reason, &a->props)
                              : MQTT_OK;
}

static int decode_disconnect(struct mqtt_reader *r, uint8_t version, uint8_t type,
                             struct mqtt_disconnect *d)
{
    if (version == MQTT_V311)
        return MQTT_OK; /* 3.1.1 §3.14: no variable header; leftovers fail */
    if (type == MQTT_AUTH)
        return decode_reason_tail(r, MQTT_CTX_AUTH, auth_reasons, &d->reason, &d->props);
    return decode_reason_tail(r, MQTT_CTX_DISCONNECT, disconnect_reasons, &d->reason, &d->props);
}

static int encode_disconnect(struct mqtt_writer *w, uint8_t version, uint8_t type,
                             const struct mqtt_disconnect *d)
{
    if (version == MQTT_V311)
        return MQTT_OK;
    return encode_reason_tail(w, type == MQTT_AUTH ? MQTT_CTX_AUTH : MQTT_CTX_DISCONNECT,
                              d->reason, &d->props);
}

/* ---- SUBSCRIBE (§3.8) and UNSUBSCRIBE (§3.10) ---- */

/* 3.1.1 §3.8.3.1: only the QoS bits; 5.0 adds No Local, Retain As
 * Published and Retain Handling, and keeps bits 6-7 reserved. */
static int sub_options_ok(uint8_t version, struct mqtt_str filter, uint8_t opts)
{
    uint8_t reserved = version == MQTT_V311 ? 0xFC : 0xC0;
    if (opts & reserved)
        return MQTT_E_MALFORMED;
    if ((opts & MQTT_SUB_QOS_MASK) == 3)
        return version == MQTT_V311 ? MQTT_E_MALFORMED : MQTT_E_PROTOCOL;
    if (version == MQTT_V5 && (opts >> MQTT_SUB_RETAIN_HANDLING_SHIFT & 3) == 3)
        return MQTT_E_PROTOCOL;
    /* §3.8.3.1: No Local on a shared subscription. */
    if (version == MQTT_V5 && (opts & MQTT_SUB_NO_LOCAL) && filter.len >= 7 &&
        memcmp(filter.ptr, "$share/", 7) == 0)
        return MQTT_E_PROTOCOL;
    return MQTT_OK;
}

/* A filter in a SUBSCRIBE or UNSUBSCRIBE. The codec refuses the whole
 * packet for a bad filter; a 5.0 listener could answer 0x8F for that one
 * filter instead, but real clients do not send them. */
static int read_filter(struct mqtt_reader *r, struct mqtt_str *filter)
{
    int rc = mqtt_rd_str(r, filter);
    if (rc != MQTT_OK)
        return rc;
    return mqtt_topic_filter_valid(filter->ptr, filter->len) ? MQTT_OK : MQTT_E_PROTOCOL;
}

/* Reads the packet id, the v5 properties, and leaves the payload in raw. */
static int list_header(struct mqtt_reader *r, uint8_t version, unsigned ctx, uint16_t *packet_id,
                       struct mqtt_props *props, struct mqtt_bytes *raw)
{
    int rc = need_packet_id(r, packet_id);
    if (rc != MQTT_OK)
        return rc;
    if (version == MQTT_V5 && (rc = mqtt_props_decode(r, ctx, props)) != MQTT_OK)
        return rc;
    *raw = (struct mqtt_bytes){r->p + r->pos, mqtt_rd_left(r)};
    /* §3.8.3 / §3.10.3: at least one filter. */
    return raw->len > 0 ? MQTT_OK : MQTT_E_PROTOCOL;
}

static int decode_subscribe(struct mqtt_reader *r, uint8_t version, struct mqtt_subscribe *s)
{
    int rc = list_header(r, version, MQTT_CTX_SUBSCRIBE, &s->packet_id, &s->props, &s->raw);
    while (rc == MQTT_OK && mqtt_rd_left(r) > 0) {
        struct mqtt_str filter;
        uint8_t opts;
        if ((rc = read_filter(r, &filter)) != MQTT_OK || (rc = mqtt_rd_u8(r, &opts)) != MQTT_OK)
            return rc;
        rc = sub_options_ok(version, filter, opts);
        s->n_subs++;
    }
    return rc;
}

static int decode_unsubscribe(struct mqtt_reader *r, uint8_t version, struct mqtt_unsubscribe *u)
{
    int rc = list_header(r, version, MQTT_CTX_UNSUBSCRIBE, &u->packet_id, &u->props, &u->raw);
    while (rc == MQTT_OK && mqtt_rd_left(r) > 0) {
        struct mqtt_str filter;
        rc = read_filter(r, &filter);
        u->n_filters++;
    }
    return rc;
}

bool mqtt_subscribe_next(const struct mqtt_subscribe *s, size_t *pos,
                         struct mqtt_subscription *out)
{
    if (s->subs) {
        if (*pos >= s->n_subs)
            return false;
        *out = s->subs[(*pos)++];
        return true;
    }
    struct mqtt_reader r = {s->raw.ptr, s->raw.len, *pos};
    if (mqtt_rd_left(&r) == 0 || mqtt_rd_str(&r, &out->filter) != MQTT_OK ||
        mqtt_rd_u8(&r, &out->options) != MQTT_OK)
        return false;
    *pos = r.pos;
    return true;
}

bool mqtt_unsubscribe_next(const struct mqtt_unsubscribe *u, size_t *pos, struct mqtt_str *out)
{
    if (u->filters) {
        if (*pos >= u->n_filters)
            return false;
        *out = u->filters[(*pos)++];
        return true;
    }
    struct mqtt_reader r = {u->raw.ptr, u->raw.len, *pos};
    if (mqtt_rd_left(&r) == 0 || mqtt_rd_str(&r, out) != MQTT_OK)
        return false;
    *pos = r.pos;
    return true;
}

static int encode_subscribe(struct mqtt_writer *w, uint8_t version, const struct mqtt_subscribe *s)
{
    int rc;
    mqtt_wr_u16(w, s->packet_id);
    if (version == MQTT_V5 && (rc = mqtt_props_encode(w, &s->props, MQTT_CTX_SUBSCRIBE)) != MQTT_OK)
        return rc;
    size_t pos = 0;
    struct mqtt_subscription sub;
    while (mqtt_subscribe_next(s, &pos, &sub)) {
        mqtt_wr_bin(w, sub.filter.ptr, sub.filter.len);
        mqtt_wr_u8(w, sub.options);
    }
    return MQTT_OK;
}

static int encode_unsubscribe(struct mqtt_writer *w, uint8_t version,
                              const struct mqtt_unsubscribe *u)
{
    int rc;
    mqtt_wr_u16(w, u->packet_id);
    if (version == MQTT_V5 &&
        (rc = mqtt_props_encode(w, &u->props, MQTT_CTX_UNSUBSCRIBE)) != MQTT_OK)
        return rc;
    size_t pos = 0;
    struct mqtt_str filter;
    while (mqtt_unsubscribe_next(u, &pos, &filter))
        mqtt_wr_bin(w, filter.ptr, filter.len);
    return MQTT_OK;
}

/* ---- SUBACK (§3.9) and UNSUBACK (§3.11) ---- */

static int decode_suback(struct mqtt_reader *r, uint8_t version, uint8_t type,
                         struct mqtt_suback *s)
{
    int rc = need_packet_id(r, &s->packet_id);
    if (rc != MQTT_OK)
        return rc;
    /* 3.1.1 §3.11: an UNSUBACK is the packet id alone. */
    if (version == MQTT_V311 && type == MQTT_UNSUBACK)
        return MQTT_OK;
    unsigned ctx = type == MQTT_SUBACK ? MQTT_CTX_SUBACK : MQTT_CTX_UNSUBACK;
    if (version == MQTT_V5 && (rc = mqtt_props_decode(r, ctx, &s->props)) != MQTT_OK)
        return rc;
    s->reasons = (struct mqtt_bytes){r->p + r->pos, mqtt_rd_left(r)};
    r->pos = r->len;
    if (s->reasons.len == 0)
        return MQTT_E_PROTOCOL; /* one per filter, and there was one at least */
    const char *valid = version == MQTT_V311      ? suback_v311_codes
                        : type == MQTT_SUBACK     ? suback_reasons
                                                  : unsuback_reasons;
    for (size_t i = 0; i < s->reasons.len; i++)
        if (!in_list(s->reasons.ptr[i], valid))
            return MQTT_E_PROTOCOL;
    return MQTT_OK;
}

static int encode_suback(struct mqtt_writer *w, uint8_t version, uint8_t type,
                         const struct mqtt_suback *s)
{
    int rc;
    mqtt_wr_u16(w, s->packet_id);
    if (version == MQTT_V311 && type == MQTT_UNSUBACK)
        return MQTT_OK;
    unsigned ctx = type == MQTT_SUBACK ? MQTT_CTX_SUBACK : MQTT_CTX_UNSUBACK;
    if (version == MQTT_V5 && (rc = mqtt_props_encode(w, &s->props, ctx)) != MQTT_OK)
        return rc;
    mqtt_wr_bytes(w, s->reasons.ptr, s->reasons.len);
    return MQTT_OK;
}

/* ---- dispatch ---- */

static int decode_body(struct mqtt_reader *r, uint8_t version, uint8_t type, uint8_t flags,
                       struct mqtt_packet *out)
{
    switch (type) {
    case MQTT_CONNECT:
        return decode_connect(r, &out->u.connect);
    case MQTT_CONNACK:
        return decode_connack(r, version, &out->u.connack);
    case MQTT_PUBLISH:
        return decode_publish(r, version, flags, &out->u.publish);
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        return decode_ack(r, version, type, &out->u.ack);
    case MQTT_SUBSCRIBE:
        return decode_subscribe(r, version, &out->u.subscribe);
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        return decode_suback(r, version, type, &out->u.suback);
    case MQTT_UNSUBSCRIBE:
        return decode_unsubscribe(r, version, &out->u.unsubscribe);
    case MQTT_PINGREQ:
    case MQTT_PINGRESP:
        return MQTT_OK;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        return decode_disconnect(r, version, type, &out->u.disconnect);
    default:
        return MQTT_E_MALFORMED;
    }
}

/* Type 0 is reserved in both versions, AUTH (15) in 3.1.1 (§2.1.2). */
static bool type_exists(uint8_t type, uint8_t version)
{
    return type >= MQTT_CONNECT && (type < MQTT_AUTH || version == MQTT_V5);
}

int mqtt_decode(const uint8_t *data, size_t len, uint8_t version, struct mqtt_packet *out)
{
    memset(out, 0, sizeof *out);
    size_t packet_len;
    int rc = mqtt_frame(data, len, SIZE_MAX, &packet_len);
    if (rc != MQTT_OK)
        return rc;
    if (packet_len != len)
        return MQTT_E_MALFORMED; /* not exactly one packet */
    uint8_t type = data[0] >> 4, flags = data[0] & 0x0F;
    if (type != MQTT_CONNECT && version != MQTT_V311 && version != MQTT_V5)
        return MQTT_E_UNSUPPORTED;
    uint8_t effective = type == MQTT_CONNECT ? MQTT_V5 : version;
    if (!type_exists(type, effective))
        return MQTT_E_MALFORMED;
    if (type != MQTT_PUBLISH && flags != required_flags(type))
        return MQTT_E_MALFORMED; /* §2.1.3 */
    out->type = type;
    size_t body_at = 2; /* after the type byte and the Remaining Length */
    while (data[body_at - 1] & 0x80)
        body_at++;
    struct mqtt_reader r = {data + body_at, len - body_at, 0};
    if ((rc = decode_body(&r, version, type, flags, out)) != MQTT_OK)
        return rc;
    return mqtt_rd_left(&r) == 0 ? MQTT_OK : MQTT_E_MALFORMED;
}

static uint8_t first_byte(const struct mqtt_packet *p)
{
    uint8_t flags = required_flags(p->type);
    if (p->type == MQTT_PUBLISH) {
        const struct mqtt_publish *pub = &p->u.publish;
        flags = (uint8_t)((pub->dup ? 0x8 : 0) | (pub->qos & 3) << 1 | (pub->retain ? 1 : 0));
    }
    return (uint8_t)(p->type << 4 | flags);
}

static int encode_body(struct mqtt_writer *w, const struct mqtt_packet *p, uint8_t version)
{
    switch (p->type) {
    case MQTT_CONNECT:
        return encode_connect(w, &p->u.connect);
    case MQTT_CONNACK:
        return encode_connack(w, version, &p->u.connack);
    case MQTT_PUBLISH:
        return encode_publish(w, version, &p->u.publish);
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        return encode_ack(w, version, &p->u.ack);
    case MQTT_SUBSCRIBE:
        return encode_subscribe(w, version, &p->u.subscribe);
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        return encode_suback(w, version, p->type, &p->u.suback);
    case MQTT_UNSUBSCRIBE:
        return encode_unsubscribe(w, version, &p->u.unsubscribe);
    case MQTT_PINGREQ:
    case MQTT_PINGRESP:
        return MQTT_OK;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        return encode_disconnect(w, version, p->type, &p->u.disconnect);
    default:
        return MQTT_E_INVALID;
    }
}

/* The encoder writes the fields as given and then decodes what it wrote:
 * every rule the decoder checks holds for what we send, without a second
 * copy of the rules (the cost is one pass over headers; payloads are not
 * read). */
int mqtt_encode(const struct mqtt_packet *p, uint8_t version, uint8_t *out, size_t cap)
{
    if (p->type == MQTT_CONNECT)
        version = p->u.connect.version;
    if (version != MQTT_V311 && version != MQTT_V5)
        return MQTT_E_INVALID;
    struct mqtt_writer count = {NULL, 0, 0, false};
    int rc = encode_body(&count, p, version);
    if (rc != MQTT_OK)
        return rc;
    if (count.too_long || count.pos > MQTT_MAX_REMAINING_LENGTH)
        return MQTT_E_INVALID;
    size_t total = 1 + mqtt_vbi_size((uint32_t)count.pos) + count.pos;
    if (total > cap)
        return out == NULL && cap == 0 ? (int)total : MQTT_E_BUFFER;
    struct mqtt_writer w = {out, cap, 0, false};
    mqtt_wr_u8(&w, first_byte(p));
    mqtt_wr_vbi(&w, (uint32_t)count.pos);
    if ((rc = encode_body(&w, p, version)) != MQTT_OK)
        return rc;
    struct mqtt_packet check;
    if (mqtt_decode(out, total, version, &check) != MQTT_OK)
        return MQTT_E_INVALID;
    return (int)total;
}
