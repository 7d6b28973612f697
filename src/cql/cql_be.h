/* cql_be.h — big-endian loads and stores shared by the codec's .c files
 * (internal: not part of the library's API). Byte by byte, so alignment and
 * host endianness never matter and no signed shift is ever undefined. */
#ifndef CQL_BE_H
#define CQL_BE_H

#include <stdint.h>

static inline uint16_t cql_load16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t cql_load32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t cql_load64(const uint8_t *p)
{
    return (uint64_t)cql_load32(p) << 32 | cql_load32(p + 4);
}

static inline void cql_store16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void cql_store32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void cql_store64(uint8_t *p, uint64_t v)
{
    cql_store32(p, (uint32_t)(v >> 32));
    cql_store32(p + 4, (uint32_t)v);
}

#endif
