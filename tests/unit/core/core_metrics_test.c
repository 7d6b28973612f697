/* Unit tests of core/metrics: route, method and status labels from the
 * route table and fixed lists, one duration histogram per pattern, and
 * the store slots of store/store_metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "http/router.h"
#include "store/store_metrics.h"
#include "util/err.h"

static void no_handler(struct iot_req *r) { (void)r; }

static const struct iot_route routes[] = {
    {"GET", "/a/{}", no_handler},
    {"PUT", "/a/{}", no_handler},
    {"GET", "/b", no_handler},
};

static char *render(void)
{
    struct iot_buf b = {0};
    iot_metrics_render(&b, &(struct iot_metrics_sources){0});
    size_t len;
    char *text = iot_buf_take(&b, &len);
    assert_non_null(text);
    return text;
}

static void assert_has(const char *text, const char *line)
{
    if (!strstr(text, line))
        fail_msg("missing \"%s\" in:\n%s", line, text);
}

static void labels_from_the_table_and_fixed_lists(void **state)
{
    assert_int_equal(iot_metrics_init(routes, 3), IOT_OK);
    iot_metrics_http_request(&routes[0], "GET", 200, 100);
    iot_metrics_http_request(&routes[1], "PUT", 200, 2000);
    iot_metrics_http_request(&routes[1], "PUT", 200, 2000);
    iot_metrics_http_request(NULL, "BREW", 418, 100);
    struct iot_route foreign = {"GET", "/b", no_handler}; /* another table's */
    iot_metrics_http_request(&foreign, "GET", 404, 100);
    char *text = render();
    assert_has(text, "iotflow_http_requests_total{method=\"GET\",route=\"/a/{}\",status=\"200\"} 1\n");
    assert_has(text, "iotflow_http_requests_total{method=\"PUT\",route=\"/a/{}\",status=\"200\"} 2\n");
    assert_has(text, "iotflow_http_requests_total{method=\"other\",route=\"other\",status=\"other\"} 1\n");
    assert_has(text, "iotflow_http_requests_total{method=\"GET\",route=\"other\",status=\"404\"} 1\n");
    /* GET and PUT /a/{} share one histogram; /b has none yet. */
    assert_has(text, "iotflow_http_request_duration_seconds_count{route=\"/a/{}\"} 3\n");
    assert_has(text, "iotflow_http_request_duration_seconds_count{route=\"other\"} 2\n");
    const char *first = strstr(text, "_count{route=\"/a/{}\"}");
    assert_null(strstr(first + 1, "_count{route=\"/a/{}\"}"));
    assert_null(strstr(text, "route=\"/b\""));
    free(text);
    iot_metrics_shutdown();
}

static void fixed_series_are_always_there(void **state)
{
    iot_metrics_rate_limited(IOT_RATE_LIMIT_DEVICE_BYTES);
    iot_metrics_cache_lookup(IOT_METRICS_CACHE_API_KEY, true);
    iot_metrics_streams_open(1);
    iot_metrics_ingest_commit(300);
    char *text = render();
    assert_has(text, "# TYPE iotflow_build_info gauge\niotflow_build_info{version=\"");
    assert_has(text, "iotflow_rate_limited_total{kind=\"device_bytes\"} 1\n");
    assert_has(text, "iotflow_rate_limited_total{kind=\"streams_per_user\"} 0\n");
    assert_has(text, "iotflow_cache_lookups_total{cache=\"api_key\",result=\"hit\"} 1\n");
    assert_has(text, "iotflow_cache_lookups_total{cache=\"latest_values\",result=\"miss\"} 0\n");
    assert_has(text, "iotflow_streams_open 1\n");
    assert_has(text, "iotflow_ingest_commit_duration_seconds_bucket{le=\"0.0005\"} 1\n");
    /* Not initialised: no HTTP series, and recording is harmless. */
    iot_metrics_http_request(NULL, "GET", 200, 1);
    assert_null(strstr(text, "iotflow_http_requests_total"));
    iot_metrics_streams_open(-1);
    free(text);
}

struct fake_ops {
    const char *name;
};
static const struct fake_ops fake_a = {"fake"}, fake_b = {"other_fake"};

static int fake_op(const struct fake_ops *ops, int rc)
{
    IOT_STORE_TIMED(IOT_STORE_DOCS, ops, rc);
}

static void store_ops_by_table(void **state)
{
    assert_int_equal(fake_op(&fake_a, IOT_OK), IOT_OK);
    assert_int_equal(fake_op(&fake_a, IOT_ENOTFOUND), IOT_ENOTFOUND);
    assert_int_equal(fake_op(&fake_a, IOT_EUNAVAILABLE), IOT_EUNAVAILABLE);
    assert_int_equal(fake_op(&fake_b, IOT_ETIMEOUT), IOT_ETIMEOUT);
    char *text = render();
    assert_has(text, "iotflow_store_operation_duration_seconds_count{store=\"documents\","
                     "backend=\"fake\"} 3\n");
    assert_has(text, "iotflow_store_errors_total{store=\"documents\",backend=\"fake\"} 1\n");
    assert_has(text, "iotflow_store_errors_total{store=\"documents\",backend=\"other_fake\"} 1\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(labels_from_the_table_and_fixed_lists),
        cmocka_unit_test(fixed_series_are_always_there),
        cmocka_unit_test(store_ops_by_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
