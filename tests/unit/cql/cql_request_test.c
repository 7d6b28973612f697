/* Byte-exact tests of the CQL request builders: each frame is compared with
 * bytes written by hand from native_protocol_v4.spec section 4.1, with the
 * running body length in the comments. Also: failed builds leave the buffer
 * untouched, and the 16 MiB frame cap holds for requests. */
#include "unit/cql/cql_test_util.h"

#include "cql/cql_msg.h"

#define LIT(s) (const uint8_t *)(s), sizeof(s) - 1

static void expect_frame(struct cql_buf *b, const uint8_t *want, size_t want_len)
{
    assert_int_equal(cql_buf_error(b), CQL_OK);
    assert_bytes(b->data, b->len, want, want_len);
}

/* Expected frames below are grouped one protocol field per literal by hand;
 * clang-format would put every literal on a line of its own. */
/* clang-format off */
static void test_startup(void **state)
{
    struct cql_buf b = {0};
    assert_int_equal(cql_build_startup(&b, 1, NULL), CQL_OK);
    expect_frame(&b, LIT("\x04\x00\x00\x01\x01" "\x00\x00\x00\x16"
                         "\x00\x01"                      /* 2 */
                         "\x00\x0b" "CQL_VERSION"        /* 15 */
                         "\x00\x05" "3.0.0"));           /* 22 */
    cql_buf_reset(&b);
    assert_int_equal(cql_build_startup(&b, 0, "lz4"), CQL_OK);
    expect_frame(&b, LIT("\x04\x00\x00\x00\x01" "\x00\x00\x00\x28"
                         "\x00\x02"
                         "\x00\x0b" "CQL_VERSION" "\x00\x05" "3.0.0" /* 22 */
                         "\x00\x0b" "COMPRESSION" "\x00\x03" "lz4")); /* 40 */
    cql_buf_free(&b);
}

static void test_options(void **state)
{
    struct cql_buf b = {0};
    assert_int_equal(cql_build_options(&b, 0), CQL_OK);
    expect_frame(&b, LIT("\x04\x00\x00\x00\x05" "\x00\x00\x00\x00"));
    cql_buf_free(&b);
}

static void test_auth_response(void **state)
{
    struct cql_buf b = {0};
    assert_int_equal(cql_build_auth_password(&b, 2, cql_str_c("cassandra"), cql_str_c("s3cret")),
                     CQL_OK);
    expect_frame(&b, LIT("\x04\x00\x00\x02\x0f" "\x00\x00\x00\x15"
                         "\x00\x00\x00\x11"                 /* [bytes] of 17: 4 */
                         "\x00" "cassandra" "\x00" "s3cret")); /* 21 */
    cql_buf_reset(&b);
    assert_int_equal(cql_build_auth_response(&b, 2, "\x01\x02", 2), CQL_OK);
    expect_frame(&b, LIT("\x04\x00\x00\x02\x0f" "\x00\x00\x00\x06" "\x00\x00\x00\x02\x01\x02"));
    cql_buf_reset(&b);
    assert_int_equal(cql_build_auth_response(&b, 2, NULL, -1), CQL_OK);
    expect_frame(&b, LIT("\x04\x00\x00\x02\x0f" "\x00\x00\x00\x04" "\xff\xff\xff\xff"));
    cql_buf_free(&b);
}

static void test_query_plain(void **state)
{
    struct cql_buf b = {0};
    struct cql_query_params p = {.consistency = CQL_CONSISTENCY_ONE};
    assert_int_equal(cql_build_query(&b, 3, cql_str_c("SELECT k FROM t"), &p), CQL_OK);
    expect_frame(&b, LIT("\x04\x00\x00\x03\x07" "\x00\x00\x00\x16"
                         "\x00\x00\x00\x0f" "SELECT k FROM t" /* 19 */
                         "\x00\x01"                           /* ONE: 21 */
                         "\x00"));                            /* no flags: 22 */
    cql_buf_free(&b);
}

/* Every query flag at once, and every kind of [value]. */
static void test_query_all_flags(void **state)
{
    struct cql_buf vals = {0}, b = {0};
    cql_encode_int(&vals, 42);
    cql_encode_text(&vals, "hi", 2);
    cql_encode_null(&vals);
    cql_encode_unset(&vals);
    struct cql_query_params p = {
        .consistency = CQL_CONSISTENCY_QUORUM,
        .values = {vals.data, vals.len},
        .skip_metadata = true,
        .page_size = 100,
        .paging_state = {(const uint8_t *)"\x01\x02\x03", 3},
        .serial_consistency = CQL_CONSISTENCY_LOCAL_SERIAL,
        .has_default_timestamp = true,
        .default_timestamp = INT64_C(1700000000000000),
        .tracing = true,
    };
    assert_int_equal(cql_build_query(&b, 0x0102, cql_str_c("SELECT k FROM t"), &p), CQL_OK);
    expect_frame(&b, LIT("\x04\x02\x01\x02\x07" "\x00\x00\x00\x43" /* tracing flag */
                         "\x00\x00\x00\x0f" "SELECT k FROM t"     /* 19 */
                         "\x00\x04"                               /* QUORUM: 21 */
                         "\x3f"                                   /* all six flags: 22 */
                         "\x00\x04"                               /* 4 values: 24 */
                         "\x00\x00\x00\x04\x00\x00\x00\x2a"       /* 42: 32 */
                         "\x00\x00\x00\x02" "hi"                  /* 38 */
                         "\xff\xff\xff\xff" "\xff\xff\xff\xfe"    /* null, unset: 46 */
                         "\x00\x00\x00\x64"                       /* page size 100: 50 */
                         "\x00\x00\x00\x03\x01\x02\x03"           /* paging state: 57 */
                         "\x00\x09"                               /* LOCAL_SERIAL: 59 */
                         "\x00\x06\x0a\x24\x18\x1e\x40\x00"));    /* timestamp: 67 */
    cql_buf_free(&b);
    cql_buf_free(&vals);
}

static void test_prepare(void **state)
{
    struct cql_buf b = {0};
    assert_int_equal(cql_build_prepare(&b, 4, cql_str_c("SELECT v FROM t WHERE k=?")), CQL_OK);
    expect_frame(&b, LIT("\x04\x00\x00\x04\x09" "\x00\x00\x00\x1d"
                         "\x00\x00\x00\x19" "SELECT v FROM t WHERE k=?")); /* 29 */
    cql_buf_free(&b);
}

static void test_execute(void **state)
{
    struct cql_buf vals = {0}, b = {0};
    cql_encode_int(&vals, 7);
    struct cql_query_params p = {
        .consistency = CQL_CONSISTENCY_LOCAL_QUORUM,
        .values = {vals.data, vals.len},
        .page_size = 5000,
    };
    struct cql_slice id = {(const uint8_t *)"\xde\xad\xbe\xef", 4};
    assert_int_equal(cql_build_execute(&b, 5, id, &p), CQL_OK);
    expect_frame(&b, LIT("\x04\x00\x00\x05\x0a" "\x00\x00\x00\x17"
                         "\x00\x04\xde\xad\xbe\xef"          /* id: 6 */
                         "\x00\x06"                          /* LOCAL_QUORUM: 8 */
                         "\x05"                              /* values|page_size: 9 */
                         "\x00\x01"                          /* 11 */
                         "\x00\x00\x00\x04\x00\x00\x00\x07"  /* 19 */
                         "\x00\x00\x13\x88"));               /* 5000: 23 */
    cql_buf_free(&b);
    cql_buf_free(&vals);
}

static void test_batch(void **state)
{
    struct cql_buf vals = {0}, b = {0};
    cql_encode_bigint(&vals, 5);
    cql_encode_text(&vals, "x", 1);
    struct cql_batch_stmt stmts[] = {
        {.query = cql_str_c("INSERT INTO t(k) VALUES(1)")},
        {.prepared_id = {(const uint8_t *)"\xde\xad\xbe\xef", 4}, .values = {vals.data, vals.len}},
    };
    struct cql_batch batch = {
        .type = CQL_BATCH_UNLOGGED,
        .stmts = stmts,
        .n_stmts = 2,
        .consistency = CQL_CONSISTENCY_ONE,
        .serial_consistency = CQL_CONSISTENCY_SERIAL,
        .has_default_timestamp = true,
        .default_timestamp = 1234567,
    };
    assert_int_equal(cql_build_batch(&b, 6, &batch), CQL_OK);
    expect_frame(&b, LIT("\x04\x00\x00\x06\x0d" "\x00\x00\x00\x4b"
                         "\x01"                              /* unlogged: 1 */
                         "\x00\x02"                          /* 2 statements: 3 */
                         "\x00" "\x00\x00\x00\x1a" "INSERT INTO t(k) VALUES(1)" /* 34 */
                         "\x00\x00"                          /* no values: 36 */
                         "\x01" "\x00\x04\xde\xad\xbe\xef"   /* prepared: 43 */
                         "\x00\x02"                          /* 45 */
                         "\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x05" /* 57 */
                         "\x00\x00\x00\x01" "x"              /* 62 */
                         "\x00\x01"                          /* ONE: 64 */
                         "\x30"                              /* serial|timestamp: 65 */
                         "\x00\x08"                          /* SERIAL: 67 */
                         "\x00\x00\x00\x00\x00\x12\xd6\x87")); /* 1234567: 75 */
    cql_buf_free(&b);
    cql_buf_free(&vals);
}

static void test_batch_logged_and_counter(void **state)
{
    struct cql_buf b = {0};
    struct cql_batch_stmt stmt = {.query = cql_str_c("UPDATE c SET n=n+1 WHERE k=1")};
    struct cql_batch batch = {.type = CQL_BATCH_LOGGED, .stmts = &stmt, .n_stmts = 1,
                              .consistency = CQL_CONSISTENCY_QUORUM};
    assert_int_equal(cql_build_batch(&b, 7, &batch), CQL_OK);
    expect_frame(&b, LIT("\x04\x00\x00\x07\x0d" "\x00\x00\x00\x29"
                         "\x00" "\x00\x01"                   /* logged, 1: 3 */
                         "\x00" "\x00\x00\x00\x1c" "UPDATE c SET n=n+1 WHERE k=1" /* 36 */
                         "\x00\x00"                          /* 38 */
                         "\x00\x04" "\x00"));                /* QUORUM, no flags: 41 */
    cql_buf_reset(&b);
    batch.type = CQL_BATCH_COUNTER;
    assert_int_equal(cql_build_batch(&b, 7, &batch), CQL_OK);
    assert_int_equal(b.data[9], 0x02); /* <type> is the first body byte */
    cql_buf_free(&b);
}

static void test_register(void **state)
{
    struct cql_buf b = {0};
    struct cql_str ev[] = {cql_str_c("TOPOLOGY_CHANGE"), cql_str_c("STATUS_CHANGE"),
                           cql_str_c("SCHEMA_CHANGE")};
    assert_int_equal(cql_build_register(&b, 0, ev, 3), CQL_OK);
    expect_frame(&b, LIT("\x04\x00\x00\x00\x0b" "\x00\x00\x00\x31"
                         "\x00\x03"                                  /* 2 */
                         "\x00\x0f" "TOPOLOGY_CHANGE"                /* 19 */
                         "\x00\x0d" "STATUS_CHANGE"                  /* 34 */
                         "\x00\x0d" "SCHEMA_CHANGE"));               /* 49 */
    cql_buf_free(&b);
}
/* clang-format on */

/* Frames queue back to back in one buffer; a failed build leaves it as it
 * was (length and content), and the buffer stays usable. */
static void test_failed_build_leaves_buffer(void **state)
{
    struct cql_buf b = {0};
    assert_int_equal(cql_build_options(&b, 1), CQL_OK);
    size_t before = b.len;

    struct cql_query_params bad = {.consistency = CQL_CONSISTENCY_ONE, .page_size = -1};
    assert_int_equal(cql_build_query(&b, 2, cql_str_c("x"), &bad), CQL_E_INVALID);
    bad = (struct cql_query_params){.serial_consistency = CQL_CONSISTENCY_QUORUM};
    assert_int_equal(cql_build_query(&b, 2, cql_str_c("x"), &bad), CQL_E_INVALID);
    bad = (struct cql_query_params){.has_default_timestamp = true, .default_timestamp = -5};
    assert_int_equal(cql_build_query(&b, 2, cql_str_c("x"), &bad), CQL_E_INVALID);
    /* A malformed values run: a length running past its end. */
    bad = (struct cql_query_params){.values = {(const uint8_t *)"\x00\x00\x00\x09\x01", 5}};
    assert_int_equal(cql_build_query(&b, 2, cql_str_c("x"), &bad), CQL_E_INVALID);
    struct cql_query_params ok = {0};
    assert_int_equal(cql_build_execute(&b, 2, (struct cql_slice){NULL, 0}, &ok), CQL_E_INVALID);
    struct cql_batch empty = {.type = CQL_BATCH_LOGGED};
    assert_int_equal(cql_build_batch(&b, 2, &empty), CQL_E_INVALID);
    assert_int_equal(b.len, before);

    /* 16 MiB + 1 of query text: too large; the buffer is rolled back. */
    size_t big = CQL_FRAME_MAX_BODY;
    char *text = malloc(big);
    assert_non_null(text);
    memset(text, 'x', big);
    assert_int_equal(cql_build_query(&b, 3, (struct cql_str){text, big}, &ok), CQL_E_TOO_LARGE);
    assert_int_equal(b.len, before);
    assert_int_equal(cql_buf_error(&b), CQL_OK);
    /* Exactly at the cap is allowed: 4 + n + 2 + 1 = 16 MiB. */
    size_t fits = CQL_FRAME_MAX_BODY - 7;
    assert_int_equal(cql_build_query(&b, 3, (struct cql_str){text, fits}, &ok), CQL_OK);
    assert_int_equal(b.len, before + 9 + CQL_FRAME_MAX_BODY);
    free(text);

    assert_int_equal(cql_build_options(&b, 4), CQL_OK);
    assert_bytes(b.data + b.len - 9, 9, "\x04\x00\x00\x04\x05\x00\x00\x00\x00", 9);
    assert_bytes(b.data, 9, "\x04\x00\x00\x01\x05\x00\x00\x00\x00", 9);
    cql_buf_free(&b);
}

static void test_set_stream(void **state)
{
    struct cql_buf b = {0};
    assert_int_equal(cql_build_options(&b, 0), CQL_OK);
    cql_frame_set_stream(b.data, 0x7fff);
    expect_frame(&b, LIT("\x04\x00\x7f\xff\x05\x00\x00\x00\x00"));
    cql_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_startup),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_auth_response),
        cmocka_unit_test(test_query_plain),
        cmocka_unit_test(test_query_all_flags),
        cmocka_unit_test(test_prepare),
        cmocka_unit_test(test_execute),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_batch_logged_and_counter),
        cmocka_unit_test(test_register),
        cmocka_unit_test(test_failed_build_leaves_buffer),
        cmocka_unit_test(test_set_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
