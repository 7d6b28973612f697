/* docs_mongo_url.c — the MongoDB documents store's URL: libmongoc parses
 * it; we insist on a database, bound its name, and fill in short timeouts
 * so that a server that is down costs a request 5 s, not libmongoc's 30. */
#include "store/mongo/docs_mongo_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/err.h"

/* libmongoc's parse errors may quote pieces of the URL, the user info
 * (percent-decoded or not) among them. Ours never show a password: when
 * the URL has user info (an '@' before the path), its reason is withheld. */
static void say_parse_error(const char *url, const char *msg, char *why, size_t why_size)
{
    const char *auth = url + strlen("mongodb://");
    size_t alen = strcspn(auth, "/?");
    bool has_user_info = memchr(auth, '@', alen) != NULL;
    snprintf(why, why_size, "invalid MongoDB URL: %s",
             has_user_info ? "refused by libmongoc (its reason is withheld: the URL has a password)"
                           : msg);
}

static bool db_name_ok(const char *db)
{
    size_t n = db ? strlen(db) : 0;
    return n > 0 && n <= DMONGO_DB_MAX &&
           strspn(db, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static void default_int(mongoc_uri_t *uri, const char *option, int32_t value)
{
    if (!mongoc_uri_has_option(uri, option))
        mongoc_uri_set_option_as_int32(uri, option, value);
}

int dmongo_url_parse(const char *url, mongoc_uri_t **out, char db[DMONGO_DB_MAX + 1], char *why,
                     size_t why_size)
{
    *out = NULL;
    if (!url || strncasecmp(url, "mongodb://", 10) != 0) {
        snprintf(why, why_size, "not a mongodb:// URL");
        return IOT_EINVAL;
    }
    bson_error_t err;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(url, &err);
    if (!uri) {
        say_parse_error(url, err.message, why, why_size);
        return IOT_EINVAL;
    }
    const char *name = mongoc_uri_get_database(uri);
    if (!name || !*name) {
        snprintf(why, why_size, "no database in the MongoDB URL (mongodb://host/db)");
        mongoc_uri_destroy(uri);
        return IOT_EINVAL;
    }
    if (!db_name_ok(name)) {
        snprintf(why, why_size, "bad database name in the MongoDB URL (1..%d of [A-Za-z0-9_-])",
                 DMONGO_DB_MAX);
        mongoc_uri_destroy(uri);
        return IOT_EINVAL;
    }
    snprintf(db, DMONGO_DB_MAX + 1, "%s", name);
    default_int(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, DMONGO_TIMEOUT_MS);
    default_int(uri, MONGOC_URI_CONNECTTIMEOUTMS, DMONGO_TIMEOUT_MS);
    default_int(uri, MONGOC_URI_SOCKETTIMEOUTMS, DMONGO_TIMEOUT_MS);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME))
        mongoc_uri_set_appname(uri, "iotflowd");
    *out = uri;
    return IOT_OK;
}
