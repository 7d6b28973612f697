/* mqtt_wire.h — the codec's internals: the data representations of §1.5
 * (two/four-byte integers, variable byte integers, UTF-8 strings, binary
 * data) read from a bounds-checked reader and written to a writer that can
 * also just count (buf NULL), so one encoder both sizes and writes.
 * Property blocks (mqtt_props.c) are shared by every packet. */
#ifndef IOT_MQTT_WIRE_H
#define IOT_MQTT_WIRE_H

#include <string.h>

#include "mqtt/mqtt_codec.h"

struct mqtt_reader {
    const uint8_t *p;
    size_t len, pos;
};

static inline size_t mqtt_rd_left(const struct mqtt_reader *r)
{
    return r->len - r->pos;
}

int mqtt_rd_u8(struct mqtt_reader *r, uint8_t *v);
int mqtt_rd_u16(struct mqtt_reader *r, uint16_t *v);
int mqtt_rd_u32(struct mqtt_reader *r, uint32_t *v);
/* A variable byte integer (§1.5.5): at most 4 bytes, minimal form. */
int mqtt_rd_vbi(struct mqtt_reader *r, uint32_t *v);
int mqtt_rd_bin(struct mqtt_reader *r, struct mqtt_bytes *v);
/* Binary data that must be a valid MQTT UTF-8 string. */
int mqtt_rd_str(struct mqtt_reader *r, struct mqtt_str *v);

struct mqtt_writer {
    uint8_t *buf; /* NULL: count only */
    size_t cap, pos;
    bool too_long; /* a string or binary field above 65535 bytes */
};

void mqtt_wr_bytes(struct mqtt_writer *w, const void *p, size_t n);
void mqtt_wr_u8(struct mqtt_writer *w, uint8_t v);
void mqtt_wr_u16(struct mqtt_writer *w, uint16_t v);
void mqtt_wr_u32(struct mqtt_writer *w, uint32_t v);
void mqtt_wr_vbi(struct mqtt_writer *w, uint32_t v);
/* Two-byte length then the bytes; the caller has checked len <= 65535. */
void mqtt_wr_bin(struct mqtt_writer *w, const void *p, size_t len);
size_t mqtt_vbi_size(uint32_t v);

/* Where a property block appears: decides which identifiers are allowed
 * (§2.2.2.2's table). */
enum mqtt_prop_ctx {
    MQTT_CTX_CONNECT = 1 << 0,
    MQTT_CTX_CONNACK = 1 << 1,
    MQTT_CTX_PUBLISH = 1 << 2,
    MQTT_CTX_WILL = 1 << 3,
    MQTT_CTX_PUBACK = 1 << 4, /* and PUBREC, PUBREL, PUBCOMP */
    MQTT_CTX_SUBSCRIBE = 1 << 5,
    MQTT_CTX_SUBACK = 1 << 6,
    MQTT_CTX_UNSUBSCRIBE = 1 << 7,
    MQTT_CTX_UNSUBACK = 1 << 8,
    MQTT_CTX_DISCONNECT = 1 << 9,
    MQTT_CTX_AUTH = 1 << 10,
};

/* Reads a property length and block, checking every identifier against
 * ctx, repeats, and the values' ranges. */
int mqtt_props_decode(struct mqtt_reader *r, unsigned ctx, struct mqtt_props *out);
/* Writes the property length and block; MQTT_E_INVALID if p holds a
 * property not allowed in ctx or an out-of-range value. */
int mqtt_props_encode(struct mqtt_writer *w, const struct mqtt_props *p, unsigned ctx);
/* True if the block has nothing to write (short forms of acks). */
bool mqtt_props_empty(const struct mqtt_props *p);

#endif
