/* cql_types.h — CQL data types: [option] type trees from metadata (bounded
 * nesting), validation of a cell against its type, typed cell encoders and
 * decoders (native_protocol_v4.spec 4.2.5.2, 6, 7).
 * Ownership: a type tree is one heap block (cql_type_free, or its metadata's);
 * its strings and decoded cells borrow the frame; encoders append to a cql_buf.
 * Threading: no global state. */
#ifndef CQL_TYPES_H
#define CQL_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cql/cql_buf.h"

enum cql_type_id {
    CQL_TYPE_CUSTOM = 0x0000,
    CQL_TYPE_ASCII = 0x0001,
    CQL_TYPE_BIGINT = 0x0002,
    CQL_TYPE_BLOB = 0x0003,
    CQL_TYPE_BOOLEAN = 0x0004,
    CQL_TYPE_COUNTER = 0x0005,
    CQL_TYPE_DECIMAL = 0x0006,
    CQL_TYPE_DOUBLE = 0x0007,
    CQL_TYPE_FLOAT = 0x0008,
    CQL_TYPE_INT = 0x0009,
    CQL_TYPE_TIMESTAMP = 0x000B,
    CQL_TYPE_UUID = 0x000C,
    CQL_TYPE_VARCHAR = 0x000D,
    CQL_TYPE_VARINT = 0x000E,
    CQL_TYPE_TIMEUUID = 0x000F,
    CQL_TYPE_INET = 0x0010,
    CQL_TYPE_DATE = 0x0011,
    CQL_TYPE_TIME = 0x0012,
    CQL_TYPE_SMALLINT = 0x0013,
    CQL_TYPE_TINYINT = 0x0014,
    CQL_TYPE_DURATION = 0x0015, /* v5 id; Cassandra 5 may send it on v4 too */
    CQL_TYPE_LIST = 0x0020,
    CQL_TYPE_MAP = 0x0021,
    CQL_TYPE_SET = 0x0022,
    CQL_TYPE_UDT = 0x0030,
    CQL_TYPE_TUPLE = 0x0031,
};

/* Deepest nesting accepted (a scalar is depth 1, list<int> depth 2, …).
 * Deeper is CQL_E_DEPTH: recursion stays bounded on hostile input. */
#define CQL_TYPE_MAX_DEPTH 16

/* One node of a parsed type. */
struct cql_type {
    uint16_t id;
    uint16_t n_children;               /* list/set 1, map 2, UDT fields, tuple items */
    const struct cql_type *children;   /* n_children nodes, or NULL */
    struct cql_str custom_class;       /* CUSTOM: Java class name */
    struct cql_str keyspace, udt_name; /* UDT */
    struct cql_str field_name;         /* set on each child of a UDT */
};

/* "int", "list", …; "unknown" otherwise. */
const char *cql_type_name(uint16_t id);
/* Writes a CQL-like spelling ("map<varchar, list<int>>") into out, always
 * NUL-terminated when cap > 0; returns the length it needed (snprintf-style). */
size_t cql_type_format(const struct cql_type *t, char *out, size_t cap);

/* Parses one [option] at r into a new tree: *out owns one heap block, free it
 * with cql_type_free. Unknown ids: CQL_E_UNSUPPORTED. */
int cql_type_parse(struct cql_reader *r, struct cql_type **out);
void cql_type_free(struct cql_type *t);

/* The two passes cql_type_parse and the metadata parser are built from:
 * cql_type_scan validates one [option] (ids, depth, bounds), advances r and
 * adds the nodes it needs to *n_nodes; cql_type_build re-reads the same bytes
 * into `node`, taking child nodes from pool[*used .. pool_len). */
int cql_type_scan(struct cql_reader *r, size_t *n_nodes);
int cql_type_build(struct cql_reader *r, struct cql_type *node, struct cql_type *pool,
                   size_t pool_len, size_t *used);

/* Checks a cell against its type: fixed sizes (int 4, bigint 8, uuid 16, …),
 * ascii bytes, collection/UDT/tuple structure all the way down, no trailing
 * bytes. Null is valid; so is an empty (0-byte) scalar, which the spec
 * allows "for legacy compatibility" (section 6). text is not checked for
 * UTF-8. Returns CQL_OK, CQL_E_TYPE or CQL_E_PROTOCOL. */
int cql_value_validate(const struct cql_type *t, struct cql_value v);

/* ---- decoding cells ------------------------------------------------------
 * Each returns CQL_OK, CQL_E_NULL for a null cell or an empty (0-byte) one of
 * a fixed-size type, or CQL_E_TYPE when the size is wrong for the type. */
int cql_decode_int(struct cql_value v, int32_t *out);
int cql_decode_bigint(struct cql_value v, int64_t *out); /* also counter, timestamp, time */
int cql_decode_smallint(struct cql_value v, int16_t *out);
int cql_decode_tinyint(struct cql_value v, int8_t *out);
int cql_decode_double(struct cql_value v, double *out);
int cql_decode_float(struct cql_value v, float *out);
int cql_decode_boolean(struct cql_value v, bool *out);
int cql_decode_uuid(struct cql_value v, uint8_t out[16]); /* also timeuuid */
/* text/varchar/ascii and blob: any length, empty included; borrowed. */
int cql_decode_text(struct cql_value v, struct cql_str *out);
int cql_decode_blob(struct cql_value v, struct cql_slice *out);

static inline int cql_decode_timestamp(struct cql_value v, int64_t *ms_since_epoch)
{
    return cql_decode_bigint(v, ms_since_epoch);
}

static inline int cql_decode_counter(struct cql_value v, int64_t *out)
{
    return cql_decode_bigint(v, out);
}

/* Collections: open checks the whole structure ([int] count >= 0, every
 * element inside the cell, nothing after the last one) so next cannot fail.
 * A list or set has *count elements, a map *count key/value pairs. */
struct cql_coll_iter {
    struct cql_reader r;
    uint32_t left; /* elements (not pairs) still to read */
};
int cql_coll_open(struct cql_value v, struct cql_coll_iter *it, int32_t *count);
int cql_map_open(struct cql_value v, struct cql_coll_iter *it, int32_t *count);
bool cql_coll_next(struct cql_coll_iter *it, struct cql_value *elem);
bool cql_map_next(struct cql_coll_iter *it, struct cql_value *key, struct cql_value *val);

/* A list<T> or set<T> of a scalar T into an array whose C type follows T:
 *   INT int32_t; BIGINT, COUNTER, TIMESTAMP, TIME int64_t; SMALLINT int16_t;
 *   TINYINT int8_t; DOUBLE double; FLOAT float; BOOLEAN bool;
 *   ASCII, VARCHAR struct cql_str; BLOB struct cql_slice;
 *   UUID, TIMEUUID uint8_t[16].
 * *n gets the element count; more than `cap` is CQL_E_TOO_LARGE (nothing
 * written). Null elements are CQL_E_NULL; other T CQL_E_UNSUPPORTED. */
int cql_decode_list(struct cql_value v, uint16_t elem_type, void *out, size_t cap, size_t *n);
/* A map<text, text> into parallel arrays; same rules. */
int cql_decode_map_text(struct cql_value v, struct cql_str *keys, struct cql_str *vals, size_t cap,
                        size_t *n);

/* ---- encoding cells ------------------------------------------------------
 * Each appends one length-prefixed cell to b. The same bytes are a [value]
 * (QUERY, EXECUTE, BATCH: cql_query_params.values is a run of them) and a
 * collection element (v4 uses [int] element lengths). Failures stick in b. */
void cql_encode_null(struct cql_buf *b);
void cql_encode_unset(struct cql_buf *b); /* [value] only: leaves the column as is */
void cql_encode_int(struct cql_buf *b, int32_t v);
void cql_encode_bigint(struct cql_buf *b, int64_t v);
void cql_encode_smallint(struct cql_buf *b, int16_t v);
void cql_encode_tinyint(struct cql_buf *b, int8_t v);
void cql_encode_double(struct cql_buf *b, double v);
void cql_encode_float(struct cql_buf *b, float v);
void cql_encode_boolean(struct cql_buf *b, bool v);
void cql_encode_text(struct cql_buf *b, const char *s, size_t n);
void cql_encode_blob(struct cql_buf *b, const void *p, size_t n);
void cql_encode_uuid(struct cql_buf *b, const uint8_t uuid[16]);

static inline void cql_encode_timestamp(struct cql_buf *b, int64_t ms_since_epoch)
{
    cql_encode_bigint(b, ms_since_epoch);
}

static inline void cql_encode_counter(struct cql_buf *b, int64_t v)
{
    cql_encode_bigint(b, v);
}

/* Any collection by hand: begin writes the cell's length and element count as
 * placeholders and returns a mark; append elements (cql_encode_*), then end
 * patches both. count = elements for list/set, pairs for map. */
size_t cql_encode_coll_begin(struct cql_buf *b);
void cql_encode_coll_end(struct cql_buf *b, size_t mark, int32_t count);
/* A list<T> or set<T> from an array typed as for cql_decode_list. */
void cql_encode_list(struct cql_buf *b, uint16_t elem_type, const void *items, size_t n);
void cql_encode_map_text(struct cql_buf *b, const struct cql_str *keys, const struct cql_str *vals,
                         size_t n);

#endif
