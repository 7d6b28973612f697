/* cql_error.h — the status codes of the CQL client library and their text.
 * 0 (CQL_OK) is success, a negative enum cql_err a failure: -1..-49 raised by
 * the client itself, -100 and below one per server ERROR code, so callers
 * switch on them without parsing the ERROR body.
 * Pure functions, no state: safe from any thread. */
#ifndef CQL_ERROR_H
#define CQL_ERROR_H

#include <stdint.h>

enum cql_err {
    CQL_OK = 0,

    /* Raised by the client. Append new codes, never renumber. */
    CQL_E_AGAIN = -1,       /* partial input: feed more bytes, nothing consumed */
    CQL_E_BAD_FRAME = -2,   /* header is not a v4 frame of the expected direction */
    CQL_E_TOO_LARGE = -3,   /* a frame body above CQL_FRAME_MAX_BODY, or a count above a bound */
    CQL_E_TRUNCATED = -4,   /* a field runs past the end of its frame or value */
    CQL_E_PROTOCOL = -5,    /* well-framed but impossible content (bad kind, negative count) */
    CQL_E_UNSUPPORTED = -6, /* valid protocol we do not speak: compression, unknown opcode */
    CQL_E_NOMEM = -7,       /* malloc/realloc failed */
    CQL_E_INVALID = -8,     /* a caller argument out of range (string > 65535 bytes, …) */
    CQL_E_TYPE = -9,        /* a value's size or type does not match what was asked */
    CQL_E_NULL = -10,       /* the value is null (or not set) where a real value was asked */
    CQL_E_DEPTH = -11,      /* type options nested deeper than CQL_TYPE_MAX_DEPTH */
    /* -12 .. -49: the connection layer (cql_conn, cql_session). */
    CQL_E_IO = -12,            /* connect, read or write failed (errno text on the handle) */
    CQL_E_TIMEOUT = -13,       /* the request's deadline passed before an answer */
    CQL_E_CLOSED = -14,        /* the connection closed with the request in flight */
    CQL_E_NO_HOST = -15,       /* no host is up to take the request */
    CQL_E_SHUTDOWN = -16,      /* the session is closing */
    CQL_E_QUEUE_FULL = -17,    /* too many requests waiting (cql_session_config.max_pending) */
    CQL_E_AUTH_REQUIRED = -18, /* the server wants credentials and none were configured */
    CQL_E_NOT_SENT = -19,      /* internal: the request never left; safe to send elsewhere */

    /* One code per server ERROR code (native_protocol_v4.spec section 9). */
    CQL_E_SRV_SERVER = -100,           /* 0x0000 server-side bug */
    CQL_E_SRV_PROTOCOL = -101,         /* 0x000A the server says we broke the protocol */
    CQL_E_SRV_AUTH = -102,             /* 0x0100 bad credentials */
    CQL_E_SRV_UNAVAILABLE = -103,      /* 0x1000 not enough replicas alive for the CL */
    CQL_E_SRV_OVERLOADED = -104,       /* 0x1001 */
    CQL_E_SRV_BOOTSTRAPPING = -105,    /* 0x1002 */
    CQL_E_SRV_TRUNCATE = -106,         /* 0x1003 */
    CQL_E_SRV_WRITE_TIMEOUT = -107,    /* 0x1100 */
    CQL_E_SRV_READ_TIMEOUT = -108,     /* 0x1200 */
    CQL_E_SRV_READ_FAILURE = -109,     /* 0x1300 */
    CQL_E_SRV_FUNCTION_FAILURE = -110, /* 0x1400 */
    CQL_E_SRV_WRITE_FAILURE = -111,    /* 0x1500 */
    CQL_E_SRV_SYNTAX = -112,           /* 0x2000 */
    CQL_E_SRV_UNAUTHORIZED = -113,     /* 0x2100 */
    CQL_E_SRV_INVALID = -114,          /* 0x2200 */
    CQL_E_SRV_CONFIG = -115,           /* 0x2300 */
    CQL_E_SRV_ALREADY_EXISTS = -116,   /* 0x2400 */
    CQL_E_SRV_UNPREPARED = -117,       /* 0x2500 re-prepare and retry */
    CQL_E_SRV_UNKNOWN = -118,          /* a code this version does not know */
};

/* A short English description; never NULL, also for unknown values. */
const char *cql_strerror(int err);

/* The enum value for a server ERROR code; CQL_E_SRV_UNKNOWN if unknown. */
enum cql_err cql_err_from_server_code(int32_t code);

/* The server ERROR code of a CQL_E_SRV_* value, -1 for any other value
 * (including CQL_E_SRV_UNKNOWN, whose code is kept in the parsed error). */
int32_t cql_err_server_code(int err);

/* True for the CQL_E_SRV_* range. */
static inline int cql_err_is_server(int err)
{
    return err <= CQL_E_SRV_SERVER && err >= CQL_E_SRV_UNKNOWN;
}

#endif
