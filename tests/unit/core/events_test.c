/* Unit tests of core/events (the event log's writer) on the embedded
 * documents and registry stores: events reach the store with their body,
 * stop drains the queue, a store that fails (after storing part of a
 * batch, even) gets the batch again and keeps each event once, a full
 * queue drops and counts without blocking, stop gives up after drain_ms,
 * retention deletes old events, and online/offline transitions.
 *
 * The failing store is the SQLite one under another ops table: insert_many
 * writes the batch and then answers IOT_EUNAVAILABLE while `failures` > 0,
 * or refuses everything while `down` is set. */
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

#include "core/events.h"
#include "store/sqlite/docs_sqlite.h"
#include "test_asserts.h"
#include "util/clock.h"
#include "util/err.h"
#include "unit/core/docs_fixture.h"

static _Atomic int failures; /* insert_many calls still to fail after writing */
static atomic_bool down;     /* insert_many refuses without writing */

static int flaky_insert_many(void *self, enum iot_docs_coll coll, const struct iot_doc *docs,
                             size_t n, size_t *inserted)
{
    if (atomic_load(&down))
        return IOT_EUNAVAILABLE;
    int rc = iot_docs_sqlite.insert_many(self, coll, docs, n, inserted);
    if (rc == IOT_OK && atomic_load(&failures) > 0) {
        atomic_fetch_sub(&failures, 1);
        return IOT_EUNAVAILABLE;
    }
    return rc;
}

static struct iot_docs_ops flaky_ops;

struct fx {
    char dir[FX_DIR_MAX];
    struct iot_registry reg;
    struct iot_cache cache;
    struct iot_docs docs;
    struct iot_user user;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f || fx_dir_make(f->dir, "events-test"))
        return -1;
    char url[FX_URL_MAX];
    fx_store_url(url, f->dir, "registry.db");
    if (iot_registry_open(url, &f->reg) || iot_cache_open(NULL, &f->cache))
        return -1;
    fx_store_url(url, f->dir, "documents.db");
    if (iot_docs_open(url, &f->docs))
        return -1;
    flaky_ops = iot_docs_sqlite;
    flaky_ops.insert_many = flaky_insert_many;
    f->docs.ops = &flaky_ops;
    atomic_store(&failures, 0);
    atomic_store(&down, false);
    snprintf(f->user.username, sizeof f->user.username, "ev");
    snprintf(f->user.email, sizeof f->user.email, "ev@example.com");
    snprintf(f->user.password_hash, sizeof f->user.password_hash, "x");
    f->user.is_active = true;
    if (iot_reg_user_create(&f->reg, &f->user))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    iot_docs_close(&f->docs);
    iot_cache_close(&f->cache);
    iot_registry_close(&f->reg);
    fx_dir_remove(f->dir);
    free(f);
    return 0;
}

static int count_one(void *ctx, const char *k1, const char *k2, int64_t n)
{
    (void)k1;
    (void)k2;
    *(int64_t *)ctx = n;
    return 0;
}

static int64_t stored(struct fx *f, const char *type)
{
    struct iot_docs_filter filter = {.k1 = type};
    int64_t n = 0;
    assert_rc(iot_docs_count_by(&f->docs, IOT_DOCS_EVENTS, &filter, IOT_DOCS_GROUP_NONE,
                                count_one, &n), IOT_OK);
    return n;
}

/* Polls (up to 5 s) until `want` events of `type` are stored. */
static int64_t wait_stored(struct fx *f, const char *type, int64_t want)
{
    int64_t n = 0;
    for (int i = 0; i < 500 && (n = stored(f, type)) < want; i++)
        usleep(10000);
    return n;
}

static int keep_body(void *ctx, const struct iot_doc *doc)
{
    snprintf(ctx, 512, "%s|%lld|%lld|%s|%s", doc->id, (long long)doc->user_id,
             (long long)doc->device_id, doc->k1, doc->body);
    return 1;
}

static void test_events_written_with_their_body(void **state)
{
    struct fx *f = *state;
    struct iot_events *ev;
    struct iot_events_config cfg = {0};
    assert_rc(iot_events_start(&cfg, &f->docs, &f->reg, &f->cache, &ev), IOT_OK);
    iot_events_emit(ev, IOT_EV_DEVICE_KEY_ROTATED, f->user.id, 7, json_pack("{s:s}", "by", "x"));
    assert_i64(wait_stored(f, IOT_EV_DEVICE_KEY_ROTATED, 1), 1);
    char got[512] = "";
    struct iot_docs_filter all = {.user_id = f->user.id};
    assert_rc(iot_docs_find(&f->docs, IOT_DOCS_EVENTS, &all, keep_body, got), IOT_OK);
    char id[33];
    memcpy(id, got, 32);
    id[32] = '\0';
    const char *body = strstr(got, "{");
    char want_head[200];
    snprintf(want_head, sizeof want_head, "%s|%lld|7|device.key_rotated|", id,
             (long long)f->user.id);
    assert_true(strncmp(got, want_head, strlen(want_head)) == 0);
    json_t *b = json_loads(body, 0, NULL);
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(b, "id")), id);
    assert_string_equal(json_string_value(json_object_get(b, "user_id")), f->user.user_id);
    assert_i64(json_integer_value(json_object_get(b, "device_id")), 7);
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "details"), "by")),
                        "x");
    assert_int_equal(strlen(json_string_value(json_object_get(b, "at"))), IOT_ISO8601_LEN);
    json_decref(b);
    iot_events_free(ev);
}

static void test_stop_drains_the_queue(void **state)
{
    struct fx *f = *state;
    struct iot_events *ev;
    struct iot_events_config cfg = {.batch_max = 64};
    assert_rc(iot_events_start(&cfg, &f->docs, &f->reg, &f->cache, &ev), IOT_OK);
    for (int i = 0; i < 5000; i++)
        iot_events_emit(ev, IOT_EV_USER_UPDATED, f->user.id, 0, NULL);
    iot_events_stop(ev);
    assert_i64(stored(f, IOT_EV_USER_UPDATED), 5000);
    struct iot_events_stats st;
    iot_events_stats(ev, &st);
    assert_i64(st.emitted, 5000);
    assert_i64(st.written, 5000);
    assert_i64(st.dropped, 0);
    iot_events_emit(ev, IOT_EV_USER_UPDATED, f->user.id, 0, json_object()); /* after stop: dropped */
    iot_events_free(ev);
    assert_i64(stored(f, IOT_EV_USER_UPDATED), 5000);
}

static void test_failed_batch_retried_once_stored(void **state)
{
    struct fx *f = *state;
    atomic_store(&failures, 3); /* stored, yet answered as failed, three times */
    struct iot_events *ev;
    struct iot_events_config cfg = {.retry_min_ms = 5, .retry_max_ms = 20, .batch_max = 10};
    assert_rc(iot_events_start(&cfg, &f->docs, &f->reg, &f->cache, &ev), IOT_OK);
    for (int i = 0; i < 25; i++)
        iot_events_emit(ev, IOT_EV_DEVICE_UPDATED, f->user.id, 3, NULL);
    iot_events_stop(ev);
    assert_i64(stored(f, IOT_EV_DEVICE_UPDATED), 25);
    struct iot_events_stats st;
    iot_events_stats(ev, &st);
    assert_i64(st.failed_writes, 3);
    assert_i64(st.dropped, 0);
    iot_events_free(ev);
}

static void test_full_queue_drops_and_stop_gives_up(void **state)
{
    struct fx *f = *state;
    atomic_store(&down, true);
    struct iot_events *ev;
    struct iot_events_config cfg = {.queue_max = 16, .batch_max = 4, .retry_min_ms = 5,
                                    .retry_max_ms = 10, .drain_ms = 100};
    assert_rc(iot_events_start(&cfg, &f->docs, &f->reg, &f->cache, &ev), IOT_OK);
    int64_t t0 = iot_mono_us();
    for (int i = 0; i < 1000; i++)
        iot_events_emit(ev, IOT_EV_USER_UPDATED, f->user.id, 0, json_object());
    assert_true(iot_mono_us() - t0 < 1000000); /* never blocked */
    struct iot_events_stats st;
    iot_events_stats(ev, &st);
    assert_true(st.dropped >= 1000 - 16 - 4);
    t0 = iot_mono_us();
    iot_events_stop(ev);
    assert_true(iot_mono_us() - t0 < 2000000);
    iot_events_stats(ev, &st);
    assert_i64(st.dropped, 1000);
    assert_i64(st.written, 0);
    iot_events_free(ev);
    atomic_store(&down, false);
    assert_i64(stored(f, IOT_EV_USER_UPDATED), 0);
}

static void test_bad_events_refused(void **state)
{
    struct fx *f = *state;
    struct iot_events *ev;
    struct iot_events_config cfg = {0};
    assert_rc(iot_events_start(&cfg, &f->docs, &f->reg, &f->cache, &ev), IOT_OK);
    iot_events_emit(ev, "Bad Type", f->user.id, 0, NULL);
    iot_events_emit(ev, IOT_EV_USER_UPDATED, f->user.id, 0, json_array()); /* not an object */
    iot_events_emit(ev, IOT_EV_USER_UPDATED, -1, 0, NULL);
    iot_events_emit(NULL, IOT_EV_USER_UPDATED, 1, 0, json_object()); /* no log: released */
    iot_events_stop(ev);
    struct iot_events_stats st;
    iot_events_stats(ev, &st);
    assert_i64(st.emitted, 0);
    iot_events_free(ev);
    assert_false(iot_event_type_valid(""));
    assert_false(iot_event_type_valid("a-b"));
    assert_true(iot_event_type_valid("alert.raised"));
}

static void test_retention_purge(void **state)
{
    struct fx *f = *state;
    struct iot_events *ev;
    struct iot_events_config cfg = {0};
    assert_rc(iot_events_start(&cfg, &f->docs, &f->reg, &f->cache, &ev), IOT_OK);
    for (int i = 0; i < 10; i++)
        iot_events_emit(ev, IOT_EV_USER_UPDATED, f->user.id, 0, NULL);
    assert_i64(wait_stored(f, IOT_EV_USER_UPDATED, 10), 10);
    int64_t deleted = -1;
    assert_rc(iot_events_purge(ev, iot_now_ms() - 60000, &deleted), IOT_OK);
    assert_i64(deleted, 0);
    assert_rc(iot_events_purge(ev, iot_now_ms() + 1, &deleted), IOT_OK);
    assert_i64(deleted, 10);
    assert_i64(stored(f, IOT_EV_USER_UPDATED), 0);
    iot_events_free(ev);
}

static void test_online_then_offline(void **state)
{
    struct fx *f = *state;
    struct iot_events *ev;
    struct iot_events_config cfg = {.online_window_ms = 300, .offline_sweep_ms = 20};
    assert_rc(iot_events_start(&cfg, &f->docs, &f->reg, &f->cache, &ev), IOT_OK);
    iot_events_device_seen(ev, 5, f->user.id, 0);
    iot_cache_presence_touch(&f->cache, 5, iot_now_ms());
    iot_events_device_seen(ev, 5, f->user.id, 0); /* still online: nothing */
    assert_i64(wait_stored(f, IOT_EV_DEVICE_ONLINE, 1), 1);
    assert_i64(wait_stored(f, IOT_EV_DEVICE_OFFLINE, 1), 1);
    /* seen by "another instance" (the cache), not here: no offline */
    iot_events_device_seen(ev, 6, f->user.id, 0);
    for (int i = 0; i < 40; i++) {
        iot_cache_presence_touch(&f->cache, 6, iot_now_ms());
        usleep(20000);
    }
    iot_events_device_gone(ev, 6, f->user.id);
    iot_events_stop(ev);
    assert_i64(stored(f, IOT_EV_DEVICE_ONLINE), 2);
    assert_i64(stored(f, IOT_EV_DEVICE_OFFLINE), 1);
    iot_events_free(ev);
}

/* Events queued for a user when it is deleted (and its documents cleaned
 * up) do not land after the clean-up: the writer removes them. */
static void test_no_events_outlive_a_deleted_user(void **state)
{
    struct fx *f = *state;
    struct iot_user other = {.is_active = true};
    snprintf(other.password_hash, sizeof other.password_hash, "x");
    snprintf(other.username, sizeof other.username, "ev2");
    snprintf(other.email, sizeof other.email, "ev2@example.com");
    assert_rc(iot_reg_user_create(&f->reg, &other), IOT_OK);
    atomic_store(&down, true); /* the events wait in the queue */
    struct iot_events *ev;
    struct iot_events_config cfg = {.retry_min_ms = 5, .retry_max_ms = 10};
    assert_rc(iot_events_start(&cfg, &f->docs, &f->reg, &f->cache, &ev), IOT_OK);
    for (int i = 0; i < 5; i++) {
        iot_events_emit(ev, IOT_EV_USER_UPDATED, f->user.id, 0, NULL);
        iot_events_emit(ev, IOT_EV_USER_UPDATED, other.id, 0, NULL);
    }
    /* The user goes, and its clean-up finds nothing yet. */
    assert_rc(iot_reg_user_delete(&f->reg, f->user.id), IOT_OK);
    struct iot_docs_filter mine = {.user_id = f->user.id};
    assert_rc(iot_docs_delete_where(&f->docs, IOT_DOCS_EVENTS, &mine, NULL), IOT_OK);
    atomic_store(&down, false);
    assert_i64(wait_stored(f, IOT_EV_USER_UPDATED, 5), 5);
    iot_events_stop(ev);
    iot_events_free(ev);
    struct iot_docs_filter theirs = {.user_id = other.id};
    int64_t n = -1;
    assert_rc(iot_docs_count_by(&f->docs, IOT_DOCS_EVENTS, &theirs, IOT_DOCS_GROUP_NONE,
                                count_one, &n), IOT_OK);
    assert_i64(n, 5);
    assert_i64(stored(f, IOT_EV_USER_UPDATED), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_events_written_with_their_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_drains_the_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_batch_retried_once_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_events_outlive_a_deleted_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_drops_and_stop_gives_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_events_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_online_then_offline, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
