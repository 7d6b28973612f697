/* cql_frame.h — the native protocol v4 frame: 9-byte header, incremental
 * framing of a byte stream (split frames), the response envelope (tracing id,
 * warnings, custom payload), and frame writing for the request builders.
 * Ownership: decoders borrow the caller's bytes and point into them.
 * Threading: no global state. */
#ifndef CQL_FRAME_H
#define CQL_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cql/cql_buf.h"

#define CQL_VERSION_REQUEST 0x04
#define CQL_VERSION_RESPONSE 0x84
#define CQL_FRAME_HEADER_SIZE 9
/* The protocol allows 256 MiB bodies; we refuse anything above 16 MiB, in
 * both directions, with CQL_E_TOO_LARGE (bounded memory per connection). */
#define CQL_FRAME_MAX_BODY ((uint32_t)16 << 20)

/* Compression (0x01) is refused with CQL_E_UNSUPPORTED: this client never
 * negotiates it, so a compressed body could not be read. Flags the spec
 * leaves unused (0x10 beta and above) are ignored, as section 2.2 says ("The
 * rest of flags is currently unused and ignored"). */
enum cql_frame_flag {
    CQL_FLAG_COMPRESSION = 0x01,
    CQL_FLAG_TRACING = 0x02,
    CQL_FLAG_CUSTOM_PAYLOAD = 0x04,
    CQL_FLAG_WARNING = 0x08,
    CQL_FLAG_BETA = 0x10,
};

enum cql_opcode {
    CQL_OP_ERROR = 0x00,
    CQL_OP_STARTUP = 0x01,
    CQL_OP_READY = 0x02,
    CQL_OP_AUTHENTICATE = 0x03,
    CQL_OP_OPTIONS = 0x05,
    CQL_OP_SUPPORTED = 0x06,
    CQL_OP_QUERY = 0x07,
    CQL_OP_RESULT = 0x08,
    CQL_OP_PREPARE = 0x09,
    CQL_OP_EXECUTE = 0x0A,
    CQL_OP_REGISTER = 0x0B,
    CQL_OP_EVENT = 0x0C,
    CQL_OP_BATCH = 0x0D,
    CQL_OP_AUTH_CHALLENGE = 0x0E,
    CQL_OP_AUTH_RESPONSE = 0x0F,
    CQL_OP_AUTH_SUCCESS = 0x10,
};

/* "RESULT", …; "UNKNOWN" otherwise. */
const char *cql_opcode_name(uint8_t opcode);

struct cql_frame_header {
    uint8_t version; /* CQL_VERSION_REQUEST or CQL_VERSION_RESPONSE */
    uint8_t flags;
    int16_t stream; /* requests: >= 0; server-pushed EVENTs: -1 */
    uint8_t opcode;
    uint32_t length; /* body bytes after the header */
};

/* Decodes the header at data. CQL_E_AGAIN if len < 9; CQL_E_BAD_FRAME if the
 * version byte is not `expect_version` or the length is negative as an
 * [int]; CQL_E_TOO_LARGE above CQL_FRAME_MAX_BODY. Any opcode is accepted
 * here (the message decoder judges it), so a stream can still be framed. */
int cql_frame_header_decode(const uint8_t *data, size_t len, uint8_t expect_version,
                            struct cql_frame_header *out);
void cql_frame_header_encode(const struct cql_frame_header *h, uint8_t out[CQL_FRAME_HEADER_SIZE]);

/* Incremental framing for a receive buffer that may hold part of a frame,
 * exactly one, or several (only the first is looked at):
 *   CQL_OK       a whole frame of *frame_len bytes starts at data;
 *   CQL_E_AGAIN  incomplete: *frame_len is the total size known so far
 *                (9 until the header is complete) and *missing how many more
 *                bytes are needed at least;
 *   other < 0    the stream is corrupt (header errors above): close it.
 * Consumes nothing; the caller drops *frame_len bytes once it is done. */
int cql_frame_scan(const uint8_t *data, size_t len, uint8_t expect_version, size_t *frame_len,
                   size_t *missing);

/* Rewrites the stream id of an encoded frame (e.g. a frame built before the
 * connection picked a free stream). */
void cql_frame_set_stream(uint8_t *frame, int16_t stream);

/* ---- response envelope --------------------------------------------------- */

struct cql_response {
    struct cql_frame_header header;
    bool has_tracing_id;
    uint8_t tracing_id[16];
    struct cql_str_list warnings;        /* count 0 unless CQL_FLAG_WARNING */
    struct cql_bytes_map custom_payload; /* count 0 unless CQL_FLAG_CUSTOM_PAYLOAD */
    struct cql_slice body;               /* the message after the envelope */
};

/* Opens a response frame of `len` bytes (header included): decodes the
 * header, then the tracing id, warnings and custom payload the flags
 * announce, in that order (spec 2.2). Bytes beyond the frame's own length
 * are ignored; fewer is CQL_E_TRUNCATED. Compression: CQL_E_UNSUPPORTED. */
int cql_response_open(const uint8_t *frame, size_t len, struct cql_response *out);

/* ---- writing frames ------------------------------------------------------ */

/* Appends a header with length 0 to b; returns the frame's offset in b, to
 * hand to cql_frame_end once the body is written. Also builds response frames
 * (tests, fake servers) given CQL_VERSION_RESPONSE. */
size_t cql_frame_begin(struct cql_buf *b, uint8_t version, uint8_t flags, int16_t stream,
                       uint8_t opcode);
/* Patches the body length. If b recorded a failure or the body exceeds
 * CQL_FRAME_MAX_BODY, rolls b back to `start` (as before cql_frame_begin),
 * clears the failure and returns it; CQL_OK otherwise. */
int cql_frame_end(struct cql_buf *b, size_t start);

#endif
