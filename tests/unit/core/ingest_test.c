/* Unit tests of core/ingest that need no real store: the writer's periodic
 * duties (the batched registry last_seen write) keep their period when the
 * wall clock is stepped.
 *
 * The step is simulated: this executable defines clock_gettime itself (it
 * wins over libc's for every call in the program, iotcore's included) and
 * adds a shift to CLOCK_REALTIME. The kernel still times waits on the real
 * clocks, so a wait whose deadline was read from the shifted wall clock
 * lasts the shift longer — what a clock stepped back by NTP or an admin
 * does to a CLOCK_REALTIME condition variable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/ingest.h"
#include "util/clock.h"
#include "util/err.h"

static _Atomic int64_t realtime_shift_s;

int clock_gettime(clockid_t clock, struct timespec *ts)
{
    int rc = (int)syscall(SYS_clock_gettime, clock, ts);
    if (rc == 0 && clock == CLOCK_REALTIME)
        ts->tv_sec += (time_t)atomic_load(&realtime_shift_s);
    return rc;
}

/* ---- fake stores: only what the writer calls with no traffic ----------- */

static _Atomic int touched; /* device_touch calls */
static _Atomic int64_t touched_device;

static int fake_touch(void *self, const struct iot_seen *seen, size_t n)
{
    if (n)
        atomic_store(&touched_device, seen[0].device_id);
    atomic_fetch_add(&touched, 1);
    return IOT_OK;
}

static const struct iot_registry_ops fake_registry_ops = {
    .name = "fake", .version = 1, .device_touch = fake_touch};
static const struct iot_telemetry_ops fake_telemetry_ops = {.name = "fake", .version = 1};
static const struct iot_cache_ops fake_cache_ops = {.name = "fake", .version = 1};

/* Polls for a device_touch for up to timeout_ms of monotonic time. */
static bool wait_touched(int64_t timeout_ms)
{
    int64_t until = iot_mono_us() + timeout_ms * 1000;
    while (iot_mono_us() < until) {
        if (atomic_load(&touched) > 0)
            return true;
        usleep(5000);
    }
    return atomic_load(&touched) > 0;
}

static void seen_flush_survives_wall_clock_step_back(void **state)
{
    (void)state;
    struct iot_registry reg = {&fake_registry_ops, NULL};
    struct iot_telemetry tm = {&fake_telemetry_ops, NULL};
    struct iot_cache cache = {&fake_cache_ops, NULL};
    struct iot_ingest_config cfg = {.queue_max = 100, .batch_max = 10, .seen_flush_ms = 100};
    struct iot_ingest *ing = iot_ingest_start(&cfg, &tm, &cache, &reg);
    assert_non_null(ing);

    /* From now on the wall clock reads an hour ahead of the kernel's: every
     * wait the writer starts is on a deadline an hour away if it is on the
     * wall clock. The writer's current wait (if any) ends on time. */
    atomic_store(&realtime_shift_s, 3600);
    usleep(300 * 1000); /* longer than one wait: the writer is in a new one */
    atomic_store(&touched, 0);

    iot_ingest_note_seen(ing, 42, iot_now_ms());
    /* seen_flush_ms is 100 and the writer wakes every 200 ms to check: well
     * within 3 s unless its wait follows the wall clock. */
    bool flushed = wait_touched(3000);
    atomic_store(&realtime_shift_s, 0);
    iot_ingest_free(ing); /* wakes the writer either way */
    assert_true(flushed);
    assert_int_equal(atomic_load(&touched_device), 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seen_flush_survives_wall_clock_step_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
