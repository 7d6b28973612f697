/* tm_message_fuzz.c — libFuzzer target for the body of POST /telemetry and
 * POST /telemetry/batch: the input goes through the same steps as in the
 * handler (src/api/telemetry.c): iot_req_json_object / iot_req_json_value
 * (depth check, jansson with JSON_REJECT_DUPLICATES), then
 * iot_tm_parse_one / iot_tm_parse_batch (src/core/tm_message.c). The first
 * byte picks single or batch; the rest is the body.
 *
 * Beyond "no crash, no leak", a parsed set must keep its promises: every
 * message has 1..100 valid names, its data_json is a JSON object with the
 * same measurements and values, metadata JSON is an object, timestamps lie
 * in [2000-01-01, now + 1 day], and seqs differ; a refusal carries a reason.
 *
 * Build for fuzzing with clang -DFUZZING -fsanitize=fuzzer,address,undefined;
 * without FUZZING it is a plain program replaying files (fuzz_replay.h). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tm_message.h"
#include "http/request.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_MS INT64_C(1795000000000) /* 2026-11-19 */
#define TS_MIN INT64_C(946684800000)
#define MAX_BODY (1u << 20)            /* IOTFLOW_MAX_BODY's default */

static void check_value(const struct iot_tm_point *p, json_t *in_data, json_t *in_dump)
{
    json_t *orig = json_object_get(in_data, p->name);
    json_t *dumped = json_object_get(in_dump, p->name);
    if (!orig || !dumped)
        abort(); /* a name not in the body, or lost in data_json */
    switch (p->value.type) {
    case IOT_TM_NUMBER:
        if (!json_is_number(orig) || !json_is_number(dumped) ||
            json_number_value(orig) != p->value.num || json_number_value(dumped) != p->value.num)
            abort();
        break;
    case IOT_TM_BOOL:
        if (!json_is_boolean(orig) || json_is_true(orig) != p->value.boolean ||
            !json_equal(orig, dumped))
            abort();
        break;
    case IOT_TM_STRING:
        if (!json_is_string(orig) || p->value.str_len > IOT_TM_STRING_MAX ||
            json_string_length(orig) != p->value.str_len ||
            memcmp(json_string_value(orig), p->value.str, p->value.str_len) != 0 ||
            !json_equal(orig, dumped))
            abort();
        break;
    default:
        abort();
    }
}

static void check_message(const struct iot_tm_message *m, json_t *obj)
{
    json_t *in_data = json_object_get(obj, "data");
    if (m->n_points < 1 || m->n_points > IOT_TM_POINTS_MAX || !m->data_json || m->data_len == 0 ||
        m->data_len > IOT_TM_DATA_JSON_MAX || m->ts < TS_MIN || m->ts > NOW_MS + 86400000 ||
        m->device_id != 7 || m->user_id != 9 || json_object_size(in_data) != m->n_points)
        abort();
    json_t *dump = json_loadb(m->data_json, m->data_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(dump) || json_object_size(dump) != m->n_points)
        abort();
    for (size_t i = 0; i < m->n_points; i++) {
        if (!iot_tm_name_valid(m->points[i].name))
            abort();
        check_value(&m->points[i], in_data, dump);
    }
    json_decref(dump);
    if (m->meta_json) {
        json_t *meta = json_loadb(m->meta_json, m->meta_len, 0, NULL);
        if (!json_is_object(meta))
            abort();
        json_decref(meta);
    }
}

static void check_parsed(const struct iot_tm_parsed *p, json_t *body, int batch)
{
    json_t *items = batch && json_is_object(body) ? json_object_get(body, "messages") : body;
    if (p->n < 1 || p->n > IOT_TM_BATCH_MAX || (!batch && p->n != 1))
        abort();
    for (size_t i = 0; i < p->n; i++) {
        check_message(&p->msgs[i], batch ? json_array_get(items, i) : items);
        for (size_t j = 0; j < i; j++)
            if (p->msgs[j].seq == p->msgs[i].seq)
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > MAX_BODY)
        return 0;
    int batch = data[0] & 1;
    /* The server hands handlers a NUL-terminated copy of the body. */
    struct iot_req r = {.method = "POST", .path = batch ? "/api/v1/telemetry/batch" : "/api/v1/telemetry"};
    r.body_len = size - 1;
    r.body = malloc(size);
    if (!r.body)
        return 0;
    memcpy(r.body, data + 1, size - 1);
    r.body[size - 1] = '\0';

    json_t *body = batch ? iot_req_json_value(&r) : iot_req_json_object(&r);
    if (!body) {
        if (r.status != 400 || !r.resp_body)
            abort(); /* a refused body is answered */
    } else {
        struct iot_tm_parsed parsed;
        char err[256] = "";
        int rc = (batch ? iot_tm_parse_batch : iot_tm_parse_one)(body, 7, 9, NOW_MS, &parsed, err,
                                                                 sizeof err);
        if (rc == IOT_OK)
            check_parsed(&parsed, body, batch);
        else if (rc == IOT_EINVAL && err[0] == '\0')
            abort(); /* a refusal says why */
        else if (rc != IOT_EINVAL && rc != IOT_ENOMEM)
            abort();
        iot_tm_parsed_free(&parsed);
        json_decref(body);
    }
    free(r.resp_body);
    free(r.path_copy);
    free(r.body);
    return 0;
}

#ifndef FUZZING
#include "fuzz_replay.h"

int main(int argc, char **argv)
{
    return fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);
}
#endif
