/* json_in.h — reading JSON a client sent (an HTTP body, an MQTT payload)
 * with the same rules everywhere: nesting at most IOT_JSON_MAX_DEPTH deep
 * (checked before jansson recurses), no duplicate keys, no "\u0000", and
 * integers beyond int64 read as reals (util/json_bigint.h). */
#ifndef IOT_UTIL_JSON_IN_H
#define IOT_UTIL_JSON_IN_H

#include <jansson.h>
#include <stddef.h>

#define IOT_JSON_MAX_DEPTH 32

/* The value in text[0..len), or NULL with a sentence saying why in err. */
json_t *iot_json_parse(const char *text, size_t len, char *err, size_t err_size);

#endif
