/* Tests of CQL types: [option] parsing of every type id (nested, with the
 * depth limit), cell validation, and typed cell encoding/decoding with
 * byte-exact encodings from native_protocol_v4.spec section 6 and strict
 * length checks. */
#include "unit/cql/cql_test_util.h"

#include <math.h>

#include "cql/cql_types.h"

#define LIT(s) (const uint8_t *)(s), sizeof(s) - 1

static struct cql_value val(const char *lit, size_t len)
{
    return (struct cql_value){(const uint8_t *)lit, (int32_t)len};
}
#define VAL(s) val(s, sizeof(s) - 1)
static const struct cql_value null_cell = {NULL, CQL_VALUE_NULL};

static struct cql_type *parse(const uint8_t *p, size_t n, int expect_rc)
{
    struct cql_reader r = cql_reader_make(p, n);
    struct cql_type *t = NULL;
    assert_int_equal(cql_type_parse(&r, &t), expect_rc);
    if (expect_rc == CQL_OK)
        assert_int_equal(cql_reader_left(&r), 0);
    else
        assert_int_equal(r.pos, 0);
    return t;
}

static void test_parse_every_scalar(void **state)
{
    static const uint16_t ids[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0B,
                                   0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        uint8_t raw[2] = {0, (uint8_t)ids[i]};
        struct cql_type *t = parse(raw, 2, CQL_OK);
        assert_int_equal(t->id, ids[i]);
        assert_int_equal(t->n_children, 0);
        assert_string_not_equal(cql_type_name(t->id), "unknown");
        cql_type_free(t);
    }
    /* 0x000A has no type in v4, nor have 0x0016 or 0x0040. */
    parse(LIT("\x00\x0a"), CQL_E_UNSUPPORTED);
    parse(LIT("\x00\x16"), CQL_E_UNSUPPORTED);
    parse(LIT("\x00\x40"), CQL_E_UNSUPPORTED);
}

static void test_parse_nested(void **state)
{
    /* list<map<varchar, set<frozen tuple<int, ks.pt{x int, y custom}>>>> */
    /* clang-format off */
    static const char raw[] =
        "\x00\x20"                                    /* list< */
        "\x00\x21" "\x00\x0d"                         /* map<varchar, */
        "\x00\x22"                                    /* set< */
        "\x00\x31" "\x00\x02" "\x00\x09"              /* tuple<int, */
        "\x00\x30" "\x00\x02" "ks" "\x00\x02" "pt" "\x00\x02" /* ks.pt */
        "\x00\x01" "x" "\x00\x09"
        "\x00\x01" "y" "\x00\x00" "\x00\x03" "a.B";
    /* clang-format on */
    struct cql_type *t = parse((const uint8_t *)raw, sizeof raw - 1, CQL_OK);
    char text[128];
    size_t n = cql_type_format(t, text, sizeof text);
    assert_string_equal(text, "list<map<varchar, set<tuple<int, ks.pt>>>>");
    assert_int_equal(n, strlen(text));
    const struct cql_type *udt = &t->children[0].children[1].children[0].children[1];
    assert_int_equal(udt->id, CQL_TYPE_UDT);
    assert_str(udt->children[1].field_name, "y");
    assert_str(udt->children[1].custom_class, "a.B");
    /* A small output buffer truncates but reports the full length. */
    char small[8];
    assert_int_equal(cql_type_format(t, small, sizeof small), n);
    assert_string_equal(small, "list<ma");
    cql_type_free(t);

    /* Every prefix of it is an error, and leaves the reader where it was. */
    for (size_t len = 0; len < sizeof raw - 1; len++)
        parse((const uint8_t *)raw, len, CQL_E_TRUNCATED);
}

/* Nesting up to CQL_TYPE_MAX_DEPTH is fine, one more is CQL_E_DEPTH, and a
 * hostile 30,000-deep nesting is refused without deep recursion. */
static void test_depth_limit(void **state)
{
    size_t n_lists = 30000;
    uint8_t *raw = malloc(2 * n_lists + 2);
    assert_non_null(raw);
    for (size_t i = 0; i < n_lists; i++) {
        raw[2 * i] = 0x00;
        raw[2 * i + 1] = 0x20;
    }
    for (size_t depth = 1; depth <= CQL_TYPE_MAX_DEPTH + 1; depth++) {
        size_t lists = depth - 1; /* depth - 1 lists around an int */
        uint8_t *p = raw + 2 * (n_lists - lists);
        p[2 * lists] = 0x00;
        p[2 * lists + 1] = 0x09;
        struct cql_type *t =
            parse(p, 2 * lists + 2, depth <= CQL_TYPE_MAX_DEPTH ? CQL_OK : CQL_E_DEPTH);
        cql_type_free(t);
        p[2 * lists] = 0x00; /* restore the list id the int overwrote */
        p[2 * lists + 1] = 0x20;
    }
    raw[2 * n_lists] = 0x00;
    raw[2 * n_lists + 1] = 0x09;
    parse(raw, 2 * n_lists + 2, CQL_E_DEPTH);
    /* Deep UDT nesting too. */
    /* clang-format off */
    static const char udt_prefix[] = "\x00\x30" "\x00\x01" "k" "\x00\x01" "u" "\x00\x01"
                                     "\x00\x01" "f";
    /* clang-format on */
    size_t step = sizeof udt_prefix - 1;
    uint8_t *deep = malloc(step * 40 + 2);
    assert_non_null(deep);
    for (size_t i = 0; i < 40; i++)
        memcpy(deep + step * i, udt_prefix, step);
    deep[step * 40] = 0x00;
    deep[step * 40 + 1] = 0x09;
    parse(deep, step * 40 + 2, CQL_E_DEPTH);
    free(deep);
    free(raw);
}

/* Wire bytes below are grouped one field per literal by hand; clang-format
 * would put every literal on a line of its own. */
/* clang-format off */
static void test_scalar_encodings(void **state)
{
    struct cql_buf b = {0};
    static const uint8_t uuid[16] = {0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4,
                                     0xa7, 0x16, 0x44, 0x66, 0x55, 0x44, 0x00, 0x00};
    cql_encode_int(&b, 42);
    cql_encode_bigint(&b, -2);
    cql_encode_smallint(&b, -300);
    cql_encode_tinyint(&b, -1);
    cql_encode_double(&b, 1.5);
    cql_encode_float(&b, -2.0f);
    cql_encode_boolean(&b, true);
    cql_encode_text(&b, "hé", 3);
    cql_encode_blob(&b, "", 0);
    cql_encode_uuid(&b, uuid);
    cql_encode_timestamp(&b, INT64_C(1700000000123));
    cql_encode_counter(&b, 7);
    assert_int_equal(cql_buf_error(&b), CQL_OK);
    static const char want[] =
        "\x00\x00\x00\x04" "\x00\x00\x00\x2a"                      /* int 42 */
        "\x00\x00\x00\x08" "\xff\xff\xff\xff\xff\xff\xff\xfe"      /* bigint -2 */
        "\x00\x00\x00\x02" "\xfe\xd4"                              /* smallint -300 */
        "\x00\x00\x00\x01" "\xff"                                  /* tinyint -1 */
        "\x00\x00\x00\x08" "\x3f\xf8\x00\x00\x00\x00\x00\x00"      /* double 1.5 */
        "\x00\x00\x00\x04" "\xc0\x00\x00\x00"                      /* float -2 */
        "\x00\x00\x00\x01" "\x01"                                  /* true */
        "\x00\x00\x00\x03" "h\xc3\xa9"                             /* text, UTF-8 */
        "\x00\x00\x00\x00"                                         /* empty blob, not null */
        "\x00\x00\x00\x10" "\x55\x0e\x84\x00\xe2\x9b\x41\xd4"
        "\xa7\x16\x44\x66\x55\x44\x00\x00"                         /* uuid */
        "\x00\x00\x00\x08" "\x00\x00\x01\x8b\xcf\xe5\x68\x7b"      /* 1700000000123 ms */
        "\x00\x00\x00\x08" "\x00\x00\x00\x00\x00\x00\x00\x07";     /* counter 7 */
    assert_bytes(b.data, b.len, want, sizeof want - 1);

    /* And back. */
    struct cql_reader r = cql_reader_make(b.data, b.len);
    struct cql_value v;
    int32_t i32;
    int64_t i64;
    int16_t i16;
    int8_t i8;
    double d;
    float f;
    bool flag;
    struct cql_str s;
    struct cql_slice blob;
    uint8_t u[16];
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_int(v, &i32), CQL_OK);
    assert_int_equal(i32, 42);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_bigint(v, &i64), CQL_OK);
    assert_true(i64 == -2);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_smallint(v, &i16), CQL_OK);
    assert_int_equal(i16, -300);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_tinyint(v, &i8), CQL_OK);
    assert_int_equal(i8, -1);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_double(v, &d), CQL_OK);
    assert_true(d == 1.5);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_float(v, &f), CQL_OK);
    assert_true(f == -2.0f);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_boolean(v, &flag), CQL_OK);
    assert_true(flag);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_text(v, &s), CQL_OK);
    assert_str(s, "hé");
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_blob(v, &blob), CQL_OK);
    assert_int_equal(blob.len, 0);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_uuid(v, u), CQL_OK);
    assert_bytes(u, 16, uuid, 16);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_timestamp(v, &i64), CQL_OK);
    assert_true(i64 == INT64_C(1700000000123));
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_counter(v, &i64), CQL_OK);
    assert_true(i64 == 7);
    assert_int_equal(cql_reader_left(&r), 0);

    /* Special doubles survive bit for bit. */
    cql_buf_reset(&b);
    cql_encode_double(&b, -0.0);
    cql_encode_double(&b, INFINITY);
    r = cql_reader_make(b.data, b.len);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_double(v, &d), CQL_OK);
    assert_true(d == 0.0 && signbit(d));
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_double(v, &d), CQL_OK);
    assert_true(isinf(d));
    cql_buf_free(&b);
}

/* An int is 4 bytes, not 3 or 5; null and empty are "no value". */
static void test_strict_lengths(void **state)
{
    int32_t i32;
    int64_t i64;
    int16_t i16;
    int8_t i8;
    double d;
    float f;
    bool flag;
    uint8_t u[16];
    struct cql_str s;
    assert_int_equal(cql_decode_int(VAL("\x00\x00\x01"), &i32), CQL_E_TYPE);
    assert_int_equal(cql_decode_int(VAL("\x00\x00\x00\x01\x00"), &i32), CQL_E_TYPE);
    assert_int_equal(cql_decode_int(VAL(""), &i32), CQL_E_NULL);
    assert_int_equal(cql_decode_int(null_cell, &i32), CQL_E_NULL);
    assert_int_equal(cql_decode_bigint(VAL("\x00\x00\x00\x01"), &i64), CQL_E_TYPE);
    assert_int_equal(cql_decode_smallint(VAL("\x01"), &i16), CQL_E_TYPE);
    assert_int_equal(cql_decode_tinyint(VAL("\x01\x02"), &i8), CQL_E_TYPE);
    assert_int_equal(cql_decode_double(VAL("\x00\x00\x00\x00"), &d), CQL_E_TYPE);
    assert_int_equal(cql_decode_float(VAL("\x00\x00\x00\x00\x00\x00\x00\x00"), &f), CQL_E_TYPE);
    assert_int_equal(cql_decode_boolean(VAL("\x00\x01"), &flag), CQL_E_TYPE);
    assert_int_equal(cql_decode_boolean(VAL("\x02"), &flag), CQL_OK);
    assert_true(flag); /* any non-zero byte is true (spec 6.4) */
    assert_int_equal(cql_decode_uuid(VAL("0123456789abcde"), u), CQL_E_TYPE);
    assert_int_equal(cql_decode_text(null_cell, &s), CQL_E_NULL);
    assert_int_equal(cql_decode_text(VAL(""), &s), CQL_OK);
    assert_int_equal(s.len, 0);
}

static void test_collections(void **state)
{
    struct cql_buf b = {0};
    int32_t ints[] = {1, -1};
    struct cql_str texts[] = {cql_str_c("a"), cql_str_c("bc")};
    struct cql_str keys[] = {cql_str_c("unit"), cql_str_c("room")};
    struct cql_str vals[] = {cql_str_c("C"), cql_str_c("")};
    cql_encode_list(&b, CQL_TYPE_INT, ints, 2);
    cql_encode_list(&b, CQL_TYPE_VARCHAR, texts, 2); /* a set<text> is encoded alike */
    cql_encode_map_text(&b, keys, vals, 2);
    cql_encode_list(&b, CQL_TYPE_INT, NULL, 0);
    assert_int_equal(cql_buf_error(&b), CQL_OK);
    static const char want[] =
        "\x00\x00\x00\x14" "\x00\x00\x00\x02"                         /* list<int> */
        "\x00\x00\x00\x04\x00\x00\x00\x01" "\x00\x00\x00\x04\xff\xff\xff\xff"
        "\x00\x00\x00\x0f" "\x00\x00\x00\x02"                         /* set<text> */
        "\x00\x00\x00\x01" "a" "\x00\x00\x00\x02" "bc"
        "\x00\x00\x00\x1d" "\x00\x00\x00\x02"                         /* map<text,text> */
        "\x00\x00\x00\x04" "unit" "\x00\x00\x00\x01" "C"
        "\x00\x00\x00\x04" "room" "\x00\x00\x00\x00"
        "\x00\x00\x00\x04" "\x00\x00\x00\x00";                        /* [] */
    assert_bytes(b.data, b.len, want, sizeof want - 1);

    struct cql_reader r = cql_reader_make(b.data, b.len);
    struct cql_value v;
    int32_t got_ints[2];
    struct cql_str got_texts[2], got_keys[2], got_vals[2];
    size_t n;
    assert_int_equal(cql_read_value(&r, &v), CQL_OK);
    assert_int_equal(cql_decode_list(v, CQL_TYPE_INT, got_ints, 1, &n), CQL_E_TOO_LARGE);
    assert_int_equal(n, 2);
    assert_int_equal(cql_decode_list(v, CQL_TYPE_INT, got_ints, 2, &n), CQL_OK);
    assert_int_equal(got_ints[1], -1);
    assert_int_equal(cql_decode_list(v, CQL_TYPE_BIGINT, got_ints, 2, &n), CQL_E_TYPE);
    assert_int_equal(cql_read_value(&r, &v), CQL_OK);
    assert_int_equal(cql_decode_list(v, CQL_TYPE_VARCHAR, got_texts, 2, &n), CQL_OK);
    assert_str(got_texts[1], "bc");
    assert_int_equal(cql_read_value(&r, &v), CQL_OK);
    assert_int_equal(cql_decode_map_text(v, got_keys, got_vals, 2, &n), CQL_OK);
    assert_int_equal(n, 2);
    assert_str(got_keys[0], "unit");
    assert_str(got_vals[0], "C");
    assert_str(got_vals[1], "");
    assert_int_equal(cql_read_value(&r, &v), CQL_OK);
    assert_int_equal(cql_decode_list(v, CQL_TYPE_INT, NULL, 0, &n), CQL_OK);
    assert_int_equal(n, 0);

    /* Malformed collections. */
    assert_int_equal(cql_decode_list(VAL("\xff\xff\xff\xff"), CQL_TYPE_INT, got_ints, 2, &n),
                     CQL_E_TYPE); /* negative count */
    assert_int_equal(cql_decode_list(VAL("\x7f\xff\xff\xff" "\x00\x00\x00\x00"), CQL_TYPE_INT,
                                     got_ints, 2, &n),
                     CQL_E_TYPE); /* huge count, tiny cell */
    assert_int_equal(cql_decode_list(VAL("\x00\x00\x00\x01" "\x00\x00\x00\x04\x00\x00\x00\x01"
                                         "\x00"),
                                     CQL_TYPE_INT, got_ints, 2, &n),
                     CQL_E_TYPE); /* trailing byte */
    assert_int_equal(cql_decode_list(VAL("\x00\x00\x00\x01" "\xff\xff\xff\xff"), CQL_TYPE_INT,
                                     got_ints, 2, &n),
                     CQL_E_NULL); /* null element */
    assert_int_equal(cql_decode_list(null_cell, CQL_TYPE_INT, got_ints, 2, &n), CQL_E_NULL);
    assert_int_equal(cql_decode_list(VAL("\x00\x00\x00\x00"), CQL_TYPE_DECIMAL, NULL, 0, &n),
                     CQL_OK); /* empty: no element to refuse */
    assert_int_equal(cql_decode_list(VAL("\x00\x00\x00\x01" "\x00\x00\x00\x00"), CQL_TYPE_DECIMAL,
                                     got_ints, 2, &n),
                     CQL_E_UNSUPPORTED);
    cql_buf_free(&b);
}

/* Every scalar type the brief names round-trips through list<T>. */
static void test_list_of_each_scalar(void **state)
{
    struct cql_buf b = {0};
    int64_t i64[] = {INT64_MIN, INT64_MAX};
    int16_t i16[] = {INT16_MIN, 5};
    int8_t i8[] = {INT8_MIN, INT8_MAX};
    double d[] = {-1.25, 1e300};
    float f[] = {3.5f, -0.5f};
    bool bo[] = {true, false};
    struct cql_slice blobs[] = {{(const uint8_t *)"\x00\xff", 2}, {NULL, 0}};
    uint8_t uuids[2][16] = {{1}, {[15] = 2}};
    cql_encode_list(&b, CQL_TYPE_BIGINT, i64, 2);
    cql_encode_list(&b, CQL_TYPE_SMALLINT, i16, 2);
    cql_encode_list(&b, CQL_TYPE_TINYINT, i8, 2);
    cql_encode_list(&b, CQL_TYPE_DOUBLE, d, 2);
    cql_encode_list(&b, CQL_TYPE_FLOAT, f, 2);
    cql_encode_list(&b, CQL_TYPE_BOOLEAN, bo, 2);
    cql_encode_list(&b, CQL_TYPE_BLOB, blobs, 2);
    cql_encode_list(&b, CQL_TYPE_TIMEUUID, uuids, 2);
    cql_encode_list(&b, CQL_TYPE_TIMESTAMP, i64, 2);
    assert_int_equal(cql_buf_error(&b), CQL_OK);

    struct cql_reader r = cql_reader_make(b.data, b.len);
    struct cql_value v;
    size_t n;
    int64_t g64[2];
    int16_t g16[2];
    int8_t g8[2];
    double gd[2];
    float gf[2];
    bool gb[2];
    struct cql_slice gblobs[2];
    uint8_t guuids[2][16];
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_list(v, CQL_TYPE_BIGINT, g64, 2, &n), 0);
    assert_true(g64[0] == INT64_MIN && g64[1] == INT64_MAX);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_list(v, CQL_TYPE_SMALLINT, g16, 2, &n),
                     0);
    assert_true(g16[0] == INT16_MIN && g16[1] == 5);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_list(v, CQL_TYPE_TINYINT, g8, 2, &n), 0);
    assert_true(g8[0] == INT8_MIN && g8[1] == INT8_MAX);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_list(v, CQL_TYPE_DOUBLE, gd, 2, &n), 0);
    assert_true(gd[0] == -1.25 && gd[1] == 1e300);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_list(v, CQL_TYPE_FLOAT, gf, 2, &n), 0);
    assert_true(gf[0] == 3.5f && gf[1] == -0.5f);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_list(v, CQL_TYPE_BOOLEAN, gb, 2, &n), 0);
    assert_true(gb[0] && !gb[1]);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_list(v, CQL_TYPE_BLOB, gblobs, 2, &n),
                     0);
    assert_bytes(gblobs[0].ptr, gblobs[0].len, "\x00\xff", 2);
    assert_int_equal(gblobs[1].len, 0);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_list(v, CQL_TYPE_UUID, guuids, 2, &n),
                     0);
    assert_bytes(guuids, 32, uuids, 32);
    assert_int_equal(cql_read_value(&r, &v) || cql_decode_list(v, CQL_TYPE_TIMESTAMP, g64, 2, &n),
                     0);
    assert_true(g64[1] == INT64_MAX);
    assert_int_equal(cql_reader_left(&r), 0);

    /* Unsupported element types fail the whole value. */
    cql_buf_reset(&b);
    cql_encode_list(&b, CQL_TYPE_DECIMAL, i64, 1);
    assert_int_equal(cql_buf_error(&b), CQL_E_UNSUPPORTED);
    cql_buf_free(&b);
}

/* Collections by hand: list<list<int>> = [[7]]. */
static void test_nested_collection_by_hand(void **state)
{
    struct cql_buf b = {0};
    size_t outer = cql_encode_coll_begin(&b);
    int32_t seven = 7;
    cql_encode_list(&b, CQL_TYPE_INT, &seven, 1);
    cql_encode_coll_end(&b, outer, 1);
    assert_int_equal(cql_buf_error(&b), CQL_OK);
    assert_bytes(b.data, b.len,
                 "\x00\x00\x00\x14" "\x00\x00\x00\x01"
                 "\x00\x00\x00\x0c" "\x00\x00\x00\x01" "\x00\x00\x00\x04\x00\x00\x00\x07",
                 24);
    struct cql_reader tr = cql_reader_make(LIT("\x00\x20\x00\x20\x00\x09"));
    struct cql_type *t;
    assert_int_equal(cql_type_parse(&tr, &t), CQL_OK);
    struct cql_value v = {b.data + 4, (int32_t)b.len - 4};
    assert_int_equal(cql_value_validate(t, v), CQL_OK);
    cql_type_free(t);
    cql_buf_free(&b);
}

static int validate_as(const char *type_lit, size_t type_len, struct cql_value v)
{
    struct cql_reader r = cql_reader_make((const uint8_t *)type_lit, type_len);
    struct cql_type *t;
    assert_int_equal(cql_type_parse(&r, &t), CQL_OK);
    int rc = cql_value_validate(t, v);
    cql_type_free(t);
    return rc;
}
#define VALIDATE(type, cell) validate_as(type, sizeof(type) - 1, cell)

static void test_validate(void **state)
{
    /* Fixed sizes, and the legacy empty value. */
    assert_int_equal(VALIDATE("\x00\x09", VAL("\x00\x00\x00\x01")), CQL_OK);
    assert_int_equal(VALIDATE("\x00\x09", VAL("\x00\x00\x01")), CQL_E_TYPE);
    assert_int_equal(VALIDATE("\x00\x09", VAL("")), CQL_OK);
    assert_int_equal(VALIDATE("\x00\x09", null_cell), CQL_OK);
    assert_int_equal(VALIDATE("\x00\x02", VAL("\x00\x00\x00\x01")), CQL_E_TYPE);
    assert_int_equal(VALIDATE("\x00\x0c", VAL("0123456789abcdef")), CQL_OK);
    assert_int_equal(VALIDATE("\x00\x0f", VAL("0123456789abcdef0")), CQL_E_TYPE);
    assert_int_equal(VALIDATE("\x00\x04", VAL("\x01")), CQL_OK);
    assert_int_equal(VALIDATE("\x00\x10", VAL("\x7f\x00\x00\x01")), CQL_OK);
    assert_int_equal(VALIDATE("\x00\x10", VAL("\x7f\x00\x00")), CQL_E_TYPE);
    assert_int_equal(VALIDATE("\x00\x11", VAL("\x80\x00\x00\x00")), CQL_OK);
    assert_int_equal(VALIDATE("\x00\x06", VAL("\x00\x00\x00\x02\x01")), CQL_OK);
    assert_int_equal(VALIDATE("\x00\x06", VAL("\x00\x02")), CQL_E_TYPE);
    assert_int_equal(VALIDATE("\x00\x0e", VAL("\xff\x7f")), CQL_OK);
    /* ascii is 7-bit; varchar is not checked. */
    assert_int_equal(VALIDATE("\x00\x01", VAL("abc")), CQL_OK);
    assert_int_equal(VALIDATE("\x00\x01", VAL("h\xc3\xa9")), CQL_E_TYPE);
    assert_int_equal(VALIDATE("\x00\x0d", VAL("h\xc3\xa9")), CQL_OK);
    /* time: nanoseconds within a day. */
    assert_int_equal(VALIDATE("\x00\x12", VAL("\x00\x00\x4e\x94\x91\x4e\xff\xff")), CQL_OK);
    assert_int_equal(VALIDATE("\x00\x12", VAL("\x00\x00\x4e\x94\x91\x4f\x00\x00")), CQL_E_TYPE);
    assert_int_equal(VALIDATE("\x00\x12", VAL("\xff\xff\xff\xff\xff\xff\xff\xff")), CQL_E_TYPE);
    /* duration: three vints (1 month, 2 days, a 2-byte nanos vint). */
    assert_int_equal(VALIDATE("\x00\x15", VAL("\x02\x04\x80\x80")), CQL_OK);
    assert_int_equal(VALIDATE("\x00\x15", VAL("\x02\x04\x80")), CQL_E_TYPE);
    assert_int_equal(VALIDATE("\x00\x15", VAL("\x02\x04\x06\x00")), CQL_E_TYPE);
    /* Collections all the way down: map<varchar, list<int>>. */
    static const char map_type[] = "\x00\x21\x00\x0d\x00\x20\x00\x09";
    struct cql_value good = VAL("\x00\x00\x00\x01" "\x00\x00\x00\x01" "a"
                                "\x00\x00\x00\x0c" "\x00\x00\x00\x01" "\x00\x00\x00\x04"
                                "\x00\x00\x00\x05");
    assert_int_equal(VALIDATE(map_type, good), CQL_OK);
    struct cql_value bad_inner = VAL("\x00\x00\x00\x01" "\x00\x00\x00\x01" "a"
                                     "\x00\x00\x00\x0b" "\x00\x00\x00\x01" "\x00\x00\x00\x03"
                                     "\x00\x00\x05");
    assert_int_equal(VALIDATE(map_type, bad_inner), CQL_E_TYPE);
    assert_int_equal(VALIDATE(map_type, VAL("\x00\x00\x00\x00" "\x00")), CQL_E_TYPE);
    assert_int_equal(VALIDATE(map_type, VAL("\xff\xff\xff\xfe")), CQL_E_TYPE);
    /* UDT {x int, y double}: fewer fields are allowed (spec 7), more are not. */
    static const char udt[] = "\x00\x30" "\x00\x02" "ks" "\x00\x02" "pt" "\x00\x02"
                              "\x00\x01" "x" "\x00\x09" "\x00\x01" "y" "\x00\x07";
    assert_int_equal(VALIDATE(udt, VAL("\x00\x00\x00\x04\x00\x00\x00\x01")), CQL_OK);
    assert_int_equal(VALIDATE(udt, VAL("\x00\x00\x00\x04\x00\x00\x00\x01" "\xff\xff\xff\xff")),
                     CQL_OK);
    assert_int_equal(VALIDATE(udt, VAL("\x00\x00\x00\x04\x00\x00\x00\x01" "\xff\xff\xff\xff"
                                       "\xff\xff\xff\xff")),
                     CQL_E_TYPE);
    assert_int_equal(VALIDATE(udt, VAL("\x00\x00\x00\x03\x00\x00\x01")), CQL_E_TYPE);
    /* tuple<int, varchar>. */
    static const char tuple[] = "\x00\x31\x00\x02\x00\x09\x00\x0d";
    assert_int_equal(VALIDATE(tuple, VAL("\x00\x00\x00\x04\x00\x00\x00\x01" "\x00\x00\x00\x01"
                                         "z")),
                     CQL_OK);
    assert_int_equal(VALIDATE(tuple, VAL("\x00\x00\x00\x04\x00\x00\x00\x01" "\x00\x00\x00\x02"
                                         "z")),
                     CQL_E_TYPE);
    /* custom: opaque. */
    assert_int_equal(VALIDATE("\x00\x00\x00\x01" "X", VAL("\x01\x02\x03")), CQL_OK);
}
/* clang-format on */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_every_scalar),
        cmocka_unit_test(test_parse_nested),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_scalar_encodings),
        cmocka_unit_test(test_strict_lengths),
        cmocka_unit_test(test_collections),
        cmocka_unit_test(test_list_of_each_scalar),
        cmocka_unit_test(test_nested_collection_by_hand),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
