/* cql_buf.h — the native protocol's notations ([int], [string], [bytes], …):
 * a growable writer (struct cql_buf) and a bounds-checked reader.
 * Ownership: a cql_buf owns its heap block; whatever a reader hands out points
 * INTO its input (borrowed, never NUL-terminated).
 * Threading: no global state; a buf or reader belongs to one thread at a time. */
#ifndef CQL_BUF_H
#define CQL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cql/cql_error.h"

/* A [string] or [long string]: UTF-8 bytes, not NUL-terminated. */
struct cql_str {
    const char *ptr;
    size_t len;
};

/* Raw bytes: a [short bytes], a [uuid], a region of a frame. */
struct cql_slice {
    const uint8_t *ptr;
    size_t len;
};

/* A [bytes] or [value]: len >= 0 bytes at ptr, or one of the two markers
 * below (ptr is then NULL). A [bytes] with any negative length reads as
 * CQL_VALUE_NULL, as the spec says; only a [value] may be NOT_SET. */
struct cql_value {
    const uint8_t *ptr;
    int32_t len;
};
#define CQL_VALUE_NULL (-1)
#define CQL_VALUE_NOT_SET (-2)

/* An [inet] (addr_len 4 or 16, port) or an [inetaddr] (port 0). */
struct cql_inet {
    uint8_t addr_len;
    uint8_t addr[16];
    int32_t port;
};

enum cql_consistency {
    CQL_CONSISTENCY_ANY = 0x0000,
    CQL_CONSISTENCY_ONE = 0x0001,
    CQL_CONSISTENCY_TWO = 0x0002,
    CQL_CONSISTENCY_THREE = 0x0003,
    CQL_CONSISTENCY_QUORUM = 0x0004,
    CQL_CONSISTENCY_ALL = 0x0005,
    CQL_CONSISTENCY_LOCAL_QUORUM = 0x0006,
    CQL_CONSISTENCY_EACH_QUORUM = 0x0007,
    CQL_CONSISTENCY_SERIAL = 0x0008,
    CQL_CONSISTENCY_LOCAL_SERIAL = 0x0009,
    CQL_CONSISTENCY_LOCAL_ONE = 0x000A,
};

/* "QUORUM", …; "UNKNOWN" for values outside the table. */
const char *cql_consistency_name(uint16_t consistency);

/* Validated, still-encoded sequences read from a frame: `raw` covers the
 * entries after the [short] count; iterate them with cql_iter below. The
 * reader checked every entry, so iteration cannot fail. */
struct cql_str_list {
    struct cql_slice raw;
    uint16_t count;
}; /* [string list] */
struct cql_str_map {
    struct cql_slice raw;
    uint16_t count;
}; /* [string map] */
struct cql_multimap {
    struct cql_slice raw;
    uint16_t count;
}; /* [string multimap] */
struct cql_bytes_map {
    struct cql_slice raw;
    uint16_t count;
}; /* [bytes map] */

static inline struct cql_str cql_str_c(const char *s)
{
    return (struct cql_str){s, s ? strlen(s) : 0};
}

static inline bool cql_str_eq(struct cql_str a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && (n == 0 || memcmp(a.ptr, s, n) == 0);
}

/* ---- reader --------------------------------------------------------------
 * A read either succeeds and advances, or fails with a negative cql_err and
 * leaves the position where it was. It never reads past the end. */

struct cql_reader {
    const uint8_t *ptr;
    size_t len;
    size_t pos;
};

static inline struct cql_reader cql_reader_make(const uint8_t *ptr, size_t len)
{
    return (struct cql_reader){ptr, len, 0};
}

static inline size_t cql_reader_left(const struct cql_reader *r)
{
    return r->len - r->pos;
}

int cql_read_byte(struct cql_reader *r, uint8_t *out);
int cql_read_short(struct cql_reader *r, uint16_t *out);
int cql_read_int(struct cql_reader *r, int32_t *out);
int cql_read_long(struct cql_reader *r, int64_t *out);
/* n raw bytes, borrowed. */
int cql_read_raw(struct cql_reader *r, size_t n, struct cql_slice *out);
int cql_read_string(struct cql_reader *r, struct cql_str *out);
/* Negative lengths are CQL_E_PROTOCOL. */
int cql_read_long_string(struct cql_reader *r, struct cql_str *out);
int cql_read_uuid(struct cql_reader *r, uint8_t out[16]);
int cql_read_string_list(struct cql_reader *r, struct cql_str_list *out);
/* Any negative length is null (spec: "If n < 0 … null"). */
int cql_read_bytes(struct cql_reader *r, struct cql_value *out);
/* -1 null, -2 not set, below -2 CQL_E_PROTOCOL. */
int cql_read_value(struct cql_reader *r, struct cql_value *out);
int cql_read_short_bytes(struct cql_reader *r, struct cql_slice *out);
/* Address size other than 4 or 16 is CQL_E_PROTOCOL. */
int cql_read_inet(struct cql_reader *r, struct cql_inet *out);
int cql_read_inetaddr(struct cql_reader *r, struct cql_inet *out);
int cql_read_consistency(struct cql_reader *r, uint16_t *out);
int cql_read_string_map(struct cql_reader *r, struct cql_str_map *out);
int cql_read_string_multimap(struct cql_reader *r, struct cql_multimap *out);
int cql_read_bytes_map(struct cql_reader *r, struct cql_bytes_map *out);

/* ---- iterating validated sequences ------------------------------------- */

struct cql_iter {
    struct cql_reader r;
    uint32_t left;
};

struct cql_iter cql_str_list_iter(const struct cql_str_list *l);
struct cql_iter cql_str_map_iter(const struct cql_str_map *m);
struct cql_iter cql_multimap_iter(const struct cql_multimap *m);
struct cql_iter cql_bytes_map_iter(const struct cql_bytes_map *m);
/* Each returns false at the end. */
bool cql_str_list_next(struct cql_iter *it, struct cql_str *out);
bool cql_str_map_next(struct cql_iter *it, struct cql_str *key, struct cql_str *val);
bool cql_multimap_next(struct cql_iter *it, struct cql_str *key, struct cql_str_list *vals);
bool cql_bytes_map_next(struct cql_iter *it, struct cql_str *key, struct cql_value *val);
/* The values of `key`, or false if absent. */
bool cql_multimap_get(const struct cql_multimap *m, const char *key, struct cql_str_list *vals);

/* ---- writer --------------------------------------------------------------
 * Appends do not return errors: the first failure (NOMEM, INVALID) sticks in
 * b->err, later appends are ignored, and whoever finishes the message
 * (cql_frame_end) reports it and rolls the buffer back. */

struct cql_buf {
    uint8_t *data;
    size_t len, cap;
    int err; /* first failure, sticky until cql_buf_reset / cql_buf_truncate */
};

/* A zeroed struct cql_buf is an empty buffer; freeing it (or NULL) is a no-op. */
void cql_buf_free(struct cql_buf *b);
/* Empties the buffer and clears err, keeping its memory. */
void cql_buf_reset(struct cql_buf *b);
/* Rolls back to an earlier length and clears err: how a failed message
 * leaves the buffer as it was before it began. */
void cql_buf_truncate(struct cql_buf *b, size_t len);
/* Ensures room for `extra` more bytes; CQL_E_NOMEM sets err. */
int cql_buf_reserve(struct cql_buf *b, size_t extra);
static inline int cql_buf_error(const struct cql_buf *b)
{
    return b->err;
}
/* Records a failure (the first one wins). */
void cql_buf_fail(struct cql_buf *b, int err);
/* Overwrites an [int] already written at `offset` (lengths, counts). */
void cql_buf_patch_int(struct cql_buf *b, size_t offset, int32_t v);

void cql_write_raw(struct cql_buf *b, const void *p, size_t n);
void cql_write_byte(struct cql_buf *b, uint8_t v);
void cql_write_short(struct cql_buf *b, uint16_t v);
void cql_write_int(struct cql_buf *b, int32_t v);
void cql_write_long(struct cql_buf *b, int64_t v);
/* Longer than 65535 bytes: CQL_E_INVALID. */
void cql_write_string(struct cql_buf *b, const char *s, size_t n);
void cql_write_long_string(struct cql_buf *b, const char *s, size_t n);
void cql_write_uuid(struct cql_buf *b, const uint8_t uuid[16]);
void cql_write_string_list(struct cql_buf *b, const struct cql_str *items, size_t n);
/* ptr NULL or len < 0 writes null (-1). */
void cql_write_bytes(struct cql_buf *b, const void *ptr, int32_t len);
/* A [value]: null and not-set are kept; below -2 is CQL_E_INVALID. */
void cql_write_value(struct cql_buf *b, struct cql_value v);
void cql_write_short_bytes(struct cql_buf *b, const void *ptr, size_t n);
void cql_write_inet(struct cql_buf *b, const struct cql_inet *in);
void cql_write_inetaddr(struct cql_buf *b, const struct cql_inet *in);
void cql_write_consistency(struct cql_buf *b, uint16_t consistency);
void cql_write_string_map(struct cql_buf *b, const struct cql_str *keys, const struct cql_str *vals,
                          size_t n);
/* vals[i] holds n_vals[i] strings for keys[i]. */
void cql_write_string_multimap(struct cql_buf *b, const struct cql_str *keys,
                               const struct cql_str *const *vals, const size_t *n_vals, size_t n);
void cql_write_bytes_map(struct cql_buf *b, const struct cql_str *keys,
                         const struct cql_value *vals, size_t n);

#endif
