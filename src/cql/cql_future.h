/* cql_future.h — a one-shot future for a session request: completed once by
 * cql_future_complete (a cql_callback, run on the I/O thread), waited for and
 * read by any other thread.
 * Ownership: a future is shared by its holder and the pending request; each
 * side drops its part (the request when it completes, the holder with
 * cql_future_free), the last one frees it, so it may be freed before it
 * completes. The reply moves to whoever calls cql_future_get first; an
 * untaken reply is freed with the future.
 * Threading: wait/get/free from any thread except the session's I/O thread
 * (they block); complete from the I/O thread. */
#ifndef CQL_FUTURE_H
#define CQL_FUTURE_H

#include <stdbool.h>
#include <stdint.h>

struct cql_future;
struct cql_reply;

/* A future with two references: the caller's and the request's (passed to a
 * cql_session_* call as ctx with cql_future_complete as the callback). If
 * that call fails, complete it by hand: cql_future_complete(rc, NULL, f).
 * NULL on out of memory. */
struct cql_future *cql_future_new(void);
/* A cql_callback: records rc and reply, wakes waiters, drops the request's
 * reference. */
void cql_future_complete(int rc, struct cql_reply *reply, void *future);
bool cql_future_done(struct cql_future *f);
/* Waits up to timeout_ms (UINT32_MAX: forever); true once completed. */
bool cql_future_wait(struct cql_future *f, uint32_t timeout_ms);
/* Waits for completion; returns the request's rc and moves the reply to
 * *reply (NULL if already taken or none; reply may be NULL to free it). */
int cql_future_get(struct cql_future *f, struct cql_reply **reply);
/* Drops the caller's reference. NULL is a no-op. */
void cql_future_free(struct cql_future *f);

#endif
