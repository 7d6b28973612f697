/* Unit tests of util/crc32c: the standard check value, the iSCSI (RFC 3720)
 * test vectors, chaining across every split point (the 8-byte slicing path
 * and the byte-wise tail), unaligned starts, and agreement with a bit-wise
 * reference implementation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "util/crc32c.h"

#define BUF_LEN 1000

/* The textbook bit-at-a-time CRC-32C, to check the table-driven one. */
static uint32_t reference_crc32c(uint32_t crc, const unsigned char *p, size_t len)
{
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ UINT32_C(0x82F63B78) : crc >> 1;
    }
    return ~crc;
}

/* Deterministic, irregular bytes. */
static void fill(unsigned char *buf, size_t len)
{
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
}

static void check_value(void **state)
{
    assert_int_equal(iot_crc32c(0, "123456789", 9), 0xE3069283u);
}

static void empty_input(void **state)
{
    assert_int_equal(iot_crc32c(0, "", 0), 0);
    assert_int_equal(iot_crc32c(0, NULL, 0), 0);
    /* Extending by nothing changes nothing. */
    uint32_t crc = iot_crc32c(0, "abc", 3);
    assert_int_equal(iot_crc32c(crc, NULL, 0), crc);
}

static void rfc3720_vectors(void **state)
{
    unsigned char buf[32];
    memset(buf, 0x00, sizeof buf);
    assert_int_equal(iot_crc32c(0, buf, sizeof buf), 0x8A9136AAu);
    memset(buf, 0xFF, sizeof buf);
    assert_int_equal(iot_crc32c(0, buf, sizeof buf), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    assert_int_equal(iot_crc32c(0, buf, sizeof buf), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)(31 - i);
    assert_int_equal(iot_crc32c(0, buf, sizeof buf), 0x113FDB5Cu);
}

/* crc(crc(0, a), b) == crc(0, a || b) for every split of the buffer. */
static void chaining_at_every_split(void **state)
{
    unsigned char buf[BUF_LEN];
    fill(buf, sizeof buf);
    uint32_t whole = iot_crc32c(0, buf, sizeof buf);
    for (size_t split = 0; split <= sizeof buf; split++) {
        uint32_t a = iot_crc32c(0, buf, split);
        assert_int_equal(iot_crc32c(a, buf + split, sizeof buf - split), whole);
    }
}

/* Three pieces, with lengths around the 8-byte step. */
static void chaining_in_three_pieces(void **state)
{
    unsigned char buf[BUF_LEN];
    fill(buf, sizeof buf);
    uint32_t whole = iot_crc32c(0, buf, sizeof buf);
    for (size_t i = 0; i < 40; i++) {
        for (size_t j = i; j < i + 40; j++) {
            uint32_t crc = iot_crc32c(0, buf, i);
            crc = iot_crc32c(crc, buf + i, j - i);
            assert_int_equal(iot_crc32c(crc, buf + j, sizeof buf - j), whole);
        }
    }
}

/* Every length from 0 to 100 agrees with the bit-wise reference. */
static void agrees_with_reference(void **state)
{
    unsigned char buf[BUF_LEN];
    fill(buf, sizeof buf);
    for (size_t len = 0; len <= 100; len++)
        assert_int_equal(iot_crc32c(0, buf, len), reference_crc32c(0, buf, len));
    assert_int_equal(iot_crc32c(0, buf, sizeof buf), reference_crc32c(0, buf, sizeof buf));
    assert_int_equal(iot_crc32c(0x12345678u, buf, 77), reference_crc32c(0x12345678u, buf, 77));
}

/* The same bytes at every offset mod 8 give the same checksum. */
static void unaligned_starts(void **state)
{
    unsigned char data[257], buf[257 + 16];
    fill(data, sizeof data);
    uint32_t want = iot_crc32c(0, data, sizeof data);
    for (size_t off = 0; off < 16; off++) {
        memset(buf, 0xA5, sizeof buf);
        memcpy(buf + off, data, sizeof data);
        assert_int_equal(iot_crc32c(0, buf + off, sizeof data), want);
        assert_int_equal(iot_crc32c(0, buf + off, 9), reference_crc32c(0, data, 9));
    }
}

/* A single flipped bit anywhere changes the checksum. */
static void detects_bit_flips(void **state)
{
    unsigned char buf[64];
    fill(buf, sizeof buf);
    uint32_t orig = iot_crc32c(0, buf, sizeof buf);
    for (size_t bit = 0; bit < 8 * sizeof buf; bit++) {
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        assert_int_not_equal(iot_crc32c(0, buf, sizeof buf), orig);
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_value),
        cmocka_unit_test(empty_input),
        cmocka_unit_test(rfc3720_vectors),
        cmocka_unit_test(chaining_at_every_split),
        cmocka_unit_test(chaining_in_three_pieces),
        cmocka_unit_test(agrees_with_reference),
        cmocka_unit_test(unaligned_starts),
        cmocka_unit_test(detects_bit_flips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
