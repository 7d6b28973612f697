/* cql_frame_fuzz.c — libFuzzer target for the CQL codec's decoders: the input
 * is read as a stream of response frames (framing, envelope, every message
 * kind, then every cell checked against its column type and decoded), and
 * also handed directly to the body parsers and the type parser, so mutations
 * reach deep code without having to keep a header consistent.
 *
 * Build for fuzzing with clang -DFUZZING -fsanitize=fuzzer,address,undefined;
 * without FUZZING it is a plain program replaying files (fuzz_replay.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cql/cql_frame.h"
#include "cql/cql_msg.h"
#include "cql/cql_types.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Sinks the compiler cannot drop, so decoded values are really read. */
static volatile uint64_t sink;

static void touch(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        sink += b[i];
}

static void walk_str_list(const struct cql_str_list *l)
{
    struct cql_iter it = cql_str_list_iter(l);
    struct cql_str s;
    while (cql_str_list_next(&it, &s))
        touch(s.ptr, s.len);
}

static void decode_scalar(uint16_t id, struct cql_value v)
{
    int32_t i32;
    int64_t i64;
    int16_t i16;
    int8_t i8;
    double d;
    float f;
    bool b;
    uint8_t u[16];
    struct cql_str s;
    switch (id) {
    case CQL_TYPE_INT:
        if (cql_decode_int(v, &i32) == CQL_OK)
            sink += (uint64_t)i32;
        break;
    case CQL_TYPE_BIGINT:
    case CQL_TYPE_COUNTER:
    case CQL_TYPE_TIMESTAMP:
    case CQL_TYPE_TIME:
        if (cql_decode_bigint(v, &i64) == CQL_OK)
            sink += (uint64_t)i64;
        break;
    case CQL_TYPE_SMALLINT:
        if (cql_decode_smallint(v, &i16) == CQL_OK)
            sink += (uint64_t)i16;
        break;
    case CQL_TYPE_TINYINT:
        if (cql_decode_tinyint(v, &i8) == CQL_OK)
            sink += (uint64_t)i8;
        break;
    case CQL_TYPE_DOUBLE:
        if (cql_decode_double(v, &d) == CQL_OK)
            sink += d == d;
        break;
    case CQL_TYPE_FLOAT:
        if (cql_decode_float(v, &f) == CQL_OK)
            sink += f == f;
        break;
    case CQL_TYPE_BOOLEAN:
        if (cql_decode_boolean(v, &b) == CQL_OK)
            sink += b;
        break;
    case CQL_TYPE_UUID:
    case CQL_TYPE_TIMEUUID:
        if (cql_decode_uuid(v, u) == CQL_OK)
            touch(u, 16);
        break;
    default:
        if (cql_decode_text(v, &s) == CQL_OK)
            touch(s.ptr, s.len);
    }
}

/* A cell of a known type: validate, then decode what validation accepted. */
static void exercise_cell(const struct cql_type *t, struct cql_value v)
{
    if (cql_value_validate(t, v) != CQL_OK)
        return;
    struct cql_coll_iter it;
    int32_t n;
    struct cql_value a, b;
    switch (t->id) {
    case CQL_TYPE_LIST:
    case CQL_TYPE_SET:
        if (cql_coll_open(v, &it, &n) == CQL_OK)
            while (cql_coll_next(&it, &a))
                exercise_cell(&t->children[0], a);
        break;
    case CQL_TYPE_MAP:
        if (cql_map_open(v, &it, &n) == CQL_OK)
            while (cql_map_next(&it, &a, &b)) {
                exercise_cell(&t->children[0], a);
                exercise_cell(&t->children[1], b);
            }
        if (t->children[0].id == CQL_TYPE_VARCHAR && t->children[1].id == CQL_TYPE_VARCHAR) {
            struct cql_str keys[8], vals[8];
            size_t count;
            cql_decode_map_text(v, keys, vals, 8, &count);
        }
        break;
    default:
        decode_scalar(t->id, v);
    }
}

static void exercise_metadata(const struct cql_metadata *m)
{
    char text[256];
    for (int32_t i = 0; m->columns && i < m->n_columns; i++) {
        touch(m->columns[i].name.ptr, m->columns[i].name.len);
        cql_type_format(m->columns[i].type, text, sizeof text);
    }
    for (int32_t i = 0; i < m->pk_count; i++)
        sink += m->pk_indices[i];
}

static void exercise_rows(const struct cql_rows *rows)
{
    exercise_metadata(&rows->meta);
    struct cql_value cells[64];
    struct cql_row_iter it = cql_rows_iter(rows);
    while (cql_rows_next(&it, cells, 64)) {
        int32_t n = rows->meta.n_columns < 64 ? rows->meta.n_columns : 64;
        for (int32_t i = 0; i < n; i++) {
            if (rows->meta.columns)
                exercise_cell(rows->meta.columns[i].type, cells[i]);
            else if (cells[i].len > 0)
                touch(cells[i].ptr, (size_t)cells[i].len);
        }
    }
}

static void exercise_result(const struct cql_result *r)
{
    switch (r->kind) {
    case CQL_RESULT_ROWS:
        exercise_rows(&r->rows);
        break;
    case CQL_RESULT_PREPARED:
        touch(r->prepared.id.ptr, r->prepared.id.len);
        exercise_metadata(&r->prepared.params);
        exercise_metadata(&r->prepared.result);
        break;
    case CQL_RESULT_SCHEMA_CHANGE:
        walk_str_list(&r->schema_change.arg_types);
        break;
    default:
        break;
    }
}

static void exercise_message(const struct cql_message *m)
{
    walk_str_list(&m->env.warnings);
    struct cql_iter it = cql_bytes_map_iter(&m->env.custom_payload);
    struct cql_str k;
    struct cql_value v;
    while (cql_bytes_map_next(&it, &k, &v))
        touch(k.ptr, k.len);
    switch (m->env.header.opcode) {
    case CQL_OP_ERROR:
        touch(m->error.message.ptr, m->error.message.len);
        walk_str_list(&m->error.arg_types);
        break;
    case CQL_OP_SUPPORTED: {
        struct cql_str_list vals;
        cql_multimap_get(&m->supported, "CQL_VERSION", &vals);
        struct cql_iter mit = cql_multimap_iter(&m->supported);
        while (cql_multimap_next(&mit, &k, &vals))
            walk_str_list(&vals);
        break;
    }
    case CQL_OP_RESULT:
        exercise_result(&m->result);
        break;
    case CQL_OP_EVENT:
        walk_str_list(&m->event.schema.arg_types);
        break;
    default:
        break;
    }
}

/* The input as a byte stream, the way the connection layer will frame it. */
static void fuzz_stream(const uint8_t *data, size_t size)
{
    while (size > 0) {
        size_t frame_len, missing;
        if (cql_frame_scan(data, size, CQL_VERSION_RESPONSE, &frame_len, &missing) != CQL_OK)
            return;
        struct cql_message m;
        if (cql_message_decode(data, frame_len, &m) == CQL_OK) {
            exercise_message(&m);
            cql_message_free(&m);
        }
        data += frame_len;
        size -= frame_len;
    }
}

/* The input as a bare body of each kind, and as a type option. */
static void fuzz_bodies(const uint8_t *data, size_t size)
{
    struct cql_slice body = {data, size};
    struct cql_result res;
    if (cql_parse_result(body, &res) == CQL_OK) {
        exercise_result(&res);
        cql_result_free(&res);
    }
    struct cql_error_body err;
    if (cql_parse_error(body, &err) == CQL_OK)
        walk_str_list(&err.arg_types);
    struct cql_event ev;
    if (cql_parse_event(body, &ev) == CQL_OK)
        walk_str_list(&ev.schema.arg_types);
    struct cql_reader r = cql_reader_make(data, size);
    struct cql_type *t;
    if (cql_type_parse(&r, &t) == CQL_OK) {
        /* The rest of the input as a cell of that type. */
        struct cql_value cell = {data + r.pos, (int32_t)(cql_reader_left(&r) & INT32_MAX)};
        exercise_cell(t, cell);
        cql_type_free(t);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > CQL_FRAME_HEADER_SIZE + CQL_FRAME_MAX_BODY)
        return 0;
    fuzz_stream(data, size);
    fuzz_bodies(data, size);
    return 0;
}

#ifndef FUZZING
#include "fuzz_replay.h"

int main(int argc, char **argv)
{
    return fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);
}
#endif
