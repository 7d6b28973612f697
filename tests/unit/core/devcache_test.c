/* Unit tests of core/devcache: hit, miss, replace, forget, expiry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/devcache.h"
#include "util/clock.h"

static struct iot_device device(int64_t id, const char *hash)
{
    struct iot_device d = {.id = id, .user_id = 7};
    snprintf(d.api_key_hash, sizeof d.api_key_hash, "%s", hash);
    snprintf(d.name, sizeof d.name, "dev-%lld", (long long)id);
    return d;
}

#define HASH_A "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define HASH_B "ffffffffffffffff293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"

static void hit_and_miss(void **state)
{
    struct iot_devcache *c = iot_devcache_new(1024, 60000);
    struct iot_device out, a = device(1, HASH_A);
    assert_false(iot_devcache_get(c, HASH_A, &out));
    iot_devcache_put(c, &a);
    assert_true(iot_devcache_get(c, HASH_A, &out));
    assert_int_equal(out.id, 1);
    assert_string_equal(out.name, "dev-1");
    assert_false(iot_devcache_get(c, HASH_B, &out));
    iot_devcache_free(c);
}

static void collision_replaces(void **state)
{
    struct iot_devcache *c = iot_devcache_new(1, 60000); /* every key shares the slot */
    struct iot_device out, a = device(1, HASH_A), b = device(2, HASH_B);
    iot_devcache_put(c, &a);
    iot_devcache_put(c, &b);
    assert_false(iot_devcache_get(c, HASH_A, &out));
    assert_true(iot_devcache_get(c, HASH_B, &out));
    assert_int_equal(out.id, 2);
    iot_devcache_forget(c, HASH_A); /* another key's forget leaves it alone */
    assert_true(iot_devcache_get(c, HASH_B, &out));
    iot_devcache_forget(c, HASH_B);
    assert_false(iot_devcache_get(c, HASH_B, &out));
    iot_devcache_free(c);
}

/* An owner's change (deactivation) drops every device of that owner, and
 * only theirs. */
static void forget_owner(void **state)
{
    (void)state;
    struct iot_devcache *c = iot_devcache_new(1024, 60000);
    struct iot_device out, a = device(1, HASH_A), b = device(2, HASH_B);
    b.user_id = 8;
    iot_devcache_put(c, &a);
    iot_devcache_put(c, &b);
    iot_devcache_forget_owner(c, 7);
    assert_false(iot_devcache_get(c, HASH_A, &out));
    assert_true(iot_devcache_get(c, HASH_B, &out));
    assert_int_equal(out.user_id, 8);
    iot_devcache_forget_owner(c, 8);
    assert_false(iot_devcache_get(c, HASH_B, &out));
    iot_devcache_free(c);
}

/* An injected monotonic clock: with the real one a 20 ms TTL could pass
 * between put and get on a loaded machine (and a sleep proved little). */
static _Atomic int64_t fake_mono_us = 1000000;

static int64_t fake_mono(void) { return atomic_load(&fake_mono_us); }

static void entries_expire(void **state)
{
    iot_mono_override(fake_mono);
    struct iot_devcache *c = iot_devcache_new(64, 20);
    struct iot_device out, a = device(1, HASH_A);
    iot_devcache_put(c, &a);
    atomic_fetch_add(&fake_mono_us, 19999);
    assert_true(iot_devcache_get(c, HASH_A, &out)); /* 1 us before the TTL */
    atomic_fetch_add(&fake_mono_us, 1);
    assert_false(iot_devcache_get(c, HASH_A, &out)); /* at the TTL: gone */
    /* a put starts a new lifetime */
    iot_devcache_put(c, &a);
    atomic_fetch_add(&fake_mono_us, 19999);
    assert_true(iot_devcache_get(c, HASH_A, &out));
    iot_devcache_free(c);
    iot_mono_override(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hit_and_miss),
        cmocka_unit_test(collision_replaces),
        cmocka_unit_test(forget_owner),
        cmocka_unit_test(entries_expire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
