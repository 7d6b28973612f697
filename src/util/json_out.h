/* json_out.h — JSON text with real numbers in their shortest round-trip
 * form. jansson writes a real with 17 significant digits (0.47341899999999998
 * for 0.473419); these functions write the fewest digits that read back to
 * the same double, and keep it a real ("1.0", "-0.0", "1e21"), so a client
 * parsing the answer gets exactly the double the server had.
 *
 * Notation follows %.17g's choice: plain decimals for exponents -4..16,
 * scientific ("1.5e-7", "1.2345678901234568e20") outside. Integers are never
 * touched. Pure functions, thread-safe; assume the "C" numeric locale (the
 * server never calls setlocale). Returned strings are the caller's (free). */
#ifndef IOT_UTIL_JSON_OUT_H
#define IOT_UTIL_JSON_OUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Longest text iot_json_real_text writes, with its NUL: "-" + 17 digits +
 * "." + "e-324"-style exponent, or a plain decimal of up to 17 + 4 zeros. */
#define IOT_JSON_REAL_MAX 32

/* Writes the shortest round-trip text of the finite double d into buf
 * (at least IOT_JSON_REAL_MAX bytes) and returns its length, or -1 when d
 * is not finite (JSON has no such number). */
int iot_json_real_text(double d, char *buf);

/* json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) with every real written by
 * iot_json_real_text; NULL when jansson cannot dump v or out of memory. */
char *iot_json_dumps(const json_t *v);

/* Rewrites every number token of `in` that is a real (has '.', 'e' or
 * 'E') and lies outside strings to iot_json_real_text's form; everything
 * else is copied as is (also from text that is not JSON). Returns the new
 * text, NUL-terminated, with its length in *out_len; NULL when out of
 * memory. */
char *iot_json_shorten_reals(const char *in, size_t len, size_t *out_len);

/* A time in ms as the API writes it: an ISO-8601 string, or JSON null for
 * 0 ("never"). A new reference. */
json_t *iot_json_time(int64_t ms);

#endif
