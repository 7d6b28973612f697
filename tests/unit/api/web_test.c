/* Unit tests of api/web and web/assets: who gets the dashboard at / (the
 * Accept negotiation), and the compiled-in files' table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "api/web.h"
#include "web/assets.h"

static void browsers_get_the_page(void **state)
{
    /* Chromium's and Firefox's navigation Accept headers. */
    assert_true(iot_web_accept_prefers_html(
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"));
    assert_true(iot_web_accept_prefers_html(
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
    assert_true(iot_web_accept_prefers_html("text/html"));
    assert_true(iot_web_accept_prefers_html("TEXT/HTML; charset=utf-8"));
    assert_true(iot_web_accept_prefers_html("text/*, application/json;q=0.5"));
}

static void api_clients_get_json(void **state)
{
    assert_false(iot_web_accept_prefers_html(NULL));
    assert_false(iot_web_accept_prefers_html(""));
    assert_false(iot_web_accept_prefers_html("*/*"));
    assert_false(iot_web_accept_prefers_html("application/json"));
    assert_false(iot_web_accept_prefers_html("application/json, text/html"));
    assert_false(iot_web_accept_prefers_html("text/html;q=0.5, application/json"));
    assert_false(iot_web_accept_prefers_html("text/html;q=0"));
    /* The most specific range decides: text/html is refused here. */
    assert_false(iot_web_accept_prefers_html("text/html;q=0, */*"));
    assert_false(iot_web_accept_prefers_html("garbage"));
}

static void every_file_is_in_the_table(void **state)
{
    static const char *const expected[][2] = {
        {"index.html", "text/html; charset=utf-8"},
        {"style.css", "text/css; charset=utf-8"},
        {"js/app.js", "text/javascript; charset=utf-8"},
        {"js/api.js", "text/javascript; charset=utf-8"},
        {"js/dom.js", "text/javascript; charset=utf-8"},
        {"js/chart.js", "text/javascript; charset=utf-8"},
        {"js/pages/device.js", "text/javascript; charset=utf-8"},
        {"favicon.svg", "image/svg+xml"},
    };
    for (size_t i = 0; i < sizeof expected / sizeof *expected; i++) {
        const struct iot_web_asset *a = iot_web_asset_find(expected[i][0]);
        assert_non_null(a);
        assert_string_equal(a->content_type, expected[i][1]);
        assert_true(a->len > 0);
        /* A quoted 32-hex-digit tag. */
        assert_int_equal(strlen(a->etag), 34);
        assert_true(a->etag[0] == '"' && a->etag[33] == '"');
        assert_int_equal(strspn(a->etag + 1, "0123456789abcdef"), 32);
    }
    const struct iot_web_asset *index = iot_web_asset_find("index.html");
    assert_memory_equal(index->data, "<!doctype html>", 15);
}

static void table_is_sorted_with_distinct_tags(void **state)
{
    for (size_t i = 1; i < iot_web_n_assets; i++) {
        assert_true(strcmp(iot_web_assets[i - 1].path, iot_web_assets[i].path) < 0);
        for (size_t j = 0; j < i; j++)
            if (iot_web_assets[j].len != iot_web_assets[i].len ||
                memcmp(iot_web_assets[j].data, iot_web_assets[i].data, iot_web_assets[i].len) != 0)
                assert_string_not_equal(iot_web_assets[j].etag, iot_web_assets[i].etag);
    }
}

static void only_exact_paths_are_found(void **state)
{
    assert_null(iot_web_asset_find(""));
    assert_null(iot_web_asset_find("/index.html"));
    assert_null(iot_web_asset_find("js"));
    assert_null(iot_web_asset_find("js/"));
    assert_null(iot_web_asset_find("js/pages/../app.js"));
    assert_null(iot_web_asset_find("assets.h")); /* the C beside the files is not served */
    assert_null(iot_web_asset_find("assets.c"));
    assert_null(iot_web_asset_find("index.html "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(browsers_get_the_page),
        cmocka_unit_test(api_clients_get_json),
        cmocka_unit_test(every_file_is_in_the_table),
        cmocka_unit_test(table_is_sorted_with_distinct_tags),
        cmocka_unit_test(only_exact_paths_are_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
