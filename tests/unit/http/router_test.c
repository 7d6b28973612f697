/* Unit tests of http/router: literals beat parameters, 404 vs 405. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "http/router.h"

static void h_a(struct iot_req *r) { (void)r; }
static void h_b(struct iot_req *r) { (void)r; }
static void h_c(struct iot_req *r) { (void)r; }
static void h_d(struct iot_req *r) { (void)r; }

static const struct iot_route routes[] = {
    {"GET", "/devices/status", h_a},
    {"GET", "/devices/{}/status", h_b},
    {"PUT", "/devices/{}/status", h_b},
    {"DELETE", "/groups/{}/devices/{}", h_c},
    {"GET", "/", h_d},
};
#define N (sizeof routes / sizeof *routes)

static enum iot_route_result route(const char *method, const char *path, struct iot_req *r,
                                   const struct iot_route **out, char *allow)
{
    memset(r, 0, sizeof *r);
    r->method = method;
    r->path = path;
    return iot_route(routes, N, r, out, allow, 64);
}

static void literal_wins(void **state)
{
    struct iot_req r;
    const struct iot_route *out = NULL;
    char allow[64];
    assert_int_equal(route("GET", "/devices/status", &r, &out, allow), IOT_ROUTE_FOUND);
    assert_ptr_equal(out->handler, h_a);
    free(r.path_copy);
    assert_int_equal(route("HEAD", "/devices/status", &r, &out, allow), IOT_ROUTE_FOUND);
    assert_ptr_equal(out->handler, h_a);
    free(r.path_copy);
}

static void params_are_captured(void **state)
{
    struct iot_req r;
    const struct iot_route *out = NULL;
    char allow[64];
    assert_int_equal(route("DELETE", "/groups/12/devices/34/", &r, &out, allow), IOT_ROUTE_FOUND);
    assert_int_equal(r.n_params, 2);
    assert_string_equal(r.params[0], "12");
    assert_string_equal(r.params[1], "34");
    free(r.path_copy);
}

static void wrong_method_lists_allowed(void **state)
{
    struct iot_req r;
    const struct iot_route *out = NULL;
    char allow[64];
    assert_int_equal(route("POST", "/devices/7/status", &r, &out, allow), IOT_ROUTE_BAD_METHOD);
    assert_string_equal(allow, "GET, PUT");
    assert_int_equal(route("DELETE", "/devices/status", &r, &out, allow), IOT_ROUTE_BAD_METHOD);
    assert_string_equal(allow, "GET");
}

static void unknown_paths(void **state)
{
    struct iot_req r;
    const struct iot_route *out = NULL;
    char allow[64];
    const char *paths[] = {"/nope", "/devices", "/devices//status", "/devices/1/status/x",
                           "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s", "/devices/../status",
                           "/devices/./status"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
        assert_int_equal(route("GET", paths[i], &r, &out, allow), IOT_ROUTE_NOT_FOUND);
    assert_int_equal(route("GET", "/", &r, &out, allow), IOT_ROUTE_FOUND);
    assert_ptr_equal(out->handler, h_d);
    free(r.path_copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(literal_wins),
        cmocka_unit_test(params_are_captured),
        cmocka_unit_test(wrong_method_lists_allowed),
        cmocka_unit_test(unknown_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
