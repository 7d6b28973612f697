/* store_metrics.c — the slots behind store_metrics.h. */
#include "store/store_metrics.h"

#include <stdatomic.h>
#include <stdbool.h>

#include "util/err.h"
#include "util/metrics.h"

/* 50 µs (an in-process read) to 2.5 s (a server op near its timeout). */
static const struct iot_hist_bounds op_bounds = {
    15, {50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
         1000000, 2500000}};

struct slot {
    _Atomic(const void *) ops; /* claimed: NULL = free */
    _Atomic bool ready;        /* kind and backend written */
    enum iot_store_kind kind;
    const char *backend;
    struct iot_histogram latency;
    struct iot_counter errors;
};

static struct slot slots[IOT_STORE_SLOTS];

static const char *const kind_names[] = {
    [IOT_STORE_REGISTRY] = "registry",
    [IOT_STORE_TELEMETRY] = "telemetry",
    [IOT_STORE_CACHE] = "cache",
    [IOT_STORE_DOCS] = "documents",
};

/* Each ops table is one backend of one store, so the table alone keys a
 * slot. Claimed slots are never released: a scan stops at the first free
 * one, where the table is claimed if it was not seen before. */
static struct slot *slot_of(enum iot_store_kind kind, const void *ops, const char *backend)
{
    for (size_t i = 0; i < IOT_STORE_SLOTS; i++) {
        struct slot *s = &slots[i];
        const void *seen = atomic_load_explicit(&s->ops, memory_order_acquire);
        if (seen == ops)
            return s;
        if (seen)
            continue;
        if (atomic_compare_exchange_strong(&s->ops, &seen, ops)) {
            s->kind = kind;
            s->backend = backend;
            atomic_store_explicit(&s->ready, true, memory_order_release);
            return s;
        }
        if (seen == ops) /* another thread claimed it for the same table */
            return s;
    }
    return NULL;
}

static bool is_store_failure(int rc)
{
    return rc != IOT_OK && rc != IOT_ENOTFOUND && rc != IOT_ECONFLICT && rc != IOT_EINVAL;
}

void iot_store_op_done(enum iot_store_kind kind, const void *ops, const char *backend, int64_t t0,
                       int rc)
{
    struct slot *s = slot_of(kind, ops, backend);
    if (!s)
        return;
    iot_histogram_observe(&s->latency, &op_bounds, iot_mono_real_us() - t0);
    if (is_store_failure(rc))
        iot_counter_inc(&s->errors);
}

static void render_slots(struct iot_buf *b, bool errors)
{
    for (size_t i = 0; i < IOT_STORE_SLOTS; i++) {
        struct slot *s = &slots[i];
        if (!atomic_load_explicit(&s->ready, memory_order_acquire))
            continue;
        struct iot_label l[] = {{"store", kind_names[s->kind]}, {"backend", s->backend}};
        if (errors)
            iot_metrics_sample_u64(b, "iotflow_store_errors_total", l, 2,
                                   iot_counter_get(&s->errors));
        else
            iot_metrics_histogram(b, "iotflow_store_operation_duration_seconds", l, 2,
                                  &s->latency, &op_bounds);
    }
}

void iot_store_metrics_render(struct iot_buf *b)
{
    iot_metrics_family(b, "iotflow_store_operation_duration_seconds", "histogram",
                       "Time a store operation took, as its caller saw it (rows streamed to "
                       "a callback included).");
    render_slots(b, false);
    iot_metrics_family(b, "iotflow_store_errors_total", "counter",
                       "Store operations that failed in the store (timeout, unavailable, out of "
                       "memory, internal, limit); not found, conflict and invalid input are not "
                       "errors.");
    render_slots(b, true);
}
