/* Unit tests of core/retention against the real embedded telemetry store:
 * old data goes at start and then every period, on the module's thread;
 * the store is told its retention once, whatever it is; a store that
 * expires data itself (IOT_TM_CAP_TTL) is never purged; stop is prompt.
 *
 * Stores with other capabilities are the SQLite store under another ops
 * table: the same functions, with set_retention and purge counted (and
 * set_retention answering what the test says). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/retention.h"
#include "store/sqlite/telemetry_sqlite.h"
#include "util/clock.h"
#include "util/err.h"

#define DAY INT64_C(86400000)

static _Atomic int purges, set_calls;
static _Atomic int64_t set_raw, set_rollup;
static int set_answer; /* what set_retention returns */

static int counted_purge(void *self, int64_t raw_before, int64_t rollup_before, int64_t *removed)
{
    atomic_fetch_add(&purges, 1);
    return iot_telemetry_sqlite.purge(self, raw_before, rollup_before, removed);
}

static int counted_set_retention(void *self, int64_t raw_ms, int64_t rollup_ms)
{
    atomic_fetch_add(&set_calls, 1);
    atomic_store(&set_raw, raw_ms);
    atomic_store(&set_rollup, rollup_ms);
    return set_answer;
}

static struct iot_telemetry_ops counted_ops; /* SQLite's, counted; caps per test */

struct fixture {
    struct iot_telemetry tm;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx || iot_telemetry_open("sqlite::memory:", false, &fx->tm))
        return -1;
    counted_ops = iot_telemetry_sqlite;
    counted_ops.version = 3;
    counted_ops.purge = counted_purge;
    counted_ops.set_retention = counted_set_retention;
    fx->tm.ops = &counted_ops; /* same self: the SQLite handle */
    atomic_store(&purges, 0);
    atomic_store(&set_calls, 0);
    set_answer = IOT_OK;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    iot_telemetry_close(&fx->tm);
    free(fx);
    return 0;
}

/* One message of device 1, `age_ms` old. */
static void write_aged(struct iot_telemetry *tm, int64_t age_ms, int64_t seq)
{
    struct iot_tm_point p = {"x", {.type = IOT_TM_NUMBER, .num = 1}};
    struct iot_tm_message m = {.device_id = 1, .user_id = 1, .ts = iot_now_ms() - age_ms,
                               .seq = seq, .points = &p, .n_points = 1,
                               .data_json = "{\"x\":1}", .data_len = 7};
    assert_int_equal(iot_tm_write_batch(tm, &m, 1), IOT_OK);
}

static int64_t messages(struct iot_telemetry *tm)
{
    struct iot_tm_stats st;
    assert_int_equal(iot_tm_stats(tm, &st), IOT_OK);
    return st.messages;
}

/* Polls (up to 10 s) until the store holds `want` messages. */
static bool wait_messages(struct iot_telemetry *tm, int64_t want)
{
    for (int i = 0; i < 1000 && messages(tm) != want; i++)
        usleep(10000);
    return messages(tm) == want;
}

static void assert_prompt_stop(struct iot_retention *r)
{
    int64_t t0 = iot_mono_us();
    iot_retention_free(r);
    int64_t took_ms = (iot_mono_us() - t0) / 1000;
    if (took_ms > 1000)
        fail_msg("stopping took %lld ms", (long long)took_ms);
}

/* Old data goes at start, then at every period; the store is told its
 * retention once (a no-op for SQLite, which has no such slot). */
static void test_purges_at_start_and_periodically(void **state)
{
    struct fixture *fx = *state;
    write_aged(&fx->tm, 100 * DAY, 0);
    write_aged(&fx->tm, 0, 1);
    struct iot_retention_config cfg = {.raw_ms = 90 * DAY, .rollup_ms = 365 * DAY,
                                       .period_ms = 50};
    struct iot_retention *r = NULL;
    assert_int_equal(iot_retention_start(&cfg, &fx->tm, &r), IOT_OK);
    assert_true(iot_retention_purges(r));
    assert_int_equal(atomic_load(&set_calls), 1);
    assert_int_equal(atomic_load(&set_raw), 90 * DAY);
    assert_int_equal(atomic_load(&set_rollup), 365 * DAY);
    assert_true(wait_messages(&fx->tm, 1));
    write_aged(&fx->tm, 91 * DAY, 2); /* gone at a later period */
    write_aged(&fx->tm, 89 * DAY, 3); /* kept */
    assert_true(wait_messages(&fx->tm, 2));
    assert_prompt_stop(r);
    assert_int_equal(atomic_load(&set_calls), 1);
}

/* Stop does not wait for the period (an hour here). */
static void test_stop_is_prompt(void **state)
{
    struct fixture *fx = *state;
    struct iot_retention_config cfg = {.raw_ms = 90 * DAY};
    struct iot_retention *r = NULL;
    assert_int_equal(iot_retention_start(&cfg, &fx->tm, &r), IOT_OK);
    for (int i = 0; i < 1000 && atomic_load(&purges) == 0; i++)
        usleep(10000); /* the purge at start done: the thread waits its hour */
    assert_int_equal(atomic_load(&purges), 1);
    assert_prompt_stop(r);
    assert_int_equal(atomic_load(&purges), 1);
    iot_retention_stop(NULL);
    iot_retention_free(NULL);
}

/* A store that expires data itself is told the periods and never purged. */
static void test_store_with_ttl_is_not_purged(void **state)
{
    struct fixture *fx = *state;
    counted_ops.caps |= IOT_TM_CAP_TTL;
    write_aged(&fx->tm, 100 * DAY, 0);
    struct iot_retention_config cfg = {.raw_ms = 90 * DAY, .rollup_ms = 365 * DAY,
                                       .period_ms = 1};
    struct iot_retention *r = NULL;
    assert_int_equal(iot_retention_start(&cfg, &fx->tm, &r), IOT_OK);
    assert_false(iot_retention_purges(r));
    assert_int_equal(atomic_load(&set_calls), 1);
    assert_int_equal(atomic_load(&set_raw), 90 * DAY);
    assert_prompt_stop(r);
    assert_int_equal(atomic_load(&purges), 0);
    assert_int_equal(messages(&fx->tm), 1);
}

/* Keep forever: the store is told so, and nothing is purged. */
static void test_keep_forever(void **state)
{
    struct fixture *fx = *state;
    write_aged(&fx->tm, 10000 * DAY, 0);
    struct iot_retention_config cfg = {.raw_ms = 0, .rollup_ms = 0};
    struct iot_retention *r = NULL;
    assert_int_equal(iot_retention_start(&cfg, &fx->tm, &r), IOT_OK);
    assert_false(iot_retention_purges(r));
    assert_int_equal(atomic_load(&set_calls), 1);
    assert_int_equal(atomic_load(&set_raw), 0);
    iot_retention_free(r);
    assert_int_equal(atomic_load(&purges), 0);
    assert_int_equal(messages(&fx->tm), 1);
}

/* A store that refuses its retention stops the start; so do bad periods. */
static void test_refusals(void **state)
{
    struct fixture *fx = *state;
    struct iot_retention *r = (struct iot_retention *)1;
    set_answer = IOT_EUNAVAILABLE;
    struct iot_retention_config cfg = {.raw_ms = 90 * DAY};
    assert_int_equal(iot_retention_start(&cfg, &fx->tm, &r), IOT_EUNAVAILABLE);
    assert_null(r);
    assert_int_equal(atomic_load(&purges), 0);
    set_answer = IOT_OK;
    cfg.raw_ms = -1;
    assert_int_equal(iot_retention_start(&cfg, &fx->tm, &r), IOT_EINVAL);
    assert_null(r);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_purges_at_start_and_periodically),
        T(test_stop_is_prompt),
        T(test_store_with_ttl_is_not_purged),
        T(test_keep_forever),
        T(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
