/* views.h — how records look in JSON: users, devices, groups, times, and
 * the reading of JSON request fields with their limits.
 *
 * Every json_t * returned is a new reference owned by the caller. Field
 * readers answer 400 themselves and return IOT_EINVAL on bad input. */
#ifndef IOT_API_VIEWS_H
#define IOT_API_VIEWS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/request.h"
#include "store/registry.h"
#include "util/json_out.h" /* iot_json_time */

json_t *iot_json_user(const struct iot_user *u);
json_t *iot_json_device(const struct iot_device *d);
/* "abcd1234…": the first characters of a key, never the key. */
json_t *iot_json_masked_key(const struct iot_device *d);
json_t *iot_json_group(const struct iot_group *g);

/* Result of reading an optional field. */
enum iot_field { IOT_FIELD_ABSENT = 0, IOT_FIELD_SET = 1 };

/* Reads obj[key] as a string of min..max bytes into buf (size > max).
 * Absent → IOT_FIELD_ABSENT (buf untouched); JSON null → "" when allowed
 * (min == 0). Wrong type or length → answers 400 and returns IOT_EINVAL. */
int iot_field_text(struct iot_req *r, json_t *obj, const char *key, size_t min, size_t max,
                   char *buf, size_t size);
/* A required field left out: absent, JSON null or "" (what the original's
 * required-field checks refuse with 400 "Missing required fields"). */
bool iot_field_missing(json_t *obj, const char *key);
/* Reads obj[key] as a boolean. */
int iot_field_bool(struct iot_req *r, json_t *obj, const char *key, bool *out);
/* Reads obj[key] as a positive integer. */
int iot_field_id(struct iot_req *r, json_t *obj, const char *key, int64_t *out);
/* Whether v is a positive integer (an integral real such as 7.0 counts, up
 * to 2^53); sets *out when it is. */
bool iot_json_id(const json_t *v, int64_t *out);

/* Checks the account fields given (NULL: not being set) against
 * core/account_rules.h; answers 400 "Validation error" naming the problem
 * and returns false when one is refused. */
bool iot_account_text_ok(struct iot_req *r, const char *username, const char *email,
                         const char *password);

/* Parses a path parameter as a positive id; false when it is not one. */
bool iot_parse_id(const char *s, int64_t *out);

/* True for "active", "inactive" and "maintenance". */
bool iot_device_status_valid(const char *status);

#endif
