/* cql_types.c — CQL type options (parse, validate cells against them, print
 * them) and typed cell encoders/decoders (native_protocol_v4.spec 4.2.5.2
 * for the [option] layout, section 6 for each type's serialization). */
#include "cql/cql_types.h"

#include <stdio.h>
#include <stdlib.h>

#include "cql/cql_be.h"
#include "cql/cql_error.h"

const char *cql_type_name(uint16_t id)
{
    switch (id) {
    case CQL_TYPE_CUSTOM:
        return "custom";
    case CQL_TYPE_ASCII:
        return "ascii";
    case CQL_TYPE_BIGINT:
        return "bigint";
    case CQL_TYPE_BLOB:
        return "blob";
    case CQL_TYPE_BOOLEAN:
        return "boolean";
    case CQL_TYPE_COUNTER:
        return "counter";
    case CQL_TYPE_DECIMAL:
        return "decimal";
    case CQL_TYPE_DOUBLE:
        return "double";
    case CQL_TYPE_FLOAT:
        return "float";
    case CQL_TYPE_INT:
        return "int";
    case CQL_TYPE_TIMESTAMP:
        return "timestamp";
    case CQL_TYPE_UUID:
        return "uuid";
    case CQL_TYPE_VARCHAR:
        return "varchar";
    case CQL_TYPE_VARINT:
        return "varint";
    case CQL_TYPE_TIMEUUID:
        return "timeuuid";
    case CQL_TYPE_INET:
        return "inet";
    case CQL_TYPE_DATE:
        return "date";
    case CQL_TYPE_TIME:
        return "time";
    case CQL_TYPE_SMALLINT:
        return "smallint";
    case CQL_TYPE_TINYINT:
        return "tinyint";
    case CQL_TYPE_DURATION:
        return "duration";
    case CQL_TYPE_LIST:
        return "list";
    case CQL_TYPE_MAP:
        return "map";
    case CQL_TYPE_SET:
        return "set";
    case CQL_TYPE_UDT:
        return "udt";
    case CQL_TYPE_TUPLE:
        return "tuple";
    default:
        return "unknown";
    }
}

static bool is_scalar(uint16_t id)
{
    return (id >= CQL_TYPE_ASCII && id <= CQL_TYPE_DURATION && id != 0x000A);
}

/* ---- parsing [option]s: pass 1 validates and counts ----------------------- */

static int scan_option(struct cql_reader *r, int depth, size_t *n_nodes);

static int scan_children(struct cql_reader *r, int depth, size_t *n_nodes, uint32_t n, bool named)
{
    struct cql_str name;
    for (uint32_t i = 0; i < n; i++) {
        int rc = named ? cql_read_string(r, &name) : CQL_OK;
        if (rc == CQL_OK)
            rc = scan_option(r, depth, n_nodes);
        if (rc)
            return rc;
    }
    return CQL_OK;
}

static int scan_option(struct cql_reader *r, int depth, size_t *n_nodes)
{
    if (depth > CQL_TYPE_MAX_DEPTH)
        return CQL_E_DEPTH;
    uint16_t id, n;
    struct cql_str s;
    int rc = cql_read_short(r, &id);
    if (rc)
        return rc;
    (*n_nodes)++;
    if (is_scalar(id))
        return CQL_OK;
    switch (id) {
    case CQL_TYPE_CUSTOM:
        return cql_read_string(r, &s);
    case CQL_TYPE_LIST:
    case CQL_TYPE_SET:
        return scan_children(r, depth + 1, n_nodes, 1, false);
    case CQL_TYPE_MAP:
        return scan_children(r, depth + 1, n_nodes, 2, false);
    case CQL_TYPE_UDT:
        if ((rc = cql_read_string(r, &s)) || (rc = cql_read_string(r, &s)) ||
            (rc = cql_read_short(r, &n)))
            return rc;
        return scan_children(r, depth + 1, n_nodes, n, true);
    case CQL_TYPE_TUPLE:
        if ((rc = cql_read_short(r, &n)))
            return rc;
        return scan_children(r, depth + 1, n_nodes, n, false);
    default:
        return CQL_E_UNSUPPORTED;
    }
}

int cql_type_scan(struct cql_reader *r, size_t *n_nodes)
{
    size_t start = r->pos, counted = 0;
    int rc = scan_option(r, 1, &counted);
    if (rc) {
        r->pos = start;
        return rc;
    }
    *n_nodes += counted;
    return CQL_OK;
}

/* ---- pass 2 fills nodes --------------------------------------------------- */

static int build_option(struct cql_reader *r, struct cql_type *node, struct cql_type *pool,
                        size_t pool_len, size_t *used);

static int build_children(struct cql_reader *r, struct cql_type *node, struct cql_type *pool,
                          size_t pool_len, size_t *used, uint16_t n, bool named)
{
    if (n == 0)
        return CQL_OK;
    if (pool_len - *used < n)
        return CQL_E_INVALID; /* pool smaller than cql_type_scan counted */
    struct cql_type *kids = pool + *used;
    *used += n;
    node->children = kids;
    node->n_children = n;
    for (uint16_t i = 0; i < n; i++) {
        struct cql_str name = {0};
        int rc = named ? cql_read_string(r, &name) : CQL_OK;
        if (rc == CQL_OK)
            rc = build_option(r, &kids[i], pool, pool_len, used);
        if (rc)
            return rc;
        kids[i].field_name = name;
    }
    return CQL_OK;
}

static int build_option(struct cql_reader *r, struct cql_type *node, struct cql_type *pool,
                        size_t pool_len, size_t *used)
{
    *node = (struct cql_type){0};
    uint16_t n;
    int rc = cql_read_short(r, &node->id);
    if (rc || is_scalar(node->id))
        return rc;
    switch (node->id) {
    case CQL_TYPE_CUSTOM:
        return cql_read_string(r, &node->custom_class);
    case CQL_TYPE_LIST:
    case CQL_TYPE_SET:
        return build_children(r, node, pool, pool_len, used, 1, false);
    case CQL_TYPE_MAP:
        return build_children(r, node, pool, pool_len, used, 2, false);
    case CQL_TYPE_UDT:
        if ((rc = cql_read_string(r, &node->keyspace)) ||
            (rc = cql_read_string(r, &node->udt_name)) || (rc = cql_read_short(r, &n)))
            return rc;
        return build_children(r, node, pool, pool_len, used, n, true);
    case CQL_TYPE_TUPLE:
        if ((rc = cql_read_short(r, &n)))
            return rc;
        return build_children(r, node, pool, pool_len, used, n, false);
    default:
        return CQL_E_UNSUPPORTED;
    }
}

int cql_type_build(struct cql_reader *r, struct cql_type *node, struct cql_type *pool,
                   size_t pool_len, size_t *used)
{
    size_t start = r->pos;
    int rc = build_option(r, node, pool, pool_len, used);
    if (rc)
        r->pos = start;
    return rc;
}

int cql_type_parse(struct cql_reader *r, struct cql_type **out)
{
    *out = NULL;
    size_t start = r->pos, n_nodes = 0, used = 1;
    int rc = cql_type_scan(r, &n_nodes);
    if (rc)
        return rc;
    struct cql_type *nodes = calloc(n_nodes, sizeof *nodes);
    if (!nodes) {
        r->pos = start;
        return CQL_E_NOMEM;
    }
    r->pos = start;
    rc = cql_type_build(r, &nodes[0], nodes, n_nodes, &used);
    if (rc) {
        free(nodes);
        return rc;
    }
    *out = nodes;
    return CQL_OK;
}

void cql_type_free(struct cql_type *t)
{
    free(t);
}

/* ---- printing ------------------------------------------------------------ */

struct text_out {
    char *out;
    size_t cap, len;
};

static void put_text(struct text_out *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++, o->len++)
        if (o->len + 1 < o->cap)
            o->out[o->len] = s[i];
}

static void put_cstr(struct text_out *o, const char *s)
{
    put_text(o, s, strlen(s));
}

static void format_type(struct text_out *o, const struct cql_type *t, int depth)
{
    if (depth > CQL_TYPE_MAX_DEPTH) {
        put_cstr(o, "...");
        return;
    }
    if (t->id == CQL_TYPE_CUSTOM) {
        put_cstr(o, "'");
        put_text(o, t->custom_class.ptr, t->custom_class.len);
        put_cstr(o, "'");
        return;
    }
    if (t->id == CQL_TYPE_UDT) {
        put_text(o, t->keyspace.ptr, t->keyspace.len);
        put_cstr(o, ".");
        put_text(o, t->udt_name.ptr, t->udt_name.len);
        return;
    }
    put_cstr(o, cql_type_name(t->id));
    if (t->n_children == 0)
        return;
    put_cstr(o, "<");
    for (uint16_t i = 0; i < t->n_children; i++) {
        if (i)
            put_cstr(o, ", ");
        format_type(o, &t->children[i], depth + 1);
    }
    put_cstr(o, ">");
}

size_t cql_type_format(const struct cql_type *t, char *out, size_t cap)
{
    struct text_out o = {out, cap, 0};
    format_type(&o, t, 1);
    if (cap > 0)
        out[o.len < cap ? o.len : cap - 1] = '\0';
    return o.len;
}

/* ---- validating cells ------------------------------------------------------ */

/* Fixed serialized size of a scalar type, 0 if variable. */
static size_t fixed_size(uint16_t id)
{
    switch (id) {
    case CQL_TYPE_BOOLEAN:
    case CQL_TYPE_TINYINT:
        return 1;
    case CQL_TYPE_SMALLINT:
        return 2;
    case CQL_TYPE_INT:
    case CQL_TYPE_FLOAT:
    case CQL_TYPE_DATE:
        return 4;
    case CQL_TYPE_BIGINT:
    case CQL_TYPE_COUNTER:
    case CQL_TYPE_DOUBLE:
    case CQL_TYPE_TIMESTAMP:
    case CQL_TYPE_TIME:
        return 8;
    case CQL_TYPE_UUID:
    case CQL_TYPE_TIMEUUID:
        return 16;
    default:
        return 0;
    }
}

/* Cassandra's unsigned vint: the count of leading 1 bits of the first byte
 * is the number of extra bytes that follow. */
static int skip_vint(struct cql_reader *r)
{
    uint8_t first;
    struct cql_slice rest;
    if (cql_read_byte(r, &first))
        return CQL_E_TYPE;
    size_t extra = 0;
    while (extra < 8 && (first & (0x80u >> extra)))
        extra++;
    return cql_read_raw(r, extra, &rest) ? CQL_E_TYPE : CQL_OK;
}

static int validate_duration(struct cql_value v)
{
    struct cql_reader r = cql_reader_make(v.ptr, (size_t)v.len);
    for (int i = 0; i < 3; i++)
        if (skip_vint(&r))
            return CQL_E_TYPE;
    return cql_reader_left(&r) == 0 ? CQL_OK : CQL_E_TYPE;
}

static int validate_scalar(uint16_t id, struct cql_value v)
{
    size_t len = (size_t)v.len, want = fixed_size(id);
    if (want)
        return len == want ? CQL_OK : CQL_E_TYPE;
    switch (id) {
    case CQL_TYPE_ASCII:
        for (size_t i = 0; i < len; i++)
            if (v.ptr[i] > 0x7F)
                return CQL_E_TYPE;
        return CQL_OK;
    case CQL_TYPE_INET:
        return len == 4 || len == 16 ? CQL_OK : CQL_E_TYPE;
    case CQL_TYPE_DECIMAL:
        return len >= 4 ? CQL_OK : CQL_E_TYPE; /* [int] scale + varint */
    case CQL_TYPE_DURATION:
        return validate_duration(v);
    default: /* varchar, blob, varint, custom: any bytes */
        return CQL_OK;
    }
}

static int validate_time(struct cql_value v)
{
    int64_t ns = (int64_t)cql_load64(v.ptr);
    return ns >= 0 && ns <= INT64_C(86399999999999) ? CQL_OK : CQL_E_TYPE;
}

/* list, set, map: [int] n then n (or 2n) [bytes] elements, nothing after. */
static int validate_collection(const struct cql_type *t, struct cql_value v)
{
    struct cql_reader r = cql_reader_make(v.ptr, (size_t)v.len);
    int32_t n;
    if (cql_read_int(&r, &n) || n < 0)
        return CQL_E_TYPE;
    uint32_t per = t->id == CQL_TYPE_MAP ? 2 : 1;
    if (t->n_children != per)
        return CQL_E_TYPE;
    if ((uint64_t)n * per * 4 > cql_reader_left(&r))
        return CQL_E_TYPE;
    for (uint64_t i = 0; i < (uint64_t)n * per; i++) {
        struct cql_value elem;
        if (cql_read_bytes(&r, &elem))
            return CQL_E_TYPE;
        int rc = cql_value_validate(&t->children[i % per], elem);
        if (rc)
            return rc;
    }
    return cql_reader_left(&r) == 0 ? CQL_OK : CQL_E_TYPE;
}

/* UDT and tuple: one [bytes] per field in order, possibly fewer (spec 7). */
static int validate_fields(const struct cql_type *t, struct cql_value v)
{
    struct cql_reader r = cql_reader_make(v.ptr, (size_t)v.len);
    for (uint16_t i = 0; i < t->n_children && cql_reader_left(&r) > 0; i++) {
        struct cql_value field;
        if (cql_read_bytes(&r, &field))
            return CQL_E_TYPE;
        int rc = cql_value_validate(&t->children[i], field);
        if (rc)
            return rc;
    }
    return cql_reader_left(&r) == 0 ? CQL_OK : CQL_E_TYPE;
}

int cql_value_validate(const struct cql_type *t, struct cql_value v)
{
    if (v.len <= 0) /* null, not set, or the legacy "empty" value */
        return CQL_OK;
    switch (t->id) {
    case CQL_TYPE_LIST:
    case CQL_TYPE_SET:
    case CQL_TYPE_MAP:
        return validate_collection(t, v);
    case CQL_TYPE_UDT:
    case CQL_TYPE_TUPLE:
        return validate_fields(t, v);
    case CQL_TYPE_CUSTOM:
        return CQL_OK;
    default: {
        int rc = validate_scalar(t->id, v);
        if (rc == CQL_OK && t->id == CQL_TYPE_TIME)
            rc = validate_time(v);
        return rc;
    }
    }
}

/* ---- decoding cells --------------------------------------------------------- */

/* The bytes of a fixed-size cell, or why there are none. */
static int fixed_cell(struct cql_value v, size_t size, const uint8_t **p)
{
    if (v.len < 0 || v.len == 0)
        return CQL_E_NULL;
    if ((size_t)v.len != size)
        return CQL_E_TYPE;
    *p = v.ptr;
    return CQL_OK;
}

int cql_decode_int(struct cql_value v, int32_t *out)
{
    const uint8_t *p;
    int rc = fixed_cell(v, 4, &p);
    if (rc == CQL_OK)
        *out = (int32_t)cql_load32(p);
    return rc;
}

int cql_decode_bigint(struct cql_value v, int64_t *out)
{
    const uint8_t *p;
    int rc = fixed_cell(v, 8, &p);
    if (rc == CQL_OK)
        *out = (int64_t)cql_load64(p);
    return rc;
}

int cql_decode_smallint(struct cql_value v, int16_t *out)
{
    const uint8_t *p;
    int rc = fixed_cell(v, 2, &p);
    if (rc == CQL_OK)
        *out = (int16_t)cql_load16(p);
    return rc;
}

int cql_decode_tinyint(struct cql_value v, int8_t *out)
{
    const uint8_t *p;
    int rc = fixed_cell(v, 1, &p);
    if (rc == CQL_OK)
        *out = (int8_t)p[0];
    return rc;
}

int cql_decode_double(struct cql_value v, double *out)
{
    const uint8_t *p;
    int rc = fixed_cell(v, 8, &p);
    if (rc == CQL_OK) {
        uint64_t bits = cql_load64(p);
        memcpy(out, &bits, sizeof *out);
    }
    return rc;
}

int cql_decode_float(struct cql_value v, float *out)
{
    const uint8_t *p;
    int rc = fixed_cell(v, 4, &p);
    if (rc == CQL_OK) {
        uint32_t bits = cql_load32(p);
        memcpy(out, &bits, sizeof *out);
    }
    return rc;
}

int cql_decode_boolean(struct cql_value v, bool *out)
{
    const uint8_t *p;
    int rc = fixed_cell(v, 1, &p);
    if (rc == CQL_OK)
        *out = p[0] != 0; /* spec 6.4: any non-zero byte is true */
    return rc;
}

int cql_decode_uuid(struct cql_value v, uint8_t out[16])
{
    const uint8_t *p;
    int rc = fixed_cell(v, 16, &p);
    if (rc == CQL_OK)
        memcpy(out, p, 16);
    return rc;
}

int cql_decode_text(struct cql_value v, struct cql_str *out)
{
    if (v.len < 0)
        return CQL_E_NULL;
    *out = (struct cql_str){(const char *)v.ptr, (size_t)v.len};
    return CQL_OK;
}

int cql_decode_blob(struct cql_value v, struct cql_slice *out)
{
    if (v.len < 0)
        return CQL_E_NULL;
    *out = (struct cql_slice){v.ptr, (size_t)v.len};
    return CQL_OK;
}

/* ---- collections ------------------------------------------------------------ */

static int open_elements(struct cql_value v, uint32_t per, struct cql_coll_iter *it, int32_t *count)
{
    if (v.len <= 0)
        return CQL_E_NULL;
    struct cql_reader r = cql_reader_make(v.ptr, (size_t)v.len);
    int32_t n;
    if (cql_read_int(&r, &n) || n < 0)
        return CQL_E_TYPE;
    if ((uint64_t)n * per * 4 > cql_reader_left(&r))
        return CQL_E_TYPE;
    struct cql_reader walk = r;
    for (uint64_t i = 0; i < (uint64_t)n * per; i++) {
        struct cql_value elem;
        if (cql_read_bytes(&walk, &elem))
            return CQL_E_TYPE;
    }
    if (cql_reader_left(&walk) != 0)
        return CQL_E_TYPE;
    it->r = r;
    it->left = (uint32_t)n * per;
    *count = n;
    return CQL_OK;
}

int cql_coll_open(struct cql_value v, struct cql_coll_iter *it, int32_t *count)
{
    return open_elements(v, 1, it, count);
}

int cql_map_open(struct cql_value v, struct cql_coll_iter *it, int32_t *count)
{
    return open_elements(v, 2, it, count);
}

bool cql_coll_next(struct cql_coll_iter *it, struct cql_value *elem)
{
    if (it->left == 0 || cql_read_bytes(&it->r, elem))
        return false;
    it->left--;
    return true;
}

bool cql_map_next(struct cql_coll_iter *it, struct cql_value *key, struct cql_value *val)
{
    return it->left >= 2 && cql_coll_next(it, key) && cql_coll_next(it, val);
}

/* One element into slot i of an array whose C type follows elem_type. */
static int decode_elem(uint16_t elem_type, struct cql_value v, void *out, size_t i)
{
    if (v.len < 0)
        return CQL_E_NULL;
    switch (elem_type) {
    case CQL_TYPE_INT:
        return cql_decode_int(v, (int32_t *)out + i);
    case CQL_TYPE_BIGINT:
    case CQL_TYPE_COUNTER:
    case CQL_TYPE_TIMESTAMP:
    case CQL_TYPE_TIME:
        return cql_decode_bigint(v, (int64_t *)out + i);
    case CQL_TYPE_SMALLINT:
        return cql_decode_smallint(v, (int16_t *)out + i);
    case CQL_TYPE_TINYINT:
        return cql_decode_tinyint(v, (int8_t *)out + i);
    case CQL_TYPE_DOUBLE:
        return cql_decode_double(v, (double *)out + i);
    case CQL_TYPE_FLOAT:
        return cql_decode_float(v, (float *)out + i);
    case CQL_TYPE_BOOLEAN:
        return cql_decode_boolean(v, (bool *)out + i);
    case CQL_TYPE_ASCII:
    case CQL_TYPE_VARCHAR:
        return cql_decode_text(v, (struct cql_str *)out + i);
    case CQL_TYPE_BLOB:
        return cql_decode_blob(v, (struct cql_slice *)out + i);
    case CQL_TYPE_UUID:
    case CQL_TYPE_TIMEUUID:
        return cql_decode_uuid(v, (uint8_t *)out + 16 * i);
    default:
        return CQL_E_UNSUPPORTED;
    }
}

int cql_decode_list(struct cql_value v, uint16_t elem_type, void *out, size_t cap, size_t *n)
{
    struct cql_coll_iter it;
    int32_t count;
    int rc = cql_coll_open(v, &it, &count);
    if (rc)
        return rc;
    *n = (size_t)count;
    if ((size_t)count > cap)
        return CQL_E_TOO_LARGE;
    struct cql_value elem;
    for (size_t i = 0; cql_coll_next(&it, &elem); i++)
        if ((rc = decode_elem(elem_type, elem, out, i)))
            return rc;
    return CQL_OK;
}

int cql_decode_map_text(struct cql_value v, struct cql_str *keys, struct cql_str *vals, size_t cap,
                        size_t *n)
{
    struct cql_coll_iter it;
    int32_t count;
    int rc = cql_map_open(v, &it, &count);
    if (rc)
        return rc;
    *n = (size_t)count;
    if ((size_t)count > cap)
        return CQL_E_TOO_LARGE;
    struct cql_value k, val;
    for (size_t i = 0; cql_map_next(&it, &k, &val); i++)
        if ((rc = decode_elem(CQL_TYPE_VARCHAR, k, keys, i)) ||
            (rc = decode_elem(CQL_TYPE_VARCHAR, val, vals, i)))
            return rc;
    return CQL_OK;
}

/* ---- encoding cells --------------------------------------------------------- */

void cql_encode_null(struct cql_buf *b)
{
    cql_write_int(b, CQL_VALUE_NULL);
}

void cql_encode_unset(struct cql_buf *b)
{
    cql_write_int(b, CQL_VALUE_NOT_SET);
}

void cql_encode_int(struct cql_buf *b, int32_t v)
{
    cql_write_int(b, 4);
    cql_write_int(b, v);
}

void cql_encode_bigint(struct cql_buf *b, int64_t v)
{
    cql_write_int(b, 8);
    cql_write_long(b, v);
}

void cql_encode_smallint(struct cql_buf *b, int16_t v)
{
    cql_write_int(b, 2);
    cql_write_short(b, (uint16_t)v);
}

void cql_encode_tinyint(struct cql_buf *b, int8_t v)
{
    cql_write_int(b, 1);
    cql_write_byte(b, (uint8_t)v);
}

void cql_encode_double(struct cql_buf *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    cql_write_int(b, 8);
    cql_write_long(b, (int64_t)bits);
}

void cql_encode_float(struct cql_buf *b, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    cql_write_int(b, 4);
    cql_write_int(b, (int32_t)bits);
}

void cql_encode_boolean(struct cql_buf *b, bool v)
{
    cql_write_int(b, 1);
    cql_write_byte(b, v ? 1 : 0);
}

void cql_encode_text(struct cql_buf *b, const char *s, size_t n)
{
    cql_encode_blob(b, s, n);
}

void cql_encode_blob(struct cql_buf *b, const void *p, size_t n)
{
    if (n > INT32_MAX) {
        cql_buf_fail(b, CQL_E_INVALID);
        return;
    }
    if (n == 0) { /* an empty value, not null: p may be NULL here */
        cql_write_int(b, 0);
        return;
    }
    cql_write_bytes(b, p, (int32_t)n);
}

void cql_encode_uuid(struct cql_buf *b, const uint8_t uuid[16])
{
    cql_write_int(b, 16);
    cql_write_uuid(b, uuid);
}

size_t cql_encode_coll_begin(struct cql_buf *b)
{
    size_t mark = b->len;
    cql_write_int(b, 0); /* cell length, patched by end */
    cql_write_int(b, 0); /* element count, patched by end */
    return mark;
}

void cql_encode_coll_end(struct cql_buf *b, size_t mark, int32_t count)
{
    if (b->err)
        return;
    if (mark > b->len || b->len - mark < 8 || b->len - mark - 4 > INT32_MAX || count < 0) {
        cql_buf_fail(b, CQL_E_INVALID);
        return;
    }
    cql_buf_patch_int(b, mark, (int32_t)(b->len - mark - 4));
    cql_buf_patch_int(b, mark + 4, count);
}

static void encode_elem(struct cql_buf *b, uint16_t elem_type, const void *items, size_t i)
{
    switch (elem_type) {
    case CQL_TYPE_INT:
        cql_encode_int(b, ((const int32_t *)items)[i]);
        break;
    case CQL_TYPE_BIGINT:
    case CQL_TYPE_COUNTER:
    case CQL_TYPE_TIMESTAMP:
    case CQL_TYPE_TIME:
        cql_encode_bigint(b, ((const int64_t *)items)[i]);
        break;
    case CQL_TYPE_SMALLINT:
        cql_encode_smallint(b, ((const int16_t *)items)[i]);
        break;
    case CQL_TYPE_TINYINT:
        cql_encode_tinyint(b, ((const int8_t *)items)[i]);
        break;
    case CQL_TYPE_DOUBLE:
        cql_encode_double(b, ((const double *)items)[i]);
        break;
    case CQL_TYPE_FLOAT:
        cql_encode_float(b, ((const float *)items)[i]);
        break;
    case CQL_TYPE_BOOLEAN:
        cql_encode_boolean(b, ((const bool *)items)[i]);
        break;
    case CQL_TYPE_ASCII:
    case CQL_TYPE_VARCHAR: {
        const struct cql_str *s = (const struct cql_str *)items + i;
        cql_encode_text(b, s->ptr, s->len);
        break;
    }
    case CQL_TYPE_BLOB: {
        const struct cql_slice *s = (const struct cql_slice *)items + i;
        cql_encode_blob(b, s->ptr, s->len);
        break;
    }
    case CQL_TYPE_UUID:
    case CQL_TYPE_TIMEUUID:
        cql_encode_uuid(b, (const uint8_t *)items + 16 * i);
        break;
    default:
        cql_buf_fail(b, CQL_E_UNSUPPORTED);
    }
}

void cql_encode_list(struct cql_buf *b, uint16_t elem_type, const void *items, size_t n)
{
    if (n > INT32_MAX) {
        cql_buf_fail(b, CQL_E_INVALID);
        return;
    }
    size_t mark = cql_encode_coll_begin(b);
    for (size_t i = 0; i < n; i++)
        encode_elem(b, elem_type, items, i);
    cql_encode_coll_end(b, mark, (int32_t)n);
}

void cql_encode_map_text(struct cql_buf *b, const struct cql_str *keys, const struct cql_str *vals,
                         size_t n)
{
    if (n > INT32_MAX) {
        cql_buf_fail(b, CQL_E_INVALID);
        return;
    }
    size_t mark = cql_encode_coll_begin(b);
    for (size_t i = 0; i < n; i++) {
        cql_encode_text(b, keys[i].ptr, keys[i].len);
        cql_encode_text(b, vals[i].ptr, vals[i].len);
    }
    cql_encode_coll_end(b, mark, (int32_t)n);
}
