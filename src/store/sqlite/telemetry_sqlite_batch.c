/* telemetry_sqlite_batch.c — the encoding of a staged batch: what one
 * commit-log record of the SQLite telemetry store holds, and what a flush
 * decodes. The typed points travel in it, so a flush re-parses nothing.
 *
 * Format (little-endian): u32 count, then per message
 *   i64 device_id, user_id, ts, seq; u32 data_len; u32 meta_len
 *   (0xffffffff: no metadata); u32 n_points; data; meta; then per point
 *   u8 name_len, the name and a NUL, u8 type, and a value: an f64 (number),
 *   a u8 (boolean) or u32 length + bytes (string); type ENC_INTEGER (a
 *   number given as an integer) carries an i64, exact past 2^53. A log
 *   with ENC_INTEGER points cannot be replayed by a binary older than it.
 *
 * The decoder trusts nothing of the blob (a record's checksum only says it
 * is what was written): every length is bounded, every name and number
 * checked as write_batch checks them, and anything else is IOT_EINTERNAL. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/telemetry_sqlite_int.h"
#include "util/err.h"

#define NO_META UINT32_MAX
/* The point type of a number given as an integer (beside enum iot_tm_type). */
enum { ENC_INTEGER = 4 };

enum { MSG_HEAD = 4 * 8 + 3 * 4 };

/* ---- little-endian encoding ----------------------------------------------- */

static int blob_reserve(struct iot_tmsql_blob *b, size_t more)
{
    if (b->len + more <= b->cap)
        return IOT_OK;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p)
        return IOT_ENOMEM;
    b->p = p;
    b->cap = cap;
    return IOT_OK;
}

static void put_u32(struct iot_tmsql_blob *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b->p[b->len++] = (unsigned char)(v >> (8 * i));
}

static void put_u64(struct iot_tmsql_blob *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b->p[b->len++] = (unsigned char)(v >> (8 * i));
}

static void put_bytes(struct iot_tmsql_blob *b, const void *d, size_t n)
{
    if (n)
        memcpy(b->p + b->len, d, n);
    b->len += n;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = (u << 8) | p[i];
    return u;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- encoding ----------------------------------------------------------------- */

/* Upper bound of one message's encoding (validated: lengths are bounded). */
static size_t msg_bytes(const struct iot_tm_message *m)
{
    size_t n = MSG_HEAD + m->data_len + (m->meta_json ? m->meta_len : 0);
    for (size_t i = 0; i < m->n_points; i++)
        n += 2 + strlen(m->points[i].name) + 1 + 4 + 8 + m->points[i].value.str_len;
    return n;
}

static void encode_point(struct iot_tmsql_blob *b, const struct iot_tm_point *p)
{
    size_t len = strlen(p->name);
    b->p[b->len++] = (unsigned char)len;
    put_bytes(b, p->name, len + 1);
    bool integer = p->value.type == IOT_TM_NUMBER && p->value.is_int;
    b->p[b->len++] = integer ? ENC_INTEGER : (unsigned char)p->value.type;
    switch (p->value.type) {
    case IOT_TM_NUMBER: {
        uint64_t u = (uint64_t)p->value.i;
        if (!integer)
            memcpy(&u, &p->value.num, sizeof u);
        put_u64(b, u);
        break;
    }
    case IOT_TM_BOOL: b->p[b->len++] = p->value.boolean ? 1 : 0; break;
    default:
        put_u32(b, (uint32_t)p->value.str_len);
        put_bytes(b, p->value.str, p->value.str_len);
        break;
    }
}

static int encode_msg(struct iot_tmsql_blob *b, const struct iot_tm_message *m)
{
    int rc = blob_reserve(b, msg_bytes(m));
    if (rc)
        return rc;
    put_u64(b, (uint64_t)m->device_id);
    put_u64(b, (uint64_t)m->user_id);
    put_u64(b, (uint64_t)m->ts);
    put_u64(b, (uint64_t)m->seq);
    put_u32(b, (uint32_t)m->data_len);
    put_u32(b, m->meta_json ? (uint32_t)m->meta_len : NO_META);
    put_u32(b, (uint32_t)m->n_points);
    put_bytes(b, m->data_json, m->data_len);
    if (m->meta_json)
        put_bytes(b, m->meta_json, m->meta_len);
    for (size_t i = 0; i < m->n_points; i++)
        encode_point(b, &m->points[i]);
    return IOT_OK;
}

int iot_tmsql_batch_encode(struct iot_tmsql_blob *b, const struct iot_tm_message *msgs, size_t n,
                           uint32_t *n_msgs, uint32_t *n_points)
{
    *n_msgs = *n_points = 0;
    b->len = 0;
    int rc = blob_reserve(b, IOT_TMSQL_BATCH_HEAD);
    if (rc)
        return rc;
    b->len = IOT_TMSQL_BATCH_HEAD; /* the count, written last */
    for (size_t i = 0; i < n && rc == IOT_OK; i++) {
        rc = encode_msg(b, &msgs[i]);
        if (rc == IOT_OK) {
            (*n_msgs)++;
            *n_points += (uint32_t)msgs[i].n_points;
        }
    }
    for (int i = 0; i < 4; i++)
        b->p[i] = (unsigned char)(*n_msgs >> (8 * i));
    return rc;
}

/* ---- decoding ----------------------------------------------------------------- */

int iot_tmsql_batch_count(const unsigned char *blob, size_t len, uint32_t *n_msgs)
{
    if (len < IOT_TMSQL_BATCH_HEAD)
        return IOT_EINTERNAL;
    *n_msgs = get_u32(blob);
    return IOT_OK;
}

#define NEED(n)                                                                                  \
    do {                                                                                         \
        if (len - p < (size_t)(n))                                                               \
            return IOT_EINTERNAL;                                                                \
    } while (0)

/* Reads one point's value at *pos (past its type byte). */
static int decode_value(const unsigned char *blob, size_t len, size_t *pos, unsigned type,
                        struct iot_tm_value *v)
{
    size_t p = *pos;
    switch (type) {
    case ENC_INTEGER:
        NEED(8);
        *v = (struct iot_tm_value){.type = IOT_TM_NUMBER, .is_int = true,
                                   .i = (int64_t)get_u64(blob + p)};
        v->num = (double)v->i;
        p += 8;
        break;
    case IOT_TM_NUMBER: {
        NEED(8);
        uint64_t u = get_u64(blob + p);
        *v = (struct iot_tm_value){.type = IOT_TM_NUMBER};
        memcpy(&v->num, &u, sizeof u);
        if (!isfinite(v->num)) /* write_batch refuses them: JSON has no such number */
            return IOT_EINTERNAL;
        p += 8;
        break;
    }
    case IOT_TM_BOOL:
        NEED(1);
        *v = (struct iot_tm_value){.type = IOT_TM_BOOL, .boolean = blob[p++] != 0};
        break;
    case IOT_TM_STRING: {
        NEED(4);
        uint32_t sl = get_u32(blob + p);
        p += 4;
        if (sl > IOT_TM_STRING_MAX)
            return IOT_EINTERNAL;
        NEED(sl);
        *v = (struct iot_tm_value){.type = IOT_TM_STRING, .str = (const char *)blob + p,
                                   .str_len = sl};
        p += sl;
        break;
    }
    default: return IOT_EINTERNAL;
    }
    *pos = p;
    return IOT_OK;
}

int iot_tmsql_batch_decode_msg(const unsigned char *blob, size_t len, size_t *pos,
                               struct iot_tm_message *m, struct iot_tm_point *points)
{
    size_t p = *pos;
    NEED(MSG_HEAD);
    memset(m, 0, sizeof *m);
    m->device_id = (int64_t)get_u64(blob + p);
    m->user_id = (int64_t)get_u64(blob + p + 8);
    m->ts = (int64_t)get_u64(blob + p + 16);
    m->seq = (int64_t)get_u64(blob + p + 24);
    uint32_t data_len = get_u32(blob + p + 32), meta_len = get_u32(blob + p + 36);
    uint32_t n_points = get_u32(blob + p + 40);
    p += MSG_HEAD;
    if (data_len == 0 || data_len > IOT_TM_DATA_JSON_MAX || n_points > IOT_TM_POINTS_MAX ||
        (meta_len != NO_META && meta_len > IOT_TM_DATA_JSON_MAX))
        return IOT_EINTERNAL;
    NEED(data_len);
    m->data_json = (const char *)blob + p;
    m->data_len = data_len;
    p += data_len;
    if (meta_len != NO_META) {
        NEED(meta_len);
        m->meta_json = (const char *)blob + p;
        m->meta_len = meta_len;
        p += meta_len;
    }
    m->points = points;
    m->n_points = n_points;
    for (uint32_t i = 0; i < n_points; i++) {
        struct iot_tm_point *pt = &points[i];
        NEED(1);
        size_t nl = blob[p++];
        NEED(nl + 2);
        const char *name = (const char *)blob + p;
        /* NUL-terminated at its length, no NUL inside, and a valid name */
        if (blob[p + nl] != '\0' || strlen(name) != nl || !iot_tm_name_valid(name))
            return IOT_EINTERNAL;
        pt->name = name;
        p += nl + 1;
        unsigned type = blob[p++];
        int rc = decode_value(blob, len, &p, type, &pt->value);
        if (rc)
            return rc;
    }
    *pos = p;
    return IOT_OK;
}

#undef NEED

int iot_tmsql_batch_check(const unsigned char *blob, size_t len, uint32_t *n_msgs,
                          uint32_t *n_points)
{
    uint32_t n = 0, np = 0;
    int rc = iot_tmsql_batch_count(blob, len, &n);
    size_t pos = IOT_TMSQL_BATCH_HEAD;
    struct iot_tm_message m;
    struct iot_tm_point points[IOT_TM_POINTS_MAX];
    for (uint32_t i = 0; i < n && rc == IOT_OK; i++) {
        rc = iot_tmsql_batch_decode_msg(blob, len, &pos, &m, points);
        np += (uint32_t)m.n_points;
    }
    if (rc == IOT_OK && pos != len)
        rc = IOT_EINTERNAL;
    if (rc == IOT_OK) {
        *n_msgs = n;
        *n_points = np;
    }
    return rc;
}
