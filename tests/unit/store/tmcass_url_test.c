/* Unit tests of the Cassandra telemetry URL (store/cassandra/tmcass_url.c):
 * what it accepts, its defaults, and errors that never show the password. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "store/cassandra/tmcass_int.h"
#include "util/err.h"

static void full_url(void **state)
{
    (void)state;
    struct tmc_url u;
    char err[160] = "";
    assert_int_equal(tmc_url_parse("cassandra://app:s%40cret@10.0.0.1:9042,10.0.0.2,[::1]:9142"
                                   "/Telemetry_1?replication=3&consistency=local_quorum&dc=dc1"
                                   "&timeout_ms=5000",
                                   &u, err, sizeof err),
                     IOT_OK);
    assert_string_equal(u.hosts, "10.0.0.1:9042,10.0.0.2,[::1]:9142");
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "s@cret");
    assert_string_equal(u.keyspace, "telemetry_1"); /* folded, as Cassandra does */
    assert_string_equal(u.dc, "dc1");
    assert_int_equal(u.replication, 3);
    assert_int_equal(u.consistency, CQL_CONSISTENCY_LOCAL_QUORUM);
    assert_int_equal(u.timeout_ms, 5000);
}

static void defaults(void **state)
{
    (void)state;
    struct tmc_url u;
    char err[160];
    assert_int_equal(tmc_url_parse("cassandra://h/ks", &u, err, sizeof err), IOT_OK);
    assert_int_equal(u.replication, 1);
    assert_int_equal(u.consistency, CQL_CONSISTENCY_ONE);
    assert_string_equal(u.user, "");
    assert_string_equal(u.dc, "");
    /* replication 3 or more: QUORUM unless told otherwise */
    assert_int_equal(tmc_url_parse("CASSANDRA://h/ks?replication=3", &u, err, sizeof err), IOT_OK);
    assert_int_equal(u.consistency, CQL_CONSISTENCY_QUORUM);
    assert_int_equal(tmc_url_parse("cassandra://h/ks?replication=3&consistency=ONE", &u, err,
                                   sizeof err),
                     IOT_OK);
    assert_int_equal(u.consistency, CQL_CONSISTENCY_ONE);
    assert_int_equal(tmc_url_parse("cassandra://h/ks?consistency=all", &u, err, sizeof err),
                     IOT_OK);
    assert_int_equal(u.consistency, CQL_CONSISTENCY_ALL);
}

static void rejects(void **state)
{
    (void)state;
    const char *bad[] = {
        NULL,
        "",
        "sqlite:///x.db",
        "cassandra://",
        "cassandra://host",             /* no keyspace */
        "cassandra://host/",            /* empty keyspace */
        "cassandra://host/1ks",         /* must start with a letter */
        "cassandra://host/k-s",         /* [A-Za-z0-9_] only */
        "cassandra://host/k\"s",
        "cassandra://host/abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij", /* 50 > 48 */
        "cassandra:///ks",              /* no host */
        "cassandra://ho st/ks",
        "cassandra://h'/ks",
        "cassandra://h/ks?replication=0",
        "cassandra://h/ks?replication=21",
        "cassandra://h/ks?replication=x",
        "cassandra://h/ks?consistency=any",
        "cassandra://h/ks?consistency=serial",
        "cassandra://h/ks?dc=a'b",
        "cassandra://h/ks?dc=",
        "cassandra://h/ks?timeout_ms=50",
        "cassandra://h/ks?timeout_ms=60000", /* above the merger's margin */
        "cassandra://h/ks?nosuch=1",
        "cassandra://h/ks?replication",
        "cassandra://:pw@h/ks",         /* a password without a user */
        "cassandra://u:%zz@h/ks",       /* bad escape */
        "cassandra://u:%4@h/ks",
        "cassandra://u:a%00b@h/ks",     /* NUL */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct tmc_url u;
        char err[160] = "";
        if (tmc_url_parse(bad[i], &u, err, sizeof err) != IOT_EINVAL)
            fail_msg("accepted: %s", bad[i] ? bad[i] : "(null)");
        assert_true(err[0] != '\0');
    }
}

/* The reason names the part that is wrong, never the password. */
static void errors_hide_the_password(void **state)
{
    (void)state;
    const char *urls[] = {
        "cassandra://admin:Hunter2secret@h/ks?replication=0",
        "cassandra://admin:Hunter2secret@h/1ks",
        "cassandra://admin:Hunter2secret@h",
        "cassandra://admin:Hunter2secret%zz@h/ks",
    };
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
        struct tmc_url u;
        char err[160] = "";
        assert_int_equal(tmc_url_parse(urls[i], &u, err, sizeof err), IOT_EINVAL);
        if (strstr(err, "Hunter2"))
            fail_msg("error for %s shows the password: %s", urls[i], err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_url),
        cmocka_unit_test(defaults),
        cmocka_unit_test(rejects),
        cmocka_unit_test(errors_hide_the_password),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
