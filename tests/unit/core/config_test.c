/* Unit tests of core/config: defaults, environment, flags, bounds, help. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "util/err.h"

static FILE *sink;

static int setup(void **state)
{
    sink = fopen("/dev/null", "w");
    unsetenv("IOTFLOW_PORT");
    unsetenv("IOTFLOW_TRUST_USER_ID_HEADER");
    return sink ? 0 : -1;
}

static int teardown(void **state) { return fclose(sink); }

static int load(struct iot_config *cfg, int argc, char **argv)
{
    return iot_config_load(cfg, argc, argv, sink, sink);
}

static void defaults(void **state)
{
    struct iot_config cfg;
    char *argv[] = {"iotflowd"};
    assert_int_equal(load(&cfg, 1, argv), IOT_OK);
    assert_int_equal(cfg.port, 5000);
    assert_string_equal(cfg.data_dir, "./data");
    assert_false(cfg.trust_user_id_header);
    assert_int_equal(cfg.auth_rate_limit, 30);
    assert_int_equal(cfg.max_body, 1048576);
    iot_config_free(&cfg);
}

static void env_then_flags(void **state)
{
    struct iot_config cfg;
    setenv("IOTFLOW_PORT", "8080", 1);
    setenv("IOTFLOW_TRUST_USER_ID_HEADER", "true", 1);
    char *argv1[] = {"iotflowd"};
    assert_int_equal(load(&cfg, 1, argv1), IOT_OK);
    assert_int_equal(cfg.port, 8080);
    assert_true(cfg.trust_user_id_header);
    iot_config_free(&cfg);
    char *argv2[] = {"iotflowd", "--port=9090", "--trust-user-id-header=0", "--data-dir", "/tmp/x"};
    assert_int_equal(load(&cfg, 5, argv2), IOT_OK);
    assert_int_equal(cfg.port, 9090);
    assert_false(cfg.trust_user_id_header);
    assert_string_equal(cfg.data_dir, "/tmp/x");
    iot_config_free(&cfg);
    unsetenv("IOTFLOW_PORT");
    unsetenv("IOTFLOW_TRUST_USER_ID_HEADER");
}

static void rejects_bad_values(void **state)
{
    struct iot_config cfg;
    char *cases[][2] = {{"iotflowd", "--port=0"}, {"iotflowd", "--port=70000"},
                        {"iotflowd", "--port=12ab"}, {"iotflowd", "--nope=1"},
                        {"iotflowd", "--log-level=loud"}, {"iotflowd", "stray"},
                        {"iotflowd", "--trust-user-id-header=maybe"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(load(&cfg, 2, cases[i]), IOT_EINVAL);
        iot_config_free(&cfg);
    }
}

/* The stream and status settings: defaults, and 0 meaning "no cap". */
static void stream_and_status_settings(void **state)
{
    struct iot_config cfg;
    char *argv1[] = {"iotflowd"};
    assert_int_equal(load(&cfg, 1, argv1), IOT_OK);
    assert_int_equal(cfg.stream_recheck, 5);
    assert_int_equal(cfg.streams_per_user, 8);
    assert_int_equal(cfg.streams_per_device, 4);
    assert_false(cfg.public_status);
    iot_config_free(&cfg);
    char *argv2[] = {"iotflowd", "--stream-recheck=1", "--streams-per-user=0",
                     "--streams-per-device=2", "--public-status=1", "--session-ttl=1"};
    assert_int_equal(load(&cfg, 6, argv2), IOT_OK);
    assert_int_equal(cfg.stream_recheck, 1);
    assert_int_equal(cfg.streams_per_user, 0);
    assert_int_equal(cfg.streams_per_device, 2);
    assert_true(cfg.public_status);
    assert_int_equal(cfg.session_ttl, 1);
    iot_config_free(&cfg);
    char *bad[] = {"iotflowd", "--stream-recheck=0"};
    assert_int_equal(load(&cfg, 2, bad), IOT_EINVAL);
    iot_config_free(&cfg);
}

static void help_lists_every_variable(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    iot_config_print_help(mem);
    fclose(mem);
    const char *vars[] = {"IOTFLOW_HOST", "IOTFLOW_PORT", "IOTFLOW_DATA_DIR", "DATABASE_URL",
                          "IOTFLOW_ADMIN_TOKEN", "IOTFLOW_TRUST_USER_ID_HEADER",
                          "IOTFLOW_AUTH_RATE_LIMIT", "IOTFLOW_MAX_BODY", "IOTFLOW_LOG_LEVEL",
                          "IOTFLOW_MAX_CONNECTIONS_PER_IP", "IOTFLOW_HTTP_HEADER_TIMEOUT",
                          "IOTFLOW_HTTP_BODY_TIMEOUT", "IOTFLOW_HTTP_MAX_URI",
                          "IOTFLOW_HTTP_MAX_HEADER", "IOTFLOW_CORS_ORIGINS",
                          "IOTFLOW_TRUSTED_PROXIES"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        assert_non_null(strstr(text, vars[i]));
    free(text);
}

/* The original's CORS_ORIGINS is read; IOTFLOW_CORS_ORIGINS and the flag
 * win; neither set means "*". */
static void cors_origins_precedence(void **state)
{
    struct iot_config cfg;
    char *argv1[] = {"iotflowd"};
    unsetenv("IOTFLOW_CORS_ORIGINS");
    unsetenv("CORS_ORIGINS");
    assert_int_equal(load(&cfg, 1, argv1), IOT_OK);
    assert_string_equal(cfg.cors_origins, "*");
    iot_config_free(&cfg);
    setenv("CORS_ORIGINS", "https://a.example", 1);
    assert_int_equal(load(&cfg, 1, argv1), IOT_OK);
    assert_string_equal(cfg.cors_origins, "https://a.example");
    iot_config_free(&cfg);
    setenv("IOTFLOW_CORS_ORIGINS", "https://b.example", 1);
    assert_int_equal(load(&cfg, 1, argv1), IOT_OK);
    assert_string_equal(cfg.cors_origins, "https://b.example");
    iot_config_free(&cfg);
    char *argv2[] = {"iotflowd", "--cors-origins=https://c.example"};
    assert_int_equal(load(&cfg, 2, argv2), IOT_OK);
    assert_string_equal(cfg.cors_origins, "https://c.example");
    iot_config_free(&cfg);
    unsetenv("IOTFLOW_CORS_ORIGINS");
    unsetenv("CORS_ORIGINS");
}

static void redacts_url_passwords(void **state)
{
    (void)state;
    char out[256];
    iot_config_redact_url("postgresql://iotflow:s3cret@127.0.0.1:5432/db", out, sizeof out);
    assert_string_equal(out, "postgresql://iotflow:***@127.0.0.1:5432/db");
    iot_config_redact_url("redis://:pw@host:6379/0?prefix=a:", out, sizeof out);
    assert_string_equal(out, "redis://:***@host:6379/0?prefix=a:");
    iot_config_redact_url("redis://host:6379/0", out, sizeof out);
    assert_string_equal(out, "redis://host:6379/0");
    iot_config_redact_url("sqlite:///var/lib/iotflow.db", out, sizeof out);
    assert_string_equal(out, "sqlite:///var/lib/iotflow.db");
    iot_config_redact_url("postgresql://user@host/db", out, sizeof out);
    assert_string_equal(out, "postgresql://user@host/db");
    /* A password holding '@', and one given as a libpq query parameter. */
    iot_config_redact_url("postgresql://u:p@ss@host/db", out, sizeof out);
    assert_string_equal(out, "postgresql://u:***@host/db");
    iot_config_redact_url("postgresql://host/db?user=u&password=s3cret&sslmode=require", out,
                          sizeof out);
    assert_string_equal(out, "postgresql://host/db?user=u&password=***&sslmode=require");
    /* A query value runs to '&': a '#' may be part of the password. */
    iot_config_redact_url("postgresql://host/db?PASSWORD=s3cret#x", out, sizeof out);
    assert_string_equal(out, "postgresql://host/db?PASSWORD=***");
    iot_config_redact_url("postgresql://u:pw@host/db", out, 12);
    assert_string_equal(out, "postgresql:");
}

/* Every password below holds "SECRET"; none may survive redaction. */
static void redacts_nasty_passwords_for_every_scheme(void **state)
{
    (void)state;
    static const struct {
        const char *url, *want;
    } cases[] = {
        /* Redis (its parser takes the last '@' before the first '?'). */
        {"redis://:se/SECRET@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"},
        {"redis://:se#SECRET@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"},
        {"redis://:se?SECRET@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"},
        {"redis://u:a@b/c?d#SECRET@host:6379/2?prefix=p",
         "redis://u:***@host:6379/2?prefix=p"},
        {"redis://user:SECRET:more@[::1]:6379", "redis://user:***@[::1]:6379"},
        /* PostgreSQL: URL user info and query, and libpq's key=value form. */
        {"postgresql://u:p/SECRET@h/db", "postgresql://u:***@h/db"},
        {"postgres://u:p%40SECRET@h:5432/db?sslmode=require",
         "postgres://u:***@h:5432/db?sslmode=require"},
        /* An '@' in a query: more hidden than needed, never less. */
        {"postgresql://u:pw@h/db?application_name=a@b", "postgresql://u:***@b"},
        {"postgresql:///db?host=/tmp&password=SECRET&sslpassword=SECRET2",
         "postgresql:///db?host=/tmp&password=***&sslpassword=***"},
        {"host=h user=u password=SECRET dbname=d", "host=h user=u password=*** dbname=d"},
        {"host=h password = 'SE CRET \\' x' dbname=d", "host=h password = *** dbname=d"},
        {"password=SE\\ CRET", "password=***"},
        {"host=h PassWord=a@b:SECRET", "host=h PassWord=***"},
        /* SQLite: nothing to hide, and nothing hidden. */
        {"sqlite:///var/lib/iotflow/iotflow.db", "sqlite:///var/lib/iotflow/iotflow.db"},
        {"sqlite://./data/a?b.db", "sqlite://./data/a?b.db"},
        /* Cassandra and MongoDB (several hosts, options). */
        {"cassandra://iot:SE@CRET@10.0.0.1:9042,10.0.0.2/ks?consistency=quorum",
         "cassandra://iot:***@10.0.0.1:9042,10.0.0.2/ks?consistency=quorum"},
        {"mongodb+srv://app:S/E?C#RET@cluster0.example.net/iot?authSource=admin",
         "mongodb+srv://app:***@cluster0.example.net/iot?authSource=admin"},
        {"mongodb://app@h/db?authMechanism=MONGODB-X509&tlsCertificateKeyFilePassword=SECRET",
         "mongodb://app@h/db?authMechanism=MONGODB-X509&tlsCertificateKeyFilePassword=***"},
        /* Not a URL at all: still nothing shown. */
        {"redis:SECRET@host", "redis:***@host"},
        {"user:SECRET@host?password=SECRET", "user:***@host?password=***"},
        {"nosuch://user:S3cretPW@host/db", "nosuch://user:***@host/db"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[256];
        iot_config_redact_url(cases[i].url, out, sizeof out);
        assert_string_equal(out, cases[i].want);
        assert_null(strstr(out, "SECRET"));
        assert_null(strstr(out, "CRET"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(env_then_flags),
        cmocka_unit_test(rejects_bad_values),
        cmocka_unit_test(stream_and_status_settings),
        cmocka_unit_test(help_lists_every_variable),
        cmocka_unit_test(redacts_url_passwords),
        cmocka_unit_test(redacts_nasty_passwords_for_every_scheme),
        cmocka_unit_test(cors_origins_precedence),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
