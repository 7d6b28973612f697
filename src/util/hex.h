/* hex.h — the value of one hexadecimal digit, for the percent-decoding of
 * request paths (http/server.c) and of store URLs (store/redis). */
#ifndef IOT_UTIL_HEX_H
#define IOT_UTIL_HEX_H

/* 0..15, or -1 when c is not a hex digit (either case). */
static inline int iot_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
