/* cql_msg.h — the messages of native protocol v4 (spec section 4): a builder
 * for every request and one decoder for every response.
 * Ownership: builders append whole frames to a caller's cql_buf; decoded
 * responses point INTO the frame bytes, and only RESULT metadata is on the
 * heap (cql_message_free).
 * Threading: no global state. */
#ifndef CQL_MSG_H
#define CQL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cql/cql_buf.h"
#include "cql/cql_error.h"
#include "cql/cql_frame.h"
#include "cql/cql_types.h"

/* ==== requests ============================================================
 * Each cql_build_* appends one whole frame to a cql_buf, so many requests can
 * be queued into one write buffer. On failure the buffer is left exactly as
 * it was before the call. Inputs are only read during the call. */

/* Options shared by QUERY and EXECUTE (<query_parameters>, spec 4.1.4). */
struct cql_query_params {
    uint16_t consistency; /* enum cql_consistency */
    /* Positional bound values: a run of cells written with cql_encode_*
     * (null and unset included). The builder counts them (at most 65535);
     * empty means no Values flag. */
    struct cql_slice values;
    bool skip_metadata;            /* Skip_metadata: rows come with NO_METADATA */
    int32_t page_size;             /* > 0 sets Page_size; 0 leaves it out */
    struct cql_slice paging_state; /* ptr != NULL sets With_paging_state */
    /* 0 leaves it out; else must be SERIAL or LOCAL_SERIAL. */
    uint16_t serial_consistency;
    bool has_default_timestamp; /* With_default_timestamp */
    int64_t default_timestamp;  /* microseconds since the epoch, >= 0 */
    bool tracing;               /* sets the frame's tracing flag */
};

/* Query flags (spec 4.1.4), for readers of encoded frames. */
enum cql_query_flag {
    CQL_QUERY_VALUES = 0x01,
    CQL_QUERY_SKIP_METADATA = 0x02,
    CQL_QUERY_PAGE_SIZE = 0x04,
    CQL_QUERY_PAGING_STATE = 0x08,
    CQL_QUERY_SERIAL_CONSISTENCY = 0x10,
    CQL_QUERY_DEFAULT_TIMESTAMP = 0x20,
    CQL_QUERY_NAMES_FOR_VALUES = 0x40,
};

/* STARTUP with CQL_VERSION 3.0.0 and, if compression is not NULL, a
 * COMPRESSION entry (this codec cannot decompress: pass NULL). */
int cql_build_startup(struct cql_buf *b, int16_t stream, const char *compression);
int cql_build_options(struct cql_buf *b, int16_t stream);
/* AUTH_RESPONSE with an arbitrary SASL token (len < 0: null token). */
int cql_build_auth_response(struct cql_buf *b, int16_t stream, const void *token, int32_t len);
/* AUTH_RESPONSE for PasswordAuthenticator: the SASL PLAIN token
 * "\0user\0password". */
int cql_build_auth_password(struct cql_buf *b, int16_t stream, struct cql_str user,
                            struct cql_str password);
int cql_build_query(struct cql_buf *b, int16_t stream, struct cql_str query,
                    const struct cql_query_params *p);
int cql_build_prepare(struct cql_buf *b, int16_t stream, struct cql_str query);
/* id: the [short bytes] id of a Prepared result (struct cql_prepared.id). */
int cql_build_execute(struct cql_buf *b, int16_t stream, struct cql_slice id,
                      const struct cql_query_params *p);

enum cql_batch_type {
    CQL_BATCH_LOGGED = 0,
    CQL_BATCH_UNLOGGED = 1,
    CQL_BATCH_COUNTER = 2,
};

/* One statement of a BATCH: a prepared id if prepared_id.ptr is set, else
 * the query string; values as in cql_query_params. */
struct cql_batch_stmt {
    struct cql_str query;
    struct cql_slice prepared_id;
    struct cql_slice values;
};

struct cql_batch {
    uint8_t type; /* enum cql_batch_type */
    const struct cql_batch_stmt *stmts;
    size_t n_stmts; /* 1 .. 65535 */
    uint16_t consistency;
    uint16_t serial_consistency; /* 0, SERIAL or LOCAL_SERIAL */
    bool has_default_timestamp;
    int64_t default_timestamp; /* microseconds, >= 0 */
    bool tracing;
};

int cql_build_batch(struct cql_buf *b, int16_t stream, const struct cql_batch *batch);
/* REGISTER for events: "TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE". */
int cql_build_register(struct cql_buf *b, int16_t stream, const struct cql_str *events, size_t n);

/* ==== responses ===========================================================
 * cql_message_decode takes one frame (as cql_frame_scan delimited it) and
 * fills a struct cql_message. Every string, id, token and cell in it points
 * INTO the frame bytes: borrowed, valid while those bytes are. The only heap
 * memory is RESULT metadata (column specs, types, pk indices). */

/* ERROR (spec 4.2.1 and 9). Only the fields of `code` are set, others 0. */
struct cql_error_body {
    int32_t code;                   /* the server's code */
    enum cql_err err;               /* CQL_E_SRV_*, CQL_E_SRV_UNKNOWN if unknown */
    struct cql_str message;         /* the server's text, kept verbatim */
    uint16_t consistency;           /* unavailable, read/write timeout and failure */
    int32_t required, alive;        /* unavailable */
    int32_t received, block_for;    /* read/write timeout and failure */
    int32_t num_failures;           /* read/write failure */
    bool data_present;              /* read timeout and read failure */
    struct cql_str write_type;      /* write timeout and failure: "SIMPLE", "BATCH", … */
    struct cql_str keyspace;        /* already_exists, function_failure */
    struct cql_str table;           /* already_exists ("" for a keyspace) */
    struct cql_str function;        /* function_failure */
    struct cql_str_list arg_types;  /* function_failure */
    struct cql_slice unprepared_id; /* unprepared: re-PREPARE and retry */
};

enum cql_result_kind {
    CQL_RESULT_VOID = 0x0001,
    CQL_RESULT_ROWS = 0x0002,
    CQL_RESULT_SET_KEYSPACE = 0x0003,
    CQL_RESULT_PREPARED = 0x0004,
    CQL_RESULT_SCHEMA_CHANGE = 0x0005,
};

enum cql_meta_flag {
    CQL_META_GLOBAL_TABLES_SPEC = 0x0001,
    CQL_META_HAS_MORE_PAGES = 0x0002,
    CQL_META_NO_METADATA = 0x0004,
};

struct cql_column {
    struct cql_str keyspace, table; /* the global spec's when it is global */
    struct cql_str name;
    const struct cql_type *type; /* owned by the metadata */
};

/* Rows metadata or a prepared statement's bind-marker metadata. */
struct cql_metadata {
    int32_t flags; /* enum cql_meta_flag */
    int32_t n_columns;
    struct cql_value paging_state;  /* rows with HAS_MORE_PAGES; else null */
    struct cql_str keyspace, table; /* the global table spec, if any */
    struct cql_column *columns;     /* n_columns entries; NULL with NO_METADATA */
    int32_t pk_count;               /* bind metadata only */
    const uint16_t *pk_indices;     /* pk_count bind-marker indices */
    void *owned;                    /* the heap block behind columns/types/indices */
};

struct cql_rows {
    struct cql_metadata meta;
    int32_t n_rows;
    struct cql_slice content; /* n_rows * n_columns [bytes], validated */
};

/* Reading rows without copying: next fills up to `cap` cells of the next row
 * (all of them when cap >= meta.n_columns) and returns false after the last
 * row. The parser validated every cell, so next cannot fail. */
struct cql_row_iter {
    struct cql_reader r;
    int32_t rows_left;
    int32_t n_columns;
};
struct cql_row_iter cql_rows_iter(const struct cql_rows *rows);
bool cql_rows_next(struct cql_row_iter *it, struct cql_value *cells, size_t cap);

struct cql_prepared {
    struct cql_slice id;        /* for cql_build_execute; borrowed: copy it */
    struct cql_metadata params; /* bind markers, with pk_indices for routing */
    struct cql_metadata result; /* may be NO_METADATA with 0 columns */
};

/* Schema_change results and SCHEMA_CHANGE events. */
struct cql_schema_change {
    struct cql_str change_type; /* "CREATED", "UPDATED", "DROPPED" */
    struct cql_str target;      /* "KEYSPACE", "TABLE", "TYPE", "FUNCTION", "AGGREGATE" */
    struct cql_str keyspace;
    struct cql_str name;           /* table/type/function/aggregate; empty for KEYSPACE */
    struct cql_str_list arg_types; /* FUNCTION and AGGREGATE */
};

struct cql_result {
    int32_t kind; /* enum cql_result_kind: which member is set */
    struct cql_rows rows;
    struct cql_str keyspace; /* SET_KEYSPACE */
    struct cql_prepared prepared;
    struct cql_schema_change schema_change;
};

enum cql_event_type {
    CQL_EVENT_UNKNOWN = 0, /* a type this version does not know: ignore it */
    CQL_EVENT_TOPOLOGY_CHANGE = 1,
    CQL_EVENT_STATUS_CHANGE = 2,
    CQL_EVENT_SCHEMA_CHANGE = 3,
};

struct cql_event {
    int type;                 /* enum cql_event_type */
    struct cql_str type_name; /* as sent */
    struct cql_str change;    /* "NEW_NODE"/"REMOVED_NODE", "UP"/"DOWN" */
    struct cql_inet node;     /* topology and status changes */
    struct cql_schema_change schema;
};

/* One decoded response. Which member is meaningful follows env.header.opcode:
 * ERROR error, AUTHENTICATE authenticator, AUTH_CHALLENGE and AUTH_SUCCESS
 * token, SUPPORTED supported, RESULT result, EVENT event, READY none. */
struct cql_message {
    struct cql_response env; /* header, tracing id, warnings, payload */
    struct cql_error_body error;
    struct cql_str authenticator;  /* IAuthenticator class name */
    struct cql_value token;        /* SASL token, may be null */
    struct cql_multimap supported; /* option -> values (CQL_VERSION, COMPRESSION…) */
    struct cql_result result;
    struct cql_event event;
};

/* Decodes one response frame (header included). CQL_OK means the frame was
 * well formed, also for an ERROR frame: look at m->error.err then. On
 * failure m holds nothing to free. Request opcodes: CQL_E_PROTOCOL; unknown
 * opcodes or result kinds: CQL_E_UNSUPPORTED. Extra bytes at the end of a
 * body are ignored, as spec section 1 asks of clients. */
int cql_message_decode(const uint8_t *frame, size_t len, struct cql_message *m);
void cql_message_free(struct cql_message *m);

/* The body parsers cql_message_decode dispatches to, for callers that already
 * opened the envelope with cql_response_open. */
int cql_parse_error(struct cql_slice body, struct cql_error_body *out);
int cql_parse_result(struct cql_slice body, struct cql_result *out);
int cql_parse_event(struct cql_slice body, struct cql_event *out);
/* <change_type><target><options> at r, as in both of the above. */
int cql_read_schema_change(struct cql_reader *r, struct cql_schema_change *out);
void cql_result_free(struct cql_result *res);
void cql_metadata_free(struct cql_metadata *meta);

#endif
