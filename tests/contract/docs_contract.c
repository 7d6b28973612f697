/* docs_contract.c — the contract of store/docs.h, run against every backend
 * URL in IOT_DOCS_URLS (comma separated), then IOT_DOCS_URLS_EXTRA (the
 * FerretDB server `make test` starts). Default: a fresh SQLite file under
 * IOT_TEST_TMPDIR (or /tmp).
 *
 * Every test opens a store with empty collections: a new file per test for
 * SQLite; on a MongoDB server a database of this run's own (the URL's
 * database name + _<pid>_<random>), every collection emptied before each
 * test and once more at the end. The tests read like the promises in
 * docs.h: one small function per promise, a shared six-document data set
 * for the filters, and results compared as "id,id,…" or "k1/k2=n,…"
 * strings so that a failure prints what came back. cmocka asserts run on
 * the main thread only; worker threads record what they saw. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "contract/contract_runner.h"
#include "test_asserts.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "store/docs.h"
#include "store/sqlite/sqlite_db.h" /* iot_sqldb_url_file: the file to delete */
#include "util/err.h"

struct fixture {
    struct iot_docs d;
    char url[1100];
    char path[1100]; /* SQLite file to delete at teardown, "" if none */
};

static const char *g_base_url;  /* the backend the current group runs on */
static char g_server_url[1100]; /* a server backend: this run's database */
static atomic_uint g_seq;

/* ---- fixture ----------------------------------------------------------- */

static bool is_mongo(const char *url)
{
    return strncasecmp(url, "mongodb://", 10) == 0 || strncasecmp(url, "mongodb+srv://", 14) == 0;
}

/* mongodb://[auth@]hosts[/db][?options] with the database renamed
 * <db>_<pid>_<random> (db "iot_contract" when the URL names none). */
static void mongo_run_url(const char *url, char *out, size_t size)
{
    const char *hosts = strstr(url, "://") + 3;
    const char *slash = strchr(hosts, '/'), *query = strchr(hosts, '?');
    if (query && slash && slash > query)
        slash = NULL;
    const char *db = slash ? slash + 1 : NULL;
    int db_len = db ? (int)(query ? query - db : (int)strlen(db)) : 0;
    int head_len = (int)(slash ? slash - url : query ? query - url : (int)strlen(url));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, size, "%.*s/%.*s_%ld_%lx%s", head_len, url, db_len ? db_len : 12,
             db_len ? db : "iot_contract", (long)getpid(), (unsigned long)(ts.tv_nsec & 0xfffff),
             query ? query : "");
}

/* Selects every document (delete_where refuses a filter with no criterion). */
static struct iot_docs_filter all_docs(void)
{
    return (struct iot_docs_filter){.has_ts_min = true, .ts_min = INT64_MIN};
}

static int empty_all_collections(struct iot_docs *d)
{
    struct iot_docs_filter all = all_docs();
    for (int c = 0; c < IOT_DOCS_N_COLLS; c++) {
        int rc = iot_docs_delete_where(d, (enum iot_docs_coll)c, &all, NULL);
        if (rc != IOT_OK) {
            print_error("cannot empty %s: %s\n", iot_docs_coll_name(c), iot_strerror(rc));
            return -1;
        }
    }
    return 0;
}

static void fresh_url(struct fixture *fx)
{
    fx->path[0] = '\0';
    if (is_mongo(g_base_url)) {
        snprintf(fx->url, sizeof fx->url, "%s", g_server_url);
        return;
    }
    snprintf(fx->url, sizeof fx->url, "%s-%ld-%u.db", g_base_url, (long)getpid(),
             atomic_fetch_add(&g_seq, 1));
    if (iot_sqldb_url_file(fx->url, fx->path, sizeof fx->path) != IOT_OK)
        fx->path[0] = '\0'; /* a memory database: nothing to delete */
    else
        contract_remove_sqlite_files(fx->path);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    fresh_url(fx);
    int rc = iot_docs_open(fx->url, &fx->d);
    if (rc != IOT_OK) {
        print_error("cannot open documents backend '%s': %s\n", fx->url, iot_strerror(rc));
        free(fx);
        return -1;
    }
    if (is_mongo(g_base_url) && empty_all_collections(&fx->d) != 0) {
        iot_docs_close(&fx->d);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    iot_docs_close(&fx->d);
    if (fx->path[0])
        contract_remove_sqlite_files(fx->path);
    free(fx);
    return 0;
}

/* A server run leaves its database with empty collections. */
static int group_teardown(void **state)
{
    if (!is_mongo(g_base_url))
        return 0;
    struct iot_docs d;
    if (iot_docs_open(g_server_url, &d) != IOT_OK)
        return 0;
    empty_all_collections(&d);
    iot_docs_close(&d);
    return 0;
}

/* ---- building documents ------------------------------------------------ */

#define ALERTS IOT_DOCS_ALERTS

/* A document with an id, an owner, a time and the body "{}". */
static struct iot_doc doc(const char *id, int64_t user_id, int64_t ts_ms)
{
    return (struct iot_doc){.id = id, .user_id = user_id, .ts_ms = ts_ms, .body = "{}",
                            .body_len = 2};
}

static struct iot_doc with_body(struct iot_doc d, const char *body)
{
    d.body = body;
    d.body_len = body ? strlen(body) : 0;
    return d;
}

static struct iot_doc with_keys(struct iot_doc d, const char *k1, const char *k2)
{
    d.k1 = k1;
    d.k2 = k2;
    return d;
}

static struct iot_doc with_location(struct iot_doc d, double lat, double lon)
{
    d.has_location = true;
    d.lat = lat;
    d.lon = lon;
    return d;
}

/* Writes `d` and returns its new rev; the write must succeed. */
static int64_t put_ok(struct iot_docs *s, enum iot_docs_coll c, struct iot_doc d, int64_t expect)
{
    int64_t rev = -100;
    assert_rc(iot_docs_put(s, c, &d, expect, &rev), IOT_OK);
    return rev;
}

static int put_rc(struct iot_docs *s, enum iot_docs_coll c, struct iot_doc d, int64_t expect)
{
    return iot_docs_put(s, c, &d, expect, NULL);
}

/* ---- reading documents back -------------------------------------------- */

/* A deep copy of a document as a read callback saw it. */
struct got {
    char *id, *k1, *k2, *body;
    int64_t user_id, device_id, ts_ms, rev;
    char **tags;
    size_t n_tags, body_len;
    bool has_location, body_nul_ended;
    double lat, lon;
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void got_copy(struct got *g, const struct iot_doc *d)
{
    *g = (struct got){.id = dup_or_null(d->id), .k1 = dup_or_null(d->k1), .k2 = dup_or_null(d->k2),
                      .user_id = d->user_id, .device_id = d->device_id, .ts_ms = d->ts_ms,
                      .rev = d->rev, .n_tags = d->n_tags, .has_location = d->has_location,
                      .lat = d->lat, .lon = d->lon, .body_len = d->body_len};
    g->body = malloc(d->body_len + 1);
    memcpy(g->body, d->body, d->body_len);
    g->body[d->body_len] = '\0';
    g->body_nul_ended = d->body[d->body_len] == '\0';
    g->tags = calloc(d->n_tags + 1, sizeof *g->tags);
    for (size_t i = 0; i < d->n_tags; i++)
        g->tags[i] = strdup(d->tags[i]);
}

static void got_free(struct got *g)
{
    free(g->id);
    free(g->k1);
    free(g->k2);
    free(g->body);
    for (size_t i = 0; i < g->n_tags; i++)
        free(g->tags[i]);
    free(g->tags);
    *g = (struct got){0};
}

/* What a read op delivered: every document, and how many calls. */
struct got_list {
    struct got v[64];
    size_t n, calls;
    size_t stop_after; /* the callback returns 1 after this many; 0: never */
};

static int collect(void *ctx, const struct iot_doc *d)
{
    struct got_list *l = ctx;
    if (l->n < sizeof l->v / sizeof l->v[0])
        got_copy(&l->v[l->n++], d);
    l->calls++;
    return l->stop_after && l->calls >= l->stop_after;
}

static void got_list_free(struct got_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        got_free(&l->v[i]);
    l->n = l->calls = 0;
}

/* The stored document `id`, which must exist (free with got_free). */
static struct got get_ok(struct iot_docs *s, enum iot_docs_coll c, const char *id)
{
    struct got_list l = {0};
    assert_rc(iot_docs_get(s, c, id, collect, &l), IOT_OK);
    assert_int_equal(l.calls, 1);
    struct got g = l.v[0];
    return g;
}

static void expect_absent(struct iot_docs *s, enum iot_docs_coll c, const char *id)
{
    struct got_list l = {0};
    assert_rc(iot_docs_get(s, c, id, collect, &l), IOT_ENOTFOUND);
    assert_int_equal(l.calls, 0);
}

static void expect_body(struct iot_docs *s, enum iot_docs_coll c, const char *id, const char *body)
{
    struct got g = get_ok(s, c, id);
    assert_bytes(g.body, g.body_len, body);
    assert_true(g.body_nul_ended);
    got_free(&g);
}

static int64_t rev_of(struct iot_docs *s, enum iot_docs_coll c, const char *id)
{
    struct got g = get_ok(s, c, id);
    int64_t rev = g.rev;
    got_free(&g);
    return rev;
}

/* Result strings, in rotating buffers so that one assert may hold two. */
static char *result_buf(void)
{
    static char bufs[4][8192];
    static unsigned next;
    char *b = bufs[next++ % 4];
    b[0] = '\0';
    return b;
}

static void append(char *buf, const char *s)
{
    size_t n = strlen(buf);
    snprintf(buf + n, 8192 - n, "%s%s", n ? "," : "", s);
}

/* The ids find delivers, in its order: "a6,a3,a2". */
static const char *find_ids(struct iot_docs *s, enum iot_docs_coll c,
                            const struct iot_docs_filter *f)
{
    struct got_list *l = calloc(1, sizeof *l);
    assert_rc(iot_docs_find(s, c, f, collect, l), IOT_OK);
    assert_int_equal(l->calls, l->n); /* the test data fits the list */
    char *out = result_buf();
    for (size_t i = 0; i < l->n; i++)
        append(out, l->v[i].id);
    got_list_free(l);
    free(l);
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What count_by reports as sorted "k1/k2=n" items, "-" for NULL. */
struct counts {
    char *items[64];
    size_t n;
};

static int collect_count(void *ctx, const char *k1, const char *k2, int64_t count)
{
    struct counts *c = ctx;
    char item[200];
    snprintf(item, sizeof item, "%s/%s=%" PRId64, k1 ? k1 : "-", k2 ? k2 : "-", count);
    if (c->n < 64)
        c->items[c->n++] = strdup(item);
    return 0;
}

static const char *counts_of(struct iot_docs *s, enum iot_docs_coll c,
                             const struct iot_docs_filter *f, enum iot_docs_group group)
{
    struct counts cs = {0};
    assert_rc(iot_docs_count_by(s, c, f, group, collect_count, &cs), IOT_OK);
    qsort(cs.items, cs.n, sizeof cs.items[0], cmp_str);
    char *out = result_buf();
    for (size_t i = 0; i < cs.n; i++) {
        append(out, cs.items[i]);
        free(cs.items[i]);
    }
    return out;
}

static int64_t count_all(struct iot_docs *s, enum iot_docs_coll c)
{
    struct iot_docs_filter none = {0};
    struct counts cs = {0};
    assert_rc(iot_docs_count_by(s, c, &none, IOT_DOCS_GROUP_NONE, collect_count, &cs), IOT_OK);
    int64_t n = 0;
    if (cs.n == 1)
        n = strtoll(strchr(cs.items[0], '=') + 1, NULL, 10);
    for (size_t i = 0; i < cs.n; i++)
        free(cs.items[i]);
    return n;
}

/* ---- the shared data set for find, count_by and delete_where ------------ *
 *   id  user dev  ts   k1 k2  tags         location
 *   a1  1    10   100  x  p   red          (10, 20)
 *   a2  1    10   200  x  q   red, blue    (-10, -20)
 *   a3  1    11   300  y  -   blue         -
 *   a4  2    20   200  x  p   -            (10, 20)
 *   a5  2    21   400  -  -   redder       (90, 180)
 *   a6  1    11   500  y  p   re           (-90, -180)   */
static void seed(struct iot_docs *s)
{
    static const char *const red[] = {"red"}, *const red_blue[] = {"red", "blue"},
                             *const blue[] = {"blue"}, *const redder[] = {"redder"},
                             *const re[] = {"re"};
    struct iot_doc d[6] = {
        with_location(with_keys(doc("a1", 1, 100), "x", "p"), 10, 20),
        with_location(with_keys(doc("a2", 1, 200), "x", "q"), -10, -20),
        with_keys(doc("a3", 1, 300), "y", NULL),
        with_location(with_keys(doc("a4", 2, 200), "x", "p"), 10, 20),
        with_location(doc("a5", 2, 400), 90, 180),
        with_location(with_keys(doc("a6", 1, 500), "y", "p"), -90, -180),
    };
    const int64_t devices[6] = {10, 10, 11, 20, 21, 11};
    const char *const *tags[6] = {red, red_blue, blue, NULL, redder, re};
    const size_t n_tags[6] = {1, 2, 1, 0, 1, 1};
    for (int i = 0; i < 6; i++) {
        d[i].device_id = devices[i];
        d[i].tags = tags[i];
        d[i].n_tags = n_tags[i];
        assert_i64(put_ok(s, ALERTS, d[i], IOT_DOCS_NEW), 1);
    }
}

static struct iot_docs *seeded(void **state)
{
    struct fixture *fx = *state;
    seed(&fx->d);
    return &fx->d;
}

/* One find on the seeded data set and the ids it must deliver. */
struct find_case {
    struct iot_docs_filter f;
    const char *want;
};

static void expect_finds(struct iot_docs *s, const struct find_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *got = find_ids(s, ALERTS, &cases[i].f);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu found \"%s\", want \"%s\"", i, got, cases[i].want);
    }
}

/* ---- backend ----------------------------------------------------------- */

static void test_backend_table(void **state)
{
    struct fixture *fx = *state;
    const struct iot_docs_ops *ops = iot_docs_backend(g_base_url);
    assert_non_null(ops);
    assert_ptr_equal(fx->d.ops, ops);
    assert_string_equal(ops->name, is_mongo(g_base_url) ? "mongodb" : "sqlite");
    assert_int_equal(ops->version, 1);
    assert_non_null(strstr(iot_docs_backend_names(), ops->name));
    assert_rc(iot_docs_ping(&fx->d), IOT_OK);
    assert_null(iot_docs_backend("nosuch://host"));
    struct iot_docs bad = {0};
    assert_rc(iot_docs_open("nosuch://host", &bad), IOT_EINVAL);
    assert_null(bad.ops);
    iot_docs_close(&bad); /* closing a handle that never opened is a no-op */
}

/* Written documents stay after the store is closed and opened again. */
static void test_reopen_keeps_documents(void **state)
{
    struct fixture *fx = *state;
    put_ok(&fx->d, IOT_DOCS_PREFS, with_body(doc("p1", 7, 1), "{\"tz\":\"UTC\"}"), IOT_DOCS_NEW);
    iot_docs_close(&fx->d);
    assert_rc(iot_docs_open(fx->url, &fx->d), IOT_OK);
    expect_body(&fx->d, IOT_DOCS_PREFS, "p1", "{\"tz\":\"UTC\"}");
    assert_i64(rev_of(&fx->d, IOT_DOCS_PREFS, "p1"), 1);
}

/* ---- put and revs ------------------------------------------------------- */

static void test_put_new_inserts_once(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    assert_i64(put_ok(s, IOT_DOCS_CONFIGS, with_body(doc("c1", 1, 1), "{\"v\":1}"), IOT_DOCS_NEW),
               1);
    assert_rc(put_rc(s, IOT_DOCS_CONFIGS, with_body(doc("c1", 1, 2), "{\"v\":2}"), IOT_DOCS_NEW),
              IOT_ECONFLICT);
    expect_body(s, IOT_DOCS_CONFIGS, "c1", "{\"v\":1}");
    assert_i64(rev_of(s, IOT_DOCS_CONFIGS, "c1"), 1);
    /* rev_out may be NULL */
    assert_rc(put_rc(s, IOT_DOCS_CONFIGS, doc("c2", 1, 1), IOT_DOCS_NEW), IOT_OK);
    assert_i64(rev_of(s, IOT_DOCS_CONFIGS, "c2"), 1);
}

static void test_put_any_rev_upserts(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    assert_i64(put_ok(s, IOT_DOCS_PREFS, with_body(doc("p", 1, 1), "{\"v\":1}"), IOT_DOCS_ANY_REV),
               1);
    assert_i64(put_ok(s, IOT_DOCS_PREFS, with_body(doc("p", 1, 2), "{\"v\":2}"), IOT_DOCS_ANY_REV),
               2);
    assert_i64(put_ok(s, IOT_DOCS_PREFS, with_body(doc("p", 1, 3), "{\"v\":3}"), IOT_DOCS_ANY_REV),
               3);
    struct got g = get_ok(s, IOT_DOCS_PREFS, "p");
    assert_i64(g.rev, 3);
    assert_i64(g.ts_ms, 3);
    assert_bytes(g.body, g.body_len, "{\"v\":3}");
    got_free(&g);
}

/* An exact rev replaces only the document at that rev: a stale, a future
 * or a missing one is a conflict, and nothing changes. */
static void test_put_exact_rev(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    put_ok(s, IOT_DOCS_CONFIGS, with_body(doc("c", 1, 1), "{\"v\":1}"), IOT_DOCS_NEW);
    assert_i64(put_ok(s, IOT_DOCS_CONFIGS, with_body(doc("c", 1, 2), "{\"v\":2}"), 1), 2);
    assert_rc(put_rc(s, IOT_DOCS_CONFIGS, with_body(doc("c", 1, 9), "{\"stale\":1}"), 1),
              IOT_ECONFLICT);
    assert_rc(put_rc(s, IOT_DOCS_CONFIGS, with_body(doc("c", 1, 9), "{\"future\":1}"), 3),
              IOT_ECONFLICT);
    expect_body(s, IOT_DOCS_CONFIGS, "c", "{\"v\":2}");
    assert_i64(rev_of(s, IOT_DOCS_CONFIGS, "c"), 2);
    assert_rc(put_rc(s, IOT_DOCS_CONFIGS, doc("missing", 1, 1), 1), IOT_ECONFLICT);
    expect_absent(s, IOT_DOCS_CONFIGS, "missing");
    assert_i64(put_ok(s, IOT_DOCS_CONFIGS, with_body(doc("c", 1, 3), "{\"v\":3}"), 2), 3);
    expect_body(s, IOT_DOCS_CONFIGS, "c", "{\"v\":3}");
}

/* The rev of the written struct is the store's business. */
static void test_put_ignores_written_rev(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    struct iot_doc d = doc("r", 1, 1);
    d.rev = 42;
    assert_i64(put_ok(s, IOT_DOCS_CONFIGS, d, IOT_DOCS_NEW), 1);
    assert_i64(put_ok(s, IOT_DOCS_CONFIGS, d, IOT_DOCS_ANY_REV), 2);
    assert_i64(rev_of(s, IOT_DOCS_CONFIGS, "r"), 2);
}

/* ---- bodies -------------------------------------------------------------- */

static void expect_round_trip(struct iot_docs *s, const char *id, const char *body)
{
    int rc = put_rc(s, IOT_DOCS_REPORTS, with_body(doc(id, 1, 1), body), IOT_DOCS_NEW);
    if (rc != IOT_OK)
        fail_msg("put of %s %.80s returned %s", id, body, iot_strerror(rc));
    expect_body(s, IOT_DOCS_REPORTS, id, body);
    struct iot_docs_filter f = {.user_id = 1};
    struct got_list *l = calloc(1, sizeof *l);
    assert_rc(iot_docs_find(s, IOT_DOCS_REPORTS, &f, collect, l), IOT_OK);
    bool seen = false;
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i].id, id) == 0) {
            assert_bytes(l->v[i].body, l->v[i].body_len, body);
            assert_true(l->v[i].body_nul_ended);
            seen = true;
        }
    }
    got_list_free(l);
    free(l);
    assert_true(seen);
}

/* Bodies come back byte for byte, from get and from find: spacing, key
 * order, number spellings, escapes and UTF-8 as written. */
static void test_body_byte_for_byte(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    static const char *const bodies[] = {
        "{}",
        " { \"b\" : 1 ,\n\t\"a\" : [ ] } ",
        "{\"z\":1,\"a\":2,\"m\":{\"y\":null,\"b\":true}}",
        "{\"one\":1.0,\"neg0\":-0,\"exp\":1E+2,\"small\":1e-7,\"tenth\":0.1,\"f\":2.50}",
        "{\"max\":9223372036854775807,\"min\":-9223372036854775808,\"2^53+1\":9007199254740993}",
        "{\"s\":\"\\u00e9\\\"\\\\\\/\\n\\t\\ud83d\\ude00\"}",
        "{\"caf\xc3\xa9\":\"\xe2\x82\xac \xf0\x9f\x98\x80 \xe4\xb8\xad\"}",
        "{\"$set\":{\"a.b\":1},\"_id\":\"not mine\",\"rev\":99}",
    };
    char id[16];
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        snprintf(id, sizeof id, "b%zu", i);
        expect_round_trip(s, id, bodies[i]);
    }
}

/* Integers beyond 64 bits are valid JSON and kept as written. */
static void test_body_big_integers(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    expect_round_trip(s, "big", "{\"n\":12345678901234567890,\"m\":-98765432109876543210}");
}

/* body_len, not a NUL, ends a written body. */
static void test_body_len_ends_body(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    struct iot_doc d = with_body(doc("l", 1, 1), "{\"a\":1}GARBAGE");
    d.body_len = 7;
    assert_i64(put_ok(s, IOT_DOCS_REPORTS, d, IOT_DOCS_NEW), 1);
    expect_body(s, IOT_DOCS_REPORTS, "l", "{\"a\":1}");
}

/* A body of `len` bytes: {"data":"…"} with ASCII and UTF-8 filler. */
static char *big_body(size_t len)
{
    char *b = malloc(len + 1);
    size_t head = strlen("{\"data\":\""), tail = 2, i = head;
    memcpy(b, "{\"data\":\"", head);
    while (i < len - tail) {
        if (len - tail - i >= 2 && i % 97 == 0) {
            memcpy(b + i, "\xc3\xa9", 2); /* é */
            i += 2;
        } else {
            b[i] = (char)('a' + i % 26);
            i++;
        }
    }
    memcpy(b + len - tail, "\"}", tail + 1);
    return b;
}

static void test_big_bodies(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    char *b100k = big_body(100 * 1024), *bmax = big_body(IOT_DOCS_BODY_MAX),
         *bover = big_body(IOT_DOCS_BODY_MAX + 1);
    expect_round_trip(s, "k100", b100k);
    expect_round_trip(s, "max", bmax);
    assert_rc(put_rc(s, IOT_DOCS_REPORTS, with_body(doc("over", 1, 1), bover), IOT_DOCS_NEW),
              IOT_EINVAL);
    struct iot_doc many[3] = {with_body(doc("m1", 1, 1), bmax), with_body(doc("m2", 1, 2), b100k),
                              with_body(doc("m3", 1, 3), bmax)};
    size_t inserted = 0;
    assert_rc(iot_docs_insert_many(s, IOT_DOCS_REPORTS, many, 3, &inserted), IOT_OK);
    assert_int_equal(inserted, 3);
    expect_body(s, IOT_DOCS_REPORTS, "m3", bmax);
    free(b100k);
    free(bmax);
    free(bover);
}

/* ---- header fields ----------------------------------------------------- */

static void expect_same_tags(const struct got *g, const char *const *tags, size_t n)
{
    assert_int_equal(g->n_tags, n);
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t j = 0; j < g->n_tags; j++)
            found |= strcmp(g->tags[j], tags[i]) == 0;
        if (!found)
            fail_msg("tag \"%s\" was not read back", tags[i]);
    }
}

static void expect_header(const struct got *g, const struct iot_doc *d, int64_t rev)
{
    assert_string_equal(g->id, d->id);
    assert_i64(g->user_id, d->user_id);
    assert_i64(g->device_id, d->device_id);
    assert_i64(g->ts_ms, d->ts_ms);
    assert_i64(g->rev, rev);
    if (d->k1)
        assert_string_equal(g->k1, d->k1);
    else
        assert_null(g->k1);
    if (d->k2)
        assert_string_equal(g->k2, d->k2);
    else
        assert_null(g->k2);
    expect_same_tags(g, d->tags, d->n_tags);
    assert_int_equal(g->has_location, d->has_location);
    if (d->has_location) { /* exactly, not nearly */
        assert_true(g->lat == d->lat);
        assert_true(g->lon == d->lon);
    }
}

/* get and find both deliver the header as written. */
static void expect_header_read_back(struct iot_docs *s, const struct iot_doc *d, int64_t rev)
{
    struct got g = get_ok(s, IOT_DOCS_METADATA, d->id);
    expect_header(&g, d, rev);
    got_free(&g);
    struct iot_docs_filter f = {.user_id = d->user_id, .has_ts_min = true, .ts_min = d->ts_ms,
                                .has_ts_max = true, .ts_max = d->ts_ms};
    struct got_list *l = calloc(1, sizeof *l);
    assert_rc(iot_docs_find(s, IOT_DOCS_METADATA, &f, collect, l), IOT_OK);
    assert_int_equal(l->n, 1);
    expect_header(&l->v[0], d, rev);
    got_list_free(l);
    free(l);
}

static void test_header_round_trip(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    char long_tag[IOT_DOCS_KEY_MAX + 1];
    memset(long_tag, 't', IOT_DOCS_KEY_MAX);
    long_tag[IOT_DOCS_KEY_MAX] = '\0';
    const char *const tags[] = {"zeta", "alpha", "temp\xc3\xa9rature", "a b", "\"q\\", long_tag};
    struct iot_doc full = with_location(
        with_keys(doc("full", 9007199254740993LL, 1700000000123LL), "temp\xc3\xa9rature",
                  "we\"ird\\key \xf0\x9f\x98\x80"),
        48.856613, 2.352222);
    full.device_id = INT64_MAX;
    full.tags = tags;
    full.n_tags = sizeof tags / sizeof tags[0];
    put_ok(s, IOT_DOCS_METADATA, full, IOT_DOCS_NEW);
    expect_header_read_back(s, &full, 1);

    struct iot_doc bare = doc("bare", 0, -1234); /* no owner, keys, tags or place */
    put_ok(s, IOT_DOCS_METADATA, bare, IOT_DOCS_NEW);
    expect_header_read_back(s, &bare, 1);

    struct iot_doc corner = with_location(doc("corner", 5, 0), -90.0, 180.0);
    put_ok(s, IOT_DOCS_METADATA, corner, IOT_DOCS_NEW);
    expect_header_read_back(s, &corner, 1);
}

/* A replace rewrites the whole header: what the new version lacks is gone,
 * from reads and from the filters. */
static void test_replace_rewrites_header(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    const char *const tags[] = {"old"};
    struct iot_doc first = with_location(with_keys(doc("m", 1, 10), "k", "j"), 1, 2);
    first.device_id = 3;
    first.tags = tags;
    first.n_tags = 1;
    put_ok(s, IOT_DOCS_METADATA, first, IOT_DOCS_NEW);
    struct iot_doc second = doc("m", 2, 20);
    assert_i64(put_ok(s, IOT_DOCS_METADATA, second, 1), 2);
    expect_header_read_back(s, &second, 2);
    struct iot_docs_filter by_tag = {.tag = "old"}, by_k1 = {.k1 = "k"}, by_user = {.user_id = 1},
                           by_box = {.has_box = true, .lat_min = 0, .lat_max = 5, .lon_min = 0,
                                     .lon_max = 5};
    assert_string_equal(find_ids(s, IOT_DOCS_METADATA, &by_tag), "");
    assert_string_equal(find_ids(s, IOT_DOCS_METADATA, &by_k1), "");
    assert_string_equal(find_ids(s, IOT_DOCS_METADATA, &by_user), "");
    assert_string_equal(find_ids(s, IOT_DOCS_METADATA, &by_box), "");
}

/* The largest id, key, tag and tag count are taken. */
static void test_limits_accepted(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    char id[IOT_DOCS_ID_MAX + 1], key[IOT_DOCS_KEY_MAX + 1], tagbuf[IOT_DOCS_TAGS_MAX][8];
    const char *tags[IOT_DOCS_TAGS_MAX];
    memset(id, 'i', IOT_DOCS_ID_MAX);
    id[IOT_DOCS_ID_MAX] = '\0';
    memset(key, 'k', IOT_DOCS_KEY_MAX - 2);
    memcpy(key + IOT_DOCS_KEY_MAX - 2, "\xc3\xa9", 3); /* 64 bytes ending in é */
    for (int i = 0; i < IOT_DOCS_TAGS_MAX; i++) {
        snprintf(tagbuf[i], sizeof tagbuf[i], "t%d", i);
        tags[i] = tagbuf[i];
    }
    struct iot_doc d = with_keys(doc(id, 1, 1), key, key);
    d.tags = tags;
    d.n_tags = IOT_DOCS_TAGS_MAX;
    put_ok(s, IOT_DOCS_METADATA, d, IOT_DOCS_NEW);
    expect_header_read_back(s, &d, 1);
    struct iot_docs_filter f = {.tag = "t31", .k1 = key};
    assert_string_equal(find_ids(s, IOT_DOCS_METADATA, &f), id);
    struct iot_doc odd = doc("AZaz09_.:-", 1, 2);
    put_ok(s, IOT_DOCS_METADATA, odd, IOT_DOCS_NEW);
    expect_header_read_back(s, &odd, 1);
}

/* ---- unique rule names --------------------------------------------------- */

static void test_rules_unique_name_per_user(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    enum iot_docs_coll R = IOT_DOCS_RULES;
    put_ok(s, R, with_keys(doc("r1", 1, 1), "hot", NULL), IOT_DOCS_NEW);
    assert_rc(put_rc(s, R, with_keys(doc("r2", 1, 2), "hot", NULL), IOT_DOCS_NEW), IOT_ECONFLICT);
    assert_rc(put_rc(s, R, with_keys(doc("r2", 1, 2), "hot", NULL), IOT_DOCS_ANY_REV),
              IOT_ECONFLICT);
    expect_absent(s, R, "r2");
    put_ok(s, R, with_keys(doc("u2", 2, 1), "hot", NULL), IOT_DOCS_NEW); /* another user */
    put_ok(s, R, with_keys(doc("r2", 1, 2), "cold", NULL), IOT_DOCS_NEW);
    /* renaming r2 onto r1's name is refused, and r2 keeps its own */
    assert_rc(put_rc(s, R, with_keys(with_body(doc("r2", 1, 3), "{\"x\":1}"), "hot", NULL), 1),
              IOT_ECONFLICT);
    struct got g = get_ok(s, R, "r2");
    assert_string_equal(g.k1, "cold");
    assert_i64(g.rev, 1);
    assert_bytes(g.body, g.body_len, "{}");
    got_free(&g);
    /* a rule keeps its own name across replaces */
    assert_i64(put_ok(s, R, with_keys(doc("r1", 1, 5), "hot", NULL), 1), 2);
    assert_i64(put_ok(s, R, with_keys(doc("r1", 1, 6), "hot", NULL), IOT_DOCS_ANY_REV), 3);
    /* a freed name can be taken */
    assert_rc(iot_docs_remove(s, R, "r1"), IOT_OK);
    put_ok(s, R, with_keys(doc("r3", 1, 7), "hot", NULL), IOT_DOCS_NEW);
    assert_int_equal(count_all(s, R), 3);
}

/* Only rules have a unique name: other collections repeat (user, k1). */
static void test_unique_name_only_for_rules(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    for (int c = 0; c < IOT_DOCS_N_COLLS; c++) {
        if (c == IOT_DOCS_RULES)
            continue;
        put_ok(s, c, with_keys(doc("e1", 1, 1), "same", NULL), IOT_DOCS_NEW);
        put_ok(s, c, with_keys(doc("e2", 1, 2), "same", NULL), IOT_DOCS_NEW);
        assert_int_equal(count_all(s, c), 2);
    }
}

/* ---- insert_many --------------------------------------------------------- */

static size_t insert_many_ok(struct iot_docs *s, enum iot_docs_coll c, const struct iot_doc *d,
                             size_t n)
{
    size_t inserted = 12345;
    assert_rc(iot_docs_insert_many(s, c, d, n, &inserted), IOT_OK);
    return inserted;
}

static void test_insert_many_skips_taken(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    enum iot_docs_coll E = IOT_DOCS_EVENTS;
    put_ok(s, E, with_body(doc("e2", 1, 2), "{\"first\":true}"), IOT_DOCS_NEW);
    struct iot_doc batch[5] = {doc("e1", 1, 1), with_body(doc("e2", 1, 2), "{\"again\":1}"),
                               doc("e3", 1, 3), doc("e4", 1, 4),
                               with_body(doc("e3", 1, 3), "{\"dup\":1}")};
    assert_int_equal(insert_many_ok(s, E, batch, 5), 3);
    expect_body(s, E, "e2", "{\"first\":true}"); /* a taken id is left alone */
    expect_body(s, E, "e3", "{}");               /* the first of two in a batch wins */
    assert_i64(rev_of(s, E, "e1"), 1);
    assert_int_equal(insert_many_ok(s, E, batch, 5), 0); /* a retry stores nothing twice */
    assert_int_equal(insert_many_ok(s, E, batch, 0), 0);
    assert_rc(iot_docs_insert_many(s, E, batch, 5, NULL), IOT_OK);
    assert_int_equal(count_all(s, E), 4);
    struct iot_docs_filter f = {.user_id = 1, .ascending = true};
    assert_string_equal(find_ids(s, E, &f), "e1,e2,e3,e4");
}

static void test_insert_many_skips_taken_rule_names(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    enum iot_docs_coll R = IOT_DOCS_RULES;
    put_ok(s, R, with_keys(doc("r1", 1, 1), "hot", NULL), IOT_DOCS_NEW);
    struct iot_doc batch[3] = {with_keys(doc("r2", 1, 2), "hot", NULL),
                               with_keys(doc("r3", 1, 3), "cold", NULL),
                               with_keys(doc("r4", 2, 4), "hot", NULL)};
    assert_int_equal(insert_many_ok(s, R, batch, 3), 2);
    expect_absent(s, R, "r2");
    assert_int_equal(count_all(s, R), 3);
}

/* ---- get, remove, collections ------------------------------------------ */

static void test_get_and_remove(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    expect_absent(s, IOT_DOCS_CONFIGS, "nope");
    assert_rc(iot_docs_remove(s, IOT_DOCS_CONFIGS, "nope"), IOT_ENOTFOUND);
    put_ok(s, IOT_DOCS_CONFIGS, doc("x", 1, 1), IOT_DOCS_NEW);
    put_ok(s, IOT_DOCS_CONFIGS, doc("y", 1, 1), IOT_DOCS_NEW);
    struct got_list l = {.stop_after = 1};
    assert_rc(iot_docs_get(s, IOT_DOCS_CONFIGS, "x", collect, &l), IOT_OK); /* fn's 1 is no error */
    got_list_free(&l);
    assert_rc(iot_docs_remove(s, IOT_DOCS_CONFIGS, "x"), IOT_OK);
    expect_absent(s, IOT_DOCS_CONFIGS, "x");
    assert_rc(iot_docs_remove(s, IOT_DOCS_CONFIGS, "x"), IOT_ENOTFOUND);
    assert_i64(rev_of(s, IOT_DOCS_CONFIGS, "y"), 1);
    /* a removed id starts over at rev 1 */
    assert_i64(put_ok(s, IOT_DOCS_CONFIGS, doc("x", 1, 1), IOT_DOCS_NEW), 1);
}

/* The same id in two collections is two documents. */
static void test_rule_needs_a_name(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    struct iot_doc d = with_body(doc("r1", 1, 1), "{}");
    assert_rc(iot_docs_put(s, IOT_DOCS_RULES, &d, IOT_DOCS_NEW, NULL), IOT_EINVAL);
    size_t inserted = 9;
    assert_rc(iot_docs_insert_many(s, IOT_DOCS_RULES, &d, 1, &inserted), IOT_EINVAL);
    expect_absent(s, IOT_DOCS_RULES, "r1");
}

static void test_collections_are_separate(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    for (int c = 0; c < IOT_DOCS_N_COLLS; c++) {
        char body[32];
        snprintf(body, sizeof body, "{\"coll\":%d}", c);
        /* A rule needs a name; the others take one too, harmlessly. */
        put_ok(s, c, with_keys(with_body(doc("same", 1, c), body), "name", NULL), IOT_DOCS_NEW);
    }
    assert_rc(iot_docs_remove(s, IOT_DOCS_EVENTS, "same"), IOT_OK);
    struct iot_docs_filter user1 = {.user_id = 1};
    int64_t deleted = -1;
    assert_rc(iot_docs_delete_where(s, IOT_DOCS_ALERTS, &user1, &deleted), IOT_OK);
    assert_i64(deleted, 1);
    for (int c = 0; c < IOT_DOCS_N_COLLS; c++) {
        if (c == IOT_DOCS_EVENTS || c == IOT_DOCS_ALERTS) {
            expect_absent(s, c, "same");
            continue;
        }
        char body[32];
        snprintf(body, sizeof body, "{\"coll\":%d}", c);
        expect_body(s, c, "same", body);
        assert_string_equal(find_ids(s, c, &user1), "same");
    }
}

/* ---- find: each criterion, then together ------------------------------- */

static void test_find_by_owner_and_keys(void **state)
{
    struct iot_docs *s = seeded(state);
    const struct find_case cases[] = {
        {{0}, "a6,a5,a3,a4,a2,a1"},
        {{.user_id = 1}, "a6,a3,a2,a1"},
        {{.user_id = 2}, "a5,a4"},
        {{.user_id = 3}, ""},
        {{.device_id = 11}, "a6,a3"},
        {{.device_id = 12}, ""},
        {{.k1 = "x"}, "a4,a2,a1"},
        {{.k1 = "X"}, ""},
        {{.k2 = "p"}, "a6,a4,a1"},
        {{.k1 = "y", .k2 = "p"}, "a6"},
        {{.user_id = 1, .k1 = "x"}, "a2,a1"},
        {{.device_id = 10, .k2 = "q"}, "a2"},
        {{.user_id = 2, .device_id = 10}, ""},
    };
    expect_finds(s, cases, sizeof cases / sizeof cases[0]);
}

static void test_find_by_time(void **state)
{
    struct iot_docs *s = seeded(state);
    const struct find_case cases[] = {
        {{.has_ts_min = true, .ts_min = 200, .has_ts_max = true, .ts_max = 400}, "a5,a3,a4,a2"},
        {{.has_ts_min = true, .ts_min = 300}, "a6,a5,a3"},
        {{.has_ts_max = true, .ts_max = 200}, "a4,a2,a1"},
        {{.has_ts_min = true, .ts_min = 200, .has_ts_max = true, .ts_max = 200}, "a4,a2"},
        {{.has_ts_min = true, .ts_min = 201, .has_ts_max = true, .ts_max = 299}, ""},
        {{.has_ts_min = true, .ts_min = 501}, ""},
        {{.has_ts_max = true, .ts_max = 99}, ""},
        {{.user_id = 1, .has_ts_max = true, .ts_max = 250}, "a2,a1"},
    };
    expect_finds(s, cases, sizeof cases / sizeof cases[0]);
}

/* A tag matches whole: "red" is not "redder" nor "re". */
static void test_find_by_tag(void **state)
{
    struct iot_docs *s = seeded(state);
    const struct find_case cases[] = {
        {{.tag = "red"}, "a2,a1"},
        {{.tag = "blue"}, "a3,a2"},
        {{.tag = "re"}, "a6"},
        {{.tag = "redder"}, "a5"},
        {{.tag = "Red"}, ""},
        {{.tag = "blue", .k2 = "q"}, "a2"},
        {{.tag = "red", .has_ts_min = true, .ts_min = 150}, "a2"},
    };
    expect_finds(s, cases, sizeof cases / sizeof cases[0]);
}

#define BOX(a, b, c, d) .has_box = true, .lat_min = (a), .lat_max = (b), .lon_min = (c), .lon_max = (d)

/* Box edges are inside; a document without a location is in no box. */
static void test_find_by_box(void **state)
{
    struct iot_docs *s = seeded(state);
    const struct find_case cases[] = {
        {{BOX(-90, 90, -180, 180)}, "a6,a5,a4,a2,a1"},
        {{BOX(10, 90, 20, 180)}, "a5,a4,a1"},
        {{BOX(-10, 10, -20, 20)}, "a4,a2,a1"},
        {{BOX(10, 10, 20, 20)}, "a4,a1"},
        {{BOX(10.000001, 90, 20, 180)}, "a5"},
        {{BOX(-90, -90, -180, -180)}, "a6"},
        {{BOX(0, 5, 0, 5)}, ""},
        {{BOX(-90, 90, -180, 180), .user_id = 2}, "a5,a4"},
        {{BOX(-90, 90, -180, 180), .tag = "red", .k2 = "p"}, "a1"},
    };
    expect_finds(s, cases, sizeof cases / sizeof cases[0]);
}

/* ---- find: order, cursor, limit, early stop --------------------------- */

/* (ts_ms, id): ts numerically (negative too), ties by id bytewise. */
static void test_find_order(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    static const char *const ids[] = {"b", "a_1", "a:1", "a1", "a.1", "a-1", "a", "B"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        put_ok(s, IOT_DOCS_EVENTS, doc(ids[i], 1, 7), IOT_DOCS_NEW);
    put_ok(s, IOT_DOCS_EVENTS, doc("t100", 1, 100), IOT_DOCS_NEW);
    put_ok(s, IOT_DOCS_EVENTS, doc("t9", 1, 9), IOT_DOCS_NEW);
    put_ok(s, IOT_DOCS_EVENTS, doc("tneg", 1, -5), IOT_DOCS_NEW);
    struct iot_docs_filter up = {.ascending = true}, down = {0};
    assert_string_equal(find_ids(s, IOT_DOCS_EVENTS, &up),
                        "tneg,B,a,a-1,a.1,a1,a:1,a_1,b,t9,t100");
    assert_string_equal(find_ids(s, IOT_DOCS_EVENTS, &down),
                        "t100,t9,b,a_1,a:1,a1,a.1,a-1,a,B,tneg");
}

/* Pages of `limit` after the last one seen, joined as one list. */
static const char *find_paged(struct iot_docs *s, struct iot_docs_filter f, size_t limit)
{
    char *out = result_buf(), last_id[IOT_DOCS_ID_MAX + 1];
    f.limit = limit;
    struct got_list *l = calloc(1, sizeof *l);
    for (int page = 0; page < 100; page++) {
        assert_rc(iot_docs_find(s, IOT_DOCS_EVENTS, &f, collect, l), IOT_OK);
        assert_true(l->n <= limit);
        for (size_t i = 0; i < l->n; i++)
            append(out, l->v[i].id);
        bool last = l->n < limit;
        if (l->n) {
            snprintf(last_id, sizeof last_id, "%s", l->v[l->n - 1].id);
            f.has_after = true;
            f.after_ts = l->v[l->n - 1].ts_ms;
            f.after_id = last_id;
        }
        got_list_free(l);
        if (last)
            break;
    }
    free(l);
    return out;
}

/* Keyset paging over ties delivers every document once, in order. */
static void test_find_keyset_paging(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    char id[16];
    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof id, "d%02d", (i * 7) % 30); /* ids not in ts order */
        put_ok(s, IOT_DOCS_EVENTS, doc(id, 1, i / 7), IOT_DOCS_NEW); /* 7 per ts */
    }
    put_ok(s, IOT_DOCS_EVENTS, doc("other", 2, 1), IOT_DOCS_NEW);
    for (int asc = 0; asc <= 1; asc++) {
        struct iot_docs_filter f = {.user_id = 1, .ascending = asc};
        const char *all = find_ids(s, IOT_DOCS_EVENTS, &f);
        assert_int_equal(strlen(all), 30 * 4 - 1);
        for (size_t limit = 1; limit <= 8; limit++)
            assert_string_equal(find_paged(s, f, limit), all);
    }
}

/* A cursor need not be a stored document: strictly after it in the order. */
static void test_find_after_cursor(void **state)
{
    struct iot_docs *s = seeded(state);
    const struct find_case cases[] = {
        {{.has_after = true, .after_ts = 200, .after_id = "a3"}, "a2,a1"},
        {{.has_after = true, .after_ts = 200, .after_id = "a4"}, "a2,a1"},
        {{.has_after = true, .after_ts = 200, .after_id = "a2"}, "a1"},
        {{.has_after = true, .after_ts = 1000, .after_id = "z"}, "a6,a5,a3,a4,a2,a1"},
        {{.has_after = true, .after_ts = 100, .after_id = "a1"}, ""},
        {{.ascending = true, .has_after = true, .after_ts = 200, .after_id = "a3"}, "a4,a3,a5,a6"},
        {{.ascending = true, .has_after = true, .after_ts = 200, .after_id = "a2"}, "a4,a3,a5,a6"},
        {{.ascending = true, .has_after = true, .after_ts = 200, .after_id = "a4"}, "a3,a5,a6"},
        {{.user_id = 1, .has_after = true, .after_ts = 300, .after_id = "a3"}, "a2,a1"},
    };
    expect_finds(s, cases, sizeof cases / sizeof cases[0]);
}

static void test_find_limit(void **state)
{
    struct iot_docs *s = seeded(state);
    const struct find_case cases[] = {
        {{.limit = 2}, "a6,a5"},
        {{.limit = 1, .ascending = true}, "a1"},
        {{.limit = 3, .ascending = true, .k1 = "x"}, "a1,a2,a4"},
        {{.limit = 100}, "a6,a5,a3,a4,a2,a1"},
        {{.limit = 2, .has_after = true, .after_ts = 400, .after_id = "a5"}, "a3,a4"},
    };
    expect_finds(s, cases, sizeof cases / sizeof cases[0]);
}

static int count_and_stop(void *ctx, const char *k1, const char *k2, int64_t n)
{
    (*(int *)ctx)++;
    return 1;
}

/* A callback's non-zero stops the stream, and the op still succeeds. */
static void test_callbacks_stop_early(void **state)
{
    struct iot_docs *s = seeded(state);
    struct iot_docs_filter all = {0};
    struct got_list l = {.stop_after = 2};
    assert_rc(iot_docs_find(s, ALERTS, &all, collect, &l), IOT_OK);
    assert_int_equal(l.calls, 2);
    assert_string_equal(l.v[1].id, "a5");
    got_list_free(&l);
    l.stop_after = 1;
    struct iot_docs_filter none = {.k1 = "nothing"};
    assert_rc(iot_docs_find(s, ALERTS, &none, collect, &l), IOT_OK); /* no match: no error */
    assert_int_equal(l.calls, 0);
    int calls = 0;
    assert_rc(iot_docs_count_by(s, ALERTS, &all, IOT_DOCS_GROUP_K1, count_and_stop, &calls),
              IOT_OK);
    assert_int_equal(calls, 1);
}

/* ---- count_by ------------------------------------------------------------ */

static void test_count_by(void **state)
{
    struct iot_docs *s = seeded(state);
    struct iot_docs_filter all = {0}, user1 = {.user_id = 1}, nothing = {.user_id = 3};
    assert_string_equal(counts_of(s, ALERTS, &all, IOT_DOCS_GROUP_NONE), "-/-=6");
    assert_string_equal(counts_of(s, ALERTS, &all, IOT_DOCS_GROUP_K1), "-/-=1,x/-=3,y/-=2");
    assert_string_equal(counts_of(s, ALERTS, &all, IOT_DOCS_GROUP_K1_K2),
                        "-/-=1,x/p=2,x/q=1,y/-=1,y/p=1");
    assert_string_equal(counts_of(s, ALERTS, &user1, IOT_DOCS_GROUP_NONE), "-/-=4");
    assert_string_equal(counts_of(s, ALERTS, &user1, IOT_DOCS_GROUP_K1_K2),
                        "x/p=1,x/q=1,y/-=1,y/p=1");
    struct iot_docs_filter red_box = {.tag = "red", BOX(-10, 10, -20, 20)};
    assert_string_equal(counts_of(s, ALERTS, &red_box, IOT_DOCS_GROUP_K1_K2), "x/p=1,x/q=1");
    /* groups with no document are not reported, not even GROUP_NONE's */
    assert_string_equal(counts_of(s, ALERTS, &nothing, IOT_DOCS_GROUP_NONE), "");
    assert_string_equal(counts_of(s, ALERTS, &nothing, IOT_DOCS_GROUP_K1_K2), "");
    assert_string_equal(counts_of(s, IOT_DOCS_EVENTS, &all, IOT_DOCS_GROUP_K1), "");
}

static void test_count_by_ignores_paging(void **state)
{
    struct iot_docs *s = seeded(state);
    struct iot_docs_filter f = {.limit = 1, .ascending = true, .has_after = true,
                                .after_ts = 1000, .after_id = "z"};
    assert_string_equal(counts_of(s, ALERTS, &f, IOT_DOCS_GROUP_NONE), "-/-=6");
    assert_string_equal(counts_of(s, ALERTS, &f, IOT_DOCS_GROUP_K1), "-/-=1,x/-=3,y/-=2");
}

/* ---- delete_where -------------------------------------------------------- */

static void expect_deleted(struct iot_docs *s, struct iot_docs_filter f, int64_t want)
{
    int64_t deleted = -1;
    assert_rc(iot_docs_delete_where(s, ALERTS, &f, &deleted), IOT_OK);
    assert_i64(deleted, want);
}

static void test_delete_where(void **state)
{
    struct iot_docs *s = seeded(state);
    struct iot_docs_filter all = {0};
    expect_deleted(s, (struct iot_docs_filter){.user_id = 3}, 0);
    expect_deleted(s, (struct iot_docs_filter){.user_id = 2, .k1 = "y"}, 0);
    expect_deleted(s, (struct iot_docs_filter){.tag = "red", .k2 = "q"}, 1);
    assert_string_equal(find_ids(s, ALERTS, &all), "a6,a5,a3,a4,a1");
    expect_deleted(s, (struct iot_docs_filter){.k1 = "x", .limit = 1}, 2); /* limit ignored */
    assert_string_equal(find_ids(s, ALERTS, &all), "a6,a5,a3");
    expect_deleted(s, (struct iot_docs_filter){BOX(90, 90, 180, 180)}, 1);
    struct iot_docs_filter late = {.has_ts_min = true, .ts_min = 500};
    assert_rc(iot_docs_delete_where(s, ALERTS, &late, NULL), IOT_OK);
    assert_string_equal(find_ids(s, ALERTS, &all), "a3");
}

/* No criterion, or only order and paging: refused, nothing deleted. */
static void test_delete_where_needs_a_criterion(void **state)
{
    struct iot_docs *s = seeded(state);
    const struct iot_docs_filter refused[] = {
        {0},
        {.limit = 1},
        {.ascending = true},
        {.has_after = true, .after_ts = 1, .after_id = "a1"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        int64_t deleted = -1;
        assert_rc(iot_docs_delete_where(s, ALERTS, &refused[i], &deleted), IOT_EINVAL);
    }
    assert_int_equal(count_all(s, ALERTS), 6);
}

/* ---- argument checks ---------------------------------------------------- *
 * Every op refuses bad input with IOT_EINVAL and writes nothing. */

static int ignore_doc(void *ctx, const struct iot_doc *d) { return 0; }

static int ignore_count(void *ctx, const char *k1, const char *k2, int64_t n) { return 0; }

/* put, NEW and ANY_REV, and insert_many all refuse `d`. */
static void expect_doc_refused(struct iot_docs *s, struct iot_doc d)
{
    size_t inserted = 99;
    assert_rc(iot_docs_put(s, IOT_DOCS_METADATA, &d, IOT_DOCS_NEW, NULL), IOT_EINVAL);
    assert_rc(iot_docs_put(s, IOT_DOCS_METADATA, &d, IOT_DOCS_ANY_REV, NULL), IOT_EINVAL);
    assert_rc(iot_docs_insert_many(s, IOT_DOCS_METADATA, &d, 1, &inserted), IOT_EINVAL);
    struct iot_doc pair[2] = {doc("fine", 1, 1), d};
    assert_rc(iot_docs_insert_many(s, IOT_DOCS_METADATA, pair, 2, NULL), IOT_EINVAL);
    iot_docs_remove(s, IOT_DOCS_METADATA, "fine"); /* may have been stored first */
}

/* find, count_by and delete_where all refuse `f`. */
static void expect_filter_refused(struct iot_docs *s, struct iot_docs_filter f)
{
    assert_rc(iot_docs_find(s, IOT_DOCS_METADATA, &f, ignore_doc, NULL), IOT_EINVAL);
    assert_rc(iot_docs_count_by(s, IOT_DOCS_METADATA, &f, IOT_DOCS_GROUP_K1, ignore_count, NULL),
              IOT_EINVAL);
    f.user_id = f.user_id ? f.user_id : 1; /* a criterion, so that only the fault is refused */
    assert_rc(iot_docs_delete_where(s, IOT_DOCS_METADATA, &f, NULL), IOT_EINVAL);
}

static void test_refuses_bad_collection(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    const enum iot_docs_coll bad[] = {IOT_DOCS_N_COLLS, (enum iot_docs_coll)-1,
                                      (enum iot_docs_coll)1000};
    struct iot_doc d = doc("x", 1, 1);
    struct iot_docs_filter f = {.user_id = 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_rc(iot_docs_put(s, bad[i], &d, IOT_DOCS_ANY_REV, NULL), IOT_EINVAL);
        assert_rc(iot_docs_insert_many(s, bad[i], &d, 1, NULL), IOT_EINVAL);
        assert_rc(iot_docs_get(s, bad[i], "x", ignore_doc, NULL), IOT_EINVAL);
        assert_rc(iot_docs_remove(s, bad[i], "x"), IOT_EINVAL);
        assert_rc(iot_docs_find(s, bad[i], &f, ignore_doc, NULL), IOT_EINVAL);
        assert_rc(iot_docs_count_by(s, bad[i], &f, IOT_DOCS_GROUP_NONE, ignore_count, NULL),
                  IOT_EINVAL);
        assert_rc(iot_docs_delete_where(s, bad[i], &f, NULL), IOT_EINVAL);
    }
}

static void test_refuses_bad_ids(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    char too_long[IOT_DOCS_ID_MAX + 2];
    memset(too_long, 'i', IOT_DOCS_ID_MAX + 1);
    too_long[IOT_DOCS_ID_MAX + 1] = '\0';
    const char *const bad[] = {"", "a b", "a/b", "a\"b", "a$b", "caf\xc3\xa9", "a\nb", too_long};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_doc_refused(s, doc(bad[i], 1, 1));
        assert_rc(iot_docs_get(s, IOT_DOCS_METADATA, bad[i], ignore_doc, NULL), IOT_EINVAL);
        assert_rc(iot_docs_remove(s, IOT_DOCS_METADATA, bad[i]), IOT_EINVAL);
        expect_filter_refused(s, (struct iot_docs_filter){.has_after = true, .after_id = bad[i]});
    }
    expect_doc_refused(s, doc(NULL, 1, 1));
    assert_rc(iot_docs_get(s, IOT_DOCS_METADATA, NULL, ignore_doc, NULL), IOT_EINVAL);
    assert_rc(iot_docs_remove(s, IOT_DOCS_METADATA, NULL), IOT_EINVAL);
    expect_filter_refused(s, (struct iot_docs_filter){.has_after = true, .after_id = NULL});
    assert_int_equal(count_all(s, IOT_DOCS_METADATA), 0);
}

static void test_refuses_bad_keys(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    char too_long[IOT_DOCS_KEY_MAX + 2];
    memset(too_long, 'k', IOT_DOCS_KEY_MAX + 1);
    too_long[IOT_DOCS_KEY_MAX + 1] = '\0';
    const char *const bad[] = {too_long, "",          "a\nb",         "tab\t", "del\x7f",
                               "\xc3",   "\xff\xfe", "zw\xe2\x80\x8bsp" /* U+200B */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *const tags[] = {"ok", bad[i]};
        struct iot_doc tagged = doc("t", 1, 1);
        tagged.tags = tags;
        tagged.n_tags = 2;
        expect_doc_refused(s, with_keys(doc("k", 1, 1), bad[i], NULL));
        expect_doc_refused(s, with_keys(doc("k", 1, 1), "ok", bad[i]));
        expect_doc_refused(s, tagged);
        expect_filter_refused(s, (struct iot_docs_filter){.k1 = bad[i]});
        expect_filter_refused(s, (struct iot_docs_filter){.k2 = bad[i]});
        expect_filter_refused(s, (struct iot_docs_filter){.tag = bad[i]});
    }
    assert_int_equal(count_all(s, IOT_DOCS_METADATA), 0);
}

static void test_refuses_bad_tags(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    const char *const twice[] = {"a", "b", "a"}, *const with_null[] = {"a", NULL};
    const char *many[IOT_DOCS_TAGS_MAX + 1];
    char names[IOT_DOCS_TAGS_MAX + 1][8];
    for (int i = 0; i <= IOT_DOCS_TAGS_MAX; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        many[i] = names[i];
    }
    struct iot_doc d = doc("t", 1, 1);
    d.tags = twice, d.n_tags = 3;
    expect_doc_refused(s, d);
    d.tags = with_null, d.n_tags = 2;
    expect_doc_refused(s, d);
    d.tags = many, d.n_tags = IOT_DOCS_TAGS_MAX + 1;
    expect_doc_refused(s, d);
    d.tags = NULL, d.n_tags = 1;
    expect_doc_refused(s, d);
    assert_int_equal(count_all(s, IOT_DOCS_METADATA), 0);
}

static void test_refuses_bad_locations(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    const double bad_lat[] = {90.000001, -90.5, NAN, INFINITY, -INFINITY};
    const double bad_lon[] = {180.000001, -181, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad_lat / sizeof bad_lat[0]; i++) {
        expect_doc_refused(s, with_location(doc("g", 1, 1), bad_lat[i], 0));
        expect_doc_refused(s, with_location(doc("g", 1, 1), 0, bad_lon[i]));
        expect_filter_refused(s, (struct iot_docs_filter){BOX(bad_lat[i], 0, 0, 0)});
        expect_filter_refused(s, (struct iot_docs_filter){BOX(0, bad_lat[i], 0, 0)});
        expect_filter_refused(s, (struct iot_docs_filter){BOX(0, 0, bad_lon[i], 0)});
        expect_filter_refused(s, (struct iot_docs_filter){BOX(0, 0, 0, bad_lon[i])});
    }
    expect_filter_refused(s, (struct iot_docs_filter){BOX(10, 5, 0, 1)});   /* inverted lat */
    expect_filter_refused(s, (struct iot_docs_filter){BOX(0, 1, 170, -170)}); /* inverted lon */
    assert_int_equal(count_all(s, IOT_DOCS_METADATA), 0);
}

static void test_refuses_bad_bodies(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    const char *const bad[] = {
        "[]",   "1",   "null", "\"s\"",          "{",
        "{}x",  "{}{}", "{\"a\":1,\"a\":2}", "{\"a\":\"\\u0000\"}", "{\"a\":\"\xff\"}",
        "{'a':1}", "{\"a\":NaN}", "{\"a\":01}", " ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_doc_refused(s, with_body(doc("b", 1, 1), bad[i]));
    expect_doc_refused(s, with_body(doc("b", 1, 1), NULL));
    expect_doc_refused(s, with_body(doc("b", 1, 1), "")); /* body_len 0 */
    struct iot_doc nul_inside = with_body(doc("b", 1, 1), "{}");
    nul_inside.body_len = 3; /* "{}\0" */
    expect_doc_refused(s, nul_inside);
    assert_int_equal(count_all(s, IOT_DOCS_METADATA), 0);
}

static void test_refuses_bad_numbers_and_ranges(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    struct iot_doc neg_user = doc("n", -1, 1), neg_device = doc("n", 1, 1);
    neg_device.device_id = -1;
    expect_doc_refused(s, neg_user);
    expect_doc_refused(s, neg_device);
    expect_filter_refused(s, (struct iot_docs_filter){.user_id = -1});
    expect_filter_refused(s, (struct iot_docs_filter){.device_id = -1});
    expect_filter_refused(s, (struct iot_docs_filter){.has_ts_min = true, .ts_min = 2,
                                                      .has_ts_max = true, .ts_max = 1});
    assert_int_equal(count_all(s, IOT_DOCS_METADATA), 0);
    /* a refused replace leaves the stored document as it was */
    put_ok(s, IOT_DOCS_METADATA, with_body(doc("kept", 1, 1), "{\"v\":1}"), IOT_DOCS_NEW);
    expect_doc_refused(s, with_body(doc("kept", 1, 1), "[1]"));
    expect_body(s, IOT_DOCS_METADATA, "kept", "{\"v\":1}");
    assert_i64(rev_of(s, IOT_DOCS_METADATA, "kept"), 1);
}

/* ---- threads ------------------------------------------------------------ */

#define N_THREADS 4
#define N_ROUNDS 40

struct racer {
    struct iot_docs *s;
    pthread_barrier_t *barrier;
    int index;
    int rc[N_ROUNDS];     /* put's answer in each round */
    int64_t seen[N_ROUNDS]; /* the rev read before it */
};

/* Each round: all read the rev, then all replace at that rev at once. */
static void *exact_rev_racer(void *arg)
{
    struct racer *r = arg;
    char body[64];
    for (int round = 0; round < N_ROUNDS; round++) {
        struct got_list l = {0};
        r->seen[round] = iot_docs_get(r->s, IOT_DOCS_CONFIGS, "race", collect, &l) == IOT_OK
                             ? l.v[0].rev
                             : -1;
        got_list_free(&l);
        snprintf(body, sizeof body, "{\"round\":%d,\"thread\":%d}", round, r->index);
        struct iot_doc d = with_body(doc("race", 1, round), body);
        pthread_barrier_wait(r->barrier);
        r->rc[round] = iot_docs_put(r->s, IOT_DOCS_CONFIGS, &d, r->seen[round], NULL);
        pthread_barrier_wait(r->barrier);
    }
    return NULL;
}

/* Races N_ROUNDS rounds of exact-rev replaces, on the fixture's handle or
 * on one handle per thread (what separate processes would do). */
static void race_exact_rev(struct fixture *fx, bool own_handles)
{
    struct iot_docs *s = &fx->d, handles[N_THREADS];
    put_ok(s, IOT_DOCS_CONFIGS, doc("race", 1, 0), IOT_DOCS_NEW);
    for (int t = 0; own_handles && t < N_THREADS; t++)
        assert_rc(iot_docs_open(fx->url, &handles[t]), IOT_OK);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, N_THREADS);
    struct racer r[N_THREADS];
    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        r[t] = (struct racer){.s = own_handles ? &handles[t] : s, .barrier = &barrier, .index = t};
        pthread_create(&th[t], NULL, exact_rev_racer, &r[t]);
    }
    for (int t = 0; t < N_THREADS; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&barrier);
    for (int t = 0; own_handles && t < N_THREADS; t++)
        iot_docs_close(&handles[t]);
    int64_t writes = 1; /* the first insert */
    for (int round = 0; round < N_ROUNDS; round++) {
        int wins = 0;
        for (int t = 0; t < N_THREADS; t++) {
            assert_i64(r[t].seen[round], round + 1);
            if (r[t].rc[round] == IOT_OK)
                wins++;
            else
                assert_rc(r[t].rc[round], IOT_ECONFLICT);
        }
        if (wins != 1)
            fail_msg("round %d had %d winners", round, wins);
        writes += wins;
    }
    assert_i64(rev_of(s, IOT_DOCS_CONFIGS, "race"), writes);
}

static void test_threads_exact_rev_one_winner(void **state) { race_exact_rev(*state, false); }

static void test_handles_exact_rev_one_winner(void **state) { race_exact_rev(*state, true); }

struct upserter {
    struct iot_docs *s;
    int errors;
    int64_t revs[25];
};

static void *any_rev_upserter(void *arg)
{
    struct upserter *u = arg;
    for (int i = 0; i < 25; i++) {
        struct iot_doc d = doc("upsert", 1, i);
        if (iot_docs_put(u->s, IOT_DOCS_PREFS, &d, IOT_DOCS_ANY_REV, &u->revs[i]) != IOT_OK)
            u->errors++;
    }
    return NULL;
}

/* Concurrent upserts on one id: none lost, every rev given out once. */
static void test_threads_any_rev_no_lost_write(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    struct upserter u[N_THREADS];
    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        u[t] = (struct upserter){.s = s};
        pthread_create(&th[t], NULL, any_rev_upserter, &u[t]);
    }
    bool seen[N_THREADS * 25 + 1] = {false};
    for (int t = 0; t < N_THREADS; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(u[t].errors, 0);
        for (int i = 0; i < 25; i++) {
            int64_t rev = u[t].revs[i];
            assert_in_range(rev, 1, N_THREADS * 25);
            if (seen[rev])
                fail_msg("rev %" PRId64 " given out twice", rev);
            seen[rev] = true;
        }
    }
    assert_i64(rev_of(s, IOT_DOCS_PREFS, "upsert"), N_THREADS * 25);
}

#define OVERLAP_SPAN 120 /* ids per thread; thread t starts at 40 t */

struct batcher {
    struct iot_docs *s;
    int start, errors;
    size_t inserted;
};

static void *overlapping_batcher(void *arg)
{
    struct batcher *b = arg;
    char ids[OVERLAP_SPAN][16];
    struct iot_doc batch[OVERLAP_SPAN];
    for (int i = 0; i < OVERLAP_SPAN; i++) {
        snprintf(ids[i], sizeof ids[i], "ev%04d", b->start + i);
        batch[i] = doc(ids[i], 1, b->start + i);
    }
    for (int off = 0; off < OVERLAP_SPAN; off += 20) {
        size_t n = 0;
        if (iot_docs_insert_many(b->s, IOT_DOCS_EVENTS, batch + off, 20, &n) != IOT_OK)
            b->errors++;
        b->inserted += n;
    }
    return NULL;
}

static void test_threads_insert_many_overlap(void **state)
{
    struct iot_docs *s = &((struct fixture *)*state)->d;
    struct batcher b[N_THREADS];
    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        b[t] = (struct batcher){.s = s, .start = 40 * t};
        pthread_create(&th[t], NULL, overlapping_batcher, &b[t]);
    }
    size_t inserted = 0;
    for (int t = 0; t < N_THREADS; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(b[t].errors, 0);
        inserted += b[t].inserted;
    }
    int64_t distinct = 40 * (N_THREADS - 1) + OVERLAP_SPAN;
    assert_i64(inserted, distinct);
    assert_i64(count_all(s, IOT_DOCS_EVENTS), distinct);
    struct iot_docs_filter f = {.user_id = 1, .limit = 1};
    assert_string_equal(find_ids(s, IOT_DOCS_EVENTS, &f), "ev0239");
    assert_i64(rev_of(s, IOT_DOCS_EVENTS, "ev0100"), 1);
}

/* ---- runner --------------------------------------------------------------- */

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

static int run_backend(const char *url)
{
    static const struct CMUnitTest tests[] = {
        T(test_backend_table),
        T(test_reopen_keeps_documents),
        T(test_put_new_inserts_once),
        T(test_put_any_rev_upserts),
        T(test_put_exact_rev),
        T(test_put_ignores_written_rev),
        T(test_body_byte_for_byte),
        T(test_body_big_integers),
        T(test_body_len_ends_body),
        T(test_big_bodies),
        T(test_header_round_trip),
        T(test_replace_rewrites_header),
        T(test_limits_accepted),
        T(test_rules_unique_name_per_user),
        T(test_unique_name_only_for_rules),
        T(test_insert_many_skips_taken),
        T(test_insert_many_skips_taken_rule_names),
        T(test_get_and_remove),
        T(test_collections_are_separate),
        T(test_rule_needs_a_name),
        T(test_find_by_owner_and_keys),
        T(test_find_by_time),
        T(test_find_by_tag),
        T(test_find_by_box),
        T(test_find_order),
        T(test_find_keyset_paging),
        T(test_find_after_cursor),
        T(test_find_limit),
        T(test_callbacks_stop_early),
        T(test_count_by),
        T(test_count_by_ignores_paging),
        T(test_delete_where),
        T(test_delete_where_needs_a_criterion),
        T(test_refuses_bad_collection),
        T(test_refuses_bad_ids),
        T(test_refuses_bad_keys),
        T(test_refuses_bad_tags),
        T(test_refuses_bad_locations),
        T(test_refuses_bad_bodies),
        T(test_refuses_bad_numbers_and_ranges),
        T(test_threads_exact_rev_one_winner),
        T(test_handles_exact_rev_one_winner),
        T(test_threads_any_rev_no_lost_write),
        T(test_threads_insert_many_overlap),
    };
    g_base_url = url;
    if (is_mongo(url))
        mongo_run_url(url, g_server_url, sizeof g_server_url);
    char name[1200];
    snprintf(name, sizeof name, "docs %s", is_mongo(url) ? g_server_url : url);
    return cmocka_run_group_tests_name(name, tests, NULL, group_teardown);
}

int main(void)
{
    char defaults[1100];
    snprintf(defaults, sizeof defaults, "sqlite:%s/docs-contract", contract_tmpdir());
    return contract_run_backends("IOT_DOCS_URLS", defaults, run_backend) ? 1 : 0;
}
