/* Tests of the CQL notations reader/writer (cql_buf) and of the error enum:
 * every notation round-trips byte-exactly, every read of a short input fails
 * without moving, negative lengths follow the spec's rules per notation. */
#include "unit/cql/cql_test_util.h"

#include "cql/cql_buf.h"
#include "cql/cql_error.h"

#define LIT(s) (const uint8_t *)(s), sizeof(s) - 1

/* Wire bytes below are grouped one field per literal by hand; clang-format
 * would put every literal on a line of its own. */
/* clang-format off */
static void test_write_scalars(void **state)
{
    struct cql_buf b = {0};
    cql_write_byte(&b, 0xab);
    cql_write_short(&b, 0x1234);
    cql_write_int(&b, -2);
    cql_write_long(&b, INT64_C(0x0102030405060708));
    cql_write_consistency(&b, CQL_CONSISTENCY_LOCAL_ONE);
    assert_int_equal(cql_buf_error(&b), CQL_OK);
    assert_bytes(b.data, b.len,
                 "\xab" "\x12\x34" "\xff\xff\xff\xfe" "\x01\x02\x03\x04\x05\x06\x07\x08" "\x00\x0a",
                 17);

    struct cql_reader r = cql_reader_make(b.data, b.len);
    uint8_t u8;
    uint16_t u16, cl;
    int32_t i32;
    int64_t i64;
    assert_int_equal(cql_read_byte(&r, &u8), CQL_OK);
    assert_int_equal(cql_read_short(&r, &u16), CQL_OK);
    assert_int_equal(cql_read_int(&r, &i32), CQL_OK);
    assert_int_equal(cql_read_long(&r, &i64), CQL_OK);
    assert_int_equal(cql_read_consistency(&r, &cl), CQL_OK);
    assert_int_equal(u8, 0xab);
    assert_int_equal(u16, 0x1234);
    assert_int_equal(i32, -2);
    assert_true(i64 == INT64_C(0x0102030405060708));
    assert_int_equal(cl, CQL_CONSISTENCY_LOCAL_ONE);
    assert_int_equal(cql_reader_left(&r), 0);
    assert_int_equal(cql_read_byte(&r, &u8), CQL_E_TRUNCATED);
    cql_buf_free(&b);
}

static void test_strings_and_bytes(void **state)
{
    struct cql_buf b = {0};
    cql_write_string(&b, "ab", 2);
    cql_write_long_string(&b, "xyz", 3);
    cql_write_bytes(&b, "\x01", 1);
    cql_write_bytes(&b, NULL, -1);
    cql_write_value(&b, (struct cql_value){NULL, CQL_VALUE_NOT_SET});
    cql_write_short_bytes(&b, "\xfe\xff", 2);
    static const uint8_t uuid[16] = {0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4,
                                     0xa7, 0x16, 0x44, 0x66, 0x55, 0x44, 0x00, 0x00};
    cql_write_uuid(&b, uuid);
    assert_int_equal(cql_buf_error(&b), CQL_OK);
    assert_bytes(b.data, b.len - 16,
                 "\x00\x02" "ab" "\x00\x00\x00\x03" "xyz" "\x00\x00\x00\x01\x01"
                 "\xff\xff\xff\xff" "\xff\xff\xff\xfe" "\x00\x02\xfe\xff",
                 28);

    struct cql_reader r = cql_reader_make(b.data, b.len);
    struct cql_str s;
    struct cql_value v;
    struct cql_slice sb;
    uint8_t u[16];
    assert_int_equal(cql_read_string(&r, &s), CQL_OK);
    assert_str(s, "ab");
    assert_int_equal(cql_read_long_string(&r, &s), CQL_OK);
    assert_str(s, "xyz");
    assert_int_equal(cql_read_bytes(&r, &v), CQL_OK);
    assert_int_equal(v.len, 1);
    assert_int_equal(cql_read_bytes(&r, &v), CQL_OK);
    assert_int_equal(v.len, CQL_VALUE_NULL);
    assert_null(v.ptr);
    assert_int_equal(cql_read_value(&r, &v), CQL_OK);
    assert_int_equal(v.len, CQL_VALUE_NOT_SET);
    assert_int_equal(cql_read_short_bytes(&r, &sb), CQL_OK);
    assert_bytes(sb.ptr, sb.len, "\xfe\xff", 2);
    assert_int_equal(cql_read_uuid(&r, u), CQL_OK);
    assert_bytes(u, 16, uuid, 16);
    assert_int_equal(cql_reader_left(&r), 0);
    cql_buf_free(&b);
}

/* Negative lengths: [long string] never; [bytes] any negative is null;
 * [value] -1 and -2 only. */
static void test_negative_lengths(void **state)
{
    struct cql_reader r = cql_reader_make(LIT("\xff\xff\xff\xff"));
    struct cql_str s;
    assert_int_equal(cql_read_long_string(&r, &s), CQL_E_PROTOCOL);
    assert_int_equal(r.pos, 0);

    struct cql_value v;
    r = cql_reader_make(LIT("\xff\xff\xff\xfb"));
    assert_int_equal(cql_read_bytes(&r, &v), CQL_OK);
    assert_int_equal(v.len, CQL_VALUE_NULL);
    r = cql_reader_make(LIT("\xff\xff\xff\xfb"));
    assert_int_equal(cql_read_value(&r, &v), CQL_E_PROTOCOL);
    assert_int_equal(r.pos, 0);
    r = cql_reader_make(LIT("\x80\x00\x00\x00"));
    assert_int_equal(cql_read_value(&r, &v), CQL_E_PROTOCOL);
    /* A length far past the end. */
    r = cql_reader_make(LIT("\x7f\xff\xff\xff\x00"));
    assert_int_equal(cql_read_bytes(&r, &v), CQL_E_TRUNCATED);
    assert_int_equal(r.pos, 0);

    struct cql_buf b = {0};
    cql_write_value(&b, (struct cql_value){NULL, -3});
    assert_int_equal(cql_buf_error(&b), CQL_E_INVALID);
    cql_buf_free(&b);
}

static void test_inet(void **state)
{
    struct cql_buf b = {0};
    struct cql_inet v4 = {.addr_len = 4, .addr = {10, 0, 0, 1}, .port = 9042};
    struct cql_inet v6 = {.addr_len = 16, .addr = {[15] = 1}, .port = 7000};
    cql_write_inet(&b, &v4);
    cql_write_inetaddr(&b, &v6);
    assert_bytes(b.data, b.len,
                 "\x04\x0a\x00\x00\x01\x00\x00\x23\x52"
                 "\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01",
                 26);
    struct cql_reader r = cql_reader_make(b.data, b.len);
    struct cql_inet got;
    assert_int_equal(cql_read_inet(&r, &got), CQL_OK);
    assert_int_equal(got.addr_len, 4);
    assert_int_equal(got.port, 9042);
    assert_int_equal(got.addr[3], 1);
    assert_int_equal(cql_read_inetaddr(&r, &got), CQL_OK);
    assert_int_equal(got.addr_len, 16);
    assert_int_equal(got.port, 0);

    r = cql_reader_make(LIT("\x05\x01\x02\x03\x04\x05\x00\x00\x00\x00"));
    assert_int_equal(cql_read_inet(&r, &got), CQL_E_PROTOCOL);
    r = cql_reader_make(LIT("\x04\x01\x02\x03\x04\x00\x00")); /* port cut short */
    assert_int_equal(cql_read_inet(&r, &got), CQL_E_TRUNCATED);
    assert_int_equal(r.pos, 0);
    struct cql_inet bad = {.addr_len = 5};
    cql_write_inet(&b, &bad);
    assert_int_equal(cql_buf_error(&b), CQL_E_INVALID);
    cql_buf_free(&b);
}

static void test_lists_and_maps(void **state)
{
    struct cql_buf b = {0};
    struct cql_str items[] = {cql_str_c("a"), cql_str_c("bc")};
    struct cql_str keys[] = {cql_str_c("k1"), cql_str_c("k2")};
    struct cql_str vals[] = {cql_str_c("v1"), cql_str_c("")};
    const struct cql_str *mvals[] = {items, items + 1};
    size_t n_mvals[] = {2, 1};
    struct cql_value bvals[] = {{(const uint8_t *)"\x09", 1}, {NULL, CQL_VALUE_NULL}};

    cql_write_string_list(&b, items, 2);
    cql_write_string_map(&b, keys, vals, 2);
    cql_write_string_multimap(&b, keys, mvals, n_mvals, 2);
    cql_write_bytes_map(&b, keys, bvals, 2);
    assert_int_equal(cql_buf_error(&b), CQL_OK);
    assert_bytes(b.data, b.len,
                 "\x00\x02" "\x00\x01" "a" "\x00\x02" "bc"                   /* 9 */
                 "\x00\x02" "\x00\x02" "k1" "\x00\x02" "v1" "\x00\x02" "k2" "\x00\x00" /* 25 */
                 "\x00\x02" "\x00\x02" "k1" "\x00\x02" "\x00\x01" "a" "\x00\x02" "bc"
                 "\x00\x02" "k2" "\x00\x01" "\x00\x02" "bc"                  /* 50 */
                 "\x00\x02" "\x00\x02" "k1" "\x00\x00\x00\x01\x09"
                 "\x00\x02" "k2" "\xff\xff\xff\xff",                         /* 69 */
                 69);

    struct cql_reader r = cql_reader_make(b.data, b.len);
    struct cql_str_list list;
    struct cql_str_map map;
    struct cql_multimap mm;
    struct cql_bytes_map bm;
    assert_int_equal(cql_read_string_list(&r, &list), CQL_OK);
    assert_int_equal(cql_read_string_map(&r, &map), CQL_OK);
    assert_int_equal(cql_read_string_multimap(&r, &mm), CQL_OK);
    assert_int_equal(cql_read_bytes_map(&r, &bm), CQL_OK);
    assert_int_equal(cql_reader_left(&r), 0);

    struct cql_iter it = cql_str_list_iter(&list);
    struct cql_str k, v;
    assert_true(cql_str_list_next(&it, &k));
    assert_str(k, "a");
    assert_true(cql_str_list_next(&it, &k));
    assert_str(k, "bc");
    assert_false(cql_str_list_next(&it, &k));

    it = cql_str_map_iter(&map);
    assert_true(cql_str_map_next(&it, &k, &v));
    assert_str(k, "k1");
    assert_str(v, "v1");
    assert_true(cql_str_map_next(&it, &k, &v));
    assert_str(v, "");
    assert_false(cql_str_map_next(&it, &k, &v));

    struct cql_str_list got;
    assert_true(cql_multimap_get(&mm, "k2", &got));
    assert_int_equal(got.count, 1);

    it = cql_bytes_map_iter(&bm);
    struct cql_value bv;
    assert_true(cql_bytes_map_next(&it, &k, &bv));
    assert_int_equal(bv.len, 1);
    assert_true(cql_bytes_map_next(&it, &k, &bv));
    assert_int_equal(bv.len, CQL_VALUE_NULL);
    assert_false(cql_bytes_map_next(&it, &k, &bv));

    /* Every prefix of the whole run fails somewhere, and each failed read
     * leaves the position where it was. */
    for (size_t len = 0; len < b.len; len++) {
        r = cql_reader_make(b.data, len);
        int rc = CQL_OK;
        size_t before = 0;
        for (int step = 0; step < 4 && rc == CQL_OK; step++) {
            before = r.pos;
            if (step == 0)
                rc = cql_read_string_list(&r, &list);
            else if (step == 1)
                rc = cql_read_string_map(&r, &map);
            else if (step == 2)
                rc = cql_read_string_multimap(&r, &mm);
            else
                rc = cql_read_bytes_map(&r, &bm);
        }
        assert_int_equal(rc, CQL_E_TRUNCATED);
        assert_int_equal(r.pos, before);
    }
    cql_buf_free(&b);
}
/* clang-format on */

static void test_writer_limits_and_rollback(void **state)
{
    struct cql_buf b = {0};
    cql_write_int(&b, 1);
    char *big = calloc(1, 70000);
    assert_non_null(big);
    cql_write_string(&b, big, 65536); /* > [short] */
    assert_int_equal(cql_buf_error(&b), CQL_E_INVALID);
    size_t len = b.len;
    cql_write_int(&b, 2); /* ignored after a failure */
    assert_int_equal(b.len, len);
    cql_buf_truncate(&b, 4);
    assert_int_equal(cql_buf_error(&b), CQL_OK);
    cql_write_string(&b, big, 65535); /* exactly the limit */
    assert_int_equal(cql_buf_error(&b), CQL_OK);
    assert_int_equal(b.len, 4 + 2 + 65535);
    cql_write_short_bytes(&b, big, 65536);
    assert_int_equal(cql_buf_error(&b), CQL_E_INVALID);
    cql_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(cql_buf_error(&b), CQL_OK);
    free(big);
    cql_buf_free(&b);
    cql_buf_free(&b); /* twice: a freed buffer is an empty one */
    cql_buf_free(NULL);
}

static void test_errors(void **state)
{
    static const int32_t codes[] = {0x0000, 0x000A, 0x0100, 0x1000, 0x1001, 0x1002,
                                    0x1003, 0x1100, 0x1200, 0x1300, 0x1400, 0x1500,
                                    0x2000, 0x2100, 0x2200, 0x2300, 0x2400, 0x2500};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        enum cql_err e = cql_err_from_server_code(codes[i]);
        assert_true(cql_err_is_server(e));
        assert_int_not_equal(e, CQL_E_SRV_UNKNOWN);
        assert_int_equal(cql_err_server_code(e), codes[i]);
        for (size_t j = 0; j < i; j++) /* one enum value per code */
            assert_int_not_equal(e, cql_err_from_server_code(codes[j]));
    }
    assert_int_equal(cql_err_from_server_code(0x0001), CQL_E_SRV_UNKNOWN);
    assert_int_equal(cql_err_server_code(CQL_E_TRUNCATED), -1);
    assert_false(cql_err_is_server(CQL_E_TRUNCATED));
    for (int e = 0; e >= -11; e--)
        assert_string_not_equal(cql_strerror(e), "unknown error");
    assert_string_equal(cql_strerror(-99), "unknown error");
    assert_string_equal(cql_strerror(CQL_E_SRV_UNPREPARED), "statement not prepared on this host");
    assert_string_equal(cql_consistency_name(CQL_CONSISTENCY_LOCAL_QUORUM), "LOCAL_QUORUM");
    assert_string_equal(cql_consistency_name(0x0b), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_scalars),    cmocka_unit_test(test_strings_and_bytes),
        cmocka_unit_test(test_negative_lengths), cmocka_unit_test(test_inet),
        cmocka_unit_test(test_lists_and_maps),   cmocka_unit_test(test_writer_limits_and_rollback),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
