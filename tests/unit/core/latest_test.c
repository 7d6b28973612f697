/* Unit tests of core/latest, the latest-value cache protocol, against real
 * stores: the embedded SQLite telemetry store and the in-process cache,
 * then every cache URL of IOT_CACHE_URLS_EXTRA (Redis under `make test`,
 * each run under a key prefix of its own). What a reader gets, where from,
 * when the writer merges and when it drops, and that both sides write the
 * same text for the same value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contract/contract_runner.h"
#include "core/latest.h"
#include "util/err.h"

#define T0 INT64_C(1795737600000) /* 2026-11-27T00:00:00Z */

static const char *g_cache_url; /* NULL: in-process */
static unsigned g_run;

struct stores {
    struct iot_cache cache;
    struct iot_telemetry tm;
    struct iot_latest_writer *writer;
    struct iot_fanout fan;
    bool shared;
};

static int setup(void **state)
{
    struct stores *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    char url[1200];
    if (g_cache_url)
        snprintf(url, sizeof url, "%s%cprefix=lt%ld.%u:", g_cache_url,
                 strchr(g_cache_url, '?') ? '&' : '?', (long)getpid(), g_run++);
    if (iot_cache_open(g_cache_url ? url : NULL, &s->cache) ||
        iot_telemetry_open("sqlite::memory:", false, &s->tm) ||
        !(s->writer = iot_latest_writer_new(&s->cache)))
        return -1;
    s->shared = (s->cache.ops->caps & IOT_CACHE_CAP_SHARED) != 0;
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct stores *s = *state;
    iot_fanout_free(&s->fan);
    iot_latest_writer_free(s->writer);
    iot_telemetry_close(&s->tm);
    iot_cache_close(&s->cache);
    free(s);
    return 0;
}

/* ---- messages ---------------------------------------------------------------- */

struct msg {
    struct iot_tm_message m;
    struct iot_tm_point p[IOT_TM_POINTS_MAX];
    char names[IOT_TM_POINTS_MAX][16];
};

static void msg_init(struct msg *x, int64_t dev, int64_t ts)
{
    memset(x, 0, sizeof *x);
    x->m = (struct iot_tm_message){.device_id = dev, .user_id = 1, .ts = ts, .points = x->p,
                                   .data_json = "{}", .data_len = 2};
}

static struct iot_tm_value *msg_add(struct msg *x, const char *name)
{
    size_t i = x->m.n_points++;
    snprintf(x->names[i], sizeof x->names[i], "%s", name);
    x->p[i].name = x->names[i];
    return &x->p[i].value;
}

static void msg_num(struct msg *x, const char *name, double v)
{
    *msg_add(x, name) = (struct iot_tm_value){.type = IOT_TM_NUMBER, .num = v};
}

static void msg_int(struct msg *x, const char *name, int64_t v)
{
    *msg_add(x, name) =
        (struct iot_tm_value){.type = IOT_TM_NUMBER, .num = (double)v, .is_int = true, .i = v};
}

/* Writes the message to the store, then runs the writer's side of its
 * commit, as ingest does. */
static void commit(struct stores *s, struct msg *x)
{
    assert_int_equal(iot_tm_write_batch(&s->tm, &x->m, 1), IOT_OK);
    iot_latest_after_commit(s->writer, &s->fan, &x->m);
    assert_int_equal(iot_fanout_send(&s->fan, &s->cache), IOT_OK);
}

/* ---- reading ----------------------------------------------------------------- */

struct got {
    size_t n;
    size_t stop_after; /* 0: never stop */
    struct {
        char name[IOT_TM_NAME_MAX + 1];
        char json[IOT_TM_STRING_MAX * 2 + 8];
        int64_t ts;
    } v[IOT_LATEST_NAMES_MAX + 100];
};

static int on_value(void *ctx, const struct iot_latest_value *v)
{
    struct got *g = ctx;
    assert_true(g->n < sizeof g->v / sizeof g->v[0]);
    snprintf(g->v[g->n].name, sizeof g->v[0].name, "%s", v->name);
    snprintf(g->v[g->n].json, sizeof g->v[0].json, "%.*s", (int)v->len, v->json);
    g->v[g->n].ts = v->ts;
    g->n++;
    return g->stop_after && g->n >= g->stop_after;
}

static const char *json_of(const struct got *g, const char *name)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->v[i].name, name) == 0)
            return g->v[i].json;
    fail_msg("no value for %s among %zu", name, g->n);
    return NULL;
}

/* Reads the device's latest values; returns where they came from. */
static bool read_latest(struct stores *s, int64_t dev, struct got *g)
{
    bool from_cache = false;
    g->n = 0;
    assert_int_equal(iot_latest_read(&s->cache, &s->tm, dev, on_value, g, &from_cache), IOT_OK);
    return from_cache;
}

static struct got *new_got(void)
{
    struct got *g = calloc(1, sizeof *g);
    assert_non_null(g);
    return g;
}

/* ---- tests ------------------------------------------------------------------- */

/* No value anywhere: no call, and nothing is cached. */
static void test_empty_device(void **state)
{
    struct stores *s = *state;
    struct got *g = new_got();
    assert_false(read_latest(s, 7, g));
    assert_int_equal(g->n, 0);
    assert_false(read_latest(s, 7, g));
    free(g);
}

/* The first read comes from the store and refills the entry; the next one
 * is answered by the cache, with the same values. */
static void test_refill_then_cache(void **state)
{
    struct stores *s = *state;
    struct msg x;
    msg_init(&x, 1, T0);
    msg_num(&x, "temp", 21.5);
    msg_int(&x, "count", 3);
    assert_int_equal(iot_tm_write_batch(&s->tm, &x.m, 1), IOT_OK);
    struct got *g = new_got();
    assert_false(read_latest(s, 1, g));
    assert_int_equal(g->n, 2);
    assert_string_equal(json_of(g, "temp"), "21.5");
    assert_string_equal(json_of(g, "count"), "3");
    assert_true(read_latest(s, 1, g));
    assert_int_equal(g->n, 2);
    assert_string_equal(json_of(g, "temp"), "21.5");
    assert_int_equal(g->v[0].ts, T0);
    iot_latest_forget(&s->cache, 1);
    assert_false(read_latest(s, 1, g));
    free(g);
}

/* A newer message of a device this process has cached is merged into the
 * trusted entry (in-process cache); with a shared cache it drops the entry
 * instead, and the next read goes to the store. Either way a reader sees
 * the new value. */
static void test_newer_message_merges_or_drops(void **state)
{
    struct stores *s = *state;
    struct msg x;
    msg_init(&x, 2, T0);
    msg_int(&x, "a", 1);
    msg_int(&x, "b", 2);
    commit(s, &x); /* the first this writer sees of device 2: a drop */
    struct got *g = new_got();
    assert_false(read_latest(s, 2, g)); /* refilled */
    msg_init(&x, 2, T0 + 1000);
    msg_int(&x, "a", 10);
    commit(s, &x);
    bool from_cache = read_latest(s, 2, g);
    assert_int_equal(from_cache, !s->shared);
    assert_int_equal(g->n, 2);
    assert_string_equal(json_of(g, "a"), "10");
    assert_string_equal(json_of(g, "b"), "2");
    free(g);
}

/* An older message (a device catching up) drops the entry: the store keeps
 * the newest value by timestamp and the refill brings that back. */
static void test_older_message_drops(void **state)
{
    struct stores *s = *state;
    struct msg x;
    msg_init(&x, 3, T0 + 5000);
    msg_int(&x, "a", 5);
    commit(s, &x);
    struct got *g = new_got();
    assert_false(read_latest(s, 3, g));
    assert_true(read_latest(s, 3, g)); /* refilled: a shared cache too */
    msg_init(&x, 3, T0);
    msg_int(&x, "a", 1);
    msg_int(&x, "z", 9);
    commit(s, &x);
    assert_false(read_latest(s, 3, g));
    assert_string_equal(json_of(g, "a"), "5");
    assert_string_equal(json_of(g, "z"), "9");
    free(g);
}

/* A merge into a missing entry leaves a partial one (no completeness mark):
 * readers do not trust it, and their refill replaces it. */
static void test_partial_entry_not_trusted(void **state)
{
    struct stores *s = *state;
    struct msg x;
    msg_init(&x, 4, T0);
    msg_int(&x, "a", 1);
    msg_int(&x, "b", 2);
    commit(s, &x); /* unknown device: dropped, its timestamp remembered */
    msg_init(&x, 4, T0 + 1);
    msg_int(&x, "a", 3);
    commit(s, &x); /* merged (in-process) into no entry: partial */
    struct got *g = new_got();
    assert_false(read_latest(s, 4, g));
    assert_int_equal(g->n, 2);
    assert_string_equal(json_of(g, "a"), "3");
    assert_string_equal(json_of(g, "b"), "2");
    assert_true(read_latest(s, 4, g));
    assert_int_equal(g->n, 2);
    free(g);
}

/* Writer and reader encode a value alike: what the merge writes reads back
 * as the store's refill wrote it (integers exact, reals shortest and still
 * reals, booleans, escaped strings). */
static void test_both_sides_encode_alike(void **state)
{
    struct stores *s = *state;
    if (s->shared)
        skip(); /* the writer never merges into a shared cache */
    struct msg x;
    msg_init(&x, 5, T0);
    msg_int(&x, "big", INT64_C(9007199254740993));
    msg_num(&x, "r", 0.1 + 0.2);
    msg_num(&x, "w", 21.0);
    msg_num(&x, "nz", -0.0);
    msg_num(&x, "tiny", 5e-324);
    *msg_add(&x, "on") = (struct iot_tm_value){.type = IOT_TM_BOOL, .boolean = true};
    static const char text[] = "caf\xc3\xa9 \"quoted\"\n";
    *msg_add(&x, "s") =
        (struct iot_tm_value){.type = IOT_TM_STRING, .str = text, .str_len = sizeof text - 1};
    commit(s, &x);
    struct got *from_store = new_got(), *from_cache = new_got();
    assert_false(read_latest(s, 5, from_store));
    /* the same message again, merged over the refilled entry */
    iot_latest_after_commit(s->writer, &s->fan, &x.m);
    assert_int_equal(iot_fanout_send(&s->fan, &s->cache), IOT_OK);
    assert_true(read_latest(s, 5, from_cache));
    assert_int_equal(from_cache->n, from_store->n);
    assert_int_equal(from_store->n, x.m.n_points);
    for (size_t i = 0; i < from_store->n; i++)
        assert_string_equal(json_of(from_cache, from_store->v[i].name), from_store->v[i].json);
    assert_string_equal(json_of(from_store, "big"), "9007199254740993");
    assert_string_equal(json_of(from_store, "r"), "0.30000000000000004");
    assert_string_equal(json_of(from_store, "w"), "21.0");
    assert_string_equal(json_of(from_store, "nz"), "-0.0");
    assert_string_equal(json_of(from_store, "on"), "true");
    assert_string_equal(json_of(from_store, "s"), "\"caf\xc3\xa9 \\\"quoted\\\"\\n\"");
    free(from_store);
    free(from_cache);
}

/* A reader that stops (its answer is full) gets no refill: a partial answer
 * is never cached as complete. */
static void test_stopped_read_not_cached(void **state)
{
    struct stores *s = *state;
    struct msg x;
    msg_init(&x, 6, T0);
    msg_num(&x, "a", 1);
    msg_num(&x, "b", 2);
    msg_num(&x, "c", 3);
    assert_int_equal(iot_tm_write_batch(&s->tm, &x.m, 1), IOT_OK);
    struct got *g = new_got();
    g->stop_after = 2;
    assert_false(read_latest(s, 6, g));
    assert_int_equal(g->n, 2);
    g->stop_after = 0;
    assert_false(read_latest(s, 6, g)); /* still the store: nothing was cached */
    assert_int_equal(g->n, 3);
    assert_true(read_latest(s, 6, g));
    free(g);
}

/* A device with more names than an entry may hold is read from the store
 * every time, and a merge never grows an entry past the bound. */
static void test_too_many_names(void **state)
{
    struct stores *s = *state;
    struct msg *x = malloc(sizeof *x);
    assert_non_null(x);
    int name = 0;
    for (int k = 0; name <= IOT_LATEST_NAMES_MAX; k++) {
        msg_init(x, 8, T0 + k);
        for (int i = 0; i < IOT_TM_POINTS_MAX && name <= IOT_LATEST_NAMES_MAX; i++, name++) {
            char n[16];
            snprintf(n, sizeof n, "m%04d", name);
            msg_num(x, n, name);
        }
        assert_int_equal(iot_tm_write_batch(&s->tm, &x->m, 1), IOT_OK);
    }
    struct got *g = new_got();
    assert_false(read_latest(s, 8, g));
    assert_int_equal(g->n, IOT_LATEST_NAMES_MAX + 1);
    assert_false(read_latest(s, 8, g));
    free(g);
    free(x);
}

/* ---- main -------------------------------------------------------------------- */

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static int run_cache(const char *url)
{
    const struct CMUnitTest tests[] = {
        T(test_empty_device),
        T(test_refill_then_cache),
        T(test_newer_message_merges_or_drops),
        T(test_older_message_drops),
        T(test_partial_entry_not_trusted),
        T(test_both_sides_encode_alike),
        T(test_stopped_read_not_cached),
        T(test_too_many_names),
    };
    g_cache_url = url && strcmp(url, "memory") != 0 ? url : NULL;
    printf("[ CACHE    ] %s\n", g_cache_url ? "IOT_CACHE_URLS_EXTRA" : "in-process");
    fflush(stdout);
    return cmocka_run_group_tests_name("latest", tests, NULL, NULL);
}

int main(void)
{
    int failed = run_cache("memory");
    const char *extra = getenv("IOT_CACHE_URLS_EXTRA");
    if (extra && extra[0])
        failed += contract_run_list(extra, run_cache);
    return failed ? 1 : 0;
}
