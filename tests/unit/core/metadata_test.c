/* Unit tests of core/metadata on the real SQLite documents store: the
 * checks of what clients send, tag changes (also concurrent ones), and the
 * searches: two boxes merged in the store's order, the exact distance
 * filter, paging by cursor. */
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

#include "core/metadata.h"
#include "util/err.h"

static json_t *parse(const char *text, bool *too_large)
{
    json_t *in = json_loads(text, 0, NULL);
    assert_non_null(in);
    char why[200];
    json_t *out = iot_metadata_parse(in, too_large, why, sizeof why);
    json_decref(in);
    return out;
}

static void test_parse(void **state)
{
    (void)state;
    bool big;
    json_t *m = parse("{}", &big);
    assert_non_null(m);
    char *text = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"attributes\":{},\"location\":null,\"tags\":[]}");
    free(text);
    json_decref(m);
    static const char *const bad[] = {
        "{\"tags\":[\"a\",\"a\"]}", "{\"tags\":[\"\"]}", "{\"tags\":[1]}", "{\"x\":1}",
        "{\"location\":{\"latitude\":90.5,\"longitude\":0}}", "{\"location\":{\"latitude\":0}}",
        "{\"location\":{\"latitude\":0,\"longitude\":-180.1}}", "{\"attributes\":[]}",
        "{\"tags\":[\"bad\\u0007\"]}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        m = parse(bad[i], &big);
        if (m)
            fail_msg("accepted %s", bad[i]);
        assert_false(big);
    }
    char huge[IOT_METADATA_ATTRIBUTES_MAX + 64];
    snprintf(huge, sizeof huge, "{\"attributes\":{\"k\":\"%0*d\"}}",
             IOT_METADATA_ATTRIBUTES_MAX, 0);
    assert_null(parse(huge, &big));
    assert_true(big);
}

static void put_at(struct docs_fx *f, int64_t dev, int64_t owner, double lat, double lon,
                   int64_t ts)
{
    char text[128];
    snprintf(text, sizeof text, "{\"location\":{\"latitude\":%.6f,\"longitude\":%.6f}}", lat, lon);
    bool big;
    json_t *m = parse(text, &big);
    assert_rc(iot_metadata_store(&f->docs, dev, owner, m, IOT_DOCS_ANY_REV, ts, NULL), IOT_OK);
    json_decref(m);
}

static void test_tags(void **state)
{
    struct docs_fx *f = *state;
    bool added;
    char *body = NULL;
    assert_rc(iot_metadata_tag_remove(&f->docs, 1, 5, "x", 10, NULL), IOT_ENOTFOUND);
    assert_rc(iot_metadata_tag_add(&f->docs, 1, 5, "x", 10, &added, &body), IOT_OK);
    assert_true(added);
    assert_non_null(strstr(body, "\"tags\":[\"x\"]"));
    free(body);
    assert_rc(iot_metadata_tag_add(&f->docs, 1, 5, "x", 11, &added, NULL), IOT_OK);
    assert_false(added);
    for (int i = 1; i < IOT_METADATA_TAGS_MAX; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "t%d", i);
        assert_rc(iot_metadata_tag_add(&f->docs, 1, 5, tag, 12, &added, NULL), IOT_OK);
    }
    assert_rc(iot_metadata_tag_add(&f->docs, 1, 5, "full", 13, &added, NULL), IOT_ELIMIT);
    assert_rc(iot_metadata_tag_remove(&f->docs, 1, 5, "x", 14, NULL), IOT_OK);
    assert_rc(iot_metadata_tag_remove(&f->docs, 1, 5, "x", 15, NULL), IOT_ENOTFOUND);
    assert_rc(iot_metadata_tag_add(&f->docs, 1, 5, "", 16, &added, NULL), IOT_EINVAL);
}

struct adder {
    struct docs_fx *f;
    int base;
};

static void *add_tags(void *arg)
{
    struct adder *a = arg;
    for (int i = 0; i < 5; i++) {
        char tag[16];
        bool added;
        snprintf(tag, sizeof tag, "c%d", a->base + i);
        int rc = iot_metadata_tag_add(&a->f->docs, 2, 5, tag, 20, &added, NULL);
        if (rc)
            return (void *)(intptr_t)rc;
    }
    return NULL;
}

/* Writers at the exact rev: every tag of every writer lands. */
static void test_concurrent_tags(void **state)
{
    struct docs_fx *f = *state;
    pthread_t t[4];
    struct adder a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (struct adder){f, i * 5};
        assert_int_equal(pthread_create(&t[i], NULL, add_tags, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        assert_rc((int)(intptr_t)rc, IOT_OK);
    }
    json_t *m;
    assert_rc(iot_metadata_load(&f->docs, 2, &m, NULL), IOT_OK);
    assert_i64(json_array_size(json_object_get(m, "tags")), 20);
    json_decref(m);
}

struct found {
    int64_t dev[32];
    double dist[32];
    size_t n, stop_after;
};

static int collect(void *ctx, const struct iot_doc *doc, double distance_m)
{
    struct found *r = ctx;
    r->dist[r->n] = distance_m;
    r->dev[r->n++] = doc->device_id;
    return r->stop_after && r->n == r->stop_after;
}

/* Across the antimeridian: two queries, one order (newest first), and the
 * corners of the boxes that lie beyond the radius left out. */
static void test_search_merges_two_boxes(void **state)
{
    struct docs_fx *f = *state;
    put_at(f, 1, 5, 0, 179.99, 100);
    put_at(f, 2, 5, 0, -179.99, 200);
    put_at(f, 3, 5, 0, 179.95, 300);
    put_at(f, 4, 5, 0, -179.97, 400);
    put_at(f, 5, 5, 0.05, 179.95, 500); /* in the box, ~7.8 km from the centre */
    put_at(f, 6, 6, 0, 179.99, 600);    /* someone else's */
    struct iot_metadata_search s = {.base = {.user_id = 5}, .circle = true, .lat = 0,
                                    .lon = 180, .radius_m = 6000};
    s.n_boxes = iot_geo_circle_boxes(0, 180, 6000, s.boxes);
    assert_i64(s.n_boxes, 2);
    struct found r = {0};
    assert_rc(iot_metadata_search(&f->docs, &s, collect, &r), IOT_OK);
    assert_i64(r.n, 4);
    static const int64_t want[] = {4, 3, 2, 1};
    for (size_t i = 0; i < 4; i++)
        assert_i64(r.dev[i], want[i]);
    assert_true(r.dist[0] > 3000 && r.dist[0] < 3500); /* 0.03 degrees */

    /* paging: stop after two, go on strictly after the second */
    struct found p = {.stop_after = 2};
    assert_rc(iot_metadata_search(&f->docs, &s, collect, &p), IOT_OK);
    assert_i64(p.n, 2);
    s.base.has_after = true;
    s.base.after_ts = 300;
    s.base.after_id = "d3";
    struct found rest = {0};
    assert_rc(iot_metadata_search(&f->docs, &s, collect, &rest), IOT_OK);
    assert_i64(rest.n, 2);
    assert_i64(rest.dev[0], 2);
    assert_i64(rest.dev[1], 1);
}

static int count_found(void *ctx, const struct iot_doc *doc, double distance_m)
{
    (void)doc;
    (void)distance_m;
    ++*(int64_t *)ctx;
    return 0;
}

/* More matches than one chunk of a query, and many non-matches between:
 * the scan reads on to the end. */
static void test_search_reads_past_a_chunk(void **state)
{
    struct docs_fx *f = *state;
    for (int i = 1; i <= 150; i++)
        put_at(f, i, 5, (i % 2) ? 1 : 50, 10, i);
    struct iot_metadata_search s = {.base = {.user_id = 5}, .n_boxes = 1,
                                    .boxes = {{0, 2, 0, 20}}};
    int64_t count = 0;
    assert_rc(iot_metadata_search(&f->docs, &s, count_found, &count), IOT_OK);
    assert_i64(count, 75);
    count = 0;
    s.circle = true;
    s.lat = 1;
    s.lon = 10;
    s.radius_m = 1;
    assert_rc(iot_metadata_search(&f->docs, &s, count_found, &count), IOT_OK);
    assert_i64(count, 75);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test_setup_teardown(test_tags, docs_setup, docs_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_tags, docs_setup, docs_teardown),
        cmocka_unit_test_setup_teardown(test_search_merges_two_boxes, docs_setup, docs_teardown),
        cmocka_unit_test_setup_teardown(test_search_reads_past_a_chunk, docs_setup, docs_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
