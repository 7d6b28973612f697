/* json_bigint.h — JSON integers beyond int64 read as reals.
 *
 * JSON has one number type; jansson refuses an integer literal outside
 * int64 ("too big integer") and so a whole, valid body with one in a field
 * nobody reads. iot_json_widen_bigints() copies the text with ".0" after
 * each such literal, so the retried parse takes it as a real (a double,
 * as a JavaScript client would). Pure function, any thread. */
#ifndef IOT_UTIL_JSON_BIGINT_H
#define IOT_UTIL_JSON_BIGINT_H

#include <stddef.h>

/* A malloc'd copy of s[0..len) (NUL-terminated, length in *out_len) with
 * ".0" after every integer literal outside strings that int64 cannot hold;
 * NULL when there is none (or out of memory). The caller frees it. The text
 * need not be valid JSON: what is not a number is copied as it is. */
char *iot_json_widen_bigints(const char *s, size_t len, size_t *out_len);

#endif
