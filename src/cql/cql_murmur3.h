/* cql_murmur3.h — the token Cassandra's Murmur3Partitioner gives a partition
 * key (token-aware routing) and the routing-key bytes it is computed on:
 * MurmurHash3 x64_128, first 64 bits, with Cassandra's quirk that tail bytes
 * are sign-extended Java bytes (differs from plain Murmur3 for bytes >= 0x80).
 * Ownership: routing keys are appended to a caller's cql_buf. Pure functions. */
#ifndef CQL_MURMUR3_H
#define CQL_MURMUR3_H

#include <stddef.h>
#include <stdint.h>

#include "cql/cql_buf.h"

/* The first 64 bits of Cassandra's MurmurHash3 x64_128 of key[0..len). */
int64_t cql_murmur3_hash(const void *key, size_t len);

/* The partitioner token: the hash, except that an empty key is the minimum
 * token (INT64_MIN) and a hash of INT64_MIN becomes INT64_MAX (Cassandra
 * keeps INT64_MIN for the minimum token only). */
int64_t cql_murmur3_token(const void *key, size_t len);

/* Appends the routing key of a partition key to b: one component is its
 * value bytes as they are; several are each written as
 * [short length][bytes][0x00] (the composite encoding). Components come in
 * partition-key order (struct cql_metadata.pk_indices gives it for prepared
 * statements). A component longer than 65535 bytes with n > 1, or n == 0:
 * CQL_E_INVALID and b is unchanged. */
int cql_routing_key_write(struct cql_buf *b, const struct cql_slice *parts, size_t n);

#endif
