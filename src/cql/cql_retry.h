/* cql_retry.h — the session's retry policy, as one pure decision function
 * applied to every failed attempt of a request:
 *   READ_TIMEOUT     retry once on the same host if enough replicas answered
 *                    (received >= block_for) but the data was not among the
 *                    answers (!data_present); otherwise fail.
 *   WRITE_TIMEOUT    retry once on the same host if the caller marked the
 *                    statement idempotent, or if the write type is BATCH_LOG
 *                    (the batch log write timed out: nothing was applied);
 *                    otherwise fail.
 *   UNAVAILABLE      retry once on the next host of the query plan.
 *   CLOSED, OVERLOADED, IS_BOOTSTRAPPING
 *                    retry on the next host if idempotent (up to
 *                    CQL_RETRY_MAX times in all); otherwise fail.
 *   anything else    fail (syntax, invalid, auth, …).
 * "Once" counts every retry of the request so far. A request that never
 * reached a server (CQL_E_NOT_SENT) is re-sent elsewhere without asking the
 * policy, and UNPREPARED is handled by re-preparing (cql_session.h). The
 * final error is always the last attempt's, with the server's code and text.
 * Pure function, no state: safe from any thread. */
#ifndef CQL_RETRY_H
#define CQL_RETRY_H

#include <stdbool.h>

#include "cql/cql_msg.h"

#define CQL_RETRY_MAX 3

enum cql_retry_action {
    CQL_RETRY_FAIL = 0,
    CQL_RETRY_SAME_HOST = 1,
    CQL_RETRY_NEXT_HOST = 2,
};

struct cql_retry_in {
    int err;                          /* the attempt's error (CQL_E_*) */
    const struct cql_error_body *srv; /* the server's ERROR, NULL for client errors */
    bool idempotent;
    unsigned retries; /* retries already made for this request */
};

enum cql_retry_action cql_retry_decide(const struct cql_retry_in *in);

#endif
