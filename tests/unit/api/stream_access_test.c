/* Unit tests of api/stream_access: the decision on a live stream's grant
 * from what the stores say (iot_stream_grant_verdict), for every kind of
 * credential and every way it can be revoked; and the batch
 * (iot_stream_grants_check) on a counting fake registry and the in-process
 * cache: each device and user looked up once, the batch stopped at the
 * first store error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "api/app.h"
#include "api/stream_access.h"
#include "core/secrets.h"
#include "util/err.h"

#define OWNER_PUB "0123456789abcdef0123456789abcdef"
#define OTHER_PUB "fedcba9876543210fedcba9876543210"
#define KEY_HASH "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define NEW_HASH "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static struct iot_device device;
static struct iot_user user;

static int setup(void **state)
{
    memset(&device, 0, sizeof device);
    device.id = 7;
    device.user_id = 3;
    snprintf(device.api_key_hash, sizeof device.api_key_hash, "%s", KEY_HASH);
    snprintf(device.status, sizeof device.status, "active");
    snprintf(device.status_set_by, sizeof device.status_set_by, "%s", IOT_STATUS_BY_DEVICE);
    device.owner_active = true;
    memset(&user, 0, sizeof user);
    user.id = 3;
    snprintf(user.user_id, sizeof user.user_id, "%s", OWNER_PUB);
    user.is_active = true;
    return 0;
}

static struct iot_stream_grant grant(enum iot_cred_kind kind)
{
    struct iot_stream_grant g = {.cred = {.kind = kind}, .device_id = 7};
    if (kind == IOT_CRED_SESSION || kind == IOT_CRED_USER_ID) {
        g.user_id = 3;
        snprintf(g.user_pub, sizeof g.user_pub, "%s", OWNER_PUB);
    }
    if (kind == IOT_CRED_DEVICE_KEY)
        snprintf(g.cred.hash, sizeof g.cred.hash, "%s", KEY_HASH);
    return g;
}

/* Everything found and as it was at opening. */
static struct iot_stream_facts all_there(void)
{
    return (struct iot_stream_facts){.device_rc = IOT_OK, .device = &device, .user_rc = IOT_OK,
                                     .user = &user, .session_rc = IOT_OK,
                                     .session_user = OWNER_PUB};
}

static void expect_verdict(struct iot_stream_grant g, struct iot_stream_facts f, const char *want)
{
    const char *got = iot_stream_grant_verdict(&g, &f);
    if (!want)
        assert_null(got);
    else
        assert_string_equal(got ? got : "(kept)", want);
}

static void valid_grants_are_kept(void **state)
{
    expect_verdict(grant(IOT_CRED_SESSION), all_there(), NULL);
    expect_verdict(grant(IOT_CRED_USER_ID), all_there(), NULL);
    expect_verdict(grant(IOT_CRED_DEVICE_KEY), all_there(), NULL);
    expect_verdict(grant(IOT_CRED_ADMIN), all_there(), NULL);
}

static void deleted_device_ends_every_kind(void **state)
{
    struct iot_stream_facts f = all_there();
    f.device_rc = IOT_ENOTFOUND;
    f.device = NULL;
    enum iot_cred_kind kinds[] = {IOT_CRED_ADMIN, IOT_CRED_SESSION, IOT_CRED_USER_ID,
                                  IOT_CRED_DEVICE_KEY};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        expect_verdict(grant(kinds[i]), f, IOT_REVOKED_DEVICE_DELETED);
}

static void session_gone_or_other_user(void **state)
{
    struct iot_stream_facts f = all_there();
    f.session_rc = IOT_ENOTFOUND;
    expect_verdict(grant(IOT_CRED_SESSION), f, IOT_REVOKED_SESSION);
    f = all_there();
    f.session_user = OTHER_PUB;
    expect_verdict(grant(IOT_CRED_SESSION), f, IOT_REVOKED_SESSION);
    /* the legacy header has no session to lose */
    f.session_rc = IOT_ENOTFOUND;
    expect_verdict(grant(IOT_CRED_USER_ID), f, NULL);
}

static void user_inactive_deleted_or_replaced(void **state)
{
    struct iot_stream_facts f = all_there();
    user.is_active = false;
    expect_verdict(grant(IOT_CRED_SESSION), f, IOT_REVOKED_USER_INACTIVE);
    expect_verdict(grant(IOT_CRED_USER_ID), f, IOT_REVOKED_USER_INACTIVE);
    user.is_active = true;
    f.user_rc = IOT_ENOTFOUND;
    f.user = NULL;
    expect_verdict(grant(IOT_CRED_SESSION), f, IOT_REVOKED_USER_DELETED);
    /* an internal id reused by a new user is not the same user */
    f = all_there();
    snprintf(user.user_id, sizeof user.user_id, "%s", OTHER_PUB);
    expect_verdict(grant(IOT_CRED_USER_ID), f, IOT_REVOKED_USER_DELETED);
}

static void admin_rights_lost(void **state)
{
    device.user_id = 99; /* someone else's device, streamed by an admin user */
    user.is_admin = true;
    expect_verdict(grant(IOT_CRED_SESSION), all_there(), NULL);
    user.is_admin = false;
    expect_verdict(grant(IOT_CRED_SESSION), all_there(), IOT_REVOKED_ACCESS);
}

static void rotated_key(void **state)
{
    snprintf(device.api_key_hash, sizeof device.api_key_hash, "%s", NEW_HASH);
    expect_verdict(grant(IOT_CRED_DEVICE_KEY), all_there(), IOT_REVOKED_KEY);
    /* the owner's and the admin's streams of that device go on */
    expect_verdict(grant(IOT_CRED_SESSION), all_there(), NULL);
    expect_verdict(grant(IOT_CRED_ADMIN), all_there(), NULL);
}

/* The key's own refusals (iot_device_key_usable) end its streams; the
 * owner's and the admin's streams of that device go on. */
static void refused_key(void **state)
{
    (void)state;
    snprintf(device.status, sizeof device.status, "inactive");
    snprintf(device.status_set_by, sizeof device.status_set_by, "%s", IOT_STATUS_BY_ADMIN);
    expect_verdict(grant(IOT_CRED_DEVICE_KEY), all_there(), IOT_REVOKED_DEVICE_REFUSED);
    expect_verdict(grant(IOT_CRED_SESSION), all_there(), NULL);
    snprintf(device.status_set_by, sizeof device.status_set_by, "%s", IOT_STATUS_BY_DEVICE);
    expect_verdict(grant(IOT_CRED_DEVICE_KEY), all_there(), NULL); /* it switched itself off */
    device.owner_active = false;
    expect_verdict(grant(IOT_CRED_DEVICE_KEY), all_there(), IOT_REVOKED_DEVICE_REFUSED);
    expect_verdict(grant(IOT_CRED_ADMIN), all_there(), NULL);
}

static void store_errors_keep_the_stream(void **state)
{
    struct iot_stream_facts f = all_there();
    f.device_rc = IOT_EUNAVAILABLE;
    expect_verdict(grant(IOT_CRED_SESSION), f, NULL);
    expect_verdict(grant(IOT_CRED_DEVICE_KEY), f, NULL);
    f = all_there();
    f.user_rc = IOT_ETIMEOUT;
    expect_verdict(grant(IOT_CRED_SESSION), f, NULL);
    f = all_there();
    f.session_rc = IOT_EUNAVAILABLE;
    expect_verdict(grant(IOT_CRED_SESSION), f, NULL);
    /* but a deleted device is decided without the rest */
    f.device_rc = IOT_ENOTFOUND;
    expect_verdict(grant(IOT_CRED_SESSION), f, IOT_REVOKED_DEVICE_DELETED);
}

static void unknown_credential_is_not_trusted(void **state)
{
    expect_verdict(grant(IOT_CRED_NONE), all_there(), IOT_REVOKED_ACCESS);
}

/* ---- the batch, on a fake registry ------------------------------------------ */

static int device_gets, user_gets, fail_with;

static int fake_device_get(void *self, int64_t id, struct iot_device *out)
{
    device_gets++;
    if (fail_with)
        return fail_with;
    if (id != device.id)
        return IOT_ENOTFOUND;
    *out = device;
    return IOT_OK;
}

static int fake_user_get_by_id(void *self, int64_t id, struct iot_user *out)
{
    user_gets++;
    if (id != user.id)
        return IOT_ENOTFOUND;
    *out = user;
    return IOT_OK;
}

static const struct iot_registry_ops fake_ops = {
    .name = "fake", .version = 1, .device_get = fake_device_get,
    .user_get_by_id = fake_user_get_by_id};

static struct iot_app app;

static int batch_setup(void **state)
{
    setup(state);
    device_gets = user_gets = fail_with = 0;
    memset(&app, 0, sizeof app);
    app.registry = (struct iot_registry){.ops = &fake_ops};
    return iot_cache_open(NULL, &app.cache);
}

static int batch_teardown(void **state)
{
    iot_cache_close(&app.cache);
    return 0;
}

static void batch_looks_each_up_once(void **state)
{
    char live_hash[IOT_SHA256_HEX_LEN + 1], dead_hash[IOT_SHA256_HEX_LEN + 1];
    iot_sha256_hex("live", 4, live_hash, sizeof live_hash);
    iot_sha256_hex("dead", 4, dead_hash, sizeof dead_hash);
    assert_int_equal(iot_cache_session_put(&app.cache, live_hash, OWNER_PUB, 60000), IOT_OK);
    struct iot_stream_grant g[7];
    for (size_t i = 0; i < 3; i++) {
        g[i] = grant(IOT_CRED_SESSION);
        memcpy(g[i].cred.hash, live_hash, sizeof live_hash);
    }
    g[3] = grant(IOT_CRED_SESSION);
    memcpy(g[3].cred.hash, dead_hash, sizeof dead_hash);
    g[4] = grant(IOT_CRED_DEVICE_KEY);
    g[5] = grant(IOT_CRED_DEVICE_KEY);
    g[6] = grant(IOT_CRED_ADMIN);
    g[6].device_id = 8; /* gone */
    const char *reasons[7];
    assert_int_equal(iot_stream_grants_check(&app, g, 7, reasons), IOT_OK);
    assert_int_equal(device_gets, 2); /* devices 7 and 8 */
    assert_int_equal(user_gets, 1);   /* user 3: acting user and owner */
    for (size_t i = 0; i < 3; i++)
        assert_null(reasons[i]);
    assert_string_equal(reasons[3], IOT_REVOKED_SESSION);
    assert_null(reasons[4]);
    assert_null(reasons[5]);
    assert_string_equal(reasons[6], IOT_REVOKED_DEVICE_DELETED);
}

static void batch_stops_at_the_first_store_error(void **state)
{
    fail_with = IOT_EUNAVAILABLE;
    struct iot_stream_grant g[3] = {grant(IOT_CRED_SESSION), grant(IOT_CRED_DEVICE_KEY),
                                    grant(IOT_CRED_ADMIN)};
    g[1].device_id = 9;
    g[2].device_id = 10;
    const char *reasons[3] = {"x", "x", "x"};
    assert_int_equal(iot_stream_grants_check(&app, g, 3, reasons), IOT_EUNAVAILABLE);
    assert_int_equal(device_gets, 1);
    assert_int_equal(user_gets, 0);
    for (size_t i = 0; i < 3; i++)
        assert_null(reasons[i]); /* undecided: kept */
}

int main(void)
{
    if (iot_secrets_init())
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(valid_grants_are_kept, setup),
        cmocka_unit_test_setup(deleted_device_ends_every_kind, setup),
        cmocka_unit_test_setup(session_gone_or_other_user, setup),
        cmocka_unit_test_setup(user_inactive_deleted_or_replaced, setup),
        cmocka_unit_test_setup(admin_rights_lost, setup),
        cmocka_unit_test_setup(rotated_key, setup),
        cmocka_unit_test_setup(refused_key, setup),
        cmocka_unit_test_setup(store_errors_keep_the_stream, setup),
        cmocka_unit_test_setup(unknown_credential_is_not_trusted, setup),
        cmocka_unit_test_setup_teardown(batch_looks_each_up_once, batch_setup, batch_teardown),
        cmocka_unit_test_setup_teardown(batch_stops_at_the_first_store_error, batch_setup,
                                        batch_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
