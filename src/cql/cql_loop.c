/* cql_loop.c — epoll reactor with an eventfd wake-up, a binary min-heap of
 * timers and a list of deferred calls (see cql_loop.h). */
#include "cql/cql_loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cql/cql_error.h"

#define MAX_EVENTS 64

struct cql_loop {
    int epfd;
    struct cql_io wake_io;
    void (*wake_fn)(void *arg);
    void *wake_arg;
    struct cql_timer **heap; /* heap[0] is the earliest */
    size_t n_timers, cap_timers;
    struct cql_defer *defer_head, *defer_tail;
};

uint64_t cql_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- wake-up -------------------------------------------------------------- */

static struct cql_loop *loop_of_wake(struct cql_io *io)
{
    return (struct cql_loop *)((char *)io - offsetof(struct cql_loop, wake_io));
}

static void on_wake(struct cql_io *io, uint32_t events)
{
    struct cql_loop *l = loop_of_wake(io);
    uint64_t n;
    while (read(io->fd, &n, sizeof n) < 0 && errno == EINTR)
        ;
    if (l->wake_fn)
        l->wake_fn(l->wake_arg);
}

void cql_loop_wake(struct cql_loop *l)
{
    uint64_t one = 1;
    while (write(l->wake_io.fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

int cql_loop_new(void (*wake_fn)(void *arg), void *arg, struct cql_loop **out)
{
    struct cql_loop *l = calloc(1, sizeof *l);
    if (!l)
        return CQL_E_NOMEM;
    l->wake_fn = wake_fn;
    l->wake_arg = arg;
    l->wake_io = (struct cql_io){.fn = on_wake, .fd = -1};
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd >= 0)
        l->wake_io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->wake_io.fd < 0 || cql_loop_add(l, &l->wake_io, EPOLLIN)) {
        cql_loop_free(l);
        return CQL_E_IO;
    }
    *out = l;
    return CQL_OK;
}

void cql_loop_free(struct cql_loop *l)
{
    if (!l)
        return;
    if (l->wake_io.fd >= 0)
        close(l->wake_io.fd);
    if (l->epfd >= 0)
        close(l->epfd);
    free(l->heap);
    free(l);
}

/* ---- descriptors ---------------------------------------------------------- */

int cql_loop_add(struct cql_loop *l, struct cql_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0)
        return CQL_E_IO;
    io->events = events;
    io->added = true;
    return CQL_OK;
}

int cql_loop_set(struct cql_loop *l, struct cql_io *io, uint32_t events)
{
    if (!io->added)
        return cql_loop_add(l, io, events);
    if (io->events == events)
        return CQL_OK;
    struct epoll_event ev = {.events = events, .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
        return CQL_E_IO;
    io->events = events;
    return CQL_OK;
}

void cql_loop_del(struct cql_loop *l, struct cql_io *io)
{
    if (!io->added)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->added = false;
    io->events = 0;
}

/* ---- timers: a binary min-heap on when_ns --------------------------------- */

static void heap_place(struct cql_loop *l, size_t i, struct cql_timer *t)
{
    l->heap[i] = t;
    t->slot = i + 1;
}

static void sift_up(struct cql_loop *l, size_t i)
{
    struct cql_timer *t = l->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (l->heap[parent]->when_ns <= t->when_ns)
            break;
        heap_place(l, i, l->heap[parent]);
        i = parent;
    }
    heap_place(l, i, t);
}

static void sift_down(struct cql_loop *l, size_t i)
{
    struct cql_timer *t = l->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= l->n_timers)
            break;
        if (child + 1 < l->n_timers && l->heap[child + 1]->when_ns < l->heap[child]->when_ns)
            child++;
        if (t->when_ns <= l->heap[child]->when_ns)
            break;
        heap_place(l, i, l->heap[child]);
        i = child;
    }
    heap_place(l, i, t);
}

void cql_timer_stop(struct cql_loop *l, struct cql_timer *t)
{
    if (!t->slot)
        return;
    size_t i = t->slot - 1;
    t->slot = 0;
    struct cql_timer *last = l->heap[--l->n_timers];
    if (i == l->n_timers)
        return;
    heap_place(l, i, last);
    sift_up(l, i);
    sift_down(l, last->slot - 1);
}

int cql_timer_start(struct cql_loop *l, struct cql_timer *t, uint64_t when_ns)
{
    cql_timer_stop(l, t);
    if (l->n_timers == l->cap_timers) {
        size_t cap = l->cap_timers ? 2 * l->cap_timers : 64;
        struct cql_timer **heap = realloc(l->heap, cap * sizeof *heap);
        if (!heap)
            return CQL_E_NOMEM;
        l->heap = heap;
        l->cap_timers = cap;
    }
    t->when_ns = when_ns;
    heap_place(l, l->n_timers++, t);
    sift_up(l, l->n_timers - 1);
    return CQL_OK;
}

static void run_due_timers(struct cql_loop *l)
{
    uint64_t now = cql_now_ns();
    while (l->n_timers > 0 && l->heap[0]->when_ns <= now) {
        struct cql_timer *t = l->heap[0];
        cql_timer_stop(l, t);
        t->fn(t); /* may re-arm t or any other timer */
    }
}

/* Milliseconds until the first timer, rounded up, capped by max_wait_ms. */
static int poll_timeout(const struct cql_loop *l, int max_wait_ms)
{
    if (l->n_timers == 0)
        return max_wait_ms;
    uint64_t now = cql_now_ns(), when = l->heap[0]->when_ns;
    if (when <= now)
        return 0;
    uint64_t ms = (when - now + 999999) / 1000000;
    if (max_wait_ms >= 0 && ms > (uint64_t)max_wait_ms)
        return max_wait_ms;
    return ms > 60000 ? 60000 : (int)ms;
}

/* ---- deferred calls -------------------------------------------------------- */

void cql_loop_defer(struct cql_loop *l, struct cql_defer *d)
{
    if (d->queued)
        return;
    d->queued = true;
    d->next = NULL;
    if (l->defer_tail)
        l->defer_tail->next = d;
    else
        l->defer_head = d;
    l->defer_tail = d;
}

void cql_loop_undefer(struct cql_loop *l, struct cql_defer *d)
{
    if (!d->queued)
        return;
    struct cql_defer **pp = &l->defer_head, *prev = NULL;
    while (*pp && *pp != d) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = d->next;
        if (l->defer_tail == d)
            l->defer_tail = prev;
    }
    d->queued = false;
    d->next = NULL;
}

/* Runs the calls queued so far, popping them one at a time so that a call
 * may undefer (and free) any other; calls queued meanwhile run next turn
 * (unless the last original one was undeferred: then they run now). */
static void run_deferred(struct cql_loop *l)
{
    struct cql_defer *last = l->defer_tail;
    while (l->defer_head) {
        struct cql_defer *d = l->defer_head;
        l->defer_head = d->next;
        if (!l->defer_head)
            l->defer_tail = NULL;
        d->queued = false;
        d->next = NULL;
        bool was_last = d == last;
        d->fn(d); /* may free d */
        if (was_last)
            break;
    }
}

int cql_loop_run_once(struct cql_loop *l, int max_wait_ms)
{
    run_deferred(l);
    int timeout = l->defer_head ? 0 : poll_timeout(l, max_wait_ms);
    struct epoll_event events[MAX_EVENTS];
    int n = epoll_wait(l->epfd, events, MAX_EVENTS, timeout);
    if (n < 0 && errno != EINTR)
        return CQL_E_IO;
    for (int i = 0; i < n; i++) {
        struct cql_io *io = events[i].data.ptr;
        io->fn(io, events[i].events);
    }
    run_due_timers(l);
    return CQL_OK;
}
