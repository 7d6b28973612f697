/* Unit tests of tools/copy_state: the progress file of copy-telemetry
 * round-trips, replaces the old one whole and refuses what it did not write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "contract/contract_runner.h"
#include "core/secrets.h"
#include "tools/copy_state.h"
#include "util/err.h"

static char g_path[1024];

static int setup(void **state)
{
    snprintf(g_path, sizeof g_path, "%s/copy-state-%ld.state", contract_tmpdir(), (long)getpid());
    unlink(g_path);
    return iot_secrets_init();
}

static int teardown(void **state)
{
    unlink(g_path);
    return 0;
}

static void write_file(const char *text)
{
    FILE *f = fopen(g_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void round_trip(void **state)
{
    struct iot_copy_state st, back;
    char err[256] = "";
    assert_int_equal(iot_copy_state_load(g_path, &back, err, sizeof err), IOT_ENOTFOUND);
    iot_copy_state_init(&st, "sqlite:///a/t.db", "cassandra://u:***@h/ks?x=a=b");
    assert_true(st.device == INT64_MIN && st.ts == INT64_MIN && st.seq == INT64_MIN);
    assert_int_equal(iot_copy_state_save(g_path, &st, err, sizeof err), IOT_OK);
    assert_int_equal(iot_copy_state_load(g_path, &back, err, sizeof err), IOT_OK);
    assert_memory_equal(&st, &back, sizeof st);

    st.device = 42;
    st.ts = -1;
    st.seq = INT64_MAX;
    st.copied = 123456789012;
    st.batches = 7;
    st.done = true;
    assert_int_equal(iot_copy_state_save(g_path, &st, err, sizeof err), IOT_OK);
    assert_int_equal(iot_copy_state_load(g_path, &back, err, sizeof err), IOT_OK);
    assert_memory_equal(&st, &back, sizeof st);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_path);
    assert_int_not_equal(access(tmp, F_OK), 0); /* renamed away */
    struct stat sb;
    assert_int_equal(stat(g_path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
}

static void refuses_other_files(void **state)
{
    static const char *const bad[] = {
        "",
        "hello\n",
        "iotflowd copy-telemetry state 1\n", /* no URLs */
        "iotflowd copy-telemetry state 1\nfrom=a\nto=b\ncopied=x\n",
        "iotflowd copy-telemetry state 1\nfrom=a\nto=b\ncopied=-1\n",
        "iotflowd copy-telemetry state 1\nfrom=a\nto=b\ndone=2\n",
        "iotflowd copy-telemetry state 1\nfrom=a\nto=b\nwho=me\n",
        "iotflowd copy-telemetry state 1\nfrom=a\nto=b\nts=99999999999999999999\n",
        "iotflowd copy-telemetry state 2\nfrom=a\nto=b\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(bad[i]);
        struct iot_copy_state st;
        char err[256] = "";
        if (iot_copy_state_load(g_path, &st, err, sizeof err) != IOT_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_true(err[0] != '\0');
    }
    write_file("iotflowd copy-telemetry state 1\nfrom=a\nto=b\n");
    struct iot_copy_state st;
    char err[256] = "";
    assert_int_equal(iot_copy_state_load(g_path, &st, err, sizeof err), IOT_OK);
    assert_string_equal(st.from, "a");
    assert_true(st.device == INT64_MIN && st.copied == 0 && !st.done);
}

static void default_path_names_the_destination(void **state)
{
    char a[128], b[128], c[128];
    iot_copy_state_default_path("cassandra://h1/ks", a, sizeof a);
    iot_copy_state_default_path("cassandra://h1/ks", b, sizeof b);
    iot_copy_state_default_path("cassandra://h2/ks", c, sizeof c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strncmp(a, ".copy-telemetry-", 16), 0);
    assert_int_equal(strlen(a), strlen(".copy-telemetry-") + 16 + strlen(".state"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(refuses_other_files, setup, teardown),
        cmocka_unit_test_setup_teardown(default_path_names_the_destination, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
