/* docs_mongo_test.c — what the MongoDB documents store promises beyond the
 * contract (docs_contract.c), on the first mongodb:// URL of
 * IOT_DOCS_URLS_EXTRA or IOT_DOCS_URLS (FerretDB in `make test`); without
 * one it says so and passes. Mostly the claims of docs_mongo_claim.c, which
 * stand in for the atomic updates FerretDB lacks: a claim blocks others, an
 * abandoned one expires, a claim left by a removed document does not block
 * its successor, and writers on separate handles lose no write. Each run
 * uses a database of its own, dropped at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_asserts.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/docs.h"
#include "store/mongo/docs_mongo_int.h"
#include "util/err.h"

static char g_url[1100]; /* the server's URL, database renamed for this run */
static char g_db[DMONGO_DB_MAX + 1];

struct fixture {
    struct iot_docs d;
    mongoc_client_t *client; /* to look behind the store's back */
};

/* ---- helpers ---------------------------------------------------------------- */

static struct iot_doc plain_doc(const char *id, const char *body)
{
    return (struct iot_doc){.id = id, .user_id = 1, .body = body, .body_len = strlen(body)};
}

static int keep_doc(void *ctx, const struct iot_doc *doc)
{
    struct iot_doc *out = ctx;
    out->rev = doc->rev;
    out->body_len = doc->body_len;
    out->body = strndup(doc->body, doc->body_len);
    return 0;
}

static int64_t rev_of(struct iot_docs *d, const char *id)
{
    struct iot_doc got = {0};
    assert_rc(iot_docs_get(d, IOT_DOCS_CONFIGS, id, keep_doc, &got), IOT_OK);
    free((char *)got.body);
    return got.rev;
}

/* The stored head of configs/id, read with libmongoc. */
static struct dmongo_head head_of(struct fixture *fx, const char *id)
{
    struct dmongo_head h = {0};
    mongoc_collection_t *coll = mongoc_client_get_collection(fx->client, g_db, "configs");
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    const bson_t *b;
    bson_iter_t it;
    if (mongoc_cursor_next(cursor, &b)) {
        h.found = true;
        if (bson_iter_init_find(&it, b, "rev"))
            h.rev = bson_iter_as_int64(&it);
        if (bson_iter_init_find(&it, b, "inc") && BSON_ITER_HOLDS_UTF8(&it))
            snprintf(h.inc, sizeof h.inc, "%s", bson_iter_utf8(&it, NULL));
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    assert_true(h.found);
    return h;
}

/* Puts a claim on moving configs/id on from h, taken `age_ms` ago, as a
 * writer in another process would (or one that died holding it). */
static void put_claim(struct fixture *fx, const char *id, const struct dmongo_head *h,
                      int64_t age_ms)
{
    char cid[DMONGO_CLAIM_ID_MAX];
    dmongo_claim_id(cid, IOT_DOCS_CONFIGS, id, h);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    mongoc_collection_t *claims =
        mongoc_client_get_collection(fx->client, g_db, DMONGO_CLAIMS_COLL);
    bson_t *claim = BCON_NEW("_id", BCON_UTF8(cid), "at", BCON_INT64(now - age_ms));
    bson_error_t err;
    if (!mongoc_collection_insert_one(claims, claim, NULL, NULL, &err))
        fail_msg("claim %s: %s", cid, err.message);
    bson_destroy(claim);
    mongoc_collection_destroy(claims);
}

static void drop_claims(struct fixture *fx)
{
    mongoc_collection_t *claims =
        mongoc_client_get_collection(fx->client, g_db, DMONGO_CLAIMS_COLL);
    bson_t empty = BSON_INITIALIZER;
    mongoc_collection_delete_many(claims, &empty, NULL, NULL, NULL);
    mongoc_collection_destroy(claims);
}

/* ---- fixture ------------------------------------------------------------------ */

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (iot_docs_open(g_url, &fx->d) != IOT_OK) {
        free(fx);
        return -1;
    }
    fx->client = mongoc_client_new(g_url);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    drop_claims(fx);
    struct iot_docs_filter all = {.has_ts_min = true, .ts_min = INT64_MIN};
    iot_docs_delete_where(&fx->d, IOT_DOCS_CONFIGS, &all, NULL);
    mongoc_client_destroy(fx->client);
    iot_docs_close(&fx->d);
    free(fx);
    return 0;
}

/* ---- tests ---------------------------------------------------------------------- */

/* FerretDB refuses nested arrays, keys with '.' or '$' and more in
 * documents; kept as text, such bodies come back as they went. */
static void test_bodies_ferretdb_would_refuse(void **state)
{
    struct fixture *fx = *state;
    const char *body = "{\"m\": [[1, 2], [[3]]], \"a.b\": {\"$gt\": 1}, \"\": -0.0,"
                       " \"big\": 123456789012345678901234567890, \"s\": \"\\u00e9\\n\"}";
    struct iot_doc d = plain_doc("odd", body);
    assert_rc(iot_docs_put(&fx->d, IOT_DOCS_CONFIGS, &d, IOT_DOCS_NEW, NULL), IOT_OK);
    struct iot_doc got = {0};
    assert_rc(iot_docs_get(&fx->d, IOT_DOCS_CONFIGS, "odd", keep_doc, &got), IOT_OK);
    assert_string_equal(got.body, body);
    free((char *)got.body);
}

/* Another writer's live claim: a replace at that rev is a conflict, and
 * the document stays as it was. */
static void test_live_claim_blocks(void **state)
{
    struct fixture *fx = *state;
    struct iot_doc d = plain_doc("held", "{\"v\":1}");
    assert_rc(iot_docs_put(&fx->d, IOT_DOCS_CONFIGS, &d, IOT_DOCS_NEW, NULL), IOT_OK);
    struct dmongo_head h = head_of(fx, "held");
    put_claim(fx, "held", &h, 0);
    d = plain_doc("held", "{\"v\":2}");
    assert_rc(iot_docs_put(&fx->d, IOT_DOCS_CONFIGS, &d, 1, NULL), IOT_ECONFLICT);
    assert_i64(rev_of(&fx->d, "held"), 1);
    drop_claims(fx);
    int64_t rev = 0;
    assert_rc(iot_docs_put(&fx->d, IOT_DOCS_CONFIGS, &d, 1, &rev), IOT_OK);
    assert_i64(rev, 2);
}

/* A claim older than its lease was left by a writer that died: the
 * document moves on without that write, and writes go on. */
static void test_abandoned_claim_expires(void **state)
{
    struct fixture *fx = *state;
    struct iot_doc d = plain_doc("orphan", "{\"v\":1}");
    assert_rc(iot_docs_put(&fx->d, IOT_DOCS_CONFIGS, &d, IOT_DOCS_NEW, NULL), IOT_OK);
    struct dmongo_head h = head_of(fx, "orphan");
    put_claim(fx, "orphan", &h, 3600 * 1000);
    d = plain_doc("orphan", "{\"v\":2}");
    int64_t rev = 0;
    assert_rc(iot_docs_put(&fx->d, IOT_DOCS_CONFIGS, &d, IOT_DOCS_ANY_REV, &rev), IOT_OK);
    assert_i64(rev, 3); /* 2 was the dead writer's step */
    struct iot_doc got = {0};
    assert_rc(iot_docs_get(&fx->d, IOT_DOCS_CONFIGS, "orphan", keep_doc, &got), IOT_OK);
    assert_string_equal(got.body, "{\"v\":2}");
    free((char *)got.body);
}

/* A claim left by a document since removed does not block the new
 * document under the same id (it has another incarnation). */
static void test_claims_do_not_outlive_their_document(void **state)
{
    struct fixture *fx = *state;
    struct iot_doc d = plain_doc("again", "{\"v\":1}");
    assert_rc(iot_docs_put(&fx->d, IOT_DOCS_CONFIGS, &d, IOT_DOCS_NEW, NULL), IOT_OK);
    struct dmongo_head h = head_of(fx, "again");
    put_claim(fx, "again", &h, 0);
    assert_rc(iot_docs_remove(&fx->d, IOT_DOCS_CONFIGS, "again"), IOT_OK);
    assert_rc(iot_docs_put(&fx->d, IOT_DOCS_CONFIGS, &d, IOT_DOCS_NEW, NULL), IOT_OK);
    int64_t rev = 0;
    assert_rc(iot_docs_put(&fx->d, IOT_DOCS_CONFIGS, &d, 1, &rev), IOT_OK);
    assert_i64(rev, 2);
}

#define N_HANDLES 4
#define N_PUTS 25

struct writer {
    int failures;
};

/* Replaces at any rev through a handle of its own (another process). */
static void *any_rev_writer(void *arg)
{
    struct writer *w = arg;
    struct iot_docs d;
    if (iot_docs_open(g_url, &d) != IOT_OK) {
        w->failures = N_PUTS;
        return NULL;
    }
    struct iot_doc doc = plain_doc("shared", "{}");
    for (int i = 0; i < N_PUTS; i++)
        if (iot_docs_put(&d, IOT_DOCS_CONFIGS, &doc, IOT_DOCS_ANY_REV, NULL) != IOT_OK)
            w->failures++;
    iot_docs_close(&d);
    return NULL;
}

/* Every replace at any rev counts once, whichever handle made it. */
static void test_handles_any_rev_no_lost_write(void **state)
{
    struct fixture *fx = *state;
    pthread_t th[N_HANDLES];
    struct writer w[N_HANDLES] = {0};
    for (int i = 0; i < N_HANDLES; i++)
        pthread_create(&th[i], NULL, any_rev_writer, &w[i]);
    for (int i = 0; i < N_HANDLES; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N_HANDLES; i++)
        assert_int_equal(w[i].failures, 0);
    assert_i64(rev_of(&fx->d, "shared"), N_HANDLES * N_PUTS);
}

/* ---- main ---------------------------------------------------------------------- */

/* The first mongodb:// URL of a comma-separated list, or NULL. */
static const char *first_mongo_url(const char *list, char *out, size_t size)
{
    const char *p = list ? strstr(list, "mongodb://") : NULL;
    if (!p)
        return NULL;
    snprintf(out, size, "%.*s", (int)strcspn(p, ", "), p);
    return out;
}

/* The URL with its database renamed <db>_m<pid> (g_url, g_db). */
static int run_url(const char *url)
{
    mongoc_uri_t *uri;
    char db[DMONGO_DB_MAX + 1], why[256];
    if (dmongo_url_parse(url, &uri, db, why, sizeof why) != IOT_OK) {
        fprintf(stderr, "docs_mongo_test: %s\n", why);
        return -1;
    }
    mongoc_uri_destroy(uri);
    snprintf(g_db, sizeof g_db, "%.40s_m%ld", db, (long)getpid());
    const char *hosts = url + strlen("mongodb://");
    const char *slash = strchr(hosts, '/'), *query = strchr(slash, '?');
    snprintf(g_url, sizeof g_url, "%.*s/%s%s", (int)(slash - url), url, g_db, query ? query : "");
    return 0;
}

static void drop_database(void)
{
    mongoc_client_t *client = mongoc_client_new(g_url);
    mongoc_database_t *db = mongoc_client_get_database(client, g_db);
    mongoc_database_drop(db, NULL);
    mongoc_database_destroy(db);
    mongoc_client_destroy(client);
}

int main(void)
{
    char url[1100];
    const char *found = first_mongo_url(getenv("IOT_DOCS_URLS_EXTRA"), url, sizeof url);
    if (!found)
        found = first_mongo_url(getenv("IOT_DOCS_URLS"), url, sizeof url);
    if (!found) {
        printf("docs_mongo_test: no mongodb:// URL in IOT_DOCS_URLS_EXTRA or IOT_DOCS_URLS;"
               " skipped\n");
        return 77; /* ctest's SKIP_RETURN_CODE: shown as skipped, not passed */
    }
    mongoc_init();
    if (run_url(found))
        return 1;
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_bodies_ferretdb_would_refuse),
        T(test_live_claim_blocks),
        T(test_abandoned_claim_expires),
        T(test_claims_do_not_outlive_their_document),
        T(test_handles_any_rev_no_lost_write),
    };
#undef T
    int failed = cmocka_run_group_tests_name("docs on MongoDB", tests, NULL, NULL);
    drop_database();
    mongoc_cleanup();
    return failed;
}
