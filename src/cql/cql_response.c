/* cql_response.c — decoding of response messages other than RESULT
 * (native_protocol_v4.spec 4.2.1-4.2.4, 4.2.6-4.2.8, 9) and the dispatch of
 * a whole response frame by opcode. RESULT lives in cql_result.c. */
#include "cql/cql_msg.h"

/* ---- ERROR ----------------------------------------------------------------- */

static int read_cl_received_blockfor(struct cql_reader *r, struct cql_error_body *e)
{
    int rc;
    if ((rc = cql_read_consistency(r, &e->consistency)) || (rc = cql_read_int(r, &e->received)) ||
        (rc = cql_read_int(r, &e->block_for)))
        return rc;
    return CQL_OK;
}

static int read_flag_byte(struct cql_reader *r, bool *out)
{
    uint8_t b;
    int rc = cql_read_byte(r, &b);
    if (rc == CQL_OK)
        *out = b != 0;
    return rc;
}

/* The fields that follow <code><message> for the codes that have any. */
static int read_error_extra(struct cql_reader *r, struct cql_error_body *e)
{
    int rc;
    switch (e->code) {
    case 0x1000: /* unavailable: <cl><required><alive> */
        if ((rc = cql_read_consistency(r, &e->consistency)) ||
            (rc = cql_read_int(r, &e->required)) || (rc = cql_read_int(r, &e->alive)))
            return rc;
        return CQL_OK;
    case 0x1100: /* write timeout: <cl><received><blockfor><writeType> */
        if ((rc = read_cl_received_blockfor(r, e)))
            return rc;
        return cql_read_string(r, &e->write_type);
    case 0x1200: /* read timeout: <cl><received><blockfor><data_present> */
        if ((rc = read_cl_received_blockfor(r, e)))
            return rc;
        return read_flag_byte(r, &e->data_present);
    case 0x1300: /* read failure: <cl><received><blockfor><numfailures><data_present> */
        if ((rc = read_cl_received_blockfor(r, e)) || (rc = cql_read_int(r, &e->num_failures)))
            return rc;
        return read_flag_byte(r, &e->data_present);
    case 0x1400: /* function failure: <keyspace><function><arg_types> */
        if ((rc = cql_read_string(r, &e->keyspace)) || (rc = cql_read_string(r, &e->function)))
            return rc;
        return cql_read_string_list(r, &e->arg_types);
    case 0x1500: /* write failure: <cl><received><blockfor><numfailures><write_type> */
        if ((rc = read_cl_received_blockfor(r, e)) || (rc = cql_read_int(r, &e->num_failures)))
            return rc;
        return cql_read_string(r, &e->write_type);
    case 0x2400: /* already exists: <ks><table> */
        if ((rc = cql_read_string(r, &e->keyspace)))
            return rc;
        return cql_read_string(r, &e->table);
    case 0x2500: /* unprepared: <id> */
        return cql_read_short_bytes(r, &e->unprepared_id);
    default:
        return CQL_OK;
    }
}

int cql_parse_error(struct cql_slice body, struct cql_error_body *out)
{
    struct cql_error_body e = {0};
    struct cql_reader r = cql_reader_make(body.ptr, body.len);
    int rc;
    if ((rc = cql_read_int(&r, &e.code)) || (rc = cql_read_string(&r, &e.message)) ||
        (rc = read_error_extra(&r, &e)))
        return rc;
    e.err = cql_err_from_server_code(e.code);
    *out = e;
    return CQL_OK;
}

/* ---- EVENT and schema changes -------------------------------------------- */

/* <change_type><target><options>, shared by EVENT and RESULT (spec 4.2.6). */
int cql_read_schema_change(struct cql_reader *r, struct cql_schema_change *out)
{
    struct cql_schema_change sc = {0};
    size_t start = r->pos;
    int rc;
    if ((rc = cql_read_string(r, &sc.change_type)) || (rc = cql_read_string(r, &sc.target)) ||
        (rc = cql_read_string(r, &sc.keyspace)))
        goto fail;
    if (cql_str_eq(sc.target, "KEYSPACE")) {
        *out = sc;
        return CQL_OK;
    }
    if ((rc = cql_read_string(r, &sc.name)))
        goto fail;
    if ((cql_str_eq(sc.target, "FUNCTION") || cql_str_eq(sc.target, "AGGREGATE")) &&
        (rc = cql_read_string_list(r, &sc.arg_types)))
        goto fail;
    *out = sc;
    return CQL_OK;
fail:
    r->pos = start;
    return rc;
}

int cql_parse_event(struct cql_slice body, struct cql_event *out)
{
    struct cql_event ev = {0};
    struct cql_reader r = cql_reader_make(body.ptr, body.len);
    int rc = cql_read_string(&r, &ev.type_name);
    if (rc)
        return rc;
    if (cql_str_eq(ev.type_name, "TOPOLOGY_CHANGE"))
        ev.type = CQL_EVENT_TOPOLOGY_CHANGE;
    else if (cql_str_eq(ev.type_name, "STATUS_CHANGE"))
        ev.type = CQL_EVENT_STATUS_CHANGE;
    else if (cql_str_eq(ev.type_name, "SCHEMA_CHANGE"))
        ev.type = CQL_EVENT_SCHEMA_CHANGE;

    if (ev.type == CQL_EVENT_TOPOLOGY_CHANGE || ev.type == CQL_EVENT_STATUS_CHANGE) {
        if ((rc = cql_read_string(&r, &ev.change)) || (rc = cql_read_inet(&r, &ev.node)))
            return rc;
    } else if (ev.type == CQL_EVENT_SCHEMA_CHANGE) {
        if ((rc = cql_read_schema_change(&r, &ev.schema)))
            return rc;
    }
    *out = ev;
    return CQL_OK;
}

/* ---- dispatch --------------------------------------------------------------- */

static int decode_body(uint8_t opcode, struct cql_slice body, struct cql_message *m)
{
    struct cql_reader r = cql_reader_make(body.ptr, body.len);
    switch (opcode) {
    case CQL_OP_ERROR:
        return cql_parse_error(body, &m->error);
    case CQL_OP_READY:
        return CQL_OK;
    case CQL_OP_AUTHENTICATE:
        return cql_read_string(&r, &m->authenticator);
    case CQL_OP_SUPPORTED:
        return cql_read_string_multimap(&r, &m->supported);
    case CQL_OP_RESULT:
        return cql_parse_result(body, &m->result);
    case CQL_OP_EVENT:
        return cql_parse_event(body, &m->event);
    case CQL_OP_AUTH_CHALLENGE:
    case CQL_OP_AUTH_SUCCESS:
        return cql_read_bytes(&r, &m->token);
    case CQL_OP_STARTUP:
    case CQL_OP_OPTIONS:
    case CQL_OP_QUERY:
    case CQL_OP_PREPARE:
    case CQL_OP_EXECUTE:
    case CQL_OP_REGISTER:
    case CQL_OP_BATCH:
    case CQL_OP_AUTH_RESPONSE:
        return CQL_E_PROTOCOL; /* a request opcode in a response */
    default:
        return CQL_E_UNSUPPORTED;
    }
}

int cql_message_decode(const uint8_t *frame, size_t len, struct cql_message *m)
{
    *m = (struct cql_message){0};
    int rc = cql_response_open(frame, len, &m->env);
    if (rc == CQL_OK)
        rc = decode_body(m->env.header.opcode, m->env.body, m);
    if (rc) {
        cql_message_free(m);
        *m = (struct cql_message){0};
    }
    return rc;
}

void cql_message_free(struct cql_message *m)
{
    if (m)
        cql_result_free(&m->result);
}
