/* Unit tests of core/device_auth (the device key check every transport
 * shares) on real embedded stores: a SQLite registry in a fresh directory,
 * the in-process cache and a key cache with a long TTL. Verdicts by key and
 * by key hash for each status and mode, first-use activation, the per-device
 * rate limits, the fixed-window counter and the device:notice parser.
 *
 * The event log is NULL: iot_events_emit drops events on a NULL writer,
 * and what first-use activation writes is checked on the registry row.
 * The window tests run on an injected wall clock, so that a minute boundary
 * cannot fall between two calls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/device_auth.h"
#include "core/devcache.h"
#include "core/secrets.h"
#include "test_asserts.h"
#include "util/clock.h"
#include "util/err.h"
#include "unit/core/docs_fixture.h"

/* Mid-minute (30 s into a 60 s window), so every window test knows left_ms. */
#define FAKE_NOW_MS 1700000010000LL

static _Atomic int64_t fake_now;
static int64_t fake_clock(void) { return atomic_load(&fake_now); }

struct fx {
    char dir[FX_DIR_MAX];
    struct iot_registry reg;
    struct iot_cache cache;
    struct iot_device_gate gate;
    struct iot_user owner;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f || iot_secrets_init() || fx_dir_make(f->dir, "device-auth-test"))
        return -1;
    char url[FX_URL_MAX];
    fx_store_url(url, f->dir, "registry.db");
    if (iot_registry_open(url, &f->reg) || iot_cache_open(NULL, &f->cache))
        return -1;
    snprintf(f->owner.username, sizeof f->owner.username, "owner");
    snprintf(f->owner.email, sizeof f->owner.email, "owner@example.com");
    snprintf(f->owner.password_hash, sizeof f->owner.password_hash, "x");
    f->owner.is_active = true;
    if (iot_reg_user_create(&f->reg, &f->owner))
        return -1;
    f->gate = (struct iot_device_gate){
        .registry = &f->reg,
        .cache = &f->cache,
        .devcache = iot_devcache_new(64, 600000), /* long TTL: a hit is seen as one */
        .events = NULL,
    };
    *state = f;
    return f->gate.devcache ? 0 : -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    iot_clock_override(NULL);
    iot_devcache_free(f->gate.devcache);
    iot_cache_close(&f->cache);
    iot_registry_close(&f->reg);
    fx_dir_remove(f->dir);
    free(f);
    return 0;
}

static void use_fake_clock(void)
{
    atomic_store(&fake_now, FAKE_NOW_MS);
    iot_clock_override(fake_clock);
}

/* Registers a device of the fixture's owner whose API key is `key`, with
 * `status` set by `set_by` ("" = the store's default, "new"); its id. */
static int64_t add_device(struct fx *f, const char *name, const char *key, const char *status,
                          const char *set_by)
{
    struct iot_device d = {.user_id = f->owner.id};
    snprintf(d.name, sizeof d.name, "%s", name);
    snprintf(d.device_type, sizeof d.device_type, "sensor");
    snprintf(d.status, sizeof d.status, "%s", status);
    snprintf(d.status_set_by, sizeof d.status_set_by, "%s", set_by);
    iot_sha256_hex(key, strlen(key), d.api_key_hash, sizeof d.api_key_hash);
    memcpy(d.api_key_prefix, key, 8);
    assert_rc(iot_reg_device_create(&f->reg, &d), IOT_OK);
    return d.id;
}

static enum iot_device_verdict by_key(struct fx *f, const char *key, size_t len,
                                      enum iot_device_auth mode, struct iot_device *out)
{
    int store_rc = IOT_OK;
    enum iot_device_verdict v = iot_device_authenticate(&f->gate, key, len, mode, out, &store_rc);
    assert_rc(store_rc, IOT_OK);
    return v;
}

static enum iot_device_verdict by_hash(struct fx *f, const char *key, enum iot_device_auth mode,
                                       struct iot_device *out)
{
    char hash[IOT_SHA256_HEX_LEN + 1];
    iot_sha256_hex(key, strlen(key), hash, sizeof hash);
    int store_rc = IOT_OK;
    enum iot_device_verdict v = iot_device_authenticate_hash(&f->gate, hash, mode, out, &store_rc);
    assert_rc(store_rc, IOT_OK);
    return v;
}

/* The verdicts for `key` in each mode, by key and by hash alike; ACTIVE
 * last, as it is the one mode that may change the device. */
static void assert_verdicts(struct fx *f, const char *key, int64_t id, enum iot_device_verdict any,
                            enum iot_device_verdict read, enum iot_device_verdict active)
{
    const struct {
        enum iot_device_auth mode;
        enum iot_device_verdict want;
    } cases[] = {
        {IOT_DEVICE_AUTH_ANY, any},
        {IOT_DEVICE_AUTH_READ, read},
        {IOT_DEVICE_AUTH_ACTIVE, active},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct iot_device out = {0};
        assert_i64(by_key(f, key, strlen(key), cases[i].mode, &out), cases[i].want);
        assert_i64(out.id, id); /* filled whenever the key is known */
        memset(&out, 0, sizeof out);
        assert_i64(by_hash(f, key, cases[i].mode, &out), cases[i].want);
        assert_i64(out.id, id);
    }
}

static void test_registered_key_ok_in_every_mode(void **state)
{
    struct fx *f = *state;
    int64_t id = add_device(f, "d1", "key-of-d1", "active", "");
    assert_verdicts(f, "key-of-d1", id, IOT_DEVICE_OK, IOT_DEVICE_OK, IOT_DEVICE_OK);
    struct iot_device out = {0};
    assert_i64(by_key(f, "key-of-d1", 9, IOT_DEVICE_AUTH_ACTIVE, &out), IOT_DEVICE_OK);
    assert_i64(out.user_id, f->owner.id);
    assert_string_equal(out.name, "d1");
    assert_string_equal(out.status, "active");
    assert_true(out.owner_active);
}

/* The second call is answered by the key cache: an admin's switch-off
 * written behind its back is not seen until the entry is forgotten. */
static void test_second_call_hits_the_key_cache(void **state)
{
    struct fx *f = *state;
    int64_t id = add_device(f, "d1", "key-of-d1", "active", "");
    struct iot_device out;
    assert_i64(by_key(f, "key-of-d1", 9, IOT_DEVICE_AUTH_ACTIVE, &out), IOT_DEVICE_OK);
    struct iot_device row;
    assert_rc(iot_reg_device_get(&f->reg, id, &row), IOT_OK);
    snprintf(row.status, sizeof row.status, "inactive");
    snprintf(row.status_set_by, sizeof row.status_set_by, IOT_STATUS_BY_ADMIN);
    assert_rc(iot_reg_device_update(&f->reg, &row), IOT_OK);
    assert_i64(by_key(f, "key-of-d1", 9, IOT_DEVICE_AUTH_ACTIVE, &out), IOT_DEVICE_OK);
    iot_devcache_forget(f->gate.devcache, row.api_key_hash);
    assert_i64(by_key(f, "key-of-d1", 9, IOT_DEVICE_AUTH_ACTIVE, &out), IOT_DEVICE_HELD_OFF);
}

static void test_unknown_empty_and_too_long_keys(void **state)
{
    struct fx *f = *state;
    char longest[IOT_DEVICE_KEY_MAX + 2];
    memset(longest, 'k', sizeof longest - 1);
    longest[IOT_DEVICE_KEY_MAX] = '\0';
    add_device(f, "longest", longest, "active", ""); /* IOT_DEVICE_KEY_MAX bytes: accepted */
    longest[IOT_DEVICE_KEY_MAX] = 'k';
    longest[IOT_DEVICE_KEY_MAX + 1] = '\0';
    add_device(f, "too-long", longest, "active", ""); /* one more: refused unread */
    struct iot_device out;
    assert_i64(by_key(f, longest, IOT_DEVICE_KEY_MAX, IOT_DEVICE_AUTH_ANY, &out), IOT_DEVICE_OK);
    assert_i64(by_key(f, longest, IOT_DEVICE_KEY_MAX + 1, IOT_DEVICE_AUTH_ANY, &out),
               IOT_DEVICE_UNKNOWN_KEY);
    assert_i64(by_key(f, "no-such-key", 11, IOT_DEVICE_AUTH_ANY, &out), IOT_DEVICE_UNKNOWN_KEY);
    assert_i64(by_key(f, "", 0, IOT_DEVICE_AUTH_ANY, &out), IOT_DEVICE_UNKNOWN_KEY);
    assert_i64(by_hash(f, "no-such-key", IOT_DEVICE_AUTH_ANY, &out), IOT_DEVICE_UNKNOWN_KEY);
}

static void test_owner_inactive_in_every_mode(void **state)
{
    struct fx *f = *state;
    int64_t id = add_device(f, "d1", "key-of-d1", "active", "");
    f->owner.is_active = false;
    assert_rc(iot_reg_user_update(&f->reg, &f->owner), IOT_OK);
    assert_verdicts(f, "key-of-d1", id, IOT_DEVICE_OWNER_INACTIVE, IOT_DEVICE_OWNER_INACTIVE,
                    IOT_DEVICE_OWNER_INACTIVE);
}

static void test_maintenance_set_by_device(void **state)
{
    struct fx *f = *state;
    int64_t id = add_device(f, "d1", "key-of-d1", "maintenance", IOT_STATUS_BY_DEVICE);
    assert_verdicts(f, "key-of-d1", id, IOT_DEVICE_OK, IOT_DEVICE_OK, IOT_DEVICE_MAINTENANCE);
    struct iot_device row;
    assert_rc(iot_reg_device_get(&f->reg, id, &row), IOT_OK);
    assert_string_equal(row.status, "maintenance"); /* refused, not activated */
}

static void test_held_off_by_admin(void **state)
{
    struct fx *f = *state;
    int64_t id = add_device(f, "d1", "key-of-d1", "inactive", IOT_STATUS_BY_ADMIN);
    assert_verdicts(f, "key-of-d1", id, IOT_DEVICE_OK, IOT_DEVICE_HELD_OFF, IOT_DEVICE_HELD_OFF);
    struct iot_device out;
    assert_i64(by_key(f, "key-of-d1", 9, IOT_DEVICE_AUTH_ACTIVE, &out), IOT_DEVICE_HELD_OFF);
    assert_string_equal(out.status, "inactive"); /* *out as stored */
    assert_string_equal(out.status_set_by, IOT_STATUS_BY_ADMIN);
    struct iot_device row;
    assert_rc(iot_reg_device_get(&f->reg, id, &row), IOT_OK);
    assert_string_equal(row.status, "inactive");
}

static void test_new_inactive_device_activates_on_first_use(void **state)
{
    struct fx *f = *state;
    int64_t id = add_device(f, "d1", "key-of-d1", "inactive", "");
    struct iot_device out;
    /* ANY and READ change nothing */
    assert_i64(by_key(f, "key-of-d1", 9, IOT_DEVICE_AUTH_ANY, &out), IOT_DEVICE_OK);
    assert_i64(by_key(f, "key-of-d1", 9, IOT_DEVICE_AUTH_READ, &out), IOT_DEVICE_OK);
    struct iot_device row;
    assert_rc(iot_reg_device_get(&f->reg, id, &row), IOT_OK);
    assert_string_equal(row.status, "inactive");
    assert_string_equal(row.status_set_by, IOT_STATUS_BY_NEW);

    assert_i64(by_key(f, "key-of-d1", 9, IOT_DEVICE_AUTH_ACTIVE, &out), IOT_DEVICE_OK);
    assert_string_equal(out.status, "active");
    assert_string_equal(out.status_set_by, IOT_STATUS_BY_DEVICE);
    assert_rc(iot_reg_device_get(&f->reg, id, &row), IOT_OK);
    assert_string_equal(row.status, "active");
    assert_string_equal(row.status_set_by, IOT_STATUS_BY_DEVICE);
    /* the key cache was not left with the inactive copy */
    assert_i64(by_hash(f, "key-of-d1", IOT_DEVICE_AUTH_ANY, &out), IOT_DEVICE_OK);
    assert_string_equal(out.status, "active");
}

static void test_rate_take(void **state)
{
    struct fx *f = *state;
    int64_t retry_ms = 0;
    f->gate.rate_limit = 3;
    for (int i = 0; i < 3; i++)
        assert_true(iot_device_rate_take(&f->gate, 42, &retry_ms));
    assert_false(iot_device_rate_take(&f->gate, 42, &retry_ms));
    assert_true(retry_ms > 0 && retry_ms <= 60000);
    assert_true(iot_device_rate_take(&f->gate, 43, &retry_ms)); /* per device */

    f->gate.rate_limit = 0;
    for (int i = 0; i < 10; i++)
        assert_true(iot_device_rate_take(&f->gate, 42, &retry_ms));
}

static void test_bytes_take(void **state)
{
    struct fx *f = *state;
    use_fake_clock();
    int64_t retry_ms = 0;
    f->gate.byte_rate_limit = 100;
    assert_true(iot_device_bytes_take(&f->gate, 42, 60, &retry_ms));
    assert_true(iot_device_bytes_take(&f->gate, 42, 60, &retry_ms)); /* crosses: still taken */
    assert_false(iot_device_bytes_take(&f->gate, 42, 1, &retry_ms));
    assert_i64(retry_ms, 30000); /* to the end of the minute */
    assert_true(iot_device_bytes_take(&f->gate, 43, 60, &retry_ms)); /* per device */
    atomic_fetch_add(&fake_now, 30000); /* the next minute */
    assert_true(iot_device_bytes_take(&f->gate, 42, 60, &retry_ms));

    f->gate.byte_rate_limit = 0;
    for (int i = 0; i < 10; i++)
        assert_true(iot_device_bytes_take(&f->gate, 42, 1000, &retry_ms));
}

static void test_window_count(void **state)
{
    struct fx *f = *state;
    use_fake_clock();
    int64_t total = -1, left_ms = -1;
    assert_rc(iot_window_count(&f->cache, "t:win", 0, 60000, &total, &left_ms), IOT_OK);
    assert_i64(total, 0);
    assert_i64(left_ms, 30000);
    /* the read created no counter (the key as device_auth.c names it) */
    char key[64];
    snprintf(key, sizeof key, "t:win:%lld", FAKE_NOW_MS / 60000);
    struct iot_cache_value v = {0};
    assert_rc(iot_cache_get(&f->cache, key, &v), IOT_ENOTFOUND);

    assert_rc(iot_window_count(&f->cache, "t:win", 5, 60000, &total, &left_ms), IOT_OK);
    assert_i64(total, 5);
    assert_rc(iot_window_count(&f->cache, "t:win", 7, 60000, &total, &left_ms), IOT_OK);
    assert_i64(total, 12);
    assert_rc(iot_window_count(&f->cache, "t:win", 0, 60000, &total, &left_ms), IOT_OK);
    assert_i64(total, 12);

    atomic_fetch_add(&fake_now, 29999); /* the window's last millisecond */
    assert_rc(iot_window_count(&f->cache, "t:win", 0, 60000, &total, &left_ms), IOT_OK);
    assert_i64(total, 12);
    assert_i64(left_ms, 1);
    atomic_fetch_add(&fake_now, 1); /* a new window, whole */
    assert_rc(iot_window_count(&f->cache, "t:win", 0, 60000, &total, &left_ms), IOT_OK);
    assert_i64(total, 0);
    assert_i64(left_ms, 60000);
}

#define HASH64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static bool parse(const char *msg, struct iot_device_notice *out)
{
    return iot_device_notice_parse(msg, strlen(msg), out);
}

static void test_notice_parse_device_forms(void **state)
{
    (void)state;
    struct iot_device_notice n;
    assert_true(parse("12 " HASH64 " 1", &n));
    assert_false(n.owner);
    assert_i64(n.id, 12);
    assert_string_equal(n.key_hash, HASH64);
    assert_true(n.deleted);

    assert_true(parse("12 " HASH64 " 0", &n));
    assert_i64(n.id, 12);
    assert_string_equal(n.key_hash, HASH64);
    assert_false(n.deleted);
}

static void test_notice_parse_owner_form(void **state)
{
    (void)state;
    struct iot_device_notice n;
    assert_true(parse("owner 7", &n));
    assert_true(n.owner);
    assert_i64(n.id, 7);
    assert_false(n.deleted);
}

static void test_notice_parse_refuses_the_rest(void **state)
{
    (void)state;
    struct iot_device_notice n;
    const char *bad[] = {
        "", "garbage", "owner", "owner ", "owner x", "12", "12 " HASH64, "x " HASH64 " 1",
        "12 " HASH64 " x",
        /* what a lenient sscanf took: a hash one character long or short,
         * text after the last field, ids not positive, no id at all */
        "12 " HASH64 "7 0", "12 abc 1", "owner 7 junk", "12 " HASH64 " 1 trailing",
        "-3 " HASH64 " 1", "0 " HASH64 " 0", "owner -1", "owner 0", HASH64 "1 0",
        "12 " HASH64 " 2", "12 0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef 1",
        "99999999999999999999 " HASH64 " 1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parse(bad[i], &n))
            fail_msg("\"%s\" parsed", bad[i]);
    char too_long[256];
    memset(too_long, '1', sizeof too_long);
    assert_false(iot_device_notice_parse(too_long, sizeof too_long, &n));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_registered_key_ok_in_every_mode),
        T(test_second_call_hits_the_key_cache),
        T(test_unknown_empty_and_too_long_keys),
        T(test_owner_inactive_in_every_mode),
        T(test_maintenance_set_by_device),
        T(test_held_off_by_admin),
        T(test_new_inactive_device_activates_on_first_use),
        T(test_rate_take),
        T(test_bytes_take),
        T(test_window_count),
        cmocka_unit_test(test_notice_parse_device_forms),
        cmocka_unit_test(test_notice_parse_owner_form),
        cmocka_unit_test(test_notice_parse_refuses_the_rest),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
