/* Tests of CQL v4 framing: header encode/decode, the incremental scanner on
 * split input (one byte at a time and in uneven chunks, several frames back
 * to back), the 16 MiB cap, negative lengths, and the response envelope. */
#include "unit/cql/cql_test_util.h"

#include "cql/cql_frame.h"
#include "cql/cql_msg.h"
#include "unit/cql/cql_test_frames.h"

static void test_header_round_trip(void **state)
{
    struct cql_frame_header h = {CQL_VERSION_REQUEST, CQL_FLAG_TRACING, -1, CQL_OP_QUERY, 0x0102};
    uint8_t raw[9];
    cql_frame_header_encode(&h, raw);
    assert_bytes(raw, 9, "\x04\x02\xff\xff\x07\x00\x00\x01\x02", 9);
    struct cql_frame_header got;
    assert_int_equal(cql_frame_header_decode(raw, 9, CQL_VERSION_REQUEST, &got), CQL_OK);
    assert_int_equal(got.version, CQL_VERSION_REQUEST);
    assert_int_equal(got.flags, CQL_FLAG_TRACING);
    assert_int_equal(got.stream, -1);
    assert_int_equal(got.opcode, CQL_OP_QUERY);
    assert_int_equal(got.length, 0x0102);
    assert_int_equal(cql_frame_header_decode(raw, 9, CQL_VERSION_RESPONSE, &got), CQL_E_BAD_FRAME);
    assert_int_equal(cql_frame_header_decode(raw, 8, CQL_VERSION_REQUEST, &got), CQL_E_AGAIN);
    assert_string_equal(cql_opcode_name(CQL_OP_AUTH_SUCCESS), "AUTH_SUCCESS");
    assert_string_equal(cql_opcode_name(0x04), "UNKNOWN");
    assert_string_equal(cql_opcode_name(0xff), "UNKNOWN");
}

static void test_scan_limits(void **state)
{
    size_t frame_len = 0, missing = 0;
    /* Nothing yet, a partial header. */
    assert_int_equal(cql_frame_scan(NULL, 0, CQL_VERSION_RESPONSE, &frame_len, &missing),
                     CQL_E_AGAIN);
    assert_int_equal(frame_len, 9);
    assert_int_equal(missing, 9);
    const uint8_t *h = (const uint8_t *)"\x84\x00\x00\x01\x08\x00\x00\x00\x04";
    assert_int_equal(cql_frame_scan(h, 5, CQL_VERSION_RESPONSE, &frame_len, &missing), CQL_E_AGAIN);
    assert_int_equal(missing, 4);
    /* Header complete, body missing. */
    assert_int_equal(cql_frame_scan(h, 9, CQL_VERSION_RESPONSE, &frame_len, &missing), CQL_E_AGAIN);
    assert_int_equal(frame_len, 13);
    assert_int_equal(missing, 4);
    /* Garbage is refused at its first byte. */
    assert_int_equal(
        cql_frame_scan((const uint8_t *)"H", 1, CQL_VERSION_RESPONSE, &frame_len, &missing),
        CQL_E_BAD_FRAME);
    /* The cap: exactly 16 MiB is a frame to wait for, one byte more is not. */
    const uint8_t *at_cap = (const uint8_t *)"\x84\x00\x00\x01\x08\x01\x00\x00\x00";
    assert_int_equal(cql_frame_scan(at_cap, 9, CQL_VERSION_RESPONSE, &frame_len, &missing),
                     CQL_E_AGAIN);
    assert_int_equal(missing, CQL_FRAME_MAX_BODY);
    const uint8_t *over = (const uint8_t *)"\x84\x00\x00\x01\x08\x01\x00\x00\x01";
    assert_int_equal(cql_frame_scan(over, 9, CQL_VERSION_RESPONSE, &frame_len, &missing),
                     CQL_E_TOO_LARGE);
    /* 256 MiB (the protocol's own maximum) is still too large for us. */
    const uint8_t *proto_max = (const uint8_t *)"\x84\x00\x00\x01\x08\x10\x00\x00\x00";
    assert_int_equal(cql_frame_scan(proto_max, 9, CQL_VERSION_RESPONSE, &frame_len, &missing),
                     CQL_E_TOO_LARGE);
    /* Negative lengths. */
    const uint8_t *neg = (const uint8_t *)"\x84\x00\x00\x01\x08\x80\x00\x00\x00";
    assert_int_equal(cql_frame_scan(neg, 9, CQL_VERSION_RESPONSE, &frame_len, &missing),
                     CQL_E_BAD_FRAME);
    neg = (const uint8_t *)"\x84\x00\x00\x01\x08\xff\xff\xff\xfe";
    assert_int_equal(cql_frame_scan(neg, 9, CQL_VERSION_RESPONSE, &frame_len, &missing),
                     CQL_E_BAD_FRAME);
}

/* A receive buffer as the connection layer will keep one. */
struct rx {
    uint8_t *data;
    size_t len;
    size_t decoded; /* frames decoded so far */
};

/* Decodes every whole frame in rx, checks each against the next expected
 * frame, and keeps the partial rest; checks `missing` on the way. */
static void drain(struct rx *rx)
{
    for (;;) {
        size_t frame_len, missing;
        int rc = cql_frame_scan(rx->data, rx->len, CQL_VERSION_RESPONSE, &frame_len, &missing);
        if (rc == CQL_E_AGAIN) {
            assert_true(frame_len > rx->len);
            assert_int_equal(missing, frame_len - rx->len);
            return;
        }
        assert_int_equal(rc, CQL_OK);
        const struct test_frame *want = &response_frames[rx->decoded];
        assert_int_equal(frame_len, want->len);
        assert_bytes(rx->data, frame_len, want->data, want->len);
        struct cql_message m;
        assert_int_equal(cql_message_decode(rx->data, frame_len, &m), CQL_OK);
        cql_message_free(&m);
        rx->decoded++;
        memmove(rx->data, rx->data + frame_len, rx->len - frame_len);
        rx->len -= frame_len;
    }
}

static uint8_t *all_frames(size_t *total)
{
    *total = 0;
    for (size_t i = 0; i < N_RESPONSE_FRAMES; i++)
        *total += response_frames[i].len;
    uint8_t *stream = malloc(*total);
    assert_non_null(stream);
    size_t at = 0;
    for (size_t i = 0; i < N_RESPONSE_FRAMES; i++) {
        memcpy(stream + at, response_frames[i].data, response_frames[i].len);
        at += response_frames[i].len;
    }
    return stream;
}

static void feed_in_chunks(const uint8_t *stream, size_t total, size_t (*next_chunk)(size_t))
{
    struct rx rx = {malloc(total), 0, 0};
    assert_non_null(rx.data);
    size_t at = 0;
    for (size_t i = 0; at < total; i++) {
        size_t n = next_chunk(i);
        if (n > total - at)
            n = total - at;
        memcpy(rx.data + rx.len, stream + at, n);
        rx.len += n;
        at += n;
        drain(&rx);
    }
    assert_int_equal(rx.decoded, N_RESPONSE_FRAMES);
    assert_int_equal(rx.len, 0);
    free(rx.data);
}

static size_t one_byte(size_t i)
{
    return 1;
}

/* Uneven, deterministic chunk sizes: 1..97 bytes. */
static size_t uneven(size_t i)
{
    return 1 + (i * 7919 + 13) % 97;
}

static size_t everything(size_t i)
{
    return SIZE_MAX;
}

static void test_split_frames(void **state)
{
    size_t total;
    uint8_t *stream = all_frames(&total);
    feed_in_chunks(stream, total, one_byte);
    feed_in_chunks(stream, total, uneven);
    feed_in_chunks(stream, total, everything);
    free(stream);
}

static void test_response_open(void **state)
{
    const struct test_frame *f = &response_frames[0];
    for (size_t i = 0; i < N_RESPONSE_FRAMES; i++)
        if (strcmp(response_frames[i].name, "void_all_envelope") == 0)
            f = &response_frames[i];
    /* Extra bytes after the frame (the next frame) are not part of it. */
    uint8_t *two = malloc(f->len * 2);
    assert_non_null(two);
    memcpy(two, f->data, f->len);
    memcpy(two + f->len, f->data, f->len);
    struct cql_response r;
    assert_int_equal(cql_response_open(two, f->len * 2, &r), CQL_OK);
    assert_true(r.has_tracing_id);
    assert_int_equal(r.warnings.count, 1);
    assert_int_equal(r.custom_payload.count, 1);
    assert_int_equal(r.body.len, 4);
    assert_true(r.body.ptr == two + f->len - 4);
    free(two);
}

/* cql_frame_end rolls back a frame whose body failed to encode. */
static void test_frame_end_rollback(void **state)
{
    struct cql_buf b = {0};
    size_t first = cql_frame_begin(&b, CQL_VERSION_RESPONSE, 0, 1, CQL_OP_READY);
    assert_int_equal(cql_frame_end(&b, first), CQL_OK);
    assert_bytes(b.data, b.len, "\x84\x00\x00\x01\x02\x00\x00\x00\x00", 9);
    size_t second = cql_frame_begin(&b, CQL_VERSION_RESPONSE, 0, 2, CQL_OP_RESULT);
    cql_write_int(&b, 1);
    cql_buf_fail(&b, CQL_E_NOMEM);
    assert_int_equal(cql_frame_end(&b, second), CQL_E_NOMEM);
    assert_int_equal(b.len, 9);
    assert_int_equal(cql_buf_error(&b), CQL_OK);
    cql_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_round_trip),  cmocka_unit_test(test_scan_limits),
        cmocka_unit_test(test_split_frames),       cmocka_unit_test(test_response_open),
        cmocka_unit_test(test_frame_end_rollback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
