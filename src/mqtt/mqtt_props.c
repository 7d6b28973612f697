/* mqtt_props.c — MQTT 5.0 property blocks (§2.2.2): one table says, per
 * identifier, its data type, where it may appear, and its value range; the
 * decoder, the encoder and the iterators all read that table. */
#include "mqtt/mqtt_wire.h"

enum prop_kind { K_NONE, K_BYTE, K_U16, K_U32, K_VBI, K_STR, K_BIN, K_PAIR };

struct prop_rule {
    uint8_t kind;
    uint16_t ctx; /* enum mqtt_prop_ctx bits */
    bool nonzero; /* 0 is a Protocol Error */
    uint32_t max; /* 0: the type's own range */
};

#define PUB_WILL (MQTT_CTX_PUBLISH | MQTT_CTX_WILL)
#define ALL_REASONED                                                                               \
    (MQTT_CTX_CONNACK | MQTT_CTX_PUBACK | MQTT_CTX_SUBACK | MQTT_CTX_UNSUBACK |                    \
     MQTT_CTX_DISCONNECT | MQTT_CTX_AUTH)
#define ALL_CTX 0x7FF

/* §2.2.2.2's table; the ranges from each property's own section (e.g.
 * §3.1.2.11.3: a Receive Maximum of 0 is a Protocol Error). */
static const struct prop_rule rules[MQTT_PROP_ID_MAX + 1] = {
    [MQTT_PROP_PAYLOAD_FORMAT] = {K_BYTE, PUB_WILL, false, 1},
    [MQTT_PROP_MESSAGE_EXPIRY] = {K_U32, PUB_WILL, false, 0},
    [MQTT_PROP_CONTENT_TYPE] = {K_STR, PUB_WILL, false, 0},
    [MQTT_PROP_RESPONSE_TOPIC] = {K_STR, PUB_WILL, false, 0},
    [MQTT_PROP_CORRELATION_DATA] = {K_BIN, PUB_WILL, false, 0},
    [MQTT_PROP_SUBSCRIPTION_ID] = {K_VBI, MQTT_CTX_PUBLISH | MQTT_CTX_SUBSCRIBE, true, 0},
    [MQTT_PROP_SESSION_EXPIRY] = {K_U32,
                                  MQTT_CTX_CONNECT | MQTT_CTX_CONNACK | MQTT_CTX_DISCONNECT,
                                  false, 0},
    [MQTT_PROP_ASSIGNED_CLIENT_ID] = {K_STR, MQTT_CTX_CONNACK, false, 0},
    [MQTT_PROP_SERVER_KEEP_ALIVE] = {K_U16, MQTT_CTX_CONNACK, false, 0},
    [MQTT_PROP_AUTH_METHOD] = {K_STR, MQTT_CTX_CONNECT | MQTT_CTX_CONNACK | MQTT_CTX_AUTH, false,
                               0},
    [MQTT_PROP_AUTH_DATA] = {K_BIN, MQTT_CTX_CONNECT | MQTT_CTX_CONNACK | MQTT_CTX_AUTH, false, 0},
    [MQTT_PROP_REQUEST_PROBLEM_INFO] = {K_BYTE, MQTT_CTX_CONNECT, false, 1},
    [MQTT_PROP_WILL_DELAY] = {K_U32, MQTT_CTX_WILL, false, 0},
    [MQTT_PROP_REQUEST_RESPONSE_INFO] = {K_BYTE, MQTT_CTX_CONNECT, false, 1},
    [MQTT_PROP_RESPONSE_INFO] = {K_STR, MQTT_CTX_CONNACK, false, 0},
    [MQTT_PROP_SERVER_REFERENCE] = {K_STR, MQTT_CTX_CONNACK | MQTT_CTX_DISCONNECT, false, 0},
    [MQTT_PROP_REASON_STRING] = {K_STR, ALL_REASONED, false, 0},
    [MQTT_PROP_RECEIVE_MAXIMUM] = {K_U16, MQTT_CTX_CONNECT | MQTT_CTX_CONNACK, true, 0},
    [MQTT_PROP_TOPIC_ALIAS_MAXIMUM] = {K_U16, MQTT_CTX_CONNECT | MQTT_CTX_CONNACK, false, 0},
    [MQTT_PROP_TOPIC_ALIAS] = {K_U16, MQTT_CTX_PUBLISH, true, 0},
    [MQTT_PROP_MAXIMUM_QOS] = {K_BYTE, MQTT_CTX_CONNACK, false, 1},
    [MQTT_PROP_RETAIN_AVAILABLE] = {K_BYTE, MQTT_CTX_CONNACK, false, 1},
    [MQTT_PROP_USER] = {K_PAIR, ALL_CTX, false, 0},
    [MQTT_PROP_MAXIMUM_PACKET_SIZE] = {K_U32, MQTT_CTX_CONNECT | MQTT_CTX_CONNACK, true, 0},
    [MQTT_PROP_WILDCARD_SUB_AVAILABLE] = {K_BYTE, MQTT_CTX_CONNACK, false, 1},
    [MQTT_PROP_SUB_ID_AVAILABLE] = {K_BYTE, MQTT_CTX_CONNACK, false, 1},
    [MQTT_PROP_SHARED_SUB_AVAILABLE] = {K_BYTE, MQTT_CTX_CONNACK, false, 1},
};

static const struct prop_rule *rule_of(uint32_t id)
{
    return id <= MQTT_PROP_ID_MAX && rules[id].kind != K_NONE ? &rules[id] : NULL;
}

static bool is_numeric(uint8_t kind)
{
    return kind == K_BYTE || kind == K_U16 || kind == K_U32 || kind == K_VBI;
}

/* May it appear more than once here? User properties always; subscription
 * identifiers in a PUBLISH only (§3.3.2.3.8; once in SUBSCRIBE, §3.8.2.1.2). */
static bool may_repeat(uint32_t id, unsigned ctx)
{
    return id == MQTT_PROP_USER || (id == MQTT_PROP_SUBSCRIPTION_ID && ctx == MQTT_CTX_PUBLISH);
}

static bool value_in_range(const struct prop_rule *rule, uint32_t v)
{
    if (rule->nonzero && v == 0)
        return false;
    if (rule->max && v > rule->max)
        return false;
    return rule->kind != K_VBI || v <= MQTT_MAX_REMAINING_LENGTH;
}

/* One value of the rule's kind: a number into *num, a string or binary
 * into *a, a user property's name and value into *a and *b. */
static int read_value(struct mqtt_reader *r, uint8_t kind, uint32_t *num, struct mqtt_bytes *a,
                      struct mqtt_bytes *b)
{
    uint8_t u8;
    uint16_t u16;
    struct mqtt_str s;
    int rc;
    switch (kind) {
    case K_BYTE:
        rc = mqtt_rd_u8(r, &u8);
        *num = u8;
        return rc;
    case K_U16:
        rc = mqtt_rd_u16(r, &u16);
        *num = u16;
        return rc;
    case K_U32:
        return mqtt_rd_u32(r, num);
    case K_VBI:
        return mqtt_rd_vbi(r, num);
    case K_BIN:
        return mqtt_rd_bin(r, a);
    case K_PAIR:
        if ((rc = read_value(r, K_STR, num, b, NULL)) != MQTT_OK)
            return rc;
        return read_value(r, K_STR, num, a, NULL);
    case K_STR:
        rc = mqtt_rd_str(r, &s);
        *a = (struct mqtt_bytes){(const uint8_t *)s.ptr, s.len};
        return rc;
    default:
        return MQTT_E_MALFORMED;
    }
}

/* One identifier and its value. An identifier not in the table, or not
 * allowed in ctx, makes the packet malformed (§2.2.2.2). */
static int read_prop(struct mqtt_reader *r, unsigned ctx, uint32_t *id, uint32_t *num,
                     struct mqtt_bytes *a, struct mqtt_bytes *b)
{
    int rc = mqtt_rd_vbi(r, id);
    if (rc != MQTT_OK)
        return rc;
    const struct prop_rule *rule = rule_of(*id);
    if (!rule || !(rule->ctx & ctx))
        return MQTT_E_MALFORMED;
    return read_value(r, rule->kind, num, a, b);
}

static int store_prop(struct mqtt_props *out, unsigned ctx, uint32_t id, uint32_t num,
                      struct mqtt_bytes a)
{
    const struct prop_rule *rule = rule_of(id);
    if (mqtt_props_has(out, (uint8_t)id) && !may_repeat(id, ctx))
        return MQTT_E_PROTOCOL;
    if (is_numeric(rule->kind) && !value_in_range(rule, num))
        return MQTT_E_PROTOCOL;
    if (id == MQTT_PROP_USER)
        out->n_user++;
    else if (id == MQTT_PROP_SUBSCRIPTION_ID)
        out->n_sub_ids++;
    if (is_numeric(rule->kind))
        out->num[id] = num;
    else if (id != MQTT_PROP_USER)
        out->data[id] = a;
    out->present |= (uint64_t)1 << id;
    return MQTT_OK;
}

int mqtt_props_decode(struct mqtt_reader *r, unsigned ctx, struct mqtt_props *out)
{
    memset(out, 0, sizeof *out);
    uint32_t block_len;
    int rc = mqtt_rd_vbi(r, &block_len);
    if (rc != MQTT_OK)
        return rc;
    if (block_len > mqtt_rd_left(r))
        return MQTT_E_MALFORMED;
    struct mqtt_reader block = {r->p + r->pos, block_len, 0};
    out->raw = (struct mqtt_bytes){block.p, block_len};
    r->pos += block_len;
    while (mqtt_rd_left(&block) > 0) {
        uint32_t id, num = 0;
        struct mqtt_bytes a = {0}, b = {0};
        if ((rc = read_prop(&block, ctx, &id, &num, &a, &b)) != MQTT_OK)
            return rc;
        if ((rc = store_prop(out, ctx, id, num, a)) != MQTT_OK)
            return rc;
    }
    return MQTT_OK;
}

/* Next property with identifier `want` in a decoded block; *pos is a
 * byte offset into raw. The block was validated, so reads succeed. */
static bool raw_next(const struct mqtt_props *p, uint32_t want, size_t *pos, uint32_t *num,
                     struct mqtt_bytes *a, struct mqtt_bytes *b)
{
    struct mqtt_reader r = {p->raw.ptr, p->raw.len, *pos};
    while (mqtt_rd_left(&r) > 0) {
        uint32_t id;
        if (read_prop(&r, ALL_CTX, &id, num, a, b) != MQTT_OK)
            return false;
        if (id == want) {
            *pos = r.pos;
            return true;
        }
    }
    *pos = r.pos;
    return false;
}

bool mqtt_props_user_next(const struct mqtt_props *p, size_t *pos, struct mqtt_user_prop *out)
{
    if (p->user) {
        if (*pos >= p->n_user)
            return false;
        *out = p->user[(*pos)++];
        return true;
    }
    uint32_t num;
    struct mqtt_bytes value, name;
    if (!raw_next(p, MQTT_PROP_USER, pos, &num, &value, &name))
        return false;
    out->name = (struct mqtt_str){(const char *)name.ptr, name.len};
    out->value = (struct mqtt_str){(const char *)value.ptr, value.len};
    return true;
}

bool mqtt_props_sub_id_next(const struct mqtt_props *p, size_t *pos, uint32_t *out)
{
    if (p->sub_ids) {
        if (*pos >= p->n_sub_ids)
            return false;
        *out = p->sub_ids[(*pos)++];
        return true;
    }
    if (!p->raw.ptr) {
        /* Built by hand with one identifier in num[]. */
        if (*pos > 0 || !mqtt_props_has(p, MQTT_PROP_SUBSCRIPTION_ID))
            return false;
        *pos = 1;
        *out = p->num[MQTT_PROP_SUBSCRIPTION_ID];
        return true;
    }
    struct mqtt_bytes a, b;
    return raw_next(p, MQTT_PROP_SUBSCRIPTION_ID, pos, out, &a, &b);
}

void mqtt_props_set_num(struct mqtt_props *p, uint8_t id, uint32_t value)
{
    p->num[id] = value;
    p->present |= (uint64_t)1 << id;
}

void mqtt_props_set_data(struct mqtt_props *p, uint8_t id, const void *ptr, size_t len)
{
    p->data[id] = (struct mqtt_bytes){ptr, len};
    p->present |= (uint64_t)1 << id;
}

bool mqtt_props_empty(const struct mqtt_props *p)
{
    return p->present == 0 && p->n_user == 0 && p->n_sub_ids == 0;
}

static bool str_ok(const struct mqtt_bytes *s)
{
    return s->len <= UINT16_MAX && mqtt_utf8_valid((const char *)s->ptr, s->len);
}

static void write_value(struct mqtt_writer *w, uint8_t kind, uint32_t num, struct mqtt_bytes d)
{
    switch (kind) {
    case K_BYTE:
        mqtt_wr_u8(w, (uint8_t)num);
        break;
    case K_U16:
        mqtt_wr_u16(w, (uint16_t)num);
        break;
    case K_U32:
        mqtt_wr_u32(w, num);
        break;
    case K_VBI:
        mqtt_wr_vbi(w, num);
        break;
    default:
        mqtt_wr_bin(w, d.ptr, d.len);
    }
}

/* Every property but user properties and subscription identifiers, in
 * identifier order. */
static int write_singles(struct mqtt_writer *w, const struct mqtt_props *p, unsigned ctx)
{
    for (uint32_t id = 1; id <= MQTT_PROP_ID_MAX; id++) {
        if (!mqtt_props_has(p, (uint8_t)id) || id == MQTT_PROP_USER ||
            id == MQTT_PROP_SUBSCRIPTION_ID)
            continue;
        const struct prop_rule *rule = rule_of(id);
        if (!rule || !(rule->ctx & ctx))
            return MQTT_E_INVALID;
        if (is_numeric(rule->kind) ? !value_in_range(rule, p->num[id])
                                   : (rule->kind == K_STR ? !str_ok(&p->data[id])
                                                          : p->data[id].len > UINT16_MAX))
            return MQTT_E_INVALID;
        mqtt_wr_u8(w, (uint8_t)id);
        write_value(w, rule->kind, p->num[id], p->data[id]);
    }
    return MQTT_OK;
}

static int write_repeats(struct mqtt_writer *w, const struct mqtt_props *p, unsigned ctx)
{
    size_t pos = 0, count = 0;
    uint32_t sub_id;
    const struct prop_rule *rule = &rules[MQTT_PROP_SUBSCRIPTION_ID];
    while (mqtt_props_sub_id_next(p, &pos, &sub_id)) {
        bool repeated = count++ > 0;
        if (!(rule->ctx & ctx) || (repeated && !may_repeat(MQTT_PROP_SUBSCRIPTION_ID, ctx)) ||
            !value_in_range(rule, sub_id))
            return MQTT_E_INVALID;
        mqtt_wr_u8(w, MQTT_PROP_SUBSCRIPTION_ID);
        mqtt_wr_vbi(w, sub_id);
    }
    pos = 0;
    struct mqtt_user_prop up;
    while (mqtt_props_user_next(p, &pos, &up)) {
        struct mqtt_bytes name = {(const uint8_t *)up.name.ptr, up.name.len};
        struct mqtt_bytes value = {(const uint8_t *)up.value.ptr, up.value.len};
        if (!str_ok(&name) || !str_ok(&value))
            return MQTT_E_INVALID;
        mqtt_wr_u8(w, MQTT_PROP_USER);
        mqtt_wr_bin(w, name.ptr, name.len);
        mqtt_wr_bin(w, value.ptr, value.len);
    }
    return MQTT_OK;
}

static int write_block(struct mqtt_writer *w, const struct mqtt_props *p, unsigned ctx)
{
    int rc = write_singles(w, p, ctx);
    return rc != MQTT_OK ? rc : write_repeats(w, p, ctx);
}

int mqtt_props_encode(struct mqtt_writer *w, const struct mqtt_props *p, unsigned ctx)
{
    struct mqtt_writer count = {NULL, 0, 0, false};
    int rc = write_block(&count, p, ctx);
    if (rc != MQTT_OK)
        return rc;
    if (count.pos > MQTT_MAX_REMAINING_LENGTH)
        return MQTT_E_INVALID;
    mqtt_wr_vbi(w, (uint32_t)count.pos);
    return write_block(w, p, ctx);
}
