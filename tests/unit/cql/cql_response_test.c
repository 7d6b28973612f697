/* Tests of the CQL response decoders on frames written by hand from
 * native_protocol_v4.spec (cql_test_frames.h): every kind decodes to the
 * fields it holds, every ERROR code with its extra fields, the envelope
 * flags; and robustness: every truncation of every frame fails cleanly,
 * hostile counts are refused before any allocation or loop. */
#include "unit/cql/cql_test_util.h"

#include "cql/cql_msg.h"
#include "unit/cql/cql_test_frames.h"

static const struct test_frame *frame_named(const char *name)
{
    for (size_t i = 0; i < N_RESPONSE_FRAMES; i++)
        if (strcmp(response_frames[i].name, name) == 0)
            return &response_frames[i];
    fprintf(stderr, "no test frame %s\n", name);
    fail();
    return NULL;
}

static void decode_named(const char *name, struct cql_message *m)
{
    const struct test_frame *f = frame_named(name);
    int rc = cql_message_decode(f->data, f->len, m);
    if (rc != CQL_OK)
        fprintf(stderr, "%s: %s\n", name, cql_strerror(rc));
    assert_int_equal(rc, CQL_OK);
}

static void test_every_frame_decodes(void **state)
{
    for (size_t i = 0; i < N_RESPONSE_FRAMES; i++) {
        const struct test_frame *f = &response_frames[i];
        size_t frame_len, missing;
        int rc = cql_frame_scan(f->data, f->len, CQL_VERSION_RESPONSE, &frame_len, &missing);
        if (rc != CQL_OK || frame_len != f->len)
            fprintf(stderr, "%s: scan %d, frame_len %zu, have %zu\n", f->name, rc, frame_len,
                    f->len);
        assert_int_equal(rc, CQL_OK);
        assert_int_equal(frame_len, f->len);
        struct cql_message m;
        rc = cql_message_decode(f->data, f->len, &m);
        if (rc != CQL_OK)
            fprintf(stderr, "%s: %s\n", f->name, cql_strerror(rc));
        assert_int_equal(rc, CQL_OK);
        cql_message_free(&m);
    }
}

static void test_ready_authenticate_supported(void **state)
{
    struct cql_message m;
    decode_named("ready", &m);
    assert_int_equal(m.env.header.opcode, CQL_OP_READY);
    assert_int_equal(m.env.header.stream, 1);
    cql_message_free(&m);

    decode_named("authenticate", &m);
    assert_str(m.authenticator, "org.apache.cassandra.auth.PasswordAuthenticator");

    decode_named("auth_challenge", &m);
    assert_int_equal(m.token.len, 2);
    assert_bytes(m.token.ptr, 2, "\x01\x02", 2);
    decode_named("auth_success_null", &m);
    assert_int_equal(m.token.len, CQL_VALUE_NULL);

    decode_named("supported", &m);
    assert_int_equal(m.supported.count, 2);
    struct cql_str_list vals;
    assert_true(cql_multimap_get(&m.supported, "COMPRESSION", &vals));
    assert_int_equal(vals.count, 2);
    struct cql_iter it = cql_str_list_iter(&vals);
    struct cql_str s;
    assert_true(cql_str_list_next(&it, &s));
    assert_str(s, "snappy");
    assert_true(cql_str_list_next(&it, &s));
    assert_str(s, "lz4");
    assert_false(cql_str_list_next(&it, &s));
    assert_true(cql_multimap_get(&m.supported, "CQL_VERSION", &vals));
    it = cql_str_list_iter(&vals);
    assert_true(cql_str_list_next(&it, &s));
    assert_str(s, "3.4.7");
    assert_false(cql_multimap_get(&m.supported, "PROTOCOL_VERSIONS", &vals));
}

/* Every ERROR code maps to its enum value and keeps the message. */
static void test_error_codes(void **state)
{
    static const struct {
        const char *frame;
        int32_t code;
        enum cql_err err;
        const char *message;
    } cases[] = {
        {"error_server", 0x0000, CQL_E_SRV_SERVER, "boom"},
        {"error_protocol", 0x000A, CQL_E_SRV_PROTOCOL, "bad"},
        {"error_auth", 0x0100, CQL_E_SRV_AUTH, "Bad creds"},
        {"error_unavailable", 0x1000, CQL_E_SRV_UNAVAILABLE, "no"},
        {"error_overloaded", 0x1001, CQL_E_SRV_OVERLOADED, "ov"},
        {"error_bootstrapping", 0x1002, CQL_E_SRV_BOOTSTRAPPING, "bs"},
        {"error_truncate", 0x1003, CQL_E_SRV_TRUNCATE, "tr"},
        {"error_write_timeout", 0x1100, CQL_E_SRV_WRITE_TIMEOUT, "wt"},
        {"error_read_timeout", 0x1200, CQL_E_SRV_READ_TIMEOUT, "rt"},
        {"error_read_failure", 0x1300, CQL_E_SRV_READ_FAILURE, "rf"},
        {"error_function_failure", 0x1400, CQL_E_SRV_FUNCTION_FAILURE, "ff"},
        {"error_write_failure", 0x1500, CQL_E_SRV_WRITE_FAILURE, "wf"},
        {"error_syntax", 0x2000, CQL_E_SRV_SYNTAX, "syn"},
        {"error_unauthorized", 0x2100, CQL_E_SRV_UNAUTHORIZED, "no"},
        {"error_invalid", 0x2200, CQL_E_SRV_INVALID, "inv"},
        {"error_config", 0x2300, CQL_E_SRV_CONFIG, "cfg"},
        {"error_already_exists", 0x2400, CQL_E_SRV_ALREADY_EXISTS, "ae"},
        {"error_unprepared", 0x2500, CQL_E_SRV_UNPREPARED, "up"},
        {"error_unknown_code", 0x7777, CQL_E_SRV_UNKNOWN, "?"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cql_message m;
        decode_named(cases[i].frame, &m);
        assert_int_equal(m.env.header.opcode, CQL_OP_ERROR);
        assert_int_equal(m.error.code, cases[i].code);
        assert_int_equal(m.error.err, cases[i].err);
        assert_str(m.error.message, cases[i].message);
        assert_true(cql_err_is_server(m.error.err));
        if (cases[i].err != CQL_E_SRV_UNKNOWN)
            assert_int_equal(cql_err_server_code(m.error.err), cases[i].code);
        assert_string_not_equal(cql_strerror(m.error.err), "unknown error");
    }
}

static void test_error_extra_fields(void **state)
{
    struct cql_message m;
    decode_named("error_unavailable", &m);
    assert_int_equal(m.error.consistency, CQL_CONSISTENCY_QUORUM);
    assert_int_equal(m.error.required, 3);
    assert_int_equal(m.error.alive, 1);

    decode_named("error_write_timeout", &m);
    assert_int_equal(m.error.consistency, CQL_CONSISTENCY_ONE);
    assert_int_equal(m.error.received, 0);
    assert_int_equal(m.error.block_for, 1);
    assert_str(m.error.write_type, "SIMPLE");

    decode_named("error_read_timeout", &m);
    assert_int_equal(m.error.consistency, CQL_CONSISTENCY_LOCAL_QUORUM);
    assert_int_equal(m.error.received, 1);
    assert_int_equal(m.error.block_for, 2);
    assert_true(m.error.data_present);

    decode_named("error_read_failure", &m);
    assert_int_equal(m.error.consistency, CQL_CONSISTENCY_QUORUM);
    assert_int_equal(m.error.received, 1);
    assert_int_equal(m.error.block_for, 2);
    assert_int_equal(m.error.num_failures, 1);
    assert_false(m.error.data_present);

    decode_named("error_function_failure", &m);
    assert_str(m.error.keyspace, "ks");
    assert_str(m.error.function, "f");
    assert_int_equal(m.error.arg_types.count, 2);
    struct cql_iter it = cql_str_list_iter(&m.error.arg_types);
    struct cql_str s;
    assert_true(cql_str_list_next(&it, &s));
    assert_str(s, "int");
    assert_true(cql_str_list_next(&it, &s));
    assert_str(s, "text");

    decode_named("error_write_failure", &m);
    assert_int_equal(m.error.consistency, CQL_CONSISTENCY_ALL);
    assert_int_equal(m.error.received, 2);
    assert_int_equal(m.error.block_for, 3);
    assert_int_equal(m.error.num_failures, 1);
    assert_str(m.error.write_type, "BATCH_LOG");

    decode_named("error_already_exists", &m);
    assert_str(m.error.keyspace, "ks");
    assert_str(m.error.table, "t");

    decode_named("error_unprepared", &m);
    assert_bytes(m.error.unprepared_id.ptr, m.error.unprepared_id.len, "\xde\xad\xbe\xef", 4);
}

static void test_result_simple_kinds(void **state)
{
    struct cql_message m;
    decode_named("result_void", &m);
    assert_int_equal(m.result.kind, CQL_RESULT_VOID);

    decode_named("result_set_keyspace", &m);
    assert_int_equal(m.result.kind, CQL_RESULT_SET_KEYSPACE);
    assert_str(m.result.keyspace, "iot");

    decode_named("result_schema_table", &m);
    assert_int_equal(m.result.kind, CQL_RESULT_SCHEMA_CHANGE);
    assert_str(m.result.schema_change.change_type, "CREATED");
    assert_str(m.result.schema_change.target, "TABLE");
    assert_str(m.result.schema_change.keyspace, "ks");
    assert_str(m.result.schema_change.name, "t");

    decode_named("result_schema_keyspace", &m);
    assert_str(m.result.schema_change.change_type, "DROPPED");
    assert_str(m.result.schema_change.target, "KEYSPACE");
    assert_str(m.result.schema_change.keyspace, "ks");
    assert_int_equal(m.result.schema_change.name.len, 0);

    decode_named("result_schema_function", &m);
    assert_str(m.result.schema_change.target, "FUNCTION");
    assert_str(m.result.schema_change.name, "f");
    assert_int_equal(m.result.schema_change.arg_types.count, 1);
}

static void test_rows_global(void **state)
{
    struct cql_message m;
    decode_named("result_rows_global", &m);
    const struct cql_rows *rows = &m.result.rows;
    assert_int_equal(m.result.kind, CQL_RESULT_ROWS);
    assert_int_equal(rows->meta.flags, CQL_META_GLOBAL_TABLES_SPEC);
    assert_int_equal(rows->meta.n_columns, 2);
    assert_int_equal(rows->meta.paging_state.len, CQL_VALUE_NULL);
    assert_non_null(rows->meta.columns);
    assert_str(rows->meta.columns[0].keyspace, "ks");
    assert_str(rows->meta.columns[1].table, "t");
    assert_str(rows->meta.columns[0].name, "k");
    assert_int_equal(rows->meta.columns[0].type->id, CQL_TYPE_INT);
    assert_str(rows->meta.columns[1].name, "v");
    assert_int_equal(rows->meta.columns[1].type->id, CQL_TYPE_VARCHAR);
    assert_int_equal(rows->n_rows, 2);

    struct cql_row_iter it = cql_rows_iter(rows);
    struct cql_value cells[2];
    int32_t k;
    struct cql_str v;
    assert_true(cql_rows_next(&it, cells, 2));
    assert_int_equal(cql_decode_int(cells[0], &k), CQL_OK);
    assert_int_equal(k, 1);
    assert_int_equal(cql_decode_text(cells[1], &v), CQL_OK);
    assert_str(v, "a");
    /* Zero-copy: the cell points into the frame itself. */
    const struct test_frame *f = frame_named("result_rows_global");
    assert_true(cells[1].ptr > f->data && cells[1].ptr < f->data + f->len);
    assert_true(cql_rows_next(&it, cells, 2));
    assert_int_equal(cql_decode_int(cells[0], &k), CQL_OK);
    assert_int_equal(k, 2);
    assert_int_equal(cql_decode_text(cells[1], &v), CQL_E_NULL);
    assert_false(cql_rows_next(&it, cells, 2));
    cql_message_free(&m);
}

static void test_rows_no_metadata_paged(void **state)
{
    struct cql_message m;
    decode_named("result_rows_no_metadata_paged", &m);
    const struct cql_rows *rows = &m.result.rows;
    assert_int_equal(rows->meta.flags, CQL_META_HAS_MORE_PAGES | CQL_META_NO_METADATA);
    assert_null(rows->meta.columns);
    assert_int_equal(rows->meta.n_columns, 1);
    assert_bytes(rows->meta.paging_state.ptr, (size_t)rows->meta.paging_state.len, "\xab\xcd", 2);
    assert_int_equal(rows->n_rows, 1);
    /* A paging state goes straight back into the next QUERY. */
    struct cql_buf b = {0};
    struct cql_query_params p = {
        .paging_state = {rows->meta.paging_state.ptr, (size_t)rows->meta.paging_state.len}};
    assert_int_equal(cql_build_query(&b, 1, cql_str_c("q"), &p), CQL_OK);
    assert_bytes(b.data + b.len - 6, 6, "\x00\x00\x00\x02\xab\xcd", 6);
    cql_buf_free(&b);
    /* cap smaller than the row: only cap cells, the rest skipped. */
    struct cql_row_iter it = cql_rows_iter(rows);
    assert_true(cql_rows_next(&it, NULL, 0));
    assert_false(cql_rows_next(&it, NULL, 0));
    cql_message_free(&m);
}

static void test_rows_nested(void **state)
{
    struct cql_message m;
    decode_named("result_rows_nested", &m);
    const struct cql_column *col = &m.result.rows.meta.columns[0];
    assert_str(col->keyspace, "ks");
    assert_str(col->table, "t");
    assert_str(col->name, "m");
    char text[64];
    cql_type_format(col->type, text, sizeof text);
    assert_string_equal(text, "map<varchar, list<int>>");

    struct cql_row_iter it = cql_rows_iter(&m.result.rows);
    struct cql_value cell;
    assert_true(cql_rows_next(&it, &cell, 1));
    assert_int_equal(cql_value_validate(col->type, cell), CQL_OK);
    struct cql_coll_iter map;
    int32_t n;
    assert_int_equal(cql_map_open(cell, &map, &n), CQL_OK);
    assert_int_equal(n, 1);
    struct cql_value key, val;
    assert_true(cql_map_next(&map, &key, &val));
    struct cql_str ks;
    assert_int_equal(cql_decode_text(key, &ks), CQL_OK);
    assert_str(ks, "a");
    int32_t items[4];
    size_t n_items;
    assert_int_equal(cql_decode_list(val, CQL_TYPE_INT, items, 4, &n_items), CQL_OK);
    assert_int_equal(n_items, 2);
    assert_int_equal(items[0], 1);
    assert_int_equal(items[1], 2);
    assert_false(cql_map_next(&map, &key, &val));
    cql_message_free(&m);
}

static void test_rows_udt_tuple_custom(void **state)
{
    struct cql_message m;
    decode_named("result_rows_udt_tuple_custom", &m);
    const struct cql_metadata *meta = &m.result.rows.meta;
    assert_int_equal(meta->n_columns, 3);
    const struct cql_type *u = meta->columns[0].type;
    assert_int_equal(u->id, CQL_TYPE_UDT);
    assert_str(u->keyspace, "ks");
    assert_str(u->udt_name, "pt");
    assert_int_equal(u->n_children, 2);
    assert_str(u->children[0].field_name, "x");
    assert_int_equal(u->children[0].id, CQL_TYPE_INT);
    assert_str(u->children[1].field_name, "y");
    assert_int_equal(u->children[1].id, CQL_TYPE_DOUBLE);
    char text[64];
    cql_type_format(meta->columns[1].type, text, sizeof text);
    assert_string_equal(text, "tuple<int, varchar>");
    assert_int_equal(meta->columns[2].type->id, CQL_TYPE_CUSTOM);
    assert_str(meta->columns[2].type->custom_class, "org.X");
    assert_int_equal(m.result.rows.n_rows, 0);
    cql_message_free(&m);
}

static void test_prepared(void **state)
{
    struct cql_message m;
    decode_named("result_prepared", &m);
    const struct cql_prepared *p = &m.result.prepared;
    assert_int_equal(m.result.kind, CQL_RESULT_PREPARED);
    assert_bytes(p->id.ptr, p->id.len, "\xde\xad\xbe\xef", 4);
    assert_int_equal(p->params.n_columns, 2);
    assert_int_equal(p->params.pk_count, 1);
    assert_int_equal(p->params.pk_indices[0], 0);
    assert_str(p->params.columns[0].name, "k");
    assert_int_equal(p->params.columns[0].type->id, CQL_TYPE_INT);
    assert_str(p->params.columns[1].keyspace, "ks");
    assert_int_equal(p->result.flags, CQL_META_NO_METADATA);
    assert_int_equal(p->result.n_columns, 0);
    assert_null(p->result.columns);
    cql_message_free(&m);

    decode_named("result_prepared_select", &m);
    p = &m.result.prepared;
    assert_int_equal(p->result.n_columns, 1);
    assert_str(p->result.columns[0].name, "v");
    assert_int_equal(p->result.columns[0].type->id, CQL_TYPE_VARCHAR);
    cql_message_free(&m);
}

static void test_events(void **state)
{
    struct cql_message m;
    decode_named("event_topology", &m);
    assert_int_equal(m.env.header.stream, -1);
    assert_int_equal(m.event.type, CQL_EVENT_TOPOLOGY_CHANGE);
    assert_str(m.event.change, "NEW_NODE");
    assert_int_equal(m.event.node.addr_len, 4);
    assert_bytes(m.event.node.addr, 4, "\x7f\x00\x00\x02", 4);
    assert_int_equal(m.event.node.port, 9042);

    decode_named("event_status_v6", &m);
    assert_int_equal(m.event.type, CQL_EVENT_STATUS_CHANGE);
    assert_str(m.event.change, "DOWN");
    assert_int_equal(m.event.node.addr_len, 16);
    assert_int_equal(m.event.node.addr[15], 1);
    assert_int_equal(m.event.node.port, 9042);

    decode_named("event_schema_type", &m);
    assert_int_equal(m.event.type, CQL_EVENT_SCHEMA_CHANGE);
    assert_str(m.event.schema.change_type, "UPDATED");
    assert_str(m.event.schema.target, "TYPE");
    assert_str(m.event.schema.keyspace, "ks");
    assert_str(m.event.schema.name, "pt");

    decode_named("event_schema_aggregate", &m);
    assert_str(m.event.schema.target, "AGGREGATE");
    assert_str(m.event.schema.name, "agg");
    assert_int_equal(m.event.schema.arg_types.count, 2);

    /* An event type from a later version is reported, not refused. */
    /* clang-format off */
    static const uint8_t future[] = "\x84\x00\xff\xff\x0c\x00\x00\x00\x08"
                                    "\x00\x06" "FUTURE";
    /* clang-format on */
    assert_int_equal(cql_message_decode(future, sizeof future - 1, &m), CQL_OK);
    assert_int_equal(m.event.type, CQL_EVENT_UNKNOWN);
    assert_str(m.event.type_name, "FUTURE");
}

static void test_envelope_flags(void **state)
{
    struct cql_message m;
    decode_named("void_tracing", &m);
    assert_true(m.env.has_tracing_id);
    assert_int_equal(m.env.tracing_id[0], 0x01);
    assert_int_equal(m.env.tracing_id[15], 0x10);
    assert_int_equal(m.env.warnings.count, 0);
    assert_int_equal(m.result.kind, CQL_RESULT_VOID);

    decode_named("void_warnings", &m);
    assert_false(m.env.has_tracing_id);
    assert_int_equal(m.env.warnings.count, 1);
    struct cql_iter it = cql_str_list_iter(&m.env.warnings);
    struct cql_str s;
    assert_true(cql_str_list_next(&it, &s));
    assert_str(s, "Batch too large");
    assert_int_equal(m.result.kind, CQL_RESULT_VOID);

    decode_named("void_custom_payload", &m);
    assert_int_equal(m.env.custom_payload.count, 1);
    it = cql_bytes_map_iter(&m.env.custom_payload);
    struct cql_value v;
    assert_true(cql_bytes_map_next(&it, &s, &v));
    assert_str(s, "k");
    assert_bytes(v.ptr, (size_t)v.len, "v1", 2);
    assert_int_equal(m.result.kind, CQL_RESULT_VOID);

    decode_named("void_all_envelope", &m);
    assert_true(m.env.has_tracing_id);
    assert_int_equal(m.env.tracing_id[0], 0xf0);
    assert_int_equal(m.env.warnings.count, 1);
    assert_int_equal(m.env.custom_payload.count, 1);
    assert_int_equal(m.result.kind, CQL_RESULT_VOID);

    decode_named("rows_tracing_warnings", &m);
    assert_true(m.env.has_tracing_id);
    it = cql_str_list_iter(&m.env.warnings);
    assert_true(cql_str_list_next(&it, &s));
    assert_str(s, "slow");
    assert_int_equal(m.result.rows.n_rows, 2);
    struct cql_row_iter rows = cql_rows_iter(&m.result.rows);
    struct cql_value cell;
    int64_t big;
    assert_true(cql_rows_next(&rows, &cell, 1));
    assert_int_equal(cql_decode_bigint(cell, &big), CQL_OK);
    assert_int_equal(big, 7);
    cql_message_free(&m);

    decode_named("ready_unknown_flags", &m);
    assert_int_equal(m.env.header.flags, 0x50);
    assert_int_equal(m.env.header.opcode, CQL_OP_READY);
}

/* Cut the buffer short (header still claiming the full body): every length
 * below the frame's is an error, never a crash or an over-read. */
static void test_every_truncated_buffer_fails(void **state)
{
    for (size_t i = 0; i < N_RESPONSE_FRAMES; i++) {
        const struct test_frame *f = &response_frames[i];
        for (size_t len = 0; len < f->len; len++) {
            uint8_t *copy = malloc(len + 1); /* exact size: ASan sees any over-read */
            assert_non_null(copy);
            memcpy(copy, f->data, len);
            struct cql_message m;
            int rc = cql_message_decode(copy, len, &m);
            if (rc == CQL_OK)
                fprintf(stderr, "%s cut to %zu bytes decoded\n", f->name, len);
            assert_int_equal(rc, CQL_E_TRUNCATED);
            free(copy);
        }
    }
}

/* Cut the body and fix the header's length to match, so the frame is well
 * framed but its content ends early: every such cut must be an error. */
static void test_every_truncated_body_fails(void **state)
{
    for (size_t i = 0; i < N_RESPONSE_FRAMES; i++) {
        const struct test_frame *f = &response_frames[i];
        for (size_t body = 0; body + 9 < f->len; body++) {
            uint8_t *copy = frame_with_body_len(f->data, body);
            struct cql_message m;
            int rc = cql_message_decode(copy, 9 + body, &m);
            if (rc == CQL_OK)
                fprintf(stderr, "%s with a %zu-byte body decoded\n", f->name, body);
            assert_int_not_equal(rc, CQL_OK);
            assert_true(rc == CQL_E_TRUNCATED || rc == CQL_E_PROTOCOL);
            free(copy);
        }
    }
}

static int decode_lit(const char *lit, size_t len)
{
    struct cql_message m;
    int rc = cql_message_decode((const uint8_t *)lit, len, &m);
    cql_message_free(&m);
    return rc;
}
#define DECODE(lit) decode_lit(lit, sizeof(lit) - 1)

/* Frames below are grouped one protocol field per literal by hand;
 * clang-format would put every literal on a line of its own. */
/* clang-format off */
static void test_hostile_frames(void **state)
{
    /* Compression never negotiated: refused. */
    assert_int_equal(DECODE("\x84\x01\x00\x01\x02\x00\x00\x00\x00"), CQL_E_UNSUPPORTED);
    /* A request opcode or a request version in a response. */
    assert_int_equal(DECODE("\x84\x00\x00\x01\x07\x00\x00\x00\x00"), CQL_E_PROTOCOL);
    assert_int_equal(DECODE("\x04\x00\x00\x01\x02\x00\x00\x00\x00"), CQL_E_BAD_FRAME);
    assert_int_equal(DECODE("\x83\x00\x00\x01\x02\x00\x00\x00\x00"), CQL_E_BAD_FRAME);
    /* Unknown opcode, unknown result kind. */
    assert_int_equal(DECODE("\x84\x00\x00\x01\x42\x00\x00\x00\x00"), CQL_E_UNSUPPORTED);
    assert_int_equal(DECODE("\x84\x00\x00\x01\x08\x00\x00\x00\x04" "\x00\x00\x00\x09"),
                     CQL_E_UNSUPPORTED);
    /* Negative and oversized body lengths. */
    assert_int_equal(DECODE("\x84\x00\x00\x01\x02\xff\xff\xff\xff"), CQL_E_BAD_FRAME);
    assert_int_equal(DECODE("\x84\x00\x00\x01\x02\x01\x00\x00\x01"), CQL_E_TOO_LARGE);
    /* Rows: negative column count, negative row count. */
    assert_int_equal(DECODE("\x84\x00\x00\x01\x08\x00\x00\x00\x10" "\x00\x00\x00\x02"
                            "\x00\x00\x00\x04" "\xff\xff\xff\xff" "\x00\x00\x00\x00"),
                     CQL_E_PROTOCOL);
    assert_int_equal(DECODE("\x84\x00\x00\x01\x08\x00\x00\x00\x10" "\x00\x00\x00\x02"
                            "\x00\x00\x00\x04" "\x00\x00\x00\x01" "\xff\xff\xff\xff"),
                     CQL_E_PROTOCOL);
    /* 2^31-1 columns announced in a few bytes: refused before allocating. */
    assert_int_equal(DECODE("\x84\x00\x00\x01\x08\x00\x00\x00\x10" "\x00\x00\x00\x02"
                            "\x00\x00\x00\x00" "\x7f\xff\xff\xff" "\x00\x01" "k\x00"),
                     CQL_E_TRUNCATED);
    /* 2^31-1 rows of one column in a few bytes: refused before looping. */
    assert_int_equal(DECODE("\x84\x00\x00\x01\x08\x00\x00\x00\x14" "\x00\x00\x00\x02"
                            "\x00\x00\x00\x04" "\x00\x00\x00\x01" "\x7f\xff\xff\xff"
                            "\x00\x00\x00\x00"),
                     CQL_E_TRUNCATED);
    /* Rows claimed with zero columns. */
    assert_int_equal(DECODE("\x84\x00\x00\x01\x08\x00\x00\x00\x10" "\x00\x00\x00\x02"
                            "\x00\x00\x00\x04" "\x00\x00\x00\x00" "\x7f\xff\xff\xff"),
                     CQL_E_PROTOCOL);
    /* A cell is a [bytes]: any negative length is null there (spec 3),
     * unlike a [value], where below -2 is an error. */
    assert_int_equal(DECODE("\x84\x00\x00\x01\x08\x00\x00\x00\x14" "\x00\x00\x00\x02"
                            "\x00\x00\x00\x04" "\x00\x00\x00\x01" "\x00\x00\x00\x01"
                            "\xff\xff\xff\xf0"),
                     CQL_OK);
    /* Prepared: a pk index beyond the bind markers; an empty id. */
    assert_int_equal(DECODE("\x84\x00\x00\x01\x08\x00\x00\x00\x28" "\x00\x00\x00\x04"
                            "\x00\x01\x01"
                            "\x00\x00\x00\x01" "\x00\x00\x00\x01" "\x00\x00\x00\x01" "\x00\x05"
                            "\x00\x01" "k" "\x00\x01" "t" "\x00\x01" "k" "\x00\x09"
                            "\x00\x00\x00\x04" "\x00\x00\x00\x00"),
                     CQL_E_PROTOCOL);
    assert_int_equal(DECODE("\x84\x00\x00\x01\x08\x00\x00\x00\x06" "\x00\x00\x00\x04"
                            "\x00\x00"),
                     CQL_E_PROTOCOL);
    /* An [inet] of 5 bytes. */
    assert_int_equal(DECODE("\x84\x00\xff\xff\x0c\x00\x00\x00\x18"
                            "\x00\x0d" "STATUS_CHANGE" "\x00\x02" "UP"
                            "\x05\x01\x02\x03\x04"),
                     CQL_E_PROTOCOL);
}

/* Bytes after the described content are ignored (spec section 1). */
static void test_trailing_bytes_ignored(void **state)
{
    assert_int_equal(DECODE("\x84\x00\x00\x01\x08\x00\x00\x00\x06" "\x00\x00\x00\x01" "\xaa\xbb"),
                     CQL_OK);
    assert_int_equal(DECODE("\x84\x00\x00\x01\x02\x00\x00\x00\x01" "\x00"), CQL_OK);
}
/* clang-format on */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_frame_decodes),
        cmocka_unit_test(test_ready_authenticate_supported),
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_error_extra_fields),
        cmocka_unit_test(test_result_simple_kinds),
        cmocka_unit_test(test_rows_global),
        cmocka_unit_test(test_rows_no_metadata_paged),
        cmocka_unit_test(test_rows_nested),
        cmocka_unit_test(test_rows_udt_tuple_custom),
        cmocka_unit_test(test_prepared),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_envelope_flags),
        cmocka_unit_test(test_every_truncated_buffer_fails),
        cmocka_unit_test(test_every_truncated_body_fails),
        cmocka_unit_test(test_hostile_frames),
        cmocka_unit_test(test_trailing_bytes_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
