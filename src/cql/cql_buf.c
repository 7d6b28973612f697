/* cql_buf.c — reader and writer for the native protocol's notations
 * (native_protocol_v4.spec section 3). Every read checks its bounds before
 * touching a byte and restores the position on failure; every write goes
 * through cql_write_raw, the only place that grows the buffer. */
#include "cql/cql_buf.h"

#include <stdlib.h>

#include "cql/cql_be.h"
#include "cql/cql_error.h"

const char *cql_consistency_name(uint16_t consistency)
{
    static const char *const names[] = {
        "ANY",          "ONE",         "TWO",    "THREE",        "QUORUM",    "ALL",
        "LOCAL_QUORUM", "EACH_QUORUM", "SERIAL", "LOCAL_SERIAL", "LOCAL_ONE",
    };
    if (consistency < sizeof names / sizeof names[0])
        return names[consistency];
    return "UNKNOWN";
}

/* ---- reader -------------------------------------------------------------- */

/* Borrows the next n bytes, or fails without moving. An empty input may
 * have a NULL ptr: no arithmetic on it then (NULL + 0 is undefined in C). */
static bool take(struct cql_reader *r, size_t n, const uint8_t **out)
{
    if (cql_reader_left(r) < n)
        return false;
    *out = r->ptr ? r->ptr + r->pos : NULL;
    r->pos += n;
    return true;
}

int cql_read_raw(struct cql_reader *r, size_t n, struct cql_slice *out)
{
    const uint8_t *p;
    if (!take(r, n, &p))
        return CQL_E_TRUNCATED;
    *out = (struct cql_slice){p, n};
    return CQL_OK;
}

int cql_read_byte(struct cql_reader *r, uint8_t *out)
{
    const uint8_t *p;
    if (!take(r, 1, &p))
        return CQL_E_TRUNCATED;
    *out = p[0];
    return CQL_OK;
}

int cql_read_short(struct cql_reader *r, uint16_t *out)
{
    const uint8_t *p;
    if (!take(r, 2, &p))
        return CQL_E_TRUNCATED;
    *out = cql_load16(p);
    return CQL_OK;
}

int cql_read_int(struct cql_reader *r, int32_t *out)
{
    const uint8_t *p;
    if (!take(r, 4, &p))
        return CQL_E_TRUNCATED;
    *out = (int32_t)cql_load32(p);
    return CQL_OK;
}

int cql_read_long(struct cql_reader *r, int64_t *out)
{
    const uint8_t *p;
    if (!take(r, 8, &p))
        return CQL_E_TRUNCATED;
    *out = (int64_t)cql_load64(p);
    return CQL_OK;
}

int cql_read_string(struct cql_reader *r, struct cql_str *out)
{
    size_t start = r->pos;
    uint16_t n;
    const uint8_t *p;
    if (cql_read_short(r, &n) || !take(r, n, &p)) {
        r->pos = start;
        return CQL_E_TRUNCATED;
    }
    *out = (struct cql_str){(const char *)p, n};
    return CQL_OK;
}

int cql_read_long_string(struct cql_reader *r, struct cql_str *out)
{
    size_t start = r->pos;
    int32_t n;
    int rc = cql_read_int(r, &n);
    if (rc)
        return rc;
    if (n < 0) {
        r->pos = start;
        return CQL_E_PROTOCOL;
    }
    const uint8_t *p;
    if (!take(r, (size_t)n, &p)) {
        r->pos = start;
        return CQL_E_TRUNCATED;
    }
    *out = (struct cql_str){(const char *)p, (size_t)n};
    return CQL_OK;
}

int cql_read_uuid(struct cql_reader *r, uint8_t out[16])
{
    const uint8_t *p;
    if (!take(r, 16, &p))
        return CQL_E_TRUNCATED;
    memcpy(out, p, 16);
    return CQL_OK;
}

/* [bytes] and [value] share a layout; they differ in what negative means. */
static int read_int_sized(struct cql_reader *r, struct cql_value *out, bool is_value)
{
    size_t start = r->pos;
    int32_t n;
    int rc = cql_read_int(r, &n);
    if (rc)
        return rc;
    if (n < 0) {
        if (!is_value || n == CQL_VALUE_NULL) {
            *out = (struct cql_value){NULL, CQL_VALUE_NULL};
            return CQL_OK;
        }
        if (n == CQL_VALUE_NOT_SET) {
            *out = (struct cql_value){NULL, CQL_VALUE_NOT_SET};
            return CQL_OK;
        }
        r->pos = start;
        return CQL_E_PROTOCOL;
    }
    const uint8_t *p;
    if (!take(r, (size_t)n, &p)) {
        r->pos = start;
        return CQL_E_TRUNCATED;
    }
    *out = (struct cql_value){p, n};
    return CQL_OK;
}

int cql_read_bytes(struct cql_reader *r, struct cql_value *out)
{
    return read_int_sized(r, out, false);
}

int cql_read_value(struct cql_reader *r, struct cql_value *out)
{
    return read_int_sized(r, out, true);
}

int cql_read_short_bytes(struct cql_reader *r, struct cql_slice *out)
{
    size_t start = r->pos;
    uint16_t n;
    const uint8_t *p;
    if (cql_read_short(r, &n) || !take(r, n, &p)) {
        r->pos = start;
        return CQL_E_TRUNCATED;
    }
    *out = (struct cql_slice){p, n};
    return CQL_OK;
}

int cql_read_inetaddr(struct cql_reader *r, struct cql_inet *out)
{
    size_t start = r->pos;
    uint8_t n;
    int rc = cql_read_byte(r, &n);
    if (rc)
        return rc;
    if (n != 4 && n != 16) {
        r->pos = start;
        return CQL_E_PROTOCOL;
    }
    const uint8_t *p;
    if (!take(r, n, &p)) {
        r->pos = start;
        return CQL_E_TRUNCATED;
    }
    memset(out, 0, sizeof *out);
    out->addr_len = n;
    memcpy(out->addr, p, n);
    return CQL_OK;
}

int cql_read_inet(struct cql_reader *r, struct cql_inet *out)
{
    size_t start = r->pos;
    struct cql_inet in;
    int rc = cql_read_inetaddr(r, &in);
    if (rc == CQL_OK)
        rc = cql_read_int(r, &in.port);
    if (rc) {
        r->pos = start;
        return rc;
    }
    *out = in;
    return CQL_OK;
}

int cql_read_consistency(struct cql_reader *r, uint16_t *out)
{
    return cql_read_short(r, out);
}

/* The shape of one entry of each sequence notation; the validating reads
 * and the iterators both walk entries with these. */
enum seq_kind { SEQ_STRING_LIST, SEQ_STRING_MAP, SEQ_MULTIMAP, SEQ_BYTES_MAP };

static int skip_string_list_entries(struct cql_reader *r, uint16_t count)
{
    struct cql_str s;
    for (uint32_t i = 0; i < count; i++) {
        int rc = cql_read_string(r, &s);
        if (rc)
            return rc;
    }
    return CQL_OK;
}

static int skip_entry(struct cql_reader *r, enum seq_kind kind)
{
    struct cql_str key, val;
    struct cql_value bytes;
    uint16_t n;
    int rc = cql_read_string(r, &key);
    if (rc || kind == SEQ_STRING_LIST)
        return rc;
    switch (kind) {
    case SEQ_STRING_MAP:
        return cql_read_string(r, &val);
    case SEQ_MULTIMAP:
        rc = cql_read_short(r, &n);
        return rc ? rc : skip_string_list_entries(r, n);
    case SEQ_BYTES_MAP:
        return cql_read_bytes(r, &bytes);
    default:
        return CQL_E_PROTOCOL;
    }
}

/* Reads a [short] count and validates every entry; `raw` spans the entries. */
static int read_seq(struct cql_reader *r, enum seq_kind kind, struct cql_slice *raw,
                    uint16_t *count)
{
    size_t start = r->pos;
    uint16_t n;
    int rc = cql_read_short(r, &n);
    if (rc)
        return rc;
    size_t first = r->pos;
    for (uint32_t i = 0; i < n; i++) {
        rc = skip_entry(r, kind);
        if (rc) {
            r->pos = start;
            return rc;
        }
    }
    *raw = (struct cql_slice){r->ptr + first, r->pos - first};
    *count = n;
    return CQL_OK;
}

int cql_read_string_list(struct cql_reader *r, struct cql_str_list *out)
{
    return read_seq(r, SEQ_STRING_LIST, &out->raw, &out->count);
}

int cql_read_string_map(struct cql_reader *r, struct cql_str_map *out)
{
    return read_seq(r, SEQ_STRING_MAP, &out->raw, &out->count);
}

int cql_read_string_multimap(struct cql_reader *r, struct cql_multimap *out)
{
    return read_seq(r, SEQ_MULTIMAP, &out->raw, &out->count);
}

int cql_read_bytes_map(struct cql_reader *r, struct cql_bytes_map *out)
{
    return read_seq(r, SEQ_BYTES_MAP, &out->raw, &out->count);
}

/* ---- iterators ----------------------------------------------------------- */

static struct cql_iter iter_over(struct cql_slice raw, uint16_t count)
{
    return (struct cql_iter){cql_reader_make(raw.ptr, raw.len), count};
}

struct cql_iter cql_str_list_iter(const struct cql_str_list *l)
{
    return iter_over(l->raw, l->count);
}

struct cql_iter cql_str_map_iter(const struct cql_str_map *m)
{
    return iter_over(m->raw, m->count);
}

struct cql_iter cql_multimap_iter(const struct cql_multimap *m)
{
    return iter_over(m->raw, m->count);
}

struct cql_iter cql_bytes_map_iter(const struct cql_bytes_map *m)
{
    return iter_over(m->raw, m->count);
}

/* The entries were validated when read, so a failure here means the caller
 * built the sequence by hand; treat it as the end rather than trust it. */
bool cql_str_list_next(struct cql_iter *it, struct cql_str *out)
{
    if (it->left == 0 || cql_read_string(&it->r, out))
        return false;
    it->left--;
    return true;
}

bool cql_str_map_next(struct cql_iter *it, struct cql_str *key, struct cql_str *val)
{
    size_t start = it->r.pos;
    if (it->left == 0 || cql_read_string(&it->r, key))
        return false;
    if (cql_read_string(&it->r, val)) {
        it->r.pos = start;
        return false;
    }
    it->left--;
    return true;
}

bool cql_multimap_next(struct cql_iter *it, struct cql_str *key, struct cql_str_list *vals)
{
    size_t start = it->r.pos;
    if (it->left == 0 || cql_read_string(&it->r, key))
        return false;
    if (cql_read_string_list(&it->r, vals)) {
        it->r.pos = start;
        return false;
    }
    it->left--;
    return true;
}

bool cql_bytes_map_next(struct cql_iter *it, struct cql_str *key, struct cql_value *val)
{
    size_t start = it->r.pos;
    if (it->left == 0 || cql_read_string(&it->r, key))
        return false;
    if (cql_read_bytes(&it->r, val)) {
        it->r.pos = start;
        return false;
    }
    it->left--;
    return true;
}

bool cql_multimap_get(const struct cql_multimap *m, const char *key, struct cql_str_list *vals)
{
    struct cql_iter it = cql_multimap_iter(m);
    struct cql_str k;
    while (cql_multimap_next(&it, &k, vals))
        if (cql_str_eq(k, key))
            return true;
    return false;
}

/* ---- writer -------------------------------------------------------------- */

void cql_buf_free(struct cql_buf *b)
{
    if (!b)
        return;
    free(b->data);
    *b = (struct cql_buf){0};
}

void cql_buf_reset(struct cql_buf *b)
{
    b->len = 0;
    b->err = CQL_OK;
}

void cql_buf_truncate(struct cql_buf *b, size_t len)
{
    if (len < b->len)
        b->len = len;
    b->err = CQL_OK;
}

void cql_buf_fail(struct cql_buf *b, int err)
{
    if (b->err == CQL_OK)
        b->err = err;
}

int cql_buf_reserve(struct cql_buf *b, size_t extra)
{
    if (b->err)
        return b->err;
    if (b->cap - b->len >= extra)
        return CQL_OK;
    if (extra > SIZE_MAX / 2 - b->len) {
        cql_buf_fail(b, CQL_E_NOMEM);
        return b->err;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    uint8_t *data = realloc(b->data, cap);
    if (!data) {
        cql_buf_fail(b, CQL_E_NOMEM);
        return b->err;
    }
    b->data = data;
    b->cap = cap;
    return CQL_OK;
}

void cql_buf_patch_int(struct cql_buf *b, size_t offset, int32_t v)
{
    if (b->err || offset > b->len || b->len - offset < 4)
        return;
    cql_store32(b->data + offset, (uint32_t)v);
}

void cql_write_raw(struct cql_buf *b, const void *p, size_t n)
{
    if (n == 0 || cql_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void cql_write_byte(struct cql_buf *b, uint8_t v)
{
    cql_write_raw(b, &v, 1);
}

void cql_write_short(struct cql_buf *b, uint16_t v)
{
    uint8_t p[2];
    cql_store16(p, v);
    cql_write_raw(b, p, 2);
}

void cql_write_int(struct cql_buf *b, int32_t v)
{
    uint8_t p[4];
    cql_store32(p, (uint32_t)v);
    cql_write_raw(b, p, 4);
}

void cql_write_long(struct cql_buf *b, int64_t v)
{
    uint8_t p[8];
    cql_store64(p, (uint64_t)v);
    cql_write_raw(b, p, 8);
}

void cql_write_string(struct cql_buf *b, const char *s, size_t n)
{
    if (n > UINT16_MAX) {
        cql_buf_fail(b, CQL_E_INVALID);
        return;
    }
    cql_write_short(b, (uint16_t)n);
    cql_write_raw(b, s, n);
}

void cql_write_long_string(struct cql_buf *b, const char *s, size_t n)
{
    if (n > INT32_MAX) {
        cql_buf_fail(b, CQL_E_INVALID);
        return;
    }
    cql_write_int(b, (int32_t)n);
    cql_write_raw(b, s, n);
}

void cql_write_uuid(struct cql_buf *b, const uint8_t uuid[16])
{
    cql_write_raw(b, uuid, 16);
}

void cql_write_string_list(struct cql_buf *b, const struct cql_str *items, size_t n)
{
    if (n > UINT16_MAX) {
        cql_buf_fail(b, CQL_E_INVALID);
        return;
    }
    cql_write_short(b, (uint16_t)n);
    for (size_t i = 0; i < n; i++)
        cql_write_string(b, items[i].ptr, items[i].len);
}

void cql_write_bytes(struct cql_buf *b, const void *ptr, int32_t len)
{
    if (!ptr && len > 0) {
        cql_buf_fail(b, CQL_E_INVALID);
        return;
    }
    if (len < 0) {
        cql_write_int(b, CQL_VALUE_NULL);
        return;
    }
    cql_write_int(b, len);
    cql_write_raw(b, ptr, (size_t)len);
}

void cql_write_value(struct cql_buf *b, struct cql_value v)
{
    if (v.len < CQL_VALUE_NOT_SET || (!v.ptr && v.len > 0)) {
        cql_buf_fail(b, CQL_E_INVALID);
        return;
    }
    if (v.len < 0) {
        cql_write_int(b, v.len);
        return;
    }
    cql_write_int(b, v.len);
    cql_write_raw(b, v.ptr, (size_t)v.len);
}

void cql_write_short_bytes(struct cql_buf *b, const void *ptr, size_t n)
{
    if (n > UINT16_MAX) {
        cql_buf_fail(b, CQL_E_INVALID);
        return;
    }
    cql_write_short(b, (uint16_t)n);
    cql_write_raw(b, ptr, n);
}

void cql_write_inetaddr(struct cql_buf *b, const struct cql_inet *in)
{
    if (in->addr_len != 4 && in->addr_len != 16) {
        cql_buf_fail(b, CQL_E_INVALID);
        return;
    }
    cql_write_byte(b, in->addr_len);
    cql_write_raw(b, in->addr, in->addr_len);
}

void cql_write_inet(struct cql_buf *b, const struct cql_inet *in)
{
    cql_write_inetaddr(b, in);
    cql_write_int(b, in->port);
}

void cql_write_consistency(struct cql_buf *b, uint16_t consistency)
{
    cql_write_short(b, consistency);
}

void cql_write_string_map(struct cql_buf *b, const struct cql_str *keys, const struct cql_str *vals,
                          size_t n)
{
    if (n > UINT16_MAX) {
        cql_buf_fail(b, CQL_E_INVALID);
        return;
    }
    cql_write_short(b, (uint16_t)n);
    for (size_t i = 0; i < n; i++) {
        cql_write_string(b, keys[i].ptr, keys[i].len);
        cql_write_string(b, vals[i].ptr, vals[i].len);
    }
}

void cql_write_string_multimap(struct cql_buf *b, const struct cql_str *keys,
                               const struct cql_str *const *vals, const size_t *n_vals, size_t n)
{
    if (n > UINT16_MAX) {
        cql_buf_fail(b, CQL_E_INVALID);
        return;
    }
    cql_write_short(b, (uint16_t)n);
    for (size_t i = 0; i < n; i++) {
        cql_write_string(b, keys[i].ptr, keys[i].len);
        cql_write_string_list(b, vals[i], n_vals[i]);
    }
}

void cql_write_bytes_map(struct cql_buf *b, const struct cql_str *keys,
                         const struct cql_value *vals, size_t n)
{
    if (n > UINT16_MAX) {
        cql_buf_fail(b, CQL_E_INVALID);
        return;
    }
    cql_write_short(b, (uint16_t)n);
    for (size_t i = 0; i < n; i++) {
        cql_write_string(b, keys[i].ptr, keys[i].len);
        cql_write_bytes(b, vals[i].ptr, vals[i].len);
    }
}
