/* cql_request.c — builders for the requests of native protocol v4
 * (native_protocol_v4.spec 4.1). Each writes one frame with
 * cql_frame_begin/cql_frame_end, which also rolls the buffer back on failure;
 * argument checks happen before anything is written. */
#include "cql/cql_msg.h"

/* Counts the [value]s of a caller's values run, checking it is well formed,
 * so a malformed run fails here and not on the server. */
static int count_values(struct cql_slice values, uint16_t *n)
{
    struct cql_reader r = cql_reader_make(values.ptr, values.len);
    uint32_t count = 0;
    while (cql_reader_left(&r) > 0) {
        struct cql_value v;
        if (cql_read_value(&r, &v) || count == UINT16_MAX)
            return CQL_E_INVALID;
        count++;
    }
    *n = (uint16_t)count;
    return CQL_OK;
}

static bool serial_ok(uint16_t serial)
{
    return serial == 0 || serial == CQL_CONSISTENCY_SERIAL ||
           serial == CQL_CONSISTENCY_LOCAL_SERIAL;
}

static int check_params(const struct cql_query_params *p, uint16_t *n_values, uint8_t *flags)
{
    int rc = count_values(p->values, n_values);
    if (rc)
        return rc;
    if (p->page_size < 0 || !serial_ok(p->serial_consistency) ||
        (p->has_default_timestamp && p->default_timestamp < 0) || p->paging_state.len > INT32_MAX)
        return CQL_E_INVALID;
    uint8_t f = 0;
    if (*n_values > 0)
        f |= CQL_QUERY_VALUES;
    if (p->skip_metadata)
        f |= CQL_QUERY_SKIP_METADATA;
    if (p->page_size > 0)
        f |= CQL_QUERY_PAGE_SIZE;
    if (p->paging_state.ptr)
        f |= CQL_QUERY_PAGING_STATE;
    if (p->serial_consistency)
        f |= CQL_QUERY_SERIAL_CONSISTENCY;
    if (p->has_default_timestamp)
        f |= CQL_QUERY_DEFAULT_TIMESTAMP;
    *flags = f;
    return CQL_OK;
}

/* <consistency><flags>[<n><values>][<page_size>][<paging_state>]
 * [<serial_consistency>][<timestamp>], in that order (spec 4.1.4). */
static void write_params(struct cql_buf *b, const struct cql_query_params *p, uint16_t n_values,
                         uint8_t flags)
{
    cql_write_consistency(b, p->consistency);
    cql_write_byte(b, flags);
    if (flags & CQL_QUERY_VALUES) {
        cql_write_short(b, n_values);
        cql_write_raw(b, p->values.ptr, p->values.len);
    }
    if (flags & CQL_QUERY_PAGE_SIZE)
        cql_write_int(b, p->page_size);
    if (flags & CQL_QUERY_PAGING_STATE)
        cql_write_bytes(b, p->paging_state.ptr, (int32_t)p->paging_state.len);
    if (flags & CQL_QUERY_SERIAL_CONSISTENCY)
        cql_write_consistency(b, p->serial_consistency);
    if (flags & CQL_QUERY_DEFAULT_TIMESTAMP)
        cql_write_long(b, p->default_timestamp);
}

int cql_build_startup(struct cql_buf *b, int16_t stream, const char *compression)
{
    struct cql_str keys[2] = {cql_str_c("CQL_VERSION"), cql_str_c("COMPRESSION")};
    struct cql_str vals[2] = {cql_str_c("3.0.0"), cql_str_c(compression)};
    size_t start = cql_frame_begin(b, CQL_VERSION_REQUEST, 0, stream, CQL_OP_STARTUP);
    cql_write_string_map(b, keys, vals, compression ? 2 : 1);
    return cql_frame_end(b, start);
}

int cql_build_options(struct cql_buf *b, int16_t stream)
{
    size_t start = cql_frame_begin(b, CQL_VERSION_REQUEST, 0, stream, CQL_OP_OPTIONS);
    return cql_frame_end(b, start);
}

int cql_build_auth_response(struct cql_buf *b, int16_t stream, const void *token, int32_t len)
{
    size_t start = cql_frame_begin(b, CQL_VERSION_REQUEST, 0, stream, CQL_OP_AUTH_RESPONSE);
    cql_write_bytes(b, token, len);
    return cql_frame_end(b, start);
}

int cql_build_auth_password(struct cql_buf *b, int16_t stream, struct cql_str user,
                            struct cql_str password)
{
    if (user.len > INT32_MAX - 2 || password.len > INT32_MAX - 2 - user.len)
        return CQL_E_INVALID;
    size_t start = cql_frame_begin(b, CQL_VERSION_REQUEST, 0, stream, CQL_OP_AUTH_RESPONSE);
    /* One [bytes] token, SASL PLAIN: authzid (empty) NUL authcid NUL passwd. */
    cql_write_int(b, (int32_t)(2 + user.len + password.len));
    cql_write_byte(b, 0);
    cql_write_raw(b, user.ptr, user.len);
    cql_write_byte(b, 0);
    cql_write_raw(b, password.ptr, password.len);
    return cql_frame_end(b, start);
}

int cql_build_query(struct cql_buf *b, int16_t stream, struct cql_str query,
                    const struct cql_query_params *p)
{
    uint16_t n_values;
    uint8_t flags;
    int rc = check_params(p, &n_values, &flags);
    if (rc)
        return rc;
    size_t start = cql_frame_begin(b, CQL_VERSION_REQUEST, p->tracing ? CQL_FLAG_TRACING : 0,
                                   stream, CQL_OP_QUERY);
    cql_write_long_string(b, query.ptr, query.len);
    write_params(b, p, n_values, flags);
    return cql_frame_end(b, start);
}

int cql_build_prepare(struct cql_buf *b, int16_t stream, struct cql_str query)
{
    size_t start = cql_frame_begin(b, CQL_VERSION_REQUEST, 0, stream, CQL_OP_PREPARE);
    cql_write_long_string(b, query.ptr, query.len);
    return cql_frame_end(b, start);
}

int cql_build_execute(struct cql_buf *b, int16_t stream, struct cql_slice id,
                      const struct cql_query_params *p)
{
    uint16_t n_values;
    uint8_t flags;
    int rc = check_params(p, &n_values, &flags);
    if (rc)
        return rc;
    if (id.len == 0 || id.len > UINT16_MAX)
        return CQL_E_INVALID;
    size_t start = cql_frame_begin(b, CQL_VERSION_REQUEST, p->tracing ? CQL_FLAG_TRACING : 0,
                                   stream, CQL_OP_EXECUTE);
    cql_write_short_bytes(b, id.ptr, id.len);
    write_params(b, p, n_values, flags);
    return cql_frame_end(b, start);
}

/* <kind><string_or_id><n><value_1>...<value_n> (spec 4.1.7). */
static void write_batch_stmt(struct cql_buf *b, const struct cql_batch_stmt *s, uint16_t n_values)
{
    if (s->prepared_id.ptr) {
        cql_write_byte(b, 1);
        cql_write_short_bytes(b, s->prepared_id.ptr, s->prepared_id.len);
    } else {
        cql_write_byte(b, 0);
        cql_write_long_string(b, s->query.ptr, s->query.len);
    }
    cql_write_short(b, n_values);
    cql_write_raw(b, s->values.ptr, s->values.len);
}

static int check_batch(const struct cql_batch *batch)
{
    if (batch->type > CQL_BATCH_COUNTER || batch->n_stmts == 0 || batch->n_stmts > UINT16_MAX ||
        !serial_ok(batch->serial_consistency) ||
        (batch->has_default_timestamp && batch->default_timestamp < 0))
        return CQL_E_INVALID;
    for (size_t i = 0; i < batch->n_stmts; i++) {
        const struct cql_batch_stmt *s = &batch->stmts[i];
        uint16_t n;
        if (s->prepared_id.ptr ? s->prepared_id.len == 0 || s->prepared_id.len > UINT16_MAX
                               : s->query.ptr == NULL)
            return CQL_E_INVALID;
        if (count_values(s->values, &n))
            return CQL_E_INVALID;
    }
    return CQL_OK;
}

int cql_build_batch(struct cql_buf *b, int16_t stream, const struct cql_batch *batch)
{
    int rc = check_batch(batch);
    if (rc)
        return rc;
    uint8_t flags = 0;
    if (batch->serial_consistency)
        flags |= CQL_QUERY_SERIAL_CONSISTENCY;
    if (batch->has_default_timestamp)
        flags |= CQL_QUERY_DEFAULT_TIMESTAMP;
    size_t start = cql_frame_begin(b, CQL_VERSION_REQUEST, batch->tracing ? CQL_FLAG_TRACING : 0,
                                   stream, CQL_OP_BATCH);
    cql_write_byte(b, batch->type);
    cql_write_short(b, (uint16_t)batch->n_stmts);
    for (size_t i = 0; i < batch->n_stmts; i++) {
        uint16_t n_values = 0;
        count_values(batch->stmts[i].values, &n_values); /* checked above */
        write_batch_stmt(b, &batch->stmts[i], n_values);
    }
    cql_write_consistency(b, batch->consistency);
    cql_write_byte(b, flags);
    if (flags & CQL_QUERY_SERIAL_CONSISTENCY)
        cql_write_consistency(b, batch->serial_consistency);
    if (flags & CQL_QUERY_DEFAULT_TIMESTAMP)
        cql_write_long(b, batch->default_timestamp);
    return cql_frame_end(b, start);
}

int cql_build_register(struct cql_buf *b, int16_t stream, const struct cql_str *events, size_t n)
{
    size_t start = cql_frame_begin(b, CQL_VERSION_REQUEST, 0, stream, CQL_OP_REGISTER);
    cql_write_string_list(b, events, n);
    return cql_frame_end(b, start);
}
