/* tm_message.h — turns the JSON of telemetry submissions into store
 * messages, with every rule a device maker needs to know: measurement
 * names [A-Za-z0-9_.-]{1,64}; values number, boolean or string (≤ 1 KiB),
 * never null, objects or arrays; at most 100 measurements; metadata an
 * object of at most 32 strings; timestamp ISO-8601 within
 * [2000-01-01, now + 1 day], or the arrival time when absent.
 *
 * A parsed set owns its messages and buffers; it borrows names and string
 * values from the JSON, which it holds a reference to until freed. */
#ifndef IOT_CORE_TM_MESSAGE_H
#define IOT_CORE_TM_MESSAGE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store/telemetry.h"

#define IOT_TM_BATCH_MAX 1000
#define IOT_TM_META_MAX_KEYS 32
#define IOT_TM_META_VALUE_MAX 256

struct iot_tm_parsed {
    struct iot_tm_message *msgs;
    size_t n;
    json_t *root; /* keeps borrowed names and strings alive */
};

/* Parses one message object ({"data": {...}, "metadata": {...},
 * "timestamp": "..."}) or a batch (an array of such objects, or
 * {"messages": [...]}). Every message gets device_id, user_id and a
 * unique seq. On a rule violation returns IOT_EINVAL with a reason in err
 * (prefixed "messages[i]: " in a batch). */
int iot_tm_parse_one(json_t *body, int64_t device_id, int64_t user_id, int64_t now_ms,
                     struct iot_tm_parsed *out, char *err, size_t err_size);
int iot_tm_parse_batch(json_t *body, int64_t device_id, int64_t user_id, int64_t now_ms,
                       struct iot_tm_parsed *out, char *err, size_t err_size);
void iot_tm_parsed_free(struct iot_tm_parsed *p);

/* The typed points of a stored message, rebuilt from its measurements JSON
 * (what a store gives back: a copy from one store to another) by the rules
 * of a submission's 'data'. Sets m->points (heap: free() it) and
 * m->n_points, nothing else: the caller keeps data_json as read, byte for
 * byte. *root holds the names and strings the points borrow (json_decref
 * it after the write); on failure nothing is left to free and err says
 * why (IOT_EINVAL). */
int iot_tm_points_from_stored(const char *data, size_t len, struct iot_tm_message *m,
                              json_t **root, char *err, size_t err_size);

/* A value as a jansson value: an integer stays an integer (exact), a real a
 * real (21.0 too), so that it prints as it was sent. */
json_t *iot_tm_value_json(const struct iot_tm_value *v);

#endif
