/* Unit tests of core/tm_message: what a telemetry submission may hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/secrets.h"
#include "core/tm_message.h"
#include "util/err.h"
#include "util/json_out.h"

#define NOW INT64_C(1795777214123)

static int setup(void **state) { return iot_secrets_init(); }

static int parse(const char *text, bool batch, struct iot_tm_parsed *out, char *err)
{
    json_error_t jerr;
    json_t *body = json_loads(text, JSON_DECODE_ANY, &jerr);
    assert_non_null(body);
    int rc = batch ? iot_tm_parse_batch(body, 7, 3, NOW, out, err, 256)
                   : iot_tm_parse_one(body, 7, 3, NOW, out, err, 256);
    json_decref(body);
    return rc;
}

static void one_message(void **state)
{
    struct iot_tm_parsed p;
    char err[256] = "";
    assert_int_equal(parse("{\"data\":{\"temperature\":21.5,\"on\":true,\"mode\":\"eco\",\"n\":3},"
                           "\"metadata\":{\"temperature_unit\":\"C\"},"
                           "\"timestamp\":\"2026-11-27T11:00:00Z\"}", false, &p, err), IOT_OK);
    assert_int_equal(p.n, 1);
    const struct iot_tm_message *m = &p.msgs[0];
    assert_int_equal(m->device_id, 7);
    assert_int_equal(m->user_id, 3);
    assert_int_equal(m->ts, 1795777200000LL);
    assert_int_equal(m->n_points, 4);
    assert_string_equal(m->points[0].name, "temperature");
    assert_int_equal(m->points[0].value.type, IOT_TM_NUMBER);
    assert_true(m->points[0].value.num == 21.5);
    assert_int_equal(m->points[1].value.type, IOT_TM_BOOL);
    assert_int_equal(m->points[2].value.type, IOT_TM_STRING);
    assert_string_equal(m->data_json, "{\"temperature\":21.5,\"on\":true,\"mode\":\"eco\",\"n\":3}");
    assert_string_equal(m->meta_json, "{\"temperature_unit\":\"C\"}");
    iot_tm_parsed_free(&p);
}

static void default_timestamp_and_unique_seq(void **state)
{
    struct iot_tm_parsed p;
    char err[256];
    assert_int_equal(parse("[{\"data\":{\"a\":1}},{\"data\":{\"a\":2}}]", true, &p, err), IOT_OK);
    assert_int_equal(p.n, 2);
    assert_int_equal(p.msgs[0].ts, NOW);
    assert_null(p.msgs[0].meta_json);
    assert_true(p.msgs[0].seq != p.msgs[1].seq);
    iot_tm_parsed_free(&p);
    assert_int_equal(parse("{\"messages\":[{\"data\":{\"a\":1}}]}", true, &p, err), IOT_OK);
    assert_int_equal(p.n, 1);
    iot_tm_parsed_free(&p);
}

static void refusals(void **state)
{
    const char *bad[] = {
        "{}", "{\"data\":{}}", "{\"data\":null}", "{\"data\":[1]}", "{\"data\":5}",
        "{\"data\":{\"t\":{\"v\":1}}}", "{\"data\":{\"t\":[1,2]}}", "{\"data\":{\"t\":null}}",
        "{\"data\":{\"bad name\":1}}", "{\"data\":{\"\":1}}", "{\"data\":{\"t\\u00e9\":1}}",
        "{\"data\":{\"a\":1},\"timestamp\":\"yesterday\"}",
        "{\"data\":{\"a\":1},\"timestamp\":\"1999-12-31T23:59:59Z\"}",
        "{\"data\":{\"a\":1},\"timestamp\":\"2026-11-29T11:00:00Z\"}",
        "{\"data\":{\"a\":1},\"timestamp\":12345}",
        "{\"data\":{\"a\":1},\"metadata\":{\"k\":1}}", "{\"data\":{\"a\":1},\"metadata\":\"x\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct iot_tm_parsed p;
        char err[256] = "";
        assert_int_equal(parse(bad[i], false, &p, err), IOT_EINVAL);
        assert_true(strlen(err) > 0);
        iot_tm_parsed_free(&p);
    }
}

static void batch_refusals_name_the_message(void **state)
{
    struct iot_tm_parsed p;
    char err[256] = "";
    assert_int_equal(parse("[{\"data\":{\"a\":1}},{\"data\":{}}]", true, &p, err), IOT_EINVAL);
    assert_non_null(strstr(err, "messages[1]"));
    iot_tm_parsed_free(&p);
    assert_int_equal(parse("[]", true, &p, err), IOT_EINVAL);
    iot_tm_parsed_free(&p);
    assert_int_equal(parse("{\"data\":{\"a\":1}}", true, &p, err), IOT_EINVAL);
    iot_tm_parsed_free(&p);
}

static void long_names_and_strings(void **state)
{
    char text[2300];
    char name[66], value[1030];
    memset(name, 'n', 65);
    name[65] = '\0';
    snprintf(text, sizeof text, "{\"data\":{\"%s\":1}}", name);
    struct iot_tm_parsed p;
    char err[256];
    assert_int_equal(parse(text, false, &p, err), IOT_EINVAL); /* 65 chars */
    iot_tm_parsed_free(&p);
    name[64] = '\0';
    memset(value, 'v', 1025);
    value[1025] = '\0';
    snprintf(text, sizeof text, "{\"data\":{\"%s\":\"%s\"}}", name, value);
    assert_int_equal(parse(text, false, &p, err), IOT_EINVAL); /* 1025 bytes */
    iot_tm_parsed_free(&p);
    value[1024] = '\0';
    snprintf(text, sizeof text, "{\"data\":{\"%s\":\"%s\"}}", name, value);
    assert_int_equal(parse(text, false, &p, err), IOT_OK);
    iot_tm_parsed_free(&p);
}

/* A value prints as it was sent: an integer exact (past 2^53 too), a real
 * a real even when integral. */
static void values_print_naturally(void **state)
{
    struct iot_tm_value v = {.type = IOT_TM_NUMBER, .num = 9007199254740992.0, .is_int = true,
                             .i = INT64_C(9007199254740993)};
    json_t *j = iot_tm_value_json(&v);
    assert_true(json_is_integer(j));
    assert_int_equal(json_integer_value(j), INT64_C(9007199254740993));
    json_decref(j);
    v = (struct iot_tm_value){.type = IOT_TM_NUMBER, .num = 42.0};
    j = iot_tm_value_json(&v);
    assert_true(json_is_real(j));
    json_decref(j);
    struct iot_tm_parsed p;
    char err[256] = "";
    assert_int_equal(parse("{\"data\":{\"i\":9007199254740993,\"r\":42.0}}", false, &p, err),
                     IOT_OK);
    assert_true(p.msgs[0].points[0].value.is_int);
    assert_int_equal(p.msgs[0].points[0].value.i, INT64_C(9007199254740993));
    assert_false(p.msgs[0].points[1].value.is_int);
    iot_tm_parsed_free(&p);
}

/* data_json is written without jansson when no value is a string: it must
 * be the very text iot_json_dumps gives (jansson's, reals shortest), for every kind of number
 * (integers at the edges, reals tiny, huge, integral, negative, with
 * exponents) — checked against jansson for thousands of values. */
static void data_json_is_jansson_text(void **state)
{
    (void)state;
    static const char *const literals[] = {
        "0", "-0", "1", "-1", "9223372036854775807", "-9223372036854775808", "40.0", "-0.0",
        "21.5", "0.1", "1e22", "1e-7", "1.5e300", "-2.2250738585072014e-308", "123456789012345678",
        "3.141592653589793", "1E+2", "5e-324", "1.7976931348623157e308", "true", "false",
    };
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < 3000; i++) {
        char num[64];
        const char *lit = num;
        if (i < sizeof literals / sizeof *literals) {
            lit = literals[i];
        } else { /* random doubles of every magnitude, and random integers */
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            double d;
            memcpy(&d, &x, sizeof d);
            if (i % 3 == 0)
                snprintf(num, sizeof num, "%lld", (long long)x);
            else if (d != d || d - d != 0) /* NaN or infinity: not JSON */
                snprintf(num, sizeof num, "%.3f", (double)(x % 100000) / 7);
            else
                snprintf(num, sizeof num, "%.17g", d);
        }
        char body[256];
        snprintf(body, sizeof body, "{\"data\":{\"a\":%s,\"b.c\":%s,\"z-9\":true}}", lit, lit);
        json_error_t jerr;
        json_t *obj = json_loads(body, 0, &jerr);
        assert_non_null(obj);
        char *want = iot_json_dumps(json_object_get(obj, "data"));
        struct iot_tm_parsed p;
        char err[256] = "";
        assert_int_equal(iot_tm_parse_one(obj, 7, 3, NOW, &p, err, sizeof err), IOT_OK);
        assert_string_equal(p.msgs[0].data_json, want);
        assert_int_equal(p.msgs[0].data_len, strlen(want));
        iot_tm_parsed_free(&p);
        free(want);
        json_decref(obj);
    }
}

/* Numbers keep their value as text: integers exact past 2^53, reals in
 * the shortest form that reads back to the same double, -0.0 kept — on
 * the hand-written path and on jansson's (a message with a string). */
static void numbers_keep_their_exact_value(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"0.1", "0.1"},
        {"0.47341899999999998", "0.473419"},
        {"1e300", "1e300"},
        {"5e-324", "5e-324"},
        {"-0.0", "-0.0"},
        {"1e21", "1e21"},
        {"123456789012345680000", NULL}, /* too big for an integer: refused by jansson */
        {"123456789012345680000.0", "1.2345678901234568e20"},
        {"9007199254740993", "9007199254740993"},
        {"-9007199254740993", "-9007199254740993"},
        {"2.50", "2.5"},
        {"100.0", "100.0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int with_string = 0; with_string < 2; with_string++) {
            char body[256], want[256];
            snprintf(body, sizeof body, "{\"data\":{\"v\":%s%s}}", cases[i][0],
                     with_string ? ",\"s\":\"x\"" : "");
            json_t *obj = json_loads(body, 0, NULL);
            if (!cases[i][1]) {
                assert_null(obj);
                continue;
            }
            assert_non_null(obj);
            snprintf(want, sizeof want, "{\"v\":%s%s}", cases[i][1],
                     with_string ? ",\"s\":\"x\"" : "");
            struct iot_tm_parsed p;
            char err[256] = "";
            assert_int_equal(iot_tm_parse_one(obj, 7, 3, NOW, &p, err, sizeof err), IOT_OK);
            if (strcmp(p.msgs[0].data_json, want) != 0)
                fail_msg("%s gave %s, want %s", body, p.msgs[0].data_json, want);
            iot_tm_parsed_free(&p);
            json_decref(obj);
        }
    }
}

/* A stored message's points come back from its data JSON as the
 * submission made them: same names, kinds and exact values. */
static void points_from_stored_data(void **state)
{
    (void)state;
    struct iot_tm_parsed p;
    char err[256] = "";
    assert_int_equal(parse("{\"data\":{\"t\":21.0,\"big\":9007199254740993,\"on\":false,"
                           "\"s\":\"caf\u00e9 \\\"x\\\"\",\"z\":-0.0,\"r\":0.1}}",
                           false, &p, err), IOT_OK);
    const struct iot_tm_message *sent = &p.msgs[0];
    struct iot_tm_message back = {0};
    json_t *root = NULL;
    assert_int_equal(iot_tm_points_from_stored(sent->data_json, sent->data_len, &back, &root, err,
                                               sizeof err), IOT_OK);
    assert_non_null(root);
    assert_int_equal(back.n_points, sent->n_points);
    assert_null(back.data_json); /* the caller's to set */
    for (size_t i = 0; i < back.n_points; i++) {
        const struct iot_tm_value *a = &back.points[i].value, *b = &sent->points[i].value;
        assert_string_equal(back.points[i].name, sent->points[i].name);
        assert_int_equal(a->type, b->type);
        assert_int_equal(a->is_int, b->is_int);
        assert_true(a->i == b->i);
        assert_memory_equal(&a->num, &b->num, sizeof a->num); /* -0.0 too */
        assert_int_equal(a->boolean, b->boolean);
        assert_int_equal(a->str_len, b->str_len);
        if (a->str_len)
            assert_memory_equal(a->str, b->str, a->str_len);
    }
    free((void *)back.points);
    json_decref(root);
    iot_tm_parsed_free(&p);

    static const char *const bad[] = {
        "", "[1]", "{}", "{\"a\":null}", "{\"a\":{}}", "{\"a b\":1}", "{\"a\":1,\"a\":2}",
        "{\"a\":1", "{\"a\":123456789012345680000}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct iot_tm_message m = {0};
        err[0] = '\0';
        if (iot_tm_points_from_stored(bad[i], strlen(bad[i]), &m, &root, err, sizeof err) !=
            IOT_EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
        assert_null(root);
        assert_null(m.points);
        assert_true(err[0] != '\0');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_message),
        cmocka_unit_test(default_timestamp_and_unique_seq),
        cmocka_unit_test(refusals),
        cmocka_unit_test(batch_refusals_name_the_message),
        cmocka_unit_test(long_names_and_strings),
        cmocka_unit_test(values_print_naturally),
        cmocka_unit_test(data_json_is_jansson_text),
        cmocka_unit_test(numbers_keep_their_exact_value),
        cmocka_unit_test(points_from_stored_data),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
