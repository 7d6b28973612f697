/* mqtt_wire.c — reader and writer of §1.5's data representations
 * (mqtt_wire.h). */
#include "mqtt/mqtt_wire.h"

int mqtt_rd_u8(struct mqtt_reader *r, uint8_t *v)
{
    if (mqtt_rd_left(r) < 1)
        return MQTT_E_MALFORMED;
    *v = r->p[r->pos++];
    return MQTT_OK;
}

int mqtt_rd_u16(struct mqtt_reader *r, uint16_t *v)
{
    if (mqtt_rd_left(r) < 2)
        return MQTT_E_MALFORMED;
    *v = (uint16_t)(r->p[r->pos] << 8 | r->p[r->pos + 1]);
    r->pos += 2;
    return MQTT_OK;
}

int mqtt_rd_u32(struct mqtt_reader *r, uint32_t *v)
{
    if (mqtt_rd_left(r) < 4)
        return MQTT_E_MALFORMED;
    const uint8_t *b = r->p + r->pos;
    *v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    r->pos += 4;
    return MQTT_OK;
}

int mqtt_rd_vbi(struct mqtt_reader *r, uint32_t *v)
{
    uint32_t value = 0;
    for (unsigned i = 0; i < 4; i++) {
        uint8_t b;
        if (mqtt_rd_u8(r, &b) != MQTT_OK)
            return MQTT_E_MALFORMED;
        value |= (uint32_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            /* A last byte of 0 after the first means a shorter form
             * existed: §1.5.5 requires the minimal one. */
            if (i > 0 && b == 0)
                return MQTT_E_MALFORMED;
            *v = value;
            return MQTT_OK;
        }
    }
    return MQTT_E_MALFORMED;
}

int mqtt_rd_bin(struct mqtt_reader *r, struct mqtt_bytes *v)
{
    uint16_t n;
    if (mqtt_rd_u16(r, &n) != MQTT_OK || mqtt_rd_left(r) < n)
        return MQTT_E_MALFORMED;
    v->ptr = r->p + r->pos;
    v->len = n;
    r->pos += n;
    return MQTT_OK;
}

int mqtt_rd_str(struct mqtt_reader *r, struct mqtt_str *v)
{
    struct mqtt_bytes b;
    if (mqtt_rd_bin(r, &b) != MQTT_OK)
        return MQTT_E_MALFORMED;
    v->ptr = (const char *)b.ptr;
    v->len = b.len;
    /* §1.5.4: an ill-formed string is a Malformed Packet. */
    return mqtt_utf8_valid(v->ptr, v->len) ? MQTT_OK : MQTT_E_MALFORMED;
}

void mqtt_wr_bytes(struct mqtt_writer *w, const void *p, size_t n)
{
    if (w->buf && n > 0 && w->pos + n <= w->cap)
        memcpy(w->buf + w->pos, p, n);
    w->pos += n;
}

void mqtt_wr_u8(struct mqtt_writer *w, uint8_t v)
{
    mqtt_wr_bytes(w, &v, 1);
}

void mqtt_wr_u16(struct mqtt_writer *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    mqtt_wr_bytes(w, b, 2);
}

void mqtt_wr_u32(struct mqtt_writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    mqtt_wr_bytes(w, b, 4);
}

void mqtt_wr_vbi(struct mqtt_writer *w, uint32_t v)
{
    do {
        uint8_t b = v & 0x7F;
        v >>= 7;
        mqtt_wr_u8(w, v ? (uint8_t)(b | 0x80) : b);
    } while (v);
}

size_t mqtt_vbi_size(uint32_t v)
{
    return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

void mqtt_wr_bin(struct mqtt_writer *w, const void *p, size_t len)
{
    if (len > UINT16_MAX)
        w->too_long = true;
    mqtt_wr_u16(w, (uint16_t)len);
    mqtt_wr_bytes(w, p, len);
}
