/* Tests of the Murmur3Partitioner token and routing keys.
 *
 * The expected tokens were NOT computed with our code. They come from the
 * DataStax Python driver (PyPI cassandra-driver 3.30.1, installed in a
 * throwaway venv outside this repository): for each key,
 * cassandra.cmurmur3.murmur3(key) — its C extension — was checked equal to
 * the pure-Python cassandra.murmur3.murmur3(key) and to
 * cassandra.metadata.Murmur3Token.hash_fn(key), and the number copied here.
 * The int key 1 gives -4069959284402364209, the token Cassandra's own
 * documentation shows for it. Composite keys were packed as the driver
 * packs them (each part as [short len][bytes][0x00]). */
#include "unit/cql/cql_test_util.h"

#include "cql/cql_murmur3.h"

struct vector {
    const char *name;
    const char *key;
    size_t len;
    int64_t hash;
};

/* One vector per line; clang-format would split the composite key's
 * literals and reflow the table. */
/* clang-format off */
#define V(name, lit, hash) {name, lit, sizeof(lit) - 1, INT64_C(hash)}

static const struct vector vectors[] = {
    V("empty", "", 0),
    /* 01 02 … n: every tail length 1..15, one block, a block plus a tail. */
    V("seq1", "\x01", 8849112093580131862),
    V("seq2", "\x01\x02", -6527078709368617801),
    V("seq3", "\x01\x02\x03", 1901714139111438249),
    V("seq4", "\x01\x02\x03\x04", 720734999560851427),
    V("seq5", "\x01\x02\x03\x04\x05", -102277552284334578),
    V("seq6", "\x01\x02\x03\x04\x05\x06", 2901605255008601742),
    V("seq7", "\x01\x02\x03\x04\x05\x06\x07", -868125975415661079),
    V("seq8", "\x01\x02\x03\x04\x05\x06\x07\x08", -7140443302367346724),
    V("seq9", "\x01\x02\x03\x04\x05\x06\x07\x08\x09", -4639342860609086066),
    V("seq10", "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a", 6592384700563561155),
    V("seq11", "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b", -1304182196530949221),
    V("seq12", "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c", -1248788993138110812),
    V("seq13", "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d", -5765406273433769745),
    V("seq14", "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e", -8466455262646939021),
    V("seq15", "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f",
      597835946752277653),
    V("seq16", "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10",
      -5563837382979743776),
    V("seq17", "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11",
      -998492828229142869),
    /* Bytes >= 0x80 (0x80 + 7i): the sign-extension quirk in the tail. */
    V("hi1", "\x80", -5284281814142962636),
    V("hi3", "\x80\x87\x8e", 2883035100252727777),
    V("hi7", "\x80\x87\x8e\x95\x9c\xa3\xaa", -5968304505574019857),
    V("hi8", "\x80\x87\x8e\x95\x9c\xa3\xaa\xb1", 512842628024960352),
    V("hi9", "\x80\x87\x8e\x95\x9c\xa3\xaa\xb1\xb8", 683171345539645642),
    V("hi15", "\x80\x87\x8e\x95\x9c\xa3\xaa\xb1\xb8\xbf\xc6\xcd\xd4\xdb\xe2",
      3052317648445578018),
    V("hi16", "\x80\x87\x8e\x95\x9c\xa3\xaa\xb1\xb8\xbf\xc6\xcd\xd4\xdb\xe2\xe9",
      -2954592189485143609),
    V("hi17", "\x80\x87\x8e\x95\x9c\xa3\xaa\xb1\xb8\xbf\xc6\xcd\xd4\xdb\xe2\xe9\xf0",
      5211886051089384206),
    V("ff15", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
      -2195530867418009455),
    /* Typed partition keys as their serialized cells. */
    V("int 1", "\x00\x00\x00\x01", -4069959284402364209),
    V("int 42", "\x00\x00\x00\x2a", -7160136740246525330),
    V("int -1", "\xff\xff\xff\xff", 7297452126230313552),
    V("bigint 0", "\x00\x00\x00\x00\x00\x00\x00\x00", 2945182322382062539),
    V("bigint 1234567890123", "\x00\x00\x01\x1f\x71\xfb\x04\xcb", 8056999751681019901),
    V("text sensor-42", "sensor-42", 1411957477486319732),
    V("text température", "temp\xc3\xa9rature", -8496805450598119957),
    V("uuid 550e8400-e29b-41d4-a716-446655440000",
      "\x55\x0e\x84\x00\xe2\x9b\x41\xd4\xa7\x16\x44\x66\x55\x44\x00\x00", 4277286421682315655),
    /* Composite (int 7, text 'temp'). */
    V("composite", "\x00\x04\x00\x00\x00\x07\x00" "\x00\x04" "temp" "\x00", 3229349310545292810),
};
/* clang-format on */

static void test_vectors(void **state)
{
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const struct vector *v = &vectors[i];
        int64_t got = cql_murmur3_hash(v->key, v->len);
        if (got != v->hash)
            fprintf(stderr, "%s: got %lld, want %lld\n", v->name, (long long)got,
                    (long long)v->hash);
        assert_true(got == v->hash);
        if (v->len > 0)
            assert_true(cql_murmur3_token(v->key, v->len) == v->hash);
    }
}

/* The partitioner's two special cases. */
static void test_token_edges(void **state)
{
    assert_true(cql_murmur3_hash("", 0) == 0);
    assert_true(cql_murmur3_token("", 0) == INT64_MIN);
    assert_true(cql_murmur3_token(NULL, 0) == INT64_MIN);
}

static void test_routing_keys(void **state)
{
    struct cql_buf b = {0};
    struct cql_slice one = {(const uint8_t *)"\x00\x00\x00\x07", 4};
    assert_int_equal(cql_routing_key_write(&b, &one, 1), CQL_OK);
    assert_bytes(b.data, b.len, "\x00\x00\x00\x07", 4);

    cql_buf_reset(&b);
    struct cql_slice parts[] = {one, {(const uint8_t *)"temp", 4}};
    assert_int_equal(cql_routing_key_write(&b, parts, 2), CQL_OK);
    const struct vector *composite = &vectors[sizeof vectors / sizeof vectors[0] - 1];
    assert_bytes(b.data, b.len, composite->key, composite->len);
    assert_true(cql_murmur3_token(b.data, b.len) == composite->hash);

    /* Errors leave the buffer as it was. */
    size_t len = b.len;
    assert_int_equal(cql_routing_key_write(&b, parts, 0), CQL_E_INVALID);
    uint8_t *big = calloc(1, 65536);
    assert_non_null(big);
    struct cql_slice too_big[] = {one, {big, 65536}};
    assert_int_equal(cql_routing_key_write(&b, too_big, 2), CQL_E_INVALID);
    assert_int_equal(b.len, len);
    assert_int_equal(cql_buf_error(&b), CQL_OK);
    free(big);
    cql_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_token_edges),
        cmocka_unit_test(test_routing_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
