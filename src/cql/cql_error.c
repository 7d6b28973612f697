/* cql_error.c — text for the CQL client's status codes and the mapping
 * between server ERROR codes and enum cql_err. One table drives both
 * directions so they cannot disagree. */
#include "cql/cql_error.h"

#include <stddef.h>

struct server_code {
    int32_t code;
    enum cql_err err;
    const char *text;
};

static const struct server_code server_codes[] = {
    {0x0000, CQL_E_SRV_SERVER, "server error"},
    {0x000A, CQL_E_SRV_PROTOCOL, "server reports a protocol error"},
    {0x0100, CQL_E_SRV_AUTH, "authentication failed"},
    {0x1000, CQL_E_SRV_UNAVAILABLE, "not enough replicas available"},
    {0x1001, CQL_E_SRV_OVERLOADED, "coordinator overloaded"},
    {0x1002, CQL_E_SRV_BOOTSTRAPPING, "coordinator is bootstrapping"},
    {0x1003, CQL_E_SRV_TRUNCATE, "truncate failed"},
    {0x1100, CQL_E_SRV_WRITE_TIMEOUT, "write timeout"},
    {0x1200, CQL_E_SRV_READ_TIMEOUT, "read timeout"},
    {0x1300, CQL_E_SRV_READ_FAILURE, "read failure"},
    {0x1400, CQL_E_SRV_FUNCTION_FAILURE, "function failure"},
    {0x1500, CQL_E_SRV_WRITE_FAILURE, "write failure"},
    {0x2000, CQL_E_SRV_SYNTAX, "syntax error"},
    {0x2100, CQL_E_SRV_UNAUTHORIZED, "unauthorized"},
    {0x2200, CQL_E_SRV_INVALID, "invalid query"},
    {0x2300, CQL_E_SRV_CONFIG, "configuration error"},
    {0x2400, CQL_E_SRV_ALREADY_EXISTS, "already exists"},
    {0x2500, CQL_E_SRV_UNPREPARED, "statement not prepared on this host"},
};

#define N_SERVER_CODES (sizeof server_codes / sizeof server_codes[0])

static const char *client_text(int err)
{
    switch (err) {
    case CQL_OK:
        return "success";
    case CQL_E_AGAIN:
        return "incomplete input, more bytes needed";
    case CQL_E_BAD_FRAME:
        return "not a CQL v4 frame";
    case CQL_E_TOO_LARGE:
        return "frame or count too large";
    case CQL_E_TRUNCATED:
        return "truncated message";
    case CQL_E_PROTOCOL:
        return "malformed message";
    case CQL_E_UNSUPPORTED:
        return "unsupported protocol feature";
    case CQL_E_NOMEM:
        return "out of memory";
    case CQL_E_INVALID:
        return "invalid argument";
    case CQL_E_TYPE:
        return "value does not match its type";
    case CQL_E_NULL:
        return "value is null";
    case CQL_E_DEPTH:
        return "type nested too deeply";
    case CQL_E_IO:
        return "network I/O failed";
    case CQL_E_TIMEOUT:
        return "request timed out";
    case CQL_E_CLOSED:
        return "connection closed";
    case CQL_E_NO_HOST:
        return "no host available";
    case CQL_E_SHUTDOWN:
        return "session is shutting down";
    case CQL_E_QUEUE_FULL:
        return "too many pending requests";
    case CQL_E_AUTH_REQUIRED:
        return "server requires authentication";
    case CQL_E_NOT_SENT:
        return "request was not sent";
    case CQL_E_SRV_UNKNOWN:
        return "unknown server error code";
    default:
        return NULL;
    }
}

const char *cql_strerror(int err)
{
    const char *text = client_text(err);
    if (text)
        return text;
    for (size_t i = 0; i < N_SERVER_CODES; i++)
        if ((int)server_codes[i].err == err)
            return server_codes[i].text;
    return "unknown error";
}

enum cql_err cql_err_from_server_code(int32_t code)
{
    for (size_t i = 0; i < N_SERVER_CODES; i++)
        if (server_codes[i].code == code)
            return server_codes[i].err;
    return CQL_E_SRV_UNKNOWN;
}

int32_t cql_err_server_code(int err)
{
    for (size_t i = 0; i < N_SERVER_CODES; i++)
        if ((int)server_codes[i].err == err)
            return server_codes[i].code;
    return -1;
}
