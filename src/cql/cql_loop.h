/* cql_loop.h — the reactor behind a session's I/O thread: epoll over file
 * descriptors, an eventfd that other threads write to wake it, a min-heap of
 * timers (request deadlines, reconnects) that sets epoll_wait's timeout, and
 * deferred calls run once before the next poll (write batching, late frees).
 * Ownership: the loop only borrows the struct cql_io, cql_timer and cql_defer
 * it is given (they are embedded in their owners, who keep them alive until
 * removed or fired). Threading: cql_loop_wake may be called from any thread;
 * everything else only on the thread that runs the loop. */
#ifndef CQL_LOOP_H
#define CQL_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cql_loop;

/* A watched descriptor. fn gets the epoll event bits (EPOLLIN, EPOLLOUT,
 * EPOLLERR, EPOLLHUP). */
struct cql_io {
    void (*fn)(struct cql_io *io, uint32_t events);
    int fd;
    uint32_t events; /* what is registered now */
    bool added;
};

/* A one-shot timer: fn runs on the loop thread at or after when_ns
 * (cql_now_ns clock). slot is the heap position + 1, 0 when not armed. */
struct cql_timer {
    void (*fn)(struct cql_timer *t);
    uint64_t when_ns;
    size_t slot;
};

/* A call run once before the next poll; queueing it twice runs it once. */
struct cql_defer {
    void (*fn)(struct cql_defer *d);
    struct cql_defer *next;
    bool queued;
};

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t cql_now_ns(void);

/* wake_fn runs on the loop thread after another thread called
 * cql_loop_wake (several wakes may fold into one call). */
int cql_loop_new(void (*wake_fn)(void *arg), void *arg, struct cql_loop **out);
/* Closes the eventfd and epoll descriptors; owners must have removed their
 * descriptors (their fds are not closed here). NULL is a no-op. */
void cql_loop_free(struct cql_loop *l);

/* Registers io->fd (set by the caller) for `events`. CQL_E_IO on failure. */
int cql_loop_add(struct cql_loop *l, struct cql_io *io, uint32_t events);
/* Changes the registered events; no system call when they are unchanged. */
int cql_loop_set(struct cql_loop *l, struct cql_io *io, uint32_t events);
/* Unregisters (before the owner closes the fd). Safe if never added. Events
 * of the current turn may still be delivered to io afterwards: owners free
 * it no sooner than in a deferred call (which runs after the turn). */
void cql_loop_del(struct cql_loop *l, struct cql_io *io);

/* Arms (or re-arms) t for when_ns. CQL_E_NOMEM if the heap cannot grow; t is
 * then not armed. */
int cql_timer_start(struct cql_loop *l, struct cql_timer *t, uint64_t when_ns);
/* Disarms t; a no-op if it is not armed. */
void cql_timer_stop(struct cql_loop *l, struct cql_timer *t);
static inline bool cql_timer_armed(const struct cql_timer *t)
{
    return t->slot != 0;
}

void cql_loop_defer(struct cql_loop *l, struct cql_defer *d);
/* Takes d off the queue if it is on it (before its owner is freed). */
void cql_loop_undefer(struct cql_loop *l, struct cql_defer *d);

/* Any thread: makes the loop call wake_fn soon. Async-signal-safe. */
void cql_loop_wake(struct cql_loop *l);

/* One turn: runs deferred calls, waits at most max_wait_ms (less if a timer
 * is due earlier, -1 = no limit but the timers), dispatches I/O events, runs
 * due timers. CQL_OK, or CQL_E_IO if epoll_wait failed for good. */
int cql_loop_run_once(struct cql_loop *l, int max_wait_ms);

#endif
