/* cache_contract.c — the contract of store/cache.h, run against every backend.
 *
 * IOT_CACHE_URLS lists the backends to test, comma separated (default
 * "memory", the in-process cache; add $REDIS_URL for Redis). Each test opens
 * a fresh cache and closes it. On a server backend each test also gets a
 * namespace of its own (?prefix=ct-<pid>-<n>: appended to the URL), whose
 * keys teardown deletes (SCAN + DEL, never FLUSHDB: the server is shared);
 * keys, user ids and device ids carry a per-run, per-test prefix as well.
 * Such a server must honour rate_hit's now_ms. Tests that move time with
 * iot_clock_override, and the white-box sweep test, run on the memory
 * backend only (skipped elsewhere). Deliveries of a server backend arrive
 * asynchronously, so pub/sub checks wait for them, and prove that a message
 * did not arrive with a later "fence" message that did. Tests of what only a
 * shared backend has (two handles, prefixes, outages) are skipped on
 * memory. cmocka asserts run on the main thread only; worker threads count
 * failures that the main thread then asserts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "contract/contract_runner.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/cache.h"
#include "store/memory/mem_cache.h" /* white-box sweep test only */
#include "store/redis/cache_redis.h"
#include "store/redis/redis_int.h" /* white-box namespace cleanup only */
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

static const char *g_url;   /* backend under test (base URL) */
static unsigned g_test_no;  /* makes every test's keys distinct */
static char g_prefix[48];
static char g_ns[64];       /* server backends: this test's namespace */
static char g_test_url[1024]; /* g_url with ?prefix=g_ns */
static pid_t g_spawned;     /* a redis-server this test started, if any */
static _Atomic int64_t g_fake_now;

static int64_t fake_clock(void) { return atomic_load(&g_fake_now); }

static bool is_memory(void) { return !g_url || !g_url[0] || strcmp(g_url, "memory") == 0; }

static bool is_redis(void) { return g_url && strncmp(g_url, "redis://", 8) == 0; }

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

/* Waits until *v reaches want (deliveries of a server backend are
 * asynchronous) or timeout_ms passes; returns the last value seen. */
static int wait_count(atomic_int *v, int want, long timeout_ms)
{
    int64_t deadline = iot_mono_us() + timeout_ms * 1000;
    int got;
    while ((got = atomic_load(v)) < want && iot_mono_us() < deadline)
        sleep_ms(1);
    return got;
}

#define DELIVERY_WAIT_MS 5000

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

/* `base` with `?prefix=ns` (or `&prefix=ns`) appended; the last prefix=
 * of a URL wins. */
static void url_with_prefix(char *out, size_t size, const char *base, const char *ns)
{
    snprintf(out, size, "%s%cprefix=%s", base, strchr(base, '?') ? '&' : '?', ns);
}

/* Deletes every key of a Redis namespace through the handle's own pool. */
static void redis_drop_namespace(struct iot_cache *c, const char *ns)
{
    struct iot_redis_cache *rc = c->self;
    char cursor[32] = "0", pattern[80];
    snprintf(pattern, sizeof pattern, "%s*", ns);
    do {
        struct iot_redis_argv a;
        iot_redis_argv_init(&a);
        iot_redis_argv_str(&a, "SCAN");
        iot_redis_argv_str(&a, cursor);
        iot_redis_argv_str(&a, "MATCH");
        iot_redis_argv_str(&a, pattern);
        iot_redis_argv_str(&a, "COUNT");
        iot_redis_argv_str(&a, "1000");
        redisReply *r;
        if (iot_redis_run(rc, &a, &r) != IOT_OK)
            return;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            return;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        if (keys->elements > 0) {
            iot_redis_argv_init(&a);
            iot_redis_argv_str(&a, "DEL");
            for (size_t i = 0; i < keys->elements; i++)
                iot_redis_argv_add(&a, keys->element[i]->str, keys->element[i]->len);
            if (iot_redis_run(rc, &a, NULL) != IOT_OK) {
                freeReplyObject(r);
                return;
            }
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
}

static int setup(void **state)
{
    struct iot_cache *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    g_test_no++;
    snprintf(g_prefix, sizeof g_prefix, "ct%ld.%u:", (long)getpid(), g_test_no);
    const char *url = g_url;
    if (!is_memory()) {
        snprintf(g_ns, sizeof g_ns, "ct-%ld-%u:", (long)getpid(), g_test_no);
        url_with_prefix(g_test_url, sizeof g_test_url, g_url, g_ns);
        url = g_test_url;
    }
    if (iot_cache_open(url, c) != IOT_OK) {
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
    if (is_redis())
        redis_drop_namespace(c, g_ns);
    iot_cache_close(c);
    free(c);
    iot_clock_override(NULL);
    if (g_spawned > 0) {
        kill(g_spawned, SIGKILL);
        waitpid(g_spawned, NULL, 0);
        g_spawned = 0;
    }
    return 0;
}

/* A second handle on this test's backend and namespace. */
static void open_second(struct iot_cache *c2)
{
    assert_rc(iot_cache_open(is_memory() ? g_url : g_test_url, c2), IOT_OK);
}

/* Skips unless the backend is shared between handles. */
static void need_shared(struct iot_cache *c)
{
    if (!(c->ops->caps & IOT_CACHE_CAP_SHARED))
        skip();
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
    assert_non_null(strstr(iot_cache_backend_names(), "redis"));
    assert_string_equal(iot_cache_backend("redis://127.0.0.1:6379/0")->name, "redis");
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
    if (is_redis())
        assert_int_equal(c->ops->caps,
                         IOT_CACHE_CAP_TTL | IOT_CACHE_CAP_SHARED | IOT_CACHE_CAP_PUBSUB);
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

/* On the backend's own clock (a server's cannot be injected): the short
 * key goes, polled for rather than slept for; the long one, set before it
 * with an hour to live, is still there when it has. */
static void test_ttl_real_time(void **state)
{
    struct iot_cache *c = *state;
    assert_rc(iot_cache_set(c, K("long"), "v", 1, 3600000), IOT_OK);
    assert_rc(iot_cache_set(c, K("short"), "v", 1, 50), IOT_OK);
    int64_t deadline = iot_mono_us() + DELIVERY_WAIT_MS * 1000;
    struct iot_cache_value v = {0};
    while (iot_cache_get(c, K("short"), &v) == IOT_OK && iot_mono_us() < deadline) {
        free(v.data);
        v = (struct iot_cache_value){0};
        sleep_ms(10);
    }
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

/* The hits' times are the caller's (t + ...), but the key itself expires
 * on the backend's real clock window_ms after the last accepted hit: with a
 * one-second window, a machine stalled for a second between two calls lost
 * the window and failed the test. A minute is far beyond any stall. */
static void test_rate_sliding_window(void **state)
{
    struct iot_cache *c = *state;
    const int64_t t = iot_now_ms(), w = 60000, step = 6000;
    bool ok = false;
    int64_t retry = -1;
    for (int i = 0; i < 3; i++) {
        assert_rc(iot_cache_rate_hit(c, K("r"), 3, w, t + i * step, &ok, &retry), IOT_OK);
        assert_true(ok);
    }
    assert_rc(iot_cache_rate_hit(c, K("r"), 3, w, t + 3 * step, &ok, &retry), IOT_OK);
    assert_false(ok);
    assert_in_range(retry, 1, w);
    assert_i64(retry, w - 3 * step); /* the oldest hit (t) leaves at t + w */
    /* A separate key is independent. */
    assert_rc(iot_cache_rate_hit(c, K("other"), 3, w, t + 3 * step, &ok, &retry), IOT_OK);
    assert_true(ok);
    /* Hits at t+step, t+2*step remain; the refused hit at t+3*step was not
     * kept, so one hit fits once t has left the window, and only one. */
    assert_rc(iot_cache_rate_hit(c, K("r"), 3, w, t + w - 1, &ok, &retry), IOT_OK);
    assert_false(ok);
    assert_i64(retry, 1);
    assert_rc(iot_cache_rate_hit(c, K("r"), 3, w, t + w, &ok, &retry), IOT_OK);
    assert_true(ok);
    assert_rc(iot_cache_rate_hit(c, K("r"), 3, w, t + w + 1, &ok, &retry), IOT_OK);
    assert_false(ok);
    assert_i64(retry, step - 1); /* t+step leaves at t+step+w */
    assert_rc(iot_cache_rate_hit(c, K("r"), 0, w, t, &ok, &retry), IOT_EINVAL);
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
        assert_int_equal(wait_count(&in[i].n, 1, DELIVERY_WAIT_MS), 1);
        assert_string_equal(in[i].channel, K("ch"));
        assert_int_equal(in[i].len, 7);
        assert_memory_equal(in[i].msg, "hello\0!", 7);
    }
    /* The fence, published after, arrives after: "hello" never reached it. */
    assert_rc(iot_cache_publish(c, K("other"), "fence", 5), IOT_OK);
    assert_int_equal(wait_count(&other.n, 1, DELIVERY_WAIT_MS), 1);
    assert_string_equal(other.msg, "fence");
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&in[i].n), 1);
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
    struct inbox a = {0}, b = {0}, fence = {0};
    struct iot_cache_sub *sa, *sb, *sf;
    assert_rc(iot_cache_subscribe(c, K("ch"), inbox_cb, &a, &sa), IOT_OK);
    assert_rc(iot_cache_subscribe(c, K("ch"), inbox_cb, &b, &sb), IOT_OK);
    assert_rc(iot_cache_subscribe(c, K("ch"), inbox_cb, &fence, &sf), IOT_OK);
    assert_rc(iot_cache_publish(c, K("ch"), "1", 1), IOT_OK);
    assert_int_equal(wait_count(&a.n, 1, DELIVERY_WAIT_MS), 1);
    assert_int_equal(wait_count(&b.n, 1, DELIVERY_WAIT_MS), 1);
    iot_cache_unsubscribe(c, sa);
    assert_rc(iot_cache_publish(c, K("ch"), "2", 1), IOT_OK);
    assert_int_equal(wait_count(&b.n, 2, DELIVERY_WAIT_MS), 2);
    assert_int_equal(wait_count(&fence.n, 2, DELIVERY_WAIT_MS), 2);
    assert_int_equal(atomic_load(&a.n), 1);
    assert_string_equal(b.msg, "2");
    iot_cache_unsubscribe(c, sb);
    assert_rc(iot_cache_publish(c, K("ch"), "3", 1), IOT_OK);
    assert_int_equal(wait_count(&fence.n, 3, DELIVERY_WAIT_MS), 3);
    assert_int_equal(atomic_load(&b.n), 2);
    iot_cache_unsubscribe(c, sf);
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
    /* The relay's incr precedes the delivery on b (memory: it runs inside
     * publish; a server backend delivers b after the relay returned). */
    assert_int_equal(wait_count(&got.n, 1, DELIVERY_WAIT_MS), 1);
    assert_int_equal(atomic_load(&r.errors), 0);
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
    wait_count(&r->stable, 2 * RACE_MESSAGES, 4 * DELIVERY_WAIT_MS);
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

/* ---- write_batch ---- */

static void test_write_batch(void **state)
{
    struct iot_cache *c = *state;
    char kh[IOT_CACHE_KEY_MAX + 1], kh2[IOT_CACHE_KEY_MAX + 1], kgone[IOT_CACHE_KEY_MAX + 1];
    char kch[IOT_CACHE_KEY_MAX + 1];
    snprintf(kh, sizeof kh, "%s", K("h"));
    snprintf(kh2, sizeof kh2, "%s", K("h2"));
    snprintf(kgone, sizeof kgone, "%s", K("gone"));
    snprintf(kch, sizeof kch, "%s", K("ch"));
    const int64_t d1 = device_id(1);
    const int64_t t = (int64_t)4000000000000 + (int64_t)getpid() * 10000000;
    const struct iot_cache_field temp = {.field = "temp", .value = "21.5", .value_len = 4};
    const struct iot_cache_field hum = {.field = "hum", .value = "40", .value_len = 2};
    struct inbox in = {0};
    struct iot_cache_sub *sub;
    assert_rc(iot_cache_subscribe(c, kch, inbox_cb, &in, &sub), IOT_OK);
    assert_rc(iot_cache_set(c, kgone, "x", 1, 0), IOT_OK);
    /* Every kind, applied in order: the DEL in the middle erases the first
     * hash write only; the older presence time does not win. */
    const struct iot_cache_write w[] = {
        {.kind = IOT_CACHE_W_HASH_SET, .key = kh, .fields = &temp, .n_fields = 1, .ttl_ms = 60000},
        {.kind = IOT_CACHE_W_DEL, .key = kh},
        {.kind = IOT_CACHE_W_HASH_SET, .key = kh, .fields = &hum, .n_fields = 1, .ttl_ms = 60000},
        {.kind = IOT_CACHE_W_PRESENCE_TOUCH, .device_id = d1, .seen_ms = t + 1000},
        {.kind = IOT_CACHE_W_PRESENCE_TOUCH, .device_id = d1, .seen_ms = t + 500},
        {.kind = IOT_CACHE_W_PUBLISH, .key = kch, .msg = "m1", .len = 2},
        {.kind = IOT_CACHE_W_DEL, .key = kgone},
        {.kind = IOT_CACHE_W_PUBLISH, .key = kch, .msg = "m2", .len = 2},
    };
    assert_rc(iot_cache_write_batch(c, w, sizeof w / sizeof w[0]), IOT_OK);
    struct fields f = {0};
    assert_rc(iot_cache_hash_get_all(c, kh, collect_field, &f), IOT_OK);
    assert_int_equal(f.n, 1);
    assert_string_equal(field_value(&f, "hum"), "40");
    int64_t seen = 0;
    assert_rc(iot_cache_presence_get(c, d1, &seen), IOT_OK);
    assert_i64(seen, t + 1000);
    expect_absent(c, kgone);
    assert_int_equal(wait_count(&in.n, 2, DELIVERY_WAIT_MS), 2);
    assert_string_equal(in.msg, "m2");

    /* A bad write is reported (the first error) and the others still run. */
    const struct iot_cache_write w2[] = {
        {.kind = IOT_CACHE_W_HASH_SET, .key = kh2, .fields = &temp, .n_fields = 1},
        {.kind = IOT_CACHE_W_HASH_SET, .key = NULL, .fields = &temp, .n_fields = 1},
        {.kind = IOT_CACHE_W_DEL, .key = kh},
        {.kind = (enum iot_cache_write_kind)99, .key = kh},
        {.kind = IOT_CACHE_W_PUBLISH, .key = kch, .msg = NULL, .len = 3},
    };
    assert_rc(iot_cache_write_batch(c, w2, sizeof w2 / sizeof w2[0]), IOT_EINVAL);
    struct fields f2 = {0};
    assert_rc(iot_cache_hash_get_all(c, kh2, collect_field, &f2), IOT_OK);
    assert_string_equal(field_value(&f2, "temp"), "21.5");
    assert_rc(iot_cache_hash_get_all(c, kh, collect_field, &f2), IOT_ENOTFOUND);
    assert_rc(c->ops->write_batch(c->self, NULL, 0), IOT_OK);
    iot_cache_unsubscribe(c, sub);
}

/* A batch's hash write with max_fields merges while the hash stays within
 * the bound and deletes the key once it would hold more (the write still
 * succeeds); 0 is no bound. */
static void test_write_batch_hash_bound(void **state)
{
    struct iot_cache *c = *state;
    char kh[IOT_CACHE_KEY_MAX + 1];
    snprintf(kh, sizeof kh, "%s", K("bounded"));
    const struct iot_cache_field ab[] = {{.field = "a", .value = "1", .value_len = 1},
                                         {.field = "b", .value = "2", .value_len = 1}};
    const struct iot_cache_field bc[] = {{.field = "b", .value = "3", .value_len = 1},
                                         {.field = "c", .value = "4", .value_len = 1}};
    struct iot_cache_write w = {.kind = IOT_CACHE_W_HASH_SET, .key = kh, .fields = ab,
                                .n_fields = 2, .ttl_ms = 60000, .max_fields = 2};
    assert_rc(iot_cache_write_batch(c, &w, 1), IOT_OK);
    w.fields = ab; /* the same names again: still 2 */
    assert_rc(iot_cache_write_batch(c, &w, 1), IOT_OK);
    struct fields f = {0};
    assert_rc(iot_cache_hash_get_all(c, kh, collect_field, &f), IOT_OK);
    assert_int_equal(f.n, 2);
    w.fields = bc; /* c would be the third */
    assert_rc(iot_cache_write_batch(c, &w, 1), IOT_OK);
    struct fields gone = {0};
    assert_rc(iot_cache_hash_get_all(c, kh, collect_field, &gone), IOT_ENOTFOUND);
    w.max_fields = 3; /* a fresh hash of more than the bound is not kept either */
    const struct iot_cache_field four[] = {ab[0], ab[1], bc[1],
                                           {.field = "d", .value = "5", .value_len = 1}};
    w.fields = four;
    w.n_fields = 4;
    assert_rc(iot_cache_write_batch(c, &w, 1), IOT_OK);
    assert_rc(iot_cache_hash_get_all(c, kh, collect_field, &gone), IOT_ENOTFOUND);
    w.max_fields = 0;
    assert_rc(iot_cache_write_batch(c, &w, 1), IOT_OK);
    struct fields all = {0};
    assert_rc(iot_cache_hash_get_all(c, kh, collect_field, &all), IOT_OK);
    assert_int_equal(all.n, 4);
}

#define BIG_BATCH 2500

/* More writes than one pipelined round trip takes. */
static void test_write_batch_large(void **state)
{
    struct iot_cache *c = *state;
    char (*keys)[64] = calloc(BIG_BATCH, sizeof *keys);
    struct iot_cache_write *w = calloc(BIG_BATCH, sizeof *w);
    assert_non_null(keys);
    assert_non_null(w);
    const struct iot_cache_field v = {.field = "v", .value = "1", .value_len = 1};
    for (int i = 0; i < BIG_BATCH; i++) {
        snprintf(keys[i], sizeof keys[i], "%sbig%d", g_prefix, i);
        w[i] = (struct iot_cache_write){.kind = IOT_CACHE_W_HASH_SET, .key = keys[i],
                                        .fields = &v, .n_fields = 1, .ttl_ms = 60000};
    }
    assert_rc(iot_cache_write_batch(c, w, BIG_BATCH), IOT_OK);
    const int probes[] = {0, 1023, 1024, 2047, 2048, BIG_BATCH - 1};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        struct fields f = {0};
        assert_rc(iot_cache_hash_get_all(c, keys[probes[i]], collect_field, &f), IOT_OK);
        assert_int_equal(f.n, 1);
    }
    free(keys);
    free(w);
}

/* ---- pub/sub from inside a delivery ---- */

struct sub_in_cb {
    struct iot_cache *c;
    char channel[IOT_CACHE_KEY_MAX + 1];
    struct inbox in;
    _Atomic(struct iot_cache_sub *) sub;
    atomic_int errors;
};

/* Subscribes from the delivering thread: must not wait for itself. */
static void subscribing_cb(void *ctx, const char *channel, const char *msg, size_t len)
{
    struct sub_in_cb *s = ctx;
    struct iot_cache_sub *h;
    if (atomic_load(&s->sub))
        return;
    if (iot_cache_subscribe(s->c, s->channel, inbox_cb, &s->in, &h) != IOT_OK)
        atomic_fetch_add(&s->errors, 1);
    else
        atomic_store(&s->sub, h);
}

static void test_pubsub_callback_subscribes(void **state)
{
    struct iot_cache *c = *state;
    struct sub_in_cb *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->c = c;
    snprintf(s->channel, sizeof s->channel, "%s", K("b"));
    struct iot_cache_sub *sa;
    assert_rc(iot_cache_subscribe(c, K("a"), subscribing_cb, s, &sa), IOT_OK);
    assert_rc(iot_cache_publish(c, K("a"), "go", 2), IOT_OK);
    int64_t deadline = iot_mono_us() + DELIVERY_WAIT_MS * 1000;
    while (!atomic_load(&s->sub) && iot_mono_us() < deadline)
        sleep_ms(1);
    assert_non_null(atomic_load(&s->sub));
    /* The new subscription may need a moment to reach the server. */
    while (atomic_load(&s->in.n) == 0 && iot_mono_us() < deadline) {
        assert_rc(iot_cache_publish(c, K("b"), "hi", 2), IOT_OK);
        sleep_ms(20);
    }
    assert_true(atomic_load(&s->in.n) >= 1);
    assert_int_equal(atomic_load(&s->errors), 0);
    iot_cache_unsubscribe(c, sa);
    iot_cache_unsubscribe(c, atomic_load(&s->sub));
    free(s);
}

/* ---- shared backends: two handles, one state ---- */

static void test_shared_handles(void **state)
{
    struct iot_cache *c = *state;
    need_shared(c);
    struct iot_cache c2;
    open_second(&c2);
    /* Keys and counters. */
    assert_rc(iot_cache_set(c, K("k"), "v1", 2, 0), IOT_OK);
    expect_bytes(&c2, K("k"), "v1", 2);
    int64_t v = 0;
    assert_rc(iot_cache_incr(c, K("n"), 2, 60000, &v), IOT_OK);
    assert_rc(iot_cache_incr(&c2, K("n"), 3, 60000, &v), IOT_OK);
    assert_i64(v, 5);
    /* Sessions: put on one, seen and revoked on the other. */
    char ua[33], got[33];
    user_id(ua, 1);
    assert_rc(iot_cache_session_put(c, K("tok"), ua, 60000), IOT_OK);
    expect_session(&c2, K("tok"), ua);
    assert_rc(iot_cache_session_drop_user(&c2, ua), IOT_OK);
    assert_rc(iot_cache_session_get(c, K("tok"), got), IOT_ENOTFOUND);
    /* Presence keeps the later time whoever writes it. */
    const int64_t d1 = device_id(1), t = (int64_t)4000000000000;
    int64_t seen = 0, n = 0;
    assert_rc(iot_cache_presence_touch(c, d1, t), IOT_OK);
    assert_rc(iot_cache_presence_touch(&c2, d1, t - 5), IOT_OK);
    assert_rc(iot_cache_presence_get(&c2, d1, &seen), IOT_OK);
    assert_i64(seen, t);
    assert_rc(iot_cache_presence_count(&c2, t, &n), IOT_OK);
    assert_i64(n, 1);
    /* One rate limit across both. */
    bool ok = false;
    int64_t retry = 0;
    const int64_t now = iot_now_ms();
    assert_rc(iot_cache_rate_hit(c, K("r"), 3, 1000, now, &ok, &retry), IOT_OK);
    assert_true(ok);
    assert_rc(iot_cache_rate_hit(&c2, K("r"), 3, 1000, now + 1, &ok, &retry), IOT_OK);
    assert_true(ok);
    assert_rc(iot_cache_rate_hit(c, K("r"), 3, 1000, now + 2, &ok, &retry), IOT_OK);
    assert_true(ok);
    assert_rc(iot_cache_rate_hit(&c2, K("r"), 3, 1000, now + 10, &ok, &retry), IOT_OK);
    assert_false(ok);
    assert_i64(retry, 990);
    iot_cache_close(&c2);
}

static void test_shared_pubsub(void **state)
{
    struct iot_cache *c = *state;
    if (!(c->ops->caps & IOT_CACHE_CAP_PUBSUB))
        skip();
    struct iot_cache c2;
    open_second(&c2);
    struct inbox on1 = {0}, on2 = {0};
    struct iot_cache_sub *s1, *s2;
    assert_rc(iot_cache_subscribe(&c2, K("x"), inbox_cb, &on2, &s2), IOT_OK);
    assert_rc(iot_cache_publish(c, K("x"), "hi", 2), IOT_OK);
    assert_int_equal(wait_count(&on2.n, 1, DELIVERY_WAIT_MS), 1);
    assert_string_equal(on2.msg, "hi");
    assert_string_equal(on2.channel, K("x"));
    assert_rc(iot_cache_subscribe(c, K("x"), inbox_cb, &on1, &s1), IOT_OK);
    assert_rc(iot_cache_publish(&c2, K("x"), "back", 4), IOT_OK);
    assert_int_equal(wait_count(&on1.n, 1, DELIVERY_WAIT_MS), 1);
    assert_int_equal(wait_count(&on2.n, 2, DELIVERY_WAIT_MS), 2);
    assert_string_equal(on1.msg, "back");
    iot_cache_unsubscribe(c, s1);
    iot_cache_unsubscribe(&c2, s2);
    iot_cache_close(&c2);
}

struct flood {
    struct iot_cache *c;
    char channel[2][IOT_CACHE_KEY_MAX + 1];
    atomic_bool stop;
    atomic_int errors;
    atomic_int sent;
};

static void *flood_publisher(void *arg)
{
    struct flood *f = arg;
    for (int i = 0; !atomic_load(&f->stop); i++) {
        if (iot_cache_publish(f->c, f->channel[i % 2], "m", 1) != IOT_OK)
            atomic_fetch_add(&f->errors, 1);
        atomic_fetch_add(&f->sent, 1);
    }
    return NULL;
}

/* Channels subscribed and unsubscribed on the server while another process
 * (handle) floods them: no delivery after unsubscribe returns (a freed
 * context would also show under ASan), and the steady subscriber of the
 * other channel keeps receiving. */
static void test_shared_unsubscribe_while_flowing(void **state)
{
    struct iot_cache *c = *state;
    if (!(c->ops->caps & IOT_CACHE_CAP_PUBSUB))
        skip();
    struct iot_cache c2;
    open_second(&c2);
    struct flood *f = calloc(1, sizeof *f);
    struct race *r = calloc(1, sizeof *r);
    assert_non_null(f);
    assert_non_null(r);
    f->c = &c2;
    snprintf(f->channel[0], sizeof f->channel[0], "%s", K("flow"));
    snprintf(f->channel[1], sizeof f->channel[1], "%s", K("steady"));
    struct iot_cache_sub *steady;
    assert_rc(iot_cache_subscribe(c, f->channel[1], stable_cb, r, &steady), IOT_OK);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flood_publisher, f), 0);
    for (int i = 0; i < 200; i++) {
        struct churn_sub *cs = malloc(sizeof *cs);
        struct iot_cache_sub *sub;
        assert_non_null(cs);
        cs->r = r;
        atomic_init(&cs->closed, false);
        assert_rc(iot_cache_subscribe(c, f->channel[0], churn_cb, cs, &sub), IOT_OK);
        if (i % 3 == 0)
            sleep_ms(1);
        iot_cache_unsubscribe(c, sub);
        atomic_store(&cs->closed, true);
        free(cs);
    }
    atomic_store(&f->stop, true);
    pthread_join(th, NULL);
    iot_cache_unsubscribe(c, steady);
    assert_int_equal(atomic_load(&f->errors), 0);
    assert_int_equal(atomic_load(&r->late), 0);
    assert_true(atomic_load(&r->stable) > 0);
    free(f);
    free(r);
    iot_cache_close(&c2);
}

/* ---- Redis: URLs, prefixes, credentials, outages ---- */

static void skip_unless_redis(void)
{
    if (!is_redis())
        skip();
}

static void test_redis_url(void **state)
{
    skip_unless_redis();
    struct iot_redis_cfg cfg;
    assert_rc(iot_redis_parse_url("redis://", &cfg), IOT_OK);
    assert_string_equal(cfg.host, "127.0.0.1");
    assert_int_equal(cfg.port, 6379);
    assert_int_equal(cfg.db, 0);
    assert_string_equal(cfg.prefix, "iotflow:");
    assert_string_equal(cfg.password, "");
    assert_rc(iot_redis_parse_url("redis://alice:p%40ss@[::1]:6380/3?prefix=ns%3A", &cfg), IOT_OK);
    assert_string_equal(cfg.user, "alice");
    assert_string_equal(cfg.password, "p@ss");
    assert_string_equal(cfg.host, "::1");
    assert_int_equal(cfg.port, 6380);
    assert_int_equal(cfg.db, 3);
    assert_string_equal(cfg.prefix, "ns:");
    assert_rc(iot_redis_parse_url("redis://:a@b@cache.local:1/", &cfg), IOT_OK);
    assert_string_equal(cfg.user, "");
    assert_string_equal(cfg.password, "a@b");
    assert_string_equal(cfg.host, "cache.local");
    assert_rc(iot_redis_parse_url("redis://h?prefix=", &cfg), IOT_OK);
    assert_int_equal(cfg.prefix_len, 0);
    char long_prefix[128];
    snprintf(long_prefix, sizeof long_prefix, "redis://h?prefix=%065d", 0);
    const char *bad[] = {
        "redis", "redis:/h", "http://h", "redis://h:0", "redis://h:65536", "redis://h:x",
        "redis://::1:6379", "redis://h/abc", "redis://h?foo=1", "redis://pw@h",
        "redis://h?prefix=%zz", "redis://:p%00@h", long_prefix,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct iot_cache x = {0};
        int rc = iot_cache_open(bad[i], &x);
        if (rc != IOT_EINVAL)
            print_error("open(\"%s\") returned %d\n", bad[i], rc);
        assert_rc(rc, IOT_EINVAL);
        assert_null(x.ops);
    }
}

/* Subscribers of a channel on the server (PUBSUB NUMSUB, white box). */
static long long redis_numsub(struct iot_cache *c, const char *channel)
{
    char full[IOT_CACHE_KEY_MAX + 80];
    snprintf(full, sizeof full, "%s%s", g_ns, channel);
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    iot_redis_argv_str(&a, "PUBSUB");
    iot_redis_argv_str(&a, "NUMSUB");
    iot_redis_argv_str(&a, full);
    redisReply *r;
    if (iot_redis_run(c->self, &a, &r) != IOT_OK)
        return -1;
    long long n = r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : -1;
    freeReplyObject(r);
    return n;
}

/* One server subscription per channel however many local subscribers it
 * has; it goes when the last local one does. */
static void test_redis_subscribe_refcount(void **state)
{
    struct iot_cache *c = *state;
    skip_unless_redis();
    struct inbox a = {0}, b = {0};
    struct iot_cache_sub *sa, *sb;
    assert_rc(iot_cache_subscribe(c, K("rc"), inbox_cb, &a, &sa), IOT_OK);
    assert_int_equal(redis_numsub(c, K("rc")), 1); /* confirmed before returning */
    assert_rc(iot_cache_subscribe(c, K("rc"), inbox_cb, &b, &sb), IOT_OK);
    assert_int_equal(redis_numsub(c, K("rc")), 1);
    iot_cache_unsubscribe(c, sa);
    /* Had that queued an UNSUBSCRIBE, the subscriber connection would send
     * it before anything queued later: once a later channel's subscribe
     * and unsubscribe have both reached the server, "rc" must still count
     * one (a barrier, where a sleep proved nothing on a slow machine). */
    struct inbox later = {0};
    struct iot_cache_sub *sl;
    assert_rc(iot_cache_subscribe(c, K("rc-later"), inbox_cb, &later, &sl), IOT_OK);
    iot_cache_unsubscribe(c, sl);
    int64_t deadline = iot_mono_us() + DELIVERY_WAIT_MS * 1000;
    while (redis_numsub(c, K("rc-later")) != 0 && iot_mono_us() < deadline)
        sleep_ms(5);
    assert_int_equal(redis_numsub(c, K("rc-later")), 0);
    assert_int_equal(redis_numsub(c, K("rc")), 1);
    iot_cache_unsubscribe(c, sb);
    deadline = iot_mono_us() + DELIVERY_WAIT_MS * 1000;
    while (redis_numsub(c, K("rc")) != 0 && iot_mono_us() < deadline)
        sleep_ms(5);
    assert_int_equal(redis_numsub(c, K("rc")), 0);
}

/* The same key, session, device and channel under two prefixes are
 * independent. */
static void test_redis_prefix_isolation(void **state)
{
    skip_unless_redis();
    char ns_a[80], ns_b[80], url_a[1200], url_b[1200], ua[33], got[33];
    snprintf(ns_a, sizeof ns_a, "%sA:", g_ns);
    snprintf(ns_b, sizeof ns_b, "%sB:", g_ns);
    url_with_prefix(url_a, sizeof url_a, g_url, ns_a);
    url_with_prefix(url_b, sizeof url_b, g_url, ns_b);
    struct iot_cache a, b;
    assert_rc(iot_cache_open(url_a, &a), IOT_OK);
    assert_rc(iot_cache_open(url_b, &b), IOT_OK);
    assert_rc(iot_cache_set(&a, K("k"), "A", 1, 0), IOT_OK);
    assert_rc(iot_cache_set(&b, K("k"), "B", 1, 0), IOT_OK);
    expect_bytes(&a, K("k"), "A", 1);
    expect_bytes(&b, K("k"), "B", 1);
    assert_rc(iot_cache_del(&a, K("k")), IOT_OK);
    expect_absent(&a, K("k"));
    expect_bytes(&b, K("k"), "B", 1);
    user_id(ua, 1);
    assert_rc(iot_cache_session_put(&a, K("tok"), ua, 60000), IOT_OK);
    assert_rc(iot_cache_session_get(&b, K("tok"), got), IOT_ENOTFOUND);
    int64_t seen;
    assert_rc(iot_cache_presence_touch(&a, device_id(1), 1000), IOT_OK);
    assert_rc(iot_cache_presence_get(&b, device_id(1), &seen), IOT_ENOTFOUND);
    struct inbox in = {0};
    struct iot_cache_sub *sub;
    assert_rc(iot_cache_subscribe(&a, K("x"), inbox_cb, &in, &sub), IOT_OK);
    assert_rc(iot_cache_publish(&b, K("x"), "wrong", 5), IOT_OK);
    assert_rc(iot_cache_publish(&a, K("x"), "right", 5), IOT_OK);
    assert_int_equal(wait_count(&in.n, 1, DELIVERY_WAIT_MS), 1);
    assert_string_equal(in.msg, "right");
    assert_int_equal(atomic_load(&in.n), 1); /* "wrong" would have come first */
    iot_cache_unsubscribe(&a, sub);
    iot_cache_close(&a);
    iot_cache_close(&b);
}

static void test_redis_unreachable(void **state)
{
    skip_unless_redis();
    /* Refused at once; a black hole is cut by the connect timeout. */
    const char *urls[] = {"redis://127.0.0.1:1", "redis://10.255.255.1:6379"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        struct iot_cache x = {0};
        int64_t t0 = iot_mono_us();
        assert_rc(iot_cache_open(urls[i], &x), IOT_EUNAVAILABLE);
        int64_t took_ms = (iot_mono_us() - t0) / 1000;
        if (took_ms >= 1000)
            print_error("open(%s) took %" PRId64 " ms\n", urls[i], took_ms);
        assert_true(took_ms < 1000);
        assert_null(x.ops);
    }
}

static void test_redis_wrong_password(void **state)
{
    skip_unless_redis();
    /* The test URL with its credentials replaced by a wrong password. */
    const char *rest = g_test_url + 8;
    const char *q = strchr(rest, '?');
    for (const char *p = rest; *p && (!q || p < q); p++) {
        if (*p == '@')
            rest = p + 1;
    }
    char url[1200];
    snprintf(url, sizeof url, "redis://:wrong-password-%ld@%s", (long)getpid(), rest);
    struct iot_cache x = {0};
    int64_t t0 = iot_mono_us();
    int rc = iot_cache_open(url, &x);
    assert_true(rc == IOT_EINVAL || rc == IOT_EUNAVAILABLE);
    assert_true(iot_mono_us() - t0 < 1500000);
    assert_null(x.ops);
}

/* A free TCP port on the loopback (free when we looked). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

/* Starts a throwaway redis-server (no persistence) on `port`; 0 if there is
 * no redis-server to run. */
static pid_t spawn_redis(int port)
{
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *null = freopen("/dev/null", "w", stdout);
        (void)null;
        null = freopen("/dev/null", "w", stderr);
        (void)null;
        execlp("redis-server", "redis-server", "--port", port_s, "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    return pid < 0 ? 0 : pid;
}

/* Opens (or pings) until the server answers, up to timeout_ms. */
static int open_when_up(const char *url, struct iot_cache *out, long timeout_ms)
{
    int64_t deadline = iot_mono_us() + timeout_ms * 1000;
    int rc;
    while ((rc = iot_cache_open(url, out)) != IOT_OK && iot_mono_us() < deadline)
        sleep_ms(20);
    return rc;
}

/* Faults are injected into a private server, never the shared one: starts
 * one (teardown kills it), opens `h` on it and returns its port. Skips the
 * test when there is no redis-server to run. */
static int spawn_and_open(struct iot_cache *h)
{
    skip_unless_redis();
    int port = free_port();
    assert_true(port > 0);
    g_spawned = spawn_redis(port);
    if (g_spawned <= 0)
        skip();
    char url[256];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0?prefix=%s", port, g_ns);
    int rc = open_when_up(url, h, 5000);
    int status;
    if (rc != IOT_OK && waitpid(g_spawned, &status, WNOHANG) == g_spawned) {
        g_spawned = 0; /* exec failed: no redis-server here */
        skip();
    }
    assert_rc(rc, IOT_OK);
    return port;
}

/* A raw command on a handle's pool (white box); args end with NULL. */
static void redis_rawv(struct iot_cache *h, const char *const *args)
{
    struct iot_redis_argv a;
    iot_redis_argv_init(&a);
    for (size_t i = 0; args[i]; i++)
        iot_redis_argv_str(&a, args[i]);
    assert_rc(iot_redis_run(h->self, &a, NULL), IOT_OK);
}

static void redis_raw(struct iot_cache *h, const char *a0, const char *a1, const char *a2,
                      const char *a3)
{
    const char *args[] = {a0, a1, a2, a3, NULL};
    redis_rawv(h, args);
}

/* AUTH in the ACL form (user and password) and SELECT, on the first
 * connection and again on every reconnect. */
static void test_redis_acl_user_and_db(void **state)
{
    struct iot_cache h, a, x = {0};
    int port = spawn_and_open(&h); /* default user, db 0 */
    const char *setuser[] = {"ACL", "SETUSER", "alice", "on", ">s3cret", "~*", "&*", "+@all",
                             NULL};
    redis_rawv(&h, setuser);
    char url[256];
    snprintf(url, sizeof url, "redis://alice:s3cret@127.0.0.1:%d/3?prefix=%s", port, g_ns);
    assert_rc(iot_cache_open(url, &a), IOT_OK);
    assert_rc(iot_cache_set(&a, K("k"), "db3", 3, 0), IOT_OK);
    expect_absent(&h, K("k"));
    /* Cut alice's connections: the next op reconnects, as alice, to db 3. */
    redis_raw(&h, "CLIENT", "KILL", "USER", "alice");
    expect_bytes(&a, K("k"), "db3", 3);
    iot_cache_close(&a);
    snprintf(url, sizeof url, "redis://alice:nope@127.0.0.1:%d/3", port);
    assert_rc(iot_cache_open(url, &x), IOT_EINVAL);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/100000", port);
    assert_rc(iot_cache_open(url, &x), IOT_EINVAL); /* no such database */
    iot_cache_close(&h);
}

/* The server forgot our scripts (SCRIPT FLUSH): single ops fall back to
 * EVAL, and a batch redoes its hash writes. A paused server: the op times
 * out after the command timeout, and the next one works again. */
static void test_redis_noscript_and_timeout(void **state)
{
    struct iot_cache h;
    spawn_and_open(&h);
    const struct iot_cache_field f = {.field = "v", .value = "1", .value_len = 1};
    struct fields got = {0};
    bool ok = false;
    int64_t retry;
    redis_raw(&h, "SCRIPT", "FLUSH", NULL, NULL);
    assert_rc(iot_cache_hash_set(&h, K("h1"), &f, 1, 60000), IOT_OK);
    redis_raw(&h, "SCRIPT", "FLUSH", NULL, NULL);
    assert_rc(iot_cache_rate_hit(&h, K("r"), 5, 1000, iot_now_ms(), &ok, &retry), IOT_OK);
    assert_true(ok);
    redis_raw(&h, "SCRIPT", "FLUSH", NULL, NULL);
    const struct iot_cache_write w[] = {
        {.kind = IOT_CACHE_W_HASH_SET, .key = K("h2"), .fields = &f, .n_fields = 1},
        {.kind = IOT_CACHE_W_DEL, .key = K("h1")},
        {.kind = IOT_CACHE_W_HASH_SET, .key = K("h3"), .fields = &f, .n_fields = 1},
    };
    assert_rc(iot_cache_write_batch(&h, w, 3), IOT_OK);
    assert_rc(iot_cache_hash_get_all(&h, K("h1"), collect_field, &got), IOT_ENOTFOUND);
    assert_rc(iot_cache_hash_get_all(&h, K("h2"), collect_field, &got), IOT_OK);
    assert_rc(iot_cache_hash_get_all(&h, K("h3"), collect_field, &got), IOT_OK);

    redis_raw(&h, "CLIENT", "PAUSE", "1500", "ALL");
    int64_t t0 = iot_mono_us();
    assert_rc(iot_cache_set(&h, K("k"), "v", 1, 0), IOT_ETIMEOUT);
    int64_t took_ms = (iot_mono_us() - t0) / 1000;
    assert_in_range(took_ms, 900, 1400);
    sleep_ms(700);
    assert_rc(iot_cache_set(&h, K("k"), "v", 1, 0), IOT_OK);
    expect_bytes(&h, K("k"), "v", 1);
    iot_cache_close(&h);
}

/* Kill the server under a handle: ops fail fast with IOT_EUNAVAILABLE;
 * start it again: ops and subscriptions work again without reopening. */
static void test_redis_restart(void **state)
{
    struct iot_cache h;
    int port = spawn_and_open(&h);
    int rc;
    struct inbox in = {0};
    struct iot_cache_sub *sub;
    assert_rc(iot_cache_subscribe(&h, K("live"), inbox_cb, &in, &sub), IOT_OK);
    assert_rc(iot_cache_publish(&h, K("live"), "1", 1), IOT_OK);
    assert_int_equal(wait_count(&in.n, 1, DELIVERY_WAIT_MS), 1);
    assert_rc(iot_cache_set(&h, K("k"), "v", 1, 0), IOT_OK);

    kill(g_spawned, SIGKILL);
    waitpid(g_spawned, NULL, 0);
    g_spawned = 0;
    struct iot_cache_value v = {0};
    assert_rc(iot_cache_get(&h, K("k"), &v), IOT_EUNAVAILABLE);
    int64_t t0 = iot_mono_us();
    for (int i = 0; i < 200; i++)
        assert_rc(iot_cache_get(&h, K("k"), &v), IOT_EUNAVAILABLE);
    assert_true(iot_mono_us() - t0 < 200000); /* fast, not 200 connect attempts */
    assert_rc(iot_cache_publish(&h, K("live"), "lost", 4), IOT_EUNAVAILABLE);
    const struct iot_cache_write w = {.kind = IOT_CACHE_W_DEL, .key = K("k")};
    assert_rc(iot_cache_write_batch(&h, &w, 1), IOT_EUNAVAILABLE);

    g_spawned = spawn_redis(port);
    assert_true(g_spawned > 0);
    int64_t deadline = iot_mono_us() + 5000000;
    while ((rc = iot_cache_set(&h, K("k"), "w", 1, 0)) != IOT_OK && iot_mono_us() < deadline)
        sleep_ms(20);
    assert_rc(rc, IOT_OK);
    expect_bytes(&h, K("k"), "w", 1);
    /* The subscriber reconnects on its own and subscribes again. */
    while (atomic_load(&in.n) < 2 && iot_mono_us() < deadline) {
        assert_rc(iot_cache_publish(&h, K("live"), "2", 1), IOT_OK);
        sleep_ms(20);
    }
    assert_true(atomic_load(&in.n) >= 2);
    assert_string_equal(in.msg, "2");
    iot_cache_unsubscribe(&h, sub);
    iot_cache_close(&h);
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
        T(test_write_batch),
        T(test_write_batch_large),
        T(test_write_batch_hash_bound),
        T(test_pubsub_callback_subscribes),
        T(test_shared_handles),
        T(test_shared_pubsub),
        T(test_shared_unsubscribe_while_flowing),
        T(test_redis_url),
        T(test_redis_prefix_isolation),
        T(test_redis_subscribe_refcount),
        T(test_redis_unreachable),
        T(test_redis_wrong_password),
        T(test_redis_noscript_and_timeout),
        T(test_redis_acl_user_and_db),
        T(test_redis_restart),
    };
    g_url = url;
    return cmocka_run_group_tests_name(url, tests, NULL, NULL);
}

int main(void)
{
    /* A server that goes away mid-write must give EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    return contract_run_backends("IOT_CACHE_URLS", "memory", run_suite) ? 1 : 0;
}
