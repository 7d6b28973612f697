/* cql_frame.c — v4 frame header, incremental framing, the response envelope
 * and frame writing (native_protocol_v4.spec sections 1 and 2). */
#include "cql/cql_frame.h"

#include "cql/cql_be.h"
#include "cql/cql_error.h"

const char *cql_opcode_name(uint8_t opcode)
{
    static const char *const names[] = {
        [CQL_OP_ERROR] = "ERROR",
        [CQL_OP_STARTUP] = "STARTUP",
        [CQL_OP_READY] = "READY",
        [CQL_OP_AUTHENTICATE] = "AUTHENTICATE",
        [CQL_OP_OPTIONS] = "OPTIONS",
        [CQL_OP_SUPPORTED] = "SUPPORTED",
        [CQL_OP_QUERY] = "QUERY",
        [CQL_OP_RESULT] = "RESULT",
        [CQL_OP_PREPARE] = "PREPARE",
        [CQL_OP_EXECUTE] = "EXECUTE",
        [CQL_OP_REGISTER] = "REGISTER",
        [CQL_OP_EVENT] = "EVENT",
        [CQL_OP_BATCH] = "BATCH",
        [CQL_OP_AUTH_CHALLENGE] = "AUTH_CHALLENGE",
        [CQL_OP_AUTH_RESPONSE] = "AUTH_RESPONSE",
        [CQL_OP_AUTH_SUCCESS] = "AUTH_SUCCESS",
    };
    if (opcode < sizeof names / sizeof names[0] && names[opcode])
        return names[opcode];
    return "UNKNOWN";
}

int cql_frame_header_decode(const uint8_t *data, size_t len, uint8_t expect_version,
                            struct cql_frame_header *out)
{
    if (len < CQL_FRAME_HEADER_SIZE)
        return CQL_E_AGAIN;
    if (data[0] != expect_version)
        return CQL_E_BAD_FRAME;
    uint32_t length = cql_load32(data + 5);
    if (length > INT32_MAX) /* a negative [int]: no such frame */
        return CQL_E_BAD_FRAME;
    if (length > CQL_FRAME_MAX_BODY)
        return CQL_E_TOO_LARGE;
    *out = (struct cql_frame_header){
        .version = data[0],
        .flags = data[1],
        .stream = (int16_t)cql_load16(data + 2),
        .opcode = data[4],
        .length = length,
    };
    return CQL_OK;
}

void cql_frame_header_encode(const struct cql_frame_header *h, uint8_t out[CQL_FRAME_HEADER_SIZE])
{
    out[0] = h->version;
    out[1] = h->flags;
    cql_store16(out + 2, (uint16_t)h->stream);
    out[4] = h->opcode;
    cql_store32(out + 5, h->length);
}

int cql_frame_scan(const uint8_t *data, size_t len, uint8_t expect_version, size_t *frame_len,
                   size_t *missing)
{
    /* A partial header can already be judged on its version byte: a stream
     * of garbage is refused at its first byte, not after nine. */
    if (len > 0 && len < CQL_FRAME_HEADER_SIZE && data[0] != expect_version)
        return CQL_E_BAD_FRAME;
    struct cql_frame_header h;
    int rc = cql_frame_header_decode(data, len, expect_version, &h);
    if (rc == CQL_E_AGAIN) {
        *frame_len = CQL_FRAME_HEADER_SIZE;
        *missing = CQL_FRAME_HEADER_SIZE - len;
        return rc;
    }
    if (rc)
        return rc;
    size_t total = CQL_FRAME_HEADER_SIZE + (size_t)h.length;
    *frame_len = total;
    if (len < total) {
        *missing = total - len;
        return CQL_E_AGAIN;
    }
    *missing = 0;
    return CQL_OK;
}

void cql_frame_set_stream(uint8_t *frame, int16_t stream)
{
    cql_store16(frame + 2, (uint16_t)stream);
}

/* Envelope fields come first in the body, in the order tracing id, warnings,
 * custom payload (spec 2.2; the payload position is what servers emit). */
static int read_envelope(struct cql_reader *r, struct cql_response *out)
{
    uint8_t flags = out->header.flags;
    int rc;
    if (flags & CQL_FLAG_TRACING) {
        if ((rc = cql_read_uuid(r, out->tracing_id)))
            return rc;
        out->has_tracing_id = true;
    }
    if ((flags & CQL_FLAG_WARNING) && (rc = cql_read_string_list(r, &out->warnings)))
        return rc;
    if ((flags & CQL_FLAG_CUSTOM_PAYLOAD) && (rc = cql_read_bytes_map(r, &out->custom_payload)))
        return rc;
    return CQL_OK;
}

int cql_response_open(const uint8_t *frame, size_t len, struct cql_response *out)
{
    *out = (struct cql_response){0};
    int rc = cql_frame_header_decode(frame, len, CQL_VERSION_RESPONSE, &out->header);
    if (rc == CQL_E_AGAIN)
        return CQL_E_TRUNCATED;
    if (rc)
        return rc;
    if (len - CQL_FRAME_HEADER_SIZE < out->header.length)
        return CQL_E_TRUNCATED;
    if (out->header.flags & CQL_FLAG_COMPRESSION)
        return CQL_E_UNSUPPORTED;
    struct cql_reader r = cql_reader_make(frame + CQL_FRAME_HEADER_SIZE, out->header.length);
    if ((rc = read_envelope(&r, out)))
        return rc;
    out->body = (struct cql_slice){r.ptr + r.pos, cql_reader_left(&r)};
    return CQL_OK;
}

size_t cql_frame_begin(struct cql_buf *b, uint8_t version, uint8_t flags, int16_t stream,
                       uint8_t opcode)
{
    size_t start = b->len;
    struct cql_frame_header h = {version, flags, stream, opcode, 0};
    uint8_t raw[CQL_FRAME_HEADER_SIZE];
    cql_frame_header_encode(&h, raw);
    cql_write_raw(b, raw, sizeof raw);
    return start;
}

int cql_frame_end(struct cql_buf *b, size_t start)
{
    int rc = cql_buf_error(b);
    if (rc == CQL_OK && (b->len < start + CQL_FRAME_HEADER_SIZE))
        rc = CQL_E_INVALID; /* start did not come from cql_frame_begin on b */
    if (rc == CQL_OK && b->len - start - CQL_FRAME_HEADER_SIZE > CQL_FRAME_MAX_BODY)
        rc = CQL_E_TOO_LARGE;
    if (rc) {
        cql_buf_truncate(b, start);
        return rc;
    }
    cql_buf_patch_int(b, start + 5, (int32_t)(b->len - start - CQL_FRAME_HEADER_SIZE));
    return CQL_OK;
}
