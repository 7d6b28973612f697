/* cache_contract.c — the contract of store/cache.h, run against every backend.
 *
 * IOT_CACHE_URLS lists the backends to test, comma separated (default
 * "memory", the in-process cache). Each test opens a fresh cache and closes
 * it. Keys, user ids and device ids carry a per-run, per-test prefix so that
 * a shared server (Redis) left with keys by an earlier run gives the same
 * results; such a server must honour rate_hit's now_ms. Tests that move time
 * with iot_clock_override, and the white-box sweep test, run on the memory
 * backend only (skipped elsewhere). cmocka asserts run on the main thread
 * only; worker threads count failures that the main thread then asserts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "contract/contract_runner.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/cache.h"
#include "store/memory/mem_cache.h" /* white-box sweep test only */
#include "util/clock.h"
#include "util/err.h"

/* ---- assertions that print both sides in decimal ---- */

#define assert_rc(expr, want)                                                               \
    do {                                                                                    \
        int rc_ = (expr), want_ = (want);                                                   \
        if (rc_ != want_) {                                                                 \
            print_error("%s returned %d (%s), expected %d (%s)\n", #expr, rc_,             \
                        iot_strerror(rc_), want_, iot_strerror(want_));                     \
            fail();                                                                         \
        }                                                                                   \
    } while (0)

#define assert_i64(got, want)                                                               \
    do {                                                                                    \
        int64_t got_ = (got), want_ = (want);                                               \
        if (got_ != want_) {                                                                \
            print_error("%s is %" PRId64 ", expected %" PRId64 "\n", #got, got_, want_);   \
            fail();                                                                         \
        }                                                                                   \
    } while (0)

/* ---- fixture: one fresh cache per test ---- */

static const char *g_url;   /* backend under test */
static unsigned g_test_no;  /* makes every test's keys distinct */
static char g_prefix[48];
static _Atomic int64_t g_fake_now;

static int64_t fake_clock(void) { return atomic_load(&g_fake_now); }

static bool is_memory(void) { return !g_url || !g_url[0] || strcmp(g_url, "memory") == 0; }

/* Freezes the cache clock at the real time; advance() moves it. Memory
 * only: a server backend keeps its own clock. */
static void use_fake_clock(void)
{
    if (!is_memory())
        skip();
    iot_clock_override(NULL);
    atomic_store(&g_fake_now, iot_now_ms());
    iot_clock_override(fake_clock);
}

static void advance(int64_t ms) { atomic_fetch_add(&g_fake_now, ms); }

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* A key under this test's prefix; eight rotating buffers, so a test may
 * hold a few at once. */
static const char *K(const char *name)
{
    static char bufs[8][IOT_CACHE_KEY_MAX + 1];
    static unsigned next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s%s", g_prefix, name);
    return b;
}

/* A 32-hex user id unique to this run and test. */
static void user_id(char out[33], unsigned n)
{
    snprintf(out, 33, "%08x%08x%016x", (unsigned)getpid(), g_test_no, n);
}

static int64_t device_id(unsigned n)
{
    return (int64_t)getpid() * 1000000 + (int64_t)g_test_no * 1000 + n;
}

static int setup(void **state)
{
    struct iot_cache *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    g_test_no++;
    snprintf(g_prefix, sizeof g_prefix, "ct%ld.%u:", (long)getpid(), g_test_no);
    if (iot_cache_open(g_url, c) != IOT_OK) {
        print_error("cannot open cache backend '%s'\n", g_url);
        free(c);
        return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct iot_cache *c = *state;
    iot_cache_close(c);
    free(c);
    iot_clock_override(NULL);
    return 0;
}

/* Expects `key` to hold exactly the given bytes. */
static void expect_bytes(struct iot_cache *c, const char *key, const char *want, size_t len)
{
    struct iot_cache_value v = {0};
    assert_rc(iot_cache_get(c, key, &v), IOT_OK);
    assert_int_equal(v.len, len);
    assert_memory_equal(v.data, want, len);
    assert_int_equal(v.data[len], '\0');
    iot_cache_value_free(&v);
}

static void expect_absent(struct iot_cache *c, const char *key)
{
    struct iot_cache_value v = {0};
    assert_rc(iot_cache_get(c, key, &v), IOT_ENOTFOUND);
    assert_null(v.data);
    assert_int_equal(v.len, 0);
}

/* ---- backend table, plain keys ---- */

static void test_backend_table(void **state)
{
    struct iot_cache *c = *state;
    assert_ptr_not_equal(iot_cache_backend(g_url), NULL);
    assert_string_equal(iot_cache_backend(NULL)->name, "memory");
    assert_string_equal(iot_cache_backend("")->name, "memory");
    assert_string_equal(iot_cache_backend("memory")->name, "memory");
    assert_null(iot_cache_backend("nosuch://host"));
    assert_non_null(strstr(iot_cache_backend_names(), "memory"));
    struct iot_cache bad = {0};
    assert_rc(iot_cache_open("nosuch://host", &bad), IOT_EINVAL);
    assert_null(bad.ops);
    iot_cache_close(NULL);
    iot_cache_close(&bad); /* never opened: a no-op */
    iot_cache_value_free(NULL);
    assert_int_equal(c->ops->version, 1);
    assert_true(c->ops->caps & IOT_CACHE_CAP_TTL);
    if (is_memory())
        assert_int_equal(c->ops->caps, IOT_CACHE_CAP_TTL); /* not shared */
    assert_rc(iot_cache_ping(c), IOT_OK);
}

static void test_set_get_del(void **state)
{
    struct iot_cache *c = *state;
    assert_rc(iot_cache_set(c, K("a"), "v1", 2, 0), IOT_OK);
    expect_bytes(c, K("a"), "v1", 2);
    struct iot_cache_value v = {0};
    assert_rc(iot_cache_get(c, K("a"), &v), IOT_OK);
    iot_cache_value_free(&v);
    assert_null(v.data);
    assert_int_equal(v.len, 0);
    assert_rc(iot_cache_del(c, K("a")), IOT_OK);
    expect_absent(c, K("a"));
    assert_rc(iot_cache_del(c, K("a")), IOT_OK); /* absent is fine */
    expect_absent(c, K("never"));
    assert_rc(iot_cache_set(c, K("b"), "x", 1, -1), IOT_EINVAL);
}

static void test_overwrite(void **state)
{
    struct iot_cache *c = *state;
    assert_rc(iot_cache_set(c, K("a"), "short", 5, 0), IOT_OK);
    assert_rc(iot_cache_set(c, K("a"), "a longer value", 14, 0), IOT_OK);
    expect_bytes(c, K("a"), "a longer value", 14);
    assert_rc(iot_cache_set(c, K("a"), "z", 1, 0), IOT_OK);
    expect_bytes(c, K("a"), "z", 1);
}

static void test_binary_values(void **state)
{
    struct iot_cache *c = *state;
    const char bin[] = {'\0', 'a', '\0', '\0', (char)0xff, '\n', 'b'};
    assert_rc(iot_cache_set(c, K("bin"), bin, sizeof bin, 0), IOT_OK);
    expect_bytes(c, K("bin"), bin, sizeof bin);
    assert_rc(iot_cache_set(c, K("empty"), "", 0, 0), IOT_OK);
    expect_bytes(c, K("empty"), "", 0);
    assert_rc(iot_cache_set(c, K("null"), NULL, 0, 0), IOT_OK);
    expect_bytes(c, K("null"), "", 0);
    assert_rc(iot_cache_set(c, K("bad"), NULL, 3, 0), IOT_EINVAL);
}

/* ---- TTLs ---- */

static void test_ttl_injected_clock(void **state)
{
    struct iot_cache *c = *state;
    use_fake_clock();
    assert_rc(iot_cache_set(c, K("t"), "v", 1, 1000), IOT_OK);
    assert_rc(iot_cache_set(c, K("forever"), "v", 1, 0), IOT_OK);
    advance(999);
    expect_bytes(c, K("t"), "v", 1);
    advance(2);
    expect_absent(c, K("t"));
    /* Overwriting without a TTL makes a key permanent, as SET does. */
    assert_rc(iot_cache_set(c, K("p"), "1", 1, 500), IOT_OK);
    assert_rc(iot_cache_set(c, K("p"), "2", 1, 0), IOT_OK);
    advance(1000000);
    expect_bytes(c, K("p"), "2", 1);
    expect_bytes(c, K("forever"), "v", 1);
}

static void test_ttl_real_time(void **state)
{
    struct iot_cache *c = *state;
    assert_rc(iot_cache_set(c, K("short"), "v", 1, 50), IOT_OK);
    assert_rc(iot_cache_set(c, K("long"), "v", 1, 60000), IOT_OK);
    sleep_ms(120);
    expect_absent(c, K("short"));
    expect_bytes(c, K("long"), "v", 1);
}

/* ---- counters and gauges ---- */

static void test_incr(void **state)
{
    struct iot_cache *c = *state;
    int64_t v = 0;
    assert_rc(iot_cache_incr(c, K("n"), 5, 0, &v), IOT_OK);
    assert_i64(v, 5);
    assert_rc(iot_cache_incr(c, K("n"), 3, 0, &v), IOT_OK);
    assert_i64(v, 8);
    assert_rc(iot_cache_incr(c, K("n"), -10, 0, &v), IOT_OK);
    assert_i64(v, -2);
    assert_rc(iot_cache_incr(c, K("n"), 1, 0, NULL), IOT_OK);
    expect_bytes(c, K("n"), "-1", 2); /* a counter reads as its decimal text */
    /* A string holding an integer counts on from it; other strings refuse. */
    assert_rc(iot_cache_set(c, K("s"), "41", 2, 0), IOT_OK);
    assert_rc(iot_cache_incr(c, K("s"), 1, 0, &v), IOT_OK);
    assert_i64(v, 42);
    assert_rc(iot_cache_set(c, K("t"), "abc", 3, 0), IOT_OK);
    assert_rc(iot_cache_incr(c, K("t"), 1, 0, &v), IOT_EINVAL);
    expect_bytes(c, K("t"), "abc", 3);
    assert_rc(iot_cache_incr(c, K("big"), INT64_MAX, 0, &v), IOT_OK);
    assert_rc(iot_cache_incr(c, K("big"), 1, 0, &v), IOT_EINVAL);
    assert_rc(iot_cache_incr(c, K("big"), 0, 0, &v), IOT_OK);
    assert_i64(v, INT64_MAX);
}

static void test_incr_ttl_at_creation(void **state)
{
    struct iot_cache *c = *state;
    use_fake_clock();
    int64_t v = 0;
    assert_rc(iot_cache_incr(c, K("w"), 1, 1000, &v), IOT_OK);
    advance(600);
    /* A later ttl_ms does not push the deadline: fixed windows stay fixed. */
    assert_rc(iot_cache_incr(c, K("w"), 1, 1000, &v), IOT_OK);
    assert_i64(v, 2);
    advance(401);
    assert_rc(iot_cache_incr(c, K("w"), 1, 1000, &v), IOT_OK);
    assert_i64(v, 1);
    advance(999);
    assert_rc(iot_cache_incr(c, K("w"), -5, 1000, &v), IOT_OK);
    assert_i64(v, -4);
    advance(2);
    expect_absent(c, K("w"));
}

static void test_gauges(void **state)
{
    struct iot_cache *c = *state;
    double d = 0;
    assert_rc(iot_cache_gauge_get(c, K("g"), &d), IOT_ENOTFOUND);
    assert_rc(iot_cache_gauge_set(c, K("g"), 21.5), IOT_OK);
    assert_rc(iot_cache_gauge_get(c, K("g"), &d), IOT_OK);
    assert_float_equal(d, 21.5, 0.0);
    assert_rc(iot_cache_gauge_set(c, K("g"), -3.25e-7), IOT_OK);
    assert_rc(iot_cache_gauge_get(c, K("g"), &d), IOT_OK);
    assert_true(d == -3.25e-7);
    assert_rc(iot_cache_gauge_set(c, K("g"), NAN), IOT_EINVAL);
    assert_rc(iot_cache_gauge_set(c, K("g"), INFINITY), IOT_EINVAL);
    /* A counter is a number too. */
    assert_rc(iot_cache_incr(c, K("n"), 7, 0, NULL), IOT_OK);
    assert_rc(iot_cache_gauge_get(c, K("n"), &d), IOT_OK);
    assert_true(d == 7.0);
}

static void test_wrong_type(void **state)
{
    struct iot_cache *c = *state;
    const struct iot_cache_field f = {.field = "f", .value = "1", .value_len = 1};
    struct iot_cache_value v = {0};
    double d;
    bool ok;
    int64_t retry;
    assert_rc(iot_cache_hash_set(c, K("h"), &f, 1, 0), IOT_OK);
    assert_rc(iot_cache_get(c, K("h"), &v), IOT_EINVAL);
    assert_null(v.data);
    assert_rc(iot_cache_incr(c, K("h"), 1, 0, NULL), IOT_EINVAL);
    assert_rc(iot_cache_gauge_get(c, K("h"), &d), IOT_EINVAL);
    assert_rc(iot_cache_list_push(c, K("h"), "x", 1, 10, 0), IOT_EINVAL);
    assert_rc(iot_cache_rate_hit(c, K("h"), 5, 1000, iot_now_ms(), &ok, &retry), IOT_EINVAL);
    assert_rc(iot_cache_list_push(c, K("l"), "x", 1, 10, 0), IOT_OK);
    assert_rc(iot_cache_hash_set(c, K("l"), &f, 1, 0), IOT_EINVAL);
    assert_rc(iot_cache_set(c, K("s"), "x", 1, 0), IOT_OK);
    assert_rc(iot_cache_gauge_get(c, K("s"), &d), IOT_EINVAL); /* "x" is no number */
    assert_rc(iot_cache_hash_set(c, K("s"), &f, 1, 0), IOT_EINVAL);
    assert_rc(iot_cache_rate_hit(c, K("r"), 5, 1000, iot_now_ms(), &ok, &retry), IOT_OK);
    assert_rc(iot_cache_get(c, K("r"), &v), IOT_EINVAL);
    /* set replaces whatever a key holds, as SET does; del removes any type. */
    assert_rc(iot_cache_set(c, K("h"), "now a string", 12, 0), IOT_OK);
    expect_bytes(c, K("h"), "now a string", 12);
    assert_rc(iot_cache_del(c, K("l")), IOT_OK);
    assert_rc(iot_cache_list_push(c, K("l"), "x", 1, 10, 0), IOT_OK);
}

/* ---- rate limits ---- */

static void test_rate_sliding_window(void **state)
{
    struct iot_cache *c = *state;
    const int64_t t = iot_now_ms();
    bool ok = false;
    int64_t retry = -1;
    for (int i = 0; i < 3; i++) {
        assert_rc(iot_cache_rate_hit(c, K("r"), 3, 1000, t + i * 100, &ok, &retry), IOT_OK);
        assert_true(ok);
    }
    assert_rc(iot_cache_rate_hit(c, K("r"), 3, 1000, t + 300, &ok, &retry), IOT_OK);
    assert_false(ok);
    assert_in_range(retry, 1, 1000);
    assert_i64(retry, 700); /* the oldest hit (t) leaves at t + 1000 */
    /* A separate key is independent. */
    assert_rc(iot_cache_rate_hit(c, K("other"), 3, 1000, t + 300, &ok, &retry), IOT_OK);
    assert_true(ok);
    /* Hits at t+100, t+200 remain; the refused hit at t+300 was not kept, so
     * one hit fits once t has left the window, and only one. */
    assert_rc(iot_cache_rate_hit(c, K("r"), 3, 1000, t + 999, &ok, &retry), IOT_OK);
    assert_false(ok);
    assert_i64(retry, 1);
    assert_rc(iot_cache_rate_hit(c, K("r"), 3, 1000, t + 1000, &ok, &retry), IOT_OK);
    assert_true(ok);
    assert_rc(iot_cache_rate_hit(c, K("r"), 3, 1000, t + 1001, &ok, &retry), IOT_OK);
    assert_false(ok);
    assert_i64(retry, 99); /* t+100 leaves at t+1100 */
    assert_rc(iot_cache_rate_hit(c, K("r"), 0, 1000, t, &ok, &retry), IOT_EINVAL);
    assert_rc(iot_cache_rate_hit(c, K("r"), 3, 0, t, &ok, &retry), IOT_EINVAL);
}

static void test_rate_window_expires(void **state)
{
    struct iot_cache *c = *state;
    use_fake_clock();
    bool ok;
    int64_t retry;
    const int64_t t = iot_now_ms();
    for (int i = 0; i < 50; i++)
        assert_rc(iot_cache_rate_hit(c, K("r"), 2, 1000, t, &ok, &retry), IOT_OK);
    struct iot_cache_value v = {0};
    assert_rc(iot_cache_get(c, K("r"), &v), IOT_EINVAL); /* exists, as a window */
    /* Refused hits do not keep the key alive: it goes window_ms after the
     * last accepted hit. */
    advance(1000);
    assert_rc(iot_cache_get(c, K("r"), &v), IOT_ENOTFOUND);
}

struct rate_race {
    struct iot_cache *c;
    const char *key;
    int64_t now;
    pthread_barrier_t start;
    atomic_int allowed;
    atomic_int errors;
};

static void *rate_worker(void *arg)
{
    struct rate_race *r = arg;
    pthread_barrier_wait(&r->start);
    for (int i = 0; i < 1000; i++) {
        bool ok = false;
        int64_t retry;
        if (iot_cache_rate_hit(r->c, r->key, 100, 60000, r->now, &ok, &retry) != IOT_OK)
            atomic_fetch_add(&r->errors, 1);
        else if (ok)
            atomic_fetch_add(&r->allowed, 1);
    }
    return NULL;
}

static void test_rate_concurrent(void **state)
{
    struct rate_race r = {.c = *state, .key = K("r"), .now = iot_now_ms()};
    pthread_t th[4];
    pthread_barrier_init(&r.start, NULL, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, rate_worker, &r), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&r.start);
    assert_int_equal(atomic_load(&r.errors), 0);
    assert_int_equal(atomic_load(&r.allowed), 100);
}

/* ---- sessions ---- */

static void expect_session(struct iot_cache *c, const char *tok, const char *uid)
{
    char got[33];
    assert_rc(iot_cache_session_get(c, tok, got), IOT_OK);
    assert_string_equal(got, uid);
}

static void test_sessions(void **state)
{
    struct iot_cache *c = *state;
    char ua[33], ub[33], got[33];
    user_id(ua, 1);
    user_id(ub, 2);
    assert_rc(iot_cache_session_put(c, K("tok1"), ua, 60000), IOT_OK);
    assert_rc(iot_cache_session_put(c, K("tok2"), ua, 60000), IOT_OK);
    assert_rc(iot_cache_session_put(c, K("tok3"), ub, 60000), IOT_OK);
    expect_session(c, K("tok1"), ua);
    expect_session(c, K("tok3"), ub);
    assert_rc(iot_cache_session_get(c, K("nope"), got), IOT_ENOTFOUND);
    assert_rc(iot_cache_session_del(c, K("tok1")), IOT_OK);
    assert_rc(iot_cache_session_get(c, K("tok1"), got), IOT_ENOTFOUND);
    assert_rc(iot_cache_session_del(c, K("tok1")), IOT_OK);
    assert_rc(iot_cache_session_drop_user(c, ua), IOT_OK);
    assert_rc(iot_cache_session_get(c, K("tok2"), got), IOT_ENOTFOUND);
    expect_session(c, K("tok3"), ub);
    /* Re-putting a token moves it to the new user. */
    assert_rc(iot_cache_session_put(c, K("tok3"), ua, 60000), IOT_OK);
    assert_rc(iot_cache_session_drop_user(c, ub), IOT_OK);
    expect_session(c, K("tok3"), ua);
    assert_rc(iot_cache_session_drop_user(c, ua), IOT_OK);
    assert_rc(iot_cache_session_get(c, K("tok3"), got), IOT_ENOTFOUND);
    assert_rc(iot_cache_session_drop_user(c, ua), IOT_OK); /* none left */
    assert_rc(iot_cache_session_put(c, K("t"), "", 1000), IOT_EINVAL);
    assert_rc(iot_cache_session_put(c, K("t"), "0123456789abcdef0123456789abcdef0", 1000),
              IOT_EINVAL);
}

static void test_session_expiry(void **state)
{
    struct iot_cache *c = *state;
    use_fake_clock();
    char ua[33], got[33];
    user_id(ua, 1);
    assert_rc(iot_cache_session_put(c, K("short"), ua, 1000), IOT_OK);
    assert_rc(iot_cache_session_put(c, K("long"), ua, 5000), IOT_OK);
    advance(999);
    expect_session(c, K("short"), ua);
    advance(2);
    assert_rc(iot_cache_session_get(c, K("short"), got), IOT_ENOTFOUND);
    expect_session(c, K("long"), ua);
    assert_rc(iot_cache_session_drop_user(c, ua), IOT_OK);
    assert_rc(iot_cache_session_get(c, K("long"), got), IOT_ENOTFOUND);
}

/* ---- presence ---- */

static void test_presence(void **state)
{
    struct iot_cache *c = *state;
    const int64_t d1 = device_id(1), d2 = device_id(2), d3 = device_id(3);
    /* Times far in the future, so that entries other runs left in a shared
     * backend are (almost surely) older than every `since` used below. */
    const int64_t t = (int64_t)4000000000000 + (int64_t)getpid() * 10000000;
    int64_t seen = 0, n = 0, base = 0;
    assert_rc(iot_cache_presence_count(c, t, &base), IOT_OK);
    assert_rc(iot_cache_presence_get(c, d1, &seen), IOT_ENOTFOUND);
    assert_rc(iot_cache_presence_touch(c, d1, t + 1000), IOT_OK);
    assert_rc(iot_cache_presence_touch(c, d1, t + 500), IOT_OK);
    assert_rc(iot_cache_presence_get(c, d1, &seen), IOT_OK);
    assert_i64(seen, t + 1000); /* keeps the later time */
    assert_rc(iot_cache_presence_touch(c, d1, t + 2000), IOT_OK);
    assert_rc(iot_cache_presence_touch(c, d2, t + 1500), IOT_OK);
    assert_rc(iot_cache_presence_touch(c, d3, t + 3000), IOT_OK);
    assert_rc(iot_cache_presence_get(c, d1, &seen), IOT_OK);
    assert_i64(seen, t + 2000);
    assert_rc(iot_cache_presence_count(c, t + 1500, &n), IOT_OK);
    assert_i64(n - base, 3); /* at or after since */
    assert_rc(iot_cache_presence_count(c, t + 1501, &n), IOT_OK);
    assert_i64(n - base, 2);
    assert_rc(iot_cache_presence_count(c, t + 3001, &n), IOT_OK);
    assert_i64(n - base, 0);
    assert_rc(iot_cache_presence_remove(c, d1), IOT_OK);
    assert_rc(iot_cache_presence_get(c, d1, &seen), IOT_ENOTFOUND);
    assert_rc(iot_cache_presence_remove(c, d1), IOT_OK);
    assert_rc(iot_cache_presence_count(c, t, &n), IOT_OK);
    assert_i64(n - base, 2);
    assert_rc(iot_cache_presence_remove(c, d2), IOT_OK);
    assert_rc(iot_cache_presence_remove(c, d3), IOT_OK);
}

/* ---- hashes ---- */

struct fields {
    int n;
    char name[8][32];
    char value[8][32];
    size_t len[8];
    int stop_after; /* 0 = never */
};

static int collect_field(void *ctx, const char *field, const char *value, size_t len)
{
    struct fields *f = ctx;
    if (f->n < 8 && strlen(field) < 32 && len < 32) {
        memcpy(f->name[f->n], field, strlen(field) + 1);
        memcpy(f->value[f->n], value, len);
        f->value[f->n][len] = '\0';
        f->len[f->n] = len;
    }
    f->n++;
    return f->stop_after && f->n >= f->stop_after;
}

static const char *field_value(const struct fields *f, const char *name)
{
    for (int i = 0; i < f->n && i < 8; i++) {
        if (strcmp(f->name[i], name) == 0)
            return f->value[i];
    }
    return NULL;
}

static void test_hashes(void **state)
{
    struct iot_cache *c = *state;
    const struct iot_cache_field a[] = {
        {.field = "temp", .value = "21.5", .value_len = 4},
        {.field = "hum", .value = "40", .value_len = 2},
    };
    const struct iot_cache_field b[] = {
        {.field = "hum", .value = "41", .value_len = 2},
        {.field = "co2", .value = "", .value_len = 0},
    };
    struct fields f = {0};
    assert_rc(iot_cache_hash_get_all(c, K("h"), collect_field, &f), IOT_ENOTFOUND);
    assert_rc(iot_cache_hash_set(c, K("h"), a, 2, 0), IOT_OK);
    assert_rc(iot_cache_hash_set(c, K("h"), b, 2, 0), IOT_OK);
    assert_rc(iot_cache_hash_get_all(c, K("h"), collect_field, &f), IOT_OK);
    assert_int_equal(f.n, 3);
    assert_string_equal(field_value(&f, "temp"), "21.5");
    assert_string_equal(field_value(&f, "hum"), "41");
    assert_string_equal(field_value(&f, "co2"), "");
    struct fields once = {.stop_after = 1};
    assert_rc(iot_cache_hash_get_all(c, K("h"), collect_field, &once), IOT_OK);
    assert_int_equal(once.n, 1);
    assert_rc(iot_cache_hash_set(c, K("h"), a, 0, 0), IOT_EINVAL);
    const struct iot_cache_field bad = {.field = "", .value = "1", .value_len = 1};
    assert_rc(iot_cache_hash_set(c, K("h"), &bad, 1, 0), IOT_EINVAL);
}

static void test_hash_ttl_refresh(void **state)
{
    struct iot_cache *c = *state;
    use_fake_clock();
    const struct iot_cache_field f = {.field = "v", .value = "1", .value_len = 1};
    struct fields got = {0};
    assert_rc(iot_cache_hash_set(c, K("h"), &f, 1, 1000), IOT_OK);
    advance(800);
    assert_rc(iot_cache_hash_set(c, K("h"), &f, 1, 1000), IOT_OK);
    advance(800);
    assert_rc(iot_cache_hash_get_all(c, K("h"), collect_field, &got), IOT_OK);
    assert_int_equal(got.n, 1);
    advance(201);
    assert_rc(iot_cache_hash_get_all(c, K("h"), collect_field, &got), IOT_ENOTFOUND);
}

/* ---- capped lists ---- */

struct items {
    int n;
    char v[8][16];
    int stop_after;
};

static int collect_item(void *ctx, const char *value, size_t len)
{
    struct items *it = ctx;
    if (it->n < 8 && len < 16) {
        memcpy(it->v[it->n], value, len);
        it->v[it->n][len] = '\0';
    }
    it->n++;
    return it->stop_after && it->n >= it->stop_after;
}

static void test_lists(void **state)
{
    struct iot_cache *c = *state;
    struct items it = {0};
    assert_rc(iot_cache_list_range(c, K("l"), 10, collect_item, &it), IOT_ENOTFOUND);
    const char *vals[] = {"1", "2", "3", "4", "5"};
    for (int i = 0; i < 5; i++)
        assert_rc(iot_cache_list_push(c, K("l"), vals[i], 1, 3, 0), IOT_OK);
    assert_rc(iot_cache_list_range(c, K("l"), 10, collect_item, &it), IOT_OK);
    assert_int_equal(it.n, 3); /* capped at max_len, newest first */
    assert_string_equal(it.v[0], "5");
    assert_string_equal(it.v[1], "4");
    assert_string_equal(it.v[2], "3");
    struct items two = {0};
    assert_rc(iot_cache_list_range(c, K("l"), 2, collect_item, &two), IOT_OK);
    assert_int_equal(two.n, 2);
    assert_string_equal(two.v[1], "4");
    struct items once = {.stop_after = 1};
    assert_rc(iot_cache_list_range(c, K("l"), 10, collect_item, &once), IOT_OK);
    assert_int_equal(once.n, 1);
    /* A smaller max_len trims the oldest items. */
    assert_rc(iot_cache_list_push(c, K("l"), "6", 1, 2, 0), IOT_OK);
    struct items trimmed = {0};
    assert_rc(iot_cache_list_range(c, K("l"), 10, collect_item, &trimmed), IOT_OK);
    assert_int_equal(trimmed.n, 2);
    assert_string_equal(trimmed.v[0], "6");
    assert_string_equal(trimmed.v[1], "5");
    assert_rc(iot_cache_list_push(c, K("l"), "x", 1, 0, 0), IOT_EINVAL);
}

static void test_list_ttl_refresh(void **state)
{
    struct iot_cache *c = *state;
    use_fake_clock();
    struct items it = {0};
    assert_rc(iot_cache_list_push(c, K("l"), "a", 1, 10, 1000), IOT_OK);
    advance(900);
    assert_rc(iot_cache_list_push(c, K("l"), "b", 1, 10, 1000), IOT_OK);
    advance(900);
    assert_rc(iot_cache_list_range(c, K("l"), 10, collect_item, &it), IOT_OK);
    assert_int_equal(it.n, 2);
    advance(101);
    assert_rc(iot_cache_list_range(c, K("l"), 10, collect_item, &it), IOT_ENOTFOUND);
}

/* ---- pub/sub ---- */

struct inbox {
    atomic_int n;
    char channel[64];
    char msg[64];
    size_t len;
};

static void inbox_cb(void *ctx, const char *channel, const char *msg, size_t len)
{
    struct inbox *in = ctx;
    snprintf(in->channel, sizeof in->channel, "%s", channel);
    if (len < sizeof in->msg) {
        memcpy(in->msg, msg, len);
        in->msg[len] = '\0';
    }
    in->len = len;
    atomic_fetch_add(&in->n, 1);
}

static void test_pubsub_fanout(void **state)
{
    struct iot_cache *c = *state;
    struct inbox in[3] = {0}, other = {0};
    struct iot_cache_sub *s[3], *so, *kept, *bad;
    assert_rc(iot_cache_publish(c, K("ch"), "nobody", 6), IOT_OK);
    for (int i = 0; i < 3; i++)
        assert_rc(iot_cache_subscribe(c, K("ch"), inbox_cb, &in[i], &s[i]), IOT_OK);
    assert_rc(iot_cache_subscribe(c, K("other"), inbox_cb, &other, &so), IOT_OK);
    assert_rc(iot_cache_publish(c, K("ch"), "hello\0!", 7), IOT_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(atomic_load(&in[i].n), 1);
        assert_string_equal(in[i].channel, K("ch"));
        assert_int_equal(in[i].len, 7);
        assert_memory_equal(in[i].msg, "hello\0!", 7);
    }
    assert_int_equal(atomic_load(&other.n), 0);
    for (int i = 0; i < 3; i++)
        iot_cache_unsubscribe(c, s[i]);
    iot_cache_unsubscribe(c, so);
    /* close() must end a subscription still open (checked by ASan). */
    assert_rc(iot_cache_subscribe(c, K("ch"), inbox_cb, &other, &kept), IOT_OK);
    assert_rc(iot_cache_subscribe(c, NULL, inbox_cb, &other, &bad), IOT_EINVAL);
    assert_rc(iot_cache_subscribe(c, K("ch"), NULL, &other, &bad), IOT_EINVAL);
    assert_non_null(kept);
}

static void test_pubsub_unsubscribe(void **state)
{
    struct iot_cache *c = *state;
    struct inbox a = {0}, b = {0};
    struct iot_cache_sub *sa, *sb;
    assert_rc(iot_cache_subscribe(c, K("ch"), inbox_cb, &a, &sa), IOT_OK);
    assert_rc(iot_cache_subscribe(c, K("ch"), inbox_cb, &b, &sb), IOT_OK);
    assert_rc(iot_cache_publish(c, K("ch"), "1", 1), IOT_OK);
    iot_cache_unsubscribe(c, sa);
    assert_rc(iot_cache_publish(c, K("ch"), "2", 1), IOT_OK);
    assert_int_equal(atomic_load(&a.n), 1);
    assert_int_equal(atomic_load(&b.n), 2);
    assert_string_equal(b.msg, "2");
    iot_cache_unsubscribe(c, sb);
    assert_rc(iot_cache_publish(c, K("ch"), "3", 1), IOT_OK);
    assert_int_equal(atomic_load(&b.n), 2);
    iot_cache_unsubscribe(c, NULL);
}

struct relay {
    struct iot_cache *c;
    char to[IOT_CACHE_KEY_MAX + 1];
    char counter[IOT_CACHE_KEY_MAX + 1];
    atomic_int errors;
};

/* Re-publishes on another channel and uses the keyspace: neither may
 * deadlock, since no lock is held while a callback runs. */
static void relay_cb(void *ctx, const char *channel, const char *msg, size_t len)
{
    struct relay *r = ctx;
    if (iot_cache_publish(r->c, r->to, msg, len) != IOT_OK ||
        iot_cache_incr(r->c, r->counter, 1, 0, NULL) != IOT_OK)
        atomic_fetch_add(&r->errors, 1);
}

static void test_pubsub_callback_publishes(void **state)
{
    struct iot_cache *c = *state;
    struct relay r = {.c = c};
    snprintf(r.to, sizeof r.to, "%s", K("b"));
    snprintf(r.counter, sizeof r.counter, "%s", K("relayed"));
    struct inbox got = {0};
    struct iot_cache_sub *sa, *sb;
    assert_rc(iot_cache_subscribe(c, K("a"), relay_cb, &r, &sa), IOT_OK);
    assert_rc(iot_cache_subscribe(c, K("b"), inbox_cb, &got, &sb), IOT_OK);
    assert_rc(iot_cache_publish(c, K("a"), "ping", 4), IOT_OK);
    assert_int_equal(atomic_load(&r.errors), 0);
    assert_int_equal(atomic_load(&got.n), 1);
    assert_string_equal(got.channel, K("b"));
    assert_string_equal(got.msg, "ping");
    expect_bytes(c, K("relayed"), "1", 1);
    iot_cache_unsubscribe(c, sa);
    iot_cache_unsubscribe(c, sb);
}

struct slow_sub {
    atomic_int entered;
    atomic_int finished;
};

static void slow_cb(void *ctx, const char *channel, const char *msg, size_t len)
{
    struct slow_sub *s = ctx;
    atomic_store(&s->entered, 1);
    sleep_ms(100);
    atomic_store(&s->finished, 1);
}

struct publish_once {
    struct iot_cache *c;
    const char *channel;
};

static void *publish_once_thread(void *arg)
{
    struct publish_once *p = arg;
    iot_cache_publish(p->c, p->channel, "x", 1);
    return NULL;
}

/* unsubscribe returns only once a delivery in progress has finished. */
static void test_pubsub_unsubscribe_waits(void **state)
{
    struct iot_cache *c = *state;
    struct slow_sub s = {0};
    struct iot_cache_sub *sub;
    assert_rc(iot_cache_subscribe(c, K("slow"), slow_cb, &s, &sub), IOT_OK);
    struct publish_once p = {.c = c, .channel = K("slow")};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, publish_once_thread, &p), 0);
    while (!atomic_load(&s.entered))
        sched_yield();
    iot_cache_unsubscribe(c, sub);
    assert_int_equal(atomic_load(&s.finished), 1);
    pthread_join(th, NULL);
}

#define RACE_MESSAGES 5000

struct race {
    struct iot_cache *c;
    char channel[IOT_CACHE_KEY_MAX + 1];
    atomic_int publishers_left;
    atomic_int late;   /* deliveries seen after unsubscribe returned */
    atomic_int errors;
    atomic_int stable; /* deliveries to the subscriber that never leaves */
    atomic_int churns;
    pthread_barrier_t start;
};

struct churn_sub {
    struct race *r;
    atomic_bool closed;
};

static void stable_cb(void *ctx, const char *channel, const char *msg, size_t len)
{
    struct race *r = ctx;
    atomic_fetch_add(&r->stable, 1);
}

static void churn_cb(void *ctx, const char *channel, const char *msg, size_t len)
{
    struct churn_sub *cs = ctx;
    if (atomic_load(&cs->closed))
        atomic_fetch_add(&cs->r->late, 1);
}

static void *race_publisher(void *arg)
{
    struct race *r = arg;
    pthread_barrier_wait(&r->start);
    for (int i = 0; i < RACE_MESSAGES; i++) {
        if (iot_cache_publish(r->c, r->channel, "m", 1) != IOT_OK)
            atomic_fetch_add(&r->errors, 1);
    }
    atomic_fetch_sub(&r->publishers_left, 1);
    return NULL;
}

/* Subscribes and unsubscribes while messages fly. The subscription's context
 * is freed right after unsubscribe, so a late delivery is also a
 * use-after-free that ASan reports. */
static void *race_churner(void *arg)
{
    struct race *r = arg;
    pthread_barrier_wait(&r->start);
    for (int i = 0; i < 200 || atomic_load(&r->publishers_left) > 0; i++) {
        struct churn_sub *cs = malloc(sizeof *cs);
        struct iot_cache_sub *sub;
        if (!cs) {
            atomic_fetch_add(&r->errors, 1);
            break;
        }
        cs->r = r;
        atomic_init(&cs->closed, false);
        if (iot_cache_subscribe(r->c, r->channel, churn_cb, cs, &sub) != IOT_OK) {
            atomic_fetch_add(&r->errors, 1);
            free(cs);
            break;
        }
        if (i % 2)
            sched_yield();
        iot_cache_unsubscribe(r->c, sub);
        atomic_store(&cs->closed, true);
        for (int k = 0; k < 10; k++)
            sched_yield();
        free(cs);
        atomic_fetch_add(&r->churns, 1);
    }
    return NULL;
}

static void test_pubsub_concurrent(void **state)
{
    struct iot_cache *c = *state;
    struct race *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->c = c;
    snprintf(r->channel, sizeof r->channel, "%s", K("race"));
    atomic_init(&r->publishers_left, 2);
    pthread_barrier_init(&r->start, NULL, 4);
    struct iot_cache_sub *stable;
    assert_rc(iot_cache_subscribe(c, r->channel, stable_cb, r, &stable), IOT_OK);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, i < 2 ? race_publisher : race_churner, r),
                         0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    iot_cache_unsubscribe(c, stable);
    pthread_barrier_destroy(&r->start);
    assert_int_equal(atomic_load(&r->errors), 0);
    assert_int_equal(atomic_load(&r->late), 0);
    assert_int_equal(atomic_load(&r->stable), 2 * RACE_MESSAGES);
    assert_true(atomic_load(&r->churns) >= 400);
    free(r);
}

/* ---- concurrency on the keyspace ---- */

struct incr_race {
    struct iot_cache *c;
    const char *key;
    pthread_barrier_t start;
    atomic_int errors;
};

static void *incr_worker(void *arg)
{
    struct incr_race *r = arg;
    pthread_barrier_wait(&r->start);
    for (int i = 0; i < 10000; i++) {
        if (iot_cache_incr(r->c, r->key, 1, 0, NULL) != IOT_OK)
            atomic_fetch_add(&r->errors, 1);
    }
    return NULL;
}

static void test_incr_concurrent(void **state)
{
    struct incr_race r = {.c = *state, .key = K("n")};
    pthread_t th[4];
    pthread_barrier_init(&r.start, NULL, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, incr_worker, &r), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&r.start);
    int64_t total = 0;
    assert_int_equal(atomic_load(&r.errors), 0);
    assert_rc(iot_cache_incr(r.c, r.key, 0, 0, &total), IOT_OK);
    assert_i64(total, 40000);
}

/* ---- bounds ---- */

static void test_bounds(void **state)
{
    struct iot_cache *c = *state;
    char key[IOT_CACHE_KEY_MAX + 2];
    int n = snprintf(key, sizeof key, "%s", K("long"));
    memset(key + n, 'k', sizeof key - 1 - (size_t)n);
    key[IOT_CACHE_KEY_MAX + 1] = '\0'; /* 257 bytes: one too many */
    const struct iot_cache_field f = {.field = "f", .value = "1", .value_len = 1};
    const struct iot_cache_field long_field = {.field = key, .value = "1", .value_len = 1};
    struct iot_cache_value v = {0};
    struct iot_cache_sub *sub;
    char uid[33];
    bool ok;
    int64_t retry;
    user_id(uid, 1);
    assert_rc(iot_cache_set(c, key, "v", 1, 0), IOT_EINVAL);
    assert_rc(iot_cache_get(c, key, &v), IOT_EINVAL);
    assert_rc(iot_cache_incr(c, key, 1, 0, NULL), IOT_EINVAL);
    assert_rc(iot_cache_gauge_set(c, key, 1.0), IOT_EINVAL);
    assert_rc(iot_cache_rate_hit(c, key, 1, 1000, iot_now_ms(), &ok, &retry), IOT_EINVAL);
    assert_rc(iot_cache_session_put(c, key, uid, 1000), IOT_EINVAL);
    assert_rc(iot_cache_hash_set(c, key, &f, 1, 0), IOT_EINVAL);
    assert_rc(iot_cache_hash_set(c, K("h"), &long_field, 1, 0), IOT_EINVAL);
    assert_rc(iot_cache_list_push(c, key, "v", 1, 5, 0), IOT_EINVAL);
    assert_rc(iot_cache_publish(c, key, "m", 1), IOT_EINVAL);
    assert_rc(iot_cache_subscribe(c, key, inbox_cb, NULL, &sub), IOT_EINVAL);
    assert_rc(iot_cache_set(c, "", "v", 1, 0), IOT_EINVAL);
    assert_rc(iot_cache_set(c, NULL, "v", 1, 0), IOT_EINVAL);
    key[IOT_CACHE_KEY_MAX] = '\0'; /* exactly the maximum */
    assert_rc(iot_cache_set(c, key, "v", 1, 0), IOT_OK);
    expect_bytes(c, key, "v", 1);

    char *big = malloc(IOT_CACHE_VALUE_MAX + 1);
    assert_non_null(big);
    for (size_t i = 0; i < IOT_CACHE_VALUE_MAX + 1; i++)
        big[i] = (char)(i * 31);
    assert_rc(iot_cache_set(c, K("big"), big, IOT_CACHE_VALUE_MAX + 1, 0), IOT_EINVAL);
    assert_rc(iot_cache_list_push(c, K("l"), big, IOT_CACHE_VALUE_MAX + 1, 5, 0), IOT_EINVAL);
    assert_rc(iot_cache_publish(c, K("ch"), big, IOT_CACHE_VALUE_MAX + 1), IOT_EINVAL);
    const struct iot_cache_field bf = {.field = "f", .value = big,
                                       .value_len = IOT_CACHE_VALUE_MAX + 1};
    assert_rc(iot_cache_hash_set(c, K("h"), &bf, 1, 0), IOT_EINVAL);
    assert_rc(iot_cache_set(c, K("big"), big, IOT_CACHE_VALUE_MAX, 0), IOT_OK);
    expect_bytes(c, K("big"), big, IOT_CACHE_VALUE_MAX);
    free(big);
}

/* ---- white box: the incremental sweep (memory only) ---- */

static void test_sweep_reclaims_expired(void **state)
{
    struct iot_cache *c = *state;
    use_fake_clock();
    struct iot_mem_cache *mc = c->self;
    char uid[33], name[32];
    bool ok;
    int64_t retry;
    user_id(uid, 1);
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "k%d", i);
        assert_rc(iot_cache_set(c, K(name), "v", 1, 100), IOT_OK);
        snprintf(name, sizeof name, "tok%d", i);
        assert_rc(iot_cache_session_put(c, K(name), uid, 100), IOT_OK);
        snprintf(name, sizeof name, "rl%d", i);
        assert_rc(iot_cache_rate_hit(c, K(name), 5, 100, iot_now_ms(), &ok, &retry), IOT_OK);
    }
    assert_int_equal(mc->keys.count, 3000);
    assert_int_equal(mc->users.count, 1);
    advance(101);
    /* Nobody reads those keys again; writes elsewhere must reclaim them. */
    for (int i = 0; i < 1000; i++)
        assert_rc(iot_cache_incr(c, K("busy"), 1, 0, NULL), IOT_OK);
    assert_int_equal(mc->keys.count, 1);
    assert_int_equal(mc->users.count, 0);
    assert_true(mc->keys.nbuckets <= 64); /* and the table shrank back */
}

/* ---- runner ---- */

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

static int run_suite(const char *url)
{
    static const struct CMUnitTest tests[] = {
        T(test_backend_table),
        T(test_set_get_del),
        T(test_overwrite),
        T(test_binary_values),
        T(test_ttl_injected_clock),
        T(test_ttl_real_time),
        T(test_incr),
        T(test_incr_ttl_at_creation),
        T(test_gauges),
        T(test_wrong_type),
        T(test_rate_sliding_window),
        T(test_rate_window_expires),
        T(test_rate_concurrent),
        T(test_sessions),
        T(test_session_expiry),
        T(test_presence),
        T(test_hashes),
        T(test_hash_ttl_refresh),
        T(test_lists),
        T(test_list_ttl_refresh),
        T(test_pubsub_fanout),
        T(test_pubsub_unsubscribe),
        T(test_pubsub_callback_publishes),
        T(test_pubsub_unsubscribe_waits),
        T(test_pubsub_concurrent),
        T(test_incr_concurrent),
        T(test_bounds),
        T(test_sweep_reclaims_expired),
    };
    g_url = url;
    return cmocka_run_group_tests_name(url, tests, NULL, NULL);
}

int main(void)
{
    return contract_run_backends("IOT_CACHE_URLS", "memory", run_suite) ? 1 : 0;
}
