/* Unit tests of core/devconfig on the real SQLite documents store: version
 * numbering, the stored body, concurrent writers never sharing a version,
 * the newest read and the history's paging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "test_asserts.h"
#include "unit/core/docs_fixture.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/devconfig.h"
#include "util/err.h"

static int64_t put(struct docs_fx *f, int64_t device, const char *config, char **body)
{
    struct iot_devconfig_write w = {.device_id = device, .owner_id = 7, .config = config,
                                    .config_len = strlen(config), .updated_by = "admin",
                                    .now_ms = INT64_C(1800000000000)};
    int64_t version = -1;
    assert_rc(iot_devconfig_put(&f->docs, &w, &version, body, NULL), IOT_OK);
    return version;
}

static void test_versions_and_body(void **state)
{
    struct docs_fx *f = *state;
    char *body;
    assert_i64(put(f, 3, "{\"a\":1}", &body), 1);
    assert_string_equal(body, "{\"device_id\":3,\"version\":1,\"config\":{\"a\":1},"
                              "\"updated_at\":\"2027-01-15T08:00:00.000Z\","
                              "\"updated_by\":\"admin\"}");
    free(body);
    assert_i64(put(f, 3, "{}", NULL), 2);
    assert_i64(put(f, 4, "{}", NULL), 1); /* per device */
}

static int keep_version(void *ctx, const struct iot_doc *doc)
{
    int64_t *v = ctx;
    v[++v[0]] = doc->ts_ms;
    return 0;
}

static void test_latest_and_history(void **state)
{
    struct docs_fx *f = *state;
    int64_t seen[16] = {0};
    assert_rc(iot_devconfig_latest(&f->docs, 9, keep_version, seen), IOT_ENOTFOUND);
    for (int i = 0; i < 5; i++)
        put(f, 9, "{}", NULL);
    assert_rc(iot_devconfig_latest(&f->docs, 9, keep_version, seen), IOT_OK);
    assert_i64(seen[0], 1);
    assert_i64(seen[1], 5);
    memset(seen, 0, sizeof seen);
    assert_rc(iot_devconfig_history(&f->docs, 9, 4, 2, keep_version, seen), IOT_OK);
    assert_i64(seen[0], 2);
    assert_i64(seen[1], 3);
    assert_i64(seen[2], 2);
}

static void test_encode_limits(void **state)
{
    (void)state;
    char *text;
    size_t len;
    json_t *arr = json_array();
    assert_rc(iot_devconfig_encode(arr, &text, &len), IOT_EINVAL);
    json_decref(arr);
    char *big = malloc(IOT_DEVCONFIG_MAX + 1);
    memset(big, 'x', IOT_DEVCONFIG_MAX);
    big[IOT_DEVCONFIG_MAX - 8] = '\0'; /* {"k":"…"} is exactly the limit */
    json_t *obj = json_pack("{s:s}", "k", big);
    assert_rc(iot_devconfig_encode(obj, &text, &len), IOT_OK);
    assert_i64(len, IOT_DEVCONFIG_MAX);
    free(text);
    json_object_set_new(obj, "k2", json_string(""));
    assert_rc(iot_devconfig_encode(obj, &text, &len), IOT_ELIMIT);
    json_decref(obj);
    free(big);
}

#define WRITERS 6
#define PUTS 20

static void *writer(void *arg)
{
    struct docs_fx *f = arg;
    for (int i = 0; i < PUTS; i++) {
        struct iot_devconfig_write w = {.device_id = 11, .owner_id = 7, .config = "{}",
                                        .config_len = 2, .updated_by = "u", .now_ms = 1};
        int64_t v;
        int rc = iot_devconfig_put(&f->docs, &w, &v, NULL, NULL);
        if (rc)
            return (void *)(intptr_t)rc;
    }
    return NULL;
}

static int count_doc(void *ctx, const struct iot_doc *doc)
{
    (void)doc;
    ++*(int64_t *)ctx;
    return 0;
}

/* Writers racing for the same device: every put gets a version of its own,
 * and the versions are 1..N without a gap. */
static void test_concurrent_writers(void **state)
{
    struct docs_fx *f = *state;
    pthread_t t[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, writer, f), 0);
    for (int i = 0; i < WRITERS; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        assert_rc((int)(intptr_t)rc, IOT_OK);
    }
    int64_t n = 0, seen[2] = {0};
    assert_rc(iot_devconfig_history(&f->docs, 11, 0, 0, count_doc, &n), IOT_OK);
    assert_i64(n, WRITERS * PUTS);
    assert_rc(iot_devconfig_latest(&f->docs, 11, keep_version, seen), IOT_OK);
    assert_i64(seen[1], WRITERS * PUTS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_versions_and_body, docs_setup, docs_teardown),
        cmocka_unit_test_setup_teardown(test_latest_and_history, docs_setup, docs_teardown),
        cmocka_unit_test(test_encode_limits),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, docs_setup, docs_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
