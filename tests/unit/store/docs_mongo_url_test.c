/* Unit tests of the MongoDB documents store's URL (store/mongo/docs_mongo_url.c):
 * the database it requires, the timeouts it fills in, and errors that never
 * show the password. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "store/mongo/docs_mongo_int.h"
#include "util/err.h"

static int init(void **state)
{
    (void)state;
    mongoc_init();
    mongoc_log_set_handler(NULL, NULL); /* its parse complaints are expected here */
    return 0;
}

static void defaults(void **state)
{
    (void)state;
    mongoc_uri_t *uri;
    char db[DMONGO_DB_MAX + 1], why[256] = "";
    assert_int_equal(
        dmongo_url_parse("mongodb://127.0.0.1:57017/iot_test", &uri, db, why, sizeof why), IOT_OK);
    assert_string_equal(db, "iot_test");
    assert_int_equal(mongoc_uri_get_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0),
                     DMONGO_TIMEOUT_MS);
    assert_int_equal(mongoc_uri_get_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 0),
                     DMONGO_TIMEOUT_MS);
    assert_int_equal(mongoc_uri_get_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 0),
                     DMONGO_TIMEOUT_MS);
    assert_string_equal(mongoc_uri_get_appname(uri), "iotflowd");
    mongoc_uri_destroy(uri);
}

/* What the URL sets stays as it is. */
static void url_options_win(void **state)
{
    (void)state;
    mongoc_uri_t *uri;
    char db[DMONGO_DB_MAX + 1], why[256] = "";
    assert_int_equal(dmongo_url_parse("mongodb://app:s%40cret@h1:27017,h2/Docs-1?"
                                      "serverSelectionTimeoutMS=1500&socketTimeoutMS=30000"
                                      "&appname=other",
                                      &uri, db, why, sizeof why),
                     IOT_OK);
    assert_string_equal(db, "Docs-1");
    assert_string_equal(mongoc_uri_get_password(uri), "s@cret");
    assert_int_equal(mongoc_uri_get_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0),
                     1500);
    assert_int_equal(mongoc_uri_get_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 0), 30000);
    assert_int_equal(mongoc_uri_get_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 0),
                     DMONGO_TIMEOUT_MS);
    assert_string_equal(mongoc_uri_get_appname(uri), "other");
    mongoc_uri_destroy(uri);
}

static void rejects(void **state)
{
    (void)state;
    const char *bad[] = {
        NULL,
        "",
        "sqlite:docs.db",
        "mongodb+srv://cluster.example/db", /* no DNS look-ups at start-up */
        "mongodb://",
        "mongodb://h",       /* no database */
        "mongodb://h/",      /* empty database */
        "mongodb://h/?appname=x",
        "mongodb://h/a.b",   /* not a MongoDB database name */
        "mongodb://h/a$b",
        "mongodb://h/a b",
        "mongodb://h/abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd", /* 64 */
        "mongodb://h:99999/db",
        "mongodb://h/db?socketTimeoutMS=x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mongoc_uri_t *uri = (mongoc_uri_t *)1;
        char db[DMONGO_DB_MAX + 1], why[256] = "";
        if (dmongo_url_parse(bad[i], &uri, db, why, sizeof why) != IOT_EINVAL)
            fail_msg("accepted: %s", bad[i] ? bad[i] : "(null)");
        assert_null(uri);
        assert_true(why[0] != '\0');
    }
}

static void errors_hide_the_password(void **state)
{
    (void)state;
    const char *urls[] = {
        "mongodb://admin:Hunter2secret@h",
        "mongodb://admin:Hunter2secret@h/a.b",
        "mongodb://admin:Hunter2secret@h:99999/db",
        "mongodb://admin:Hunter2secret%zz@h/db",
        "mongodb://admin:Hunter2secret@h/db?socketTimeoutMS=Hunter2secret",
    };
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
        mongoc_uri_t *uri;
        char db[DMONGO_DB_MAX + 1], why[256] = "";
        assert_int_equal(dmongo_url_parse(urls[i], &uri, db, why, sizeof why), IOT_EINVAL);
        if (strstr(why, "Hunter2"))
            fail_msg("error for %s shows the password: %s", urls[i], why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(url_options_win),
        cmocka_unit_test(rejects),
        cmocka_unit_test(errors_hide_the_password),
    };
    return cmocka_run_group_tests(tests, init, NULL);
}
