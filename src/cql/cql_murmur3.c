/* cql_murmur3.c — MurmurHash3 x64_128 as Cassandra computes it (tail bytes
 * sign-extended), the Murmur3Partitioner token, and routing keys. Written
 * from the algorithm's description; all arithmetic is on uint64_t so the
 * wrap-arounds Java relies on are defined behaviour here too. */
#include "cql/cql_murmur3.h"

#include "cql/cql_error.h"

#define C1 UINT64_C(0x87c37b91114253d5)
#define C2 UINT64_C(0x4cf5ad432745937f)

static uint64_t rotl64(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

static uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= UINT64_C(0xff51afd7ed558ccd);
    k ^= k >> 33;
    k *= UINT64_C(0xc4ceb9fe1a85ec53);
    k ^= k >> 33;
    return k;
}

/* Block words are little-endian with bytes taken unsigned (Cassandra masks
 * them with 0xff there); only the tail keeps the sign. */
static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* A tail byte as Java's (long) cast of a signed byte would give it. */
static uint64_t java_byte(uint8_t b)
{
    return (uint64_t)(int64_t)(int8_t)b;
}

static uint64_t mix_k1(uint64_t k1)
{
    k1 *= C1;
    k1 = rotl64(k1, 31);
    return k1 * C2;
}

static uint64_t mix_k2(uint64_t k2)
{
    k2 *= C2;
    k2 = rotl64(k2, 33);
    return k2 * C1;
}

int64_t cql_murmur3_hash(const void *key, size_t len)
{
    const uint8_t *data = key;
    size_t n_blocks = len / 16;
    uint64_t h1 = 0, h2 = 0;

    for (size_t i = 0; i < n_blocks; i++) {
        uint64_t k1 = load_le64(data + 16 * i), k2 = load_le64(data + 16 * i + 8);
        h1 ^= mix_k1(k1);
        h1 = rotl64(h1, 27) + h2;
        h1 = h1 * 5 + 0x52dce729;
        h2 ^= mix_k2(k2);
        h2 = rotl64(h2, 31) + h1;
        h2 = h2 * 5 + 0x38495ab5;
    }

    const uint8_t *tail = data + 16 * n_blocks;
    size_t rest = len & 15;
    uint64_t k1 = 0, k2 = 0;
    for (size_t i = rest; i > 8; i--) /* bytes 8..14 go to k2 */
        k2 ^= java_byte(tail[i - 1]) << (8 * (i - 9));
    if (rest > 8)
        h2 ^= mix_k2(k2);
    for (size_t i = rest < 8 ? rest : 8; i > 0; i--) /* bytes 0..7 go to k1 */
        k1 ^= java_byte(tail[i - 1]) << (8 * (i - 1));
    if (rest > 0)
        h1 ^= mix_k1(k1);

    h1 ^= (uint64_t)len;
    h2 ^= (uint64_t)len;
    h1 += h2;
    h2 += h1;
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 += h2;
    return (int64_t)h1;
}

int64_t cql_murmur3_token(const void *key, size_t len)
{
    if (len == 0)
        return INT64_MIN;
    int64_t h = cql_murmur3_hash(key, len);
    return h == INT64_MIN ? INT64_MAX : h;
}

int cql_routing_key_write(struct cql_buf *b, const struct cql_slice *parts, size_t n)
{
    if (n == 0)
        return CQL_E_INVALID;
    size_t start = b->len;
    if (n == 1) {
        cql_write_raw(b, parts[0].ptr, parts[0].len);
    } else {
        for (size_t i = 0; i < n; i++) {
            cql_write_short_bytes(b, parts[i].ptr, parts[i].len);
            cql_write_byte(b, 0);
        }
    }
    int rc = cql_buf_error(b);
    if (rc)
        cql_buf_truncate(b, start);
    return rc;
}
