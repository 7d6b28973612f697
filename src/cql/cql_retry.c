/* cql_retry.c — the retry policy documented in cql_retry.h. */
#include "cql/cql_retry.h"

static enum cql_retry_action read_timeout(const struct cql_retry_in *in)
{
    const struct cql_error_body *e = in->srv;
    if (in->retries == 0 && e && e->received >= e->block_for && !e->data_present)
        return CQL_RETRY_SAME_HOST;
    return CQL_RETRY_FAIL;
}

static enum cql_retry_action write_timeout(const struct cql_retry_in *in)
{
    bool batch_log = in->srv && cql_str_eq(in->srv->write_type, "BATCH_LOG");
    if (in->retries == 0 && (in->idempotent || batch_log))
        return CQL_RETRY_SAME_HOST;
    return CQL_RETRY_FAIL;
}

enum cql_retry_action cql_retry_decide(const struct cql_retry_in *in)
{
    switch (in->err) {
    case CQL_E_SRV_READ_TIMEOUT:
        return read_timeout(in);
    case CQL_E_SRV_WRITE_TIMEOUT:
        return write_timeout(in);
    case CQL_E_SRV_UNAVAILABLE:
        return in->retries == 0 ? CQL_RETRY_NEXT_HOST : CQL_RETRY_FAIL;
    case CQL_E_CLOSED:
    case CQL_E_SRV_OVERLOADED:
    case CQL_E_SRV_BOOTSTRAPPING:
        return in->idempotent && in->retries < CQL_RETRY_MAX ? CQL_RETRY_NEXT_HOST : CQL_RETRY_FAIL;
    default:
        return CQL_RETRY_FAIL;
    }
}
