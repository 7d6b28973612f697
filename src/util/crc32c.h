/* crc32c.h — CRC-32C (Castagnoli), the checksum of the commit log's
 * records (src/store/commit_log.c): it catches torn and corrupted records
 * far better than a sum, and is the checksum ext4, iSCSI and Cassandra's
 * commit log use too. Table-driven, thread-safe, no state. */
#ifndef IOT_UTIL_CRC32C_H
#define IOT_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends `crc` (0 to start) over data[0..len): crc32c(crc32c(0, a), b) ==
 * crc32c(0, a || b). crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t iot_crc32c(uint32_t crc, const void *data, size_t len);

#endif
