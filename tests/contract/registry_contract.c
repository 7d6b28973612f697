/* registry_contract.c — the contract of store/registry.h, run against every
 * backend URL in IOT_REGISTRY_URLS (comma separated). Default: a fresh
 * SQLite file under IOT_TEST_TMPDIR (or /tmp) and sqlite::memory:. Add the
 * PostgreSQL server with e.g.
 *   IOT_REGISTRY_URLS="sqlite::memory:,$DATABASE_URL" build/tests/registry_contract
 *
 * Each test opens a fresh store: a new file per test for file-backed SQLite,
 * a new uniquely named database for :memory:, and for PostgreSQL a schema of
 * this process's own (iot_regtest_<pid>, selected through the URL's
 * options=-csearch_path=…), dropped and re-created before every test and
 * dropped at the end; so runs sharing one server do not see each other.
 * The PostgreSQL-only tests at the end (migration lock, unreachable server,
 * killed backends, a server that goes away behind a proxy) skip elsewhere. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "contract/contract_runner.h"
#include "test_asserts.h"

#include "store/registry.h"
#include "util/clock.h"
#include "util/err.h"



struct fixture {
    struct iot_registry reg;
    char url[1024];
    char path[1024]; /* SQLite file to delete at teardown, "" if none */
};

static const char *g_base_url; /* the backend the current group runs on */
static atomic_uint g_seq;

/* ---- fixture ----------------------------------------------------------- */

/* The file path of a file-backed SQLite URL, or NULL (memory, server). */
static const char *sqlite_file_path(const char *url)
{
    const char *p = url;
    if (strncasecmp(p, "sqlite:", 7) == 0) {
        p += 7;
        if (strncmp(p, "//", 2) == 0)
            p += 2;
    } else if (strstr(url, "://")) {
        return NULL;
    }
    return strcmp(p, ":memory:") == 0 ? NULL : p;
}

static bool is_persistent(const char *url)
{
    return strstr(url, ":memory:") == NULL;
}

/* ---- PostgreSQL scratch schema ------------------------------------------ */

static bool is_postgres(const char *url)
{
    return strncasecmp(url, "postgres://", 11) == 0 || strncasecmp(url, "postgresql://", 13) == 0;
}

/* iot_regtest_<pid>: this process's schema, and the application_name of its
 * store connections (what test_pg_backend_killed terminates). */
static const char *pg_schema(void)
{
    static char name[32];
    if (!name[0])
        snprintf(name, sizeof name, "iot_regtest_%ld", (long)getpid());
    return name;
}

/* `url` without the store's own pool_size parameter: a conninfo libpq takes. */
static void pg_admin_conninfo(const char *url, char *out, size_t size)
{
    snprintf(out, size, "%s", url);
    char *q = strchr(out, '?');
    if (!q)
        return;
    char *p = q + 1;
    while (*p) {
        char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (strncmp(p, "pool_size=", 10) == 0) {
            memmove(p, end ? end + 1 : p + len, strlen(end ? end + 1 : p + len) + 1);
            continue;
        }
        p = end ? end + 1 : p + len;
    }
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '&' || out[n - 1] == '?'))
        out[--n] = '\0';
}

/* The store URL: the base URL in the scratch schema, with `extra` (e.g.
 * "pool_size=2") appended to the query when non-empty. */
static void pg_store_url(const char *base, const char *extra, char *out, size_t size)
{
    snprintf(out, size, "%s%soptions=-csearch_path%%3D%s&application_name=%s%s%s", base,
             strchr(base, '?') ? "&" : "?", pg_schema(), pg_schema(), extra[0] ? "&" : "", extra);
}

/* Runs `sql` (no result wanted) on a connection of its own; 0 or -1. */
static int pg_admin_exec(const char *sql)
{
    char conninfo[1100];
    pg_admin_conninfo(g_base_url, conninfo, sizeof conninfo);
    PGconn *pg = PQconnectdb(conninfo);
    int rc = -1;
    if (PQstatus(pg) == CONNECTION_OK) {
        PQclear(PQexec(pg, "SET client_min_messages = warning")); /* no "drop cascades" */
        PGresult *r = PQexec(pg, sql);
        ExecStatusType st = PQresultStatus(r);
        rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
        if (rc)
            fprintf(stderr, "postgres: %s: %s", sql, PQerrorMessage(pg));
        PQclear(r);
    } else {
        fprintf(stderr, "postgres: cannot connect for the test reset: %s", PQerrorMessage(pg));
    }
    PQfinish(pg);
    return rc;
}

/* An empty registry: the scratch schema dropped and created again. */
static int pg_reset(void)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", pg_schema(),
             pg_schema());
    return pg_admin_exec(sql);
}

static int pg_drop_schema(void **state)
{
    (void)state;
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", pg_schema());
    return is_postgres(g_base_url) ? pg_admin_exec(sql) : 0;
}

/* ---- fixture (cont.) ----------------------------------------------------- */

/* A URL for a fresh store on the current backend. */
static void fresh_url(struct fixture *fx)
{
    fx->path[0] = '\0';
    if (sqlite_file_path(g_base_url)) {
        snprintf(fx->url, sizeof fx->url, "%s-%ld-%u.db", g_base_url, (long)getpid(),
                 atomic_fetch_add(&g_seq, 1));
        snprintf(fx->path, sizeof fx->path, "%s", sqlite_file_path(fx->url));
        contract_remove_sqlite_files(fx->path);
    } else if (is_postgres(g_base_url)) {
        pg_store_url(g_base_url, "", fx->url, sizeof fx->url);
    } else {
        snprintf(fx->url, sizeof fx->url, "%s", g_base_url);
    }
}

/* A fresh URL (and for PostgreSQL an empty schema), no store opened. */
static int setup_unopened(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    fresh_url(fx);
    if (is_postgres(g_base_url) && pg_reset() != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    if (setup_unopened(state) != 0)
        return -1;
    struct fixture *fx = *state;
    int rc = iot_registry_open(fx->url, &fx->reg);
    if (rc != IOT_OK) {
        fprintf(stderr, "open: %s\n", iot_strerror(rc)); /* not the URL: it has a password */
        free(fx);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    iot_clock_override(NULL);
    iot_registry_close(&fx->reg);
    if (fx->path[0])
        contract_remove_sqlite_files(fx->path);
    free(fx);
    return 0;
}

static struct iot_registry *REG(void **state)
{
    return &((struct fixture *)*state)->reg;
}

/* ---- helpers ----------------------------------------------------------- */

static _Atomic int64_t fake_now;
static int64_t fake_clock(void) { return atomic_load(&fake_now); }

static void use_fake_clock(int64_t now)
{
    atomic_store(&fake_now, now);
    iot_clock_override(fake_clock);
}

static void fill_user(struct iot_user *u, const char *name)
{
    memset(u, 0, sizeof *u);
    snprintf(u->username, sizeof u->username, "%s", name);
    snprintf(u->email, sizeof u->email, "%.60s@example.com", name);
    snprintf(u->password_hash, sizeof u->password_hash, "$argon2id$v=19$m=65536$%.60s", name);
    u->is_active = true;
}

static int64_t mk_user(struct iot_registry *r, const char *name)
{
    struct iot_user u;
    fill_user(&u, name);
    assert_rc(iot_reg_user_create(r, &u), IOT_OK);
    assert_true(u.id > 0);
    return u.id;
}

static void fill_device(struct iot_device *d, int64_t owner, const char *name, const char *status,
                        const char *type)
{
    static atomic_uint key_seq;
    memset(d, 0, sizeof *d);
    d->user_id = owner;
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->status, sizeof d->status, "%s", status);
    snprintf(d->device_type, sizeof d->device_type, "%s", type);
    snprintf(d->api_key_hash, sizeof d->api_key_hash, "%064x", atomic_fetch_add(&key_seq, 1) + 1);
    memcpy(d->api_key_prefix, "abcd1234", 9);
}

static int64_t mk_device(struct iot_registry *r, int64_t owner, const char *name,
                         const char *status, const char *type)
{
    struct iot_device d;
    fill_device(&d, owner, name, status, type);
    assert_rc(iot_reg_device_create(r, &d), IOT_OK);
    assert_true(d.id > 0);
    return d.id;
}

static int64_t mk_group(struct iot_registry *r, int64_t owner, const char *name)
{
    struct iot_group g = {.user_id = owner};
    snprintf(g.name, sizeof g.name, "%s", name);
    memcpy(g.color, "#00FF7f", 8);
    assert_rc(iot_reg_group_create(r, &g), IOT_OK);
    assert_true(g.id > 0);
    return g.id;
}

/* Collects what a scan delivered. */
struct seen_rows {
    int64_t ids[512];
    int64_t added[512];
    int n;
    int stop_after; /* 0: never stop */
};

static int push(struct seen_rows *s, int64_t id, int64_t added)
{
    if (s->n < 512) {
        s->ids[s->n] = id;
        s->added[s->n] = added;
    }
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

static int on_user(void *ctx, const struct iot_user *u) { return push(ctx, u->id, 0); }
static int on_device(void *ctx, const struct iot_device *d) { return push(ctx, d->id, 0); }
static int on_group(void *ctx, const struct iot_group *g) { return push(ctx, g->id, g->device_count); }
static int on_member(void *ctx, const struct iot_device *d, int64_t at) { return push(ctx, d->id, at); }
static int on_dgroup(void *ctx, const struct iot_group *g, int64_t at) { return push(ctx, g->id, at); }

static void assert_ids(const struct seen_rows *s, const int64_t *want, int n)
{
    assert_i64(s->n, n);
    for (int i = 0; i < n; i++)
        assert_i64(s->ids[i], want[i]);
}

static int64_t group_count(struct iot_registry *r, int64_t gid)
{
    struct iot_group g;
    assert_rc(iot_reg_group_get(r, gid, &g), IOT_OK);
    return g.device_count;
}

/* ---- users ------------------------------------------------------------- */

static void test_ping(void **state)
{
    assert_rc(iot_reg_ping(REG(state)), IOT_OK);
}

static void assert_same_user(const struct iot_user *a, const struct iot_user *b)
{
    assert_i64(a->id, b->id);
    assert_string_equal(a->user_id, b->user_id);
    assert_string_equal(a->username, b->username);
    assert_string_equal(a->email, b->email);
    assert_string_equal(a->password_hash, b->password_hash);
    assert_i64(a->is_active, b->is_active);
    assert_i64(a->is_admin, b->is_admin);
    assert_i64(a->created_at, b->created_at);
    assert_i64(a->updated_at, b->updated_at);
    assert_i64(a->last_login, b->last_login);
}

static void test_user_create_get(void **state)
{
    struct iot_registry *r = REG(state);
    use_fake_clock(1700000000123);
    struct iot_user u, got;
    fill_user(&u, "alice");
    u.is_admin = true;
    assert_rc(iot_reg_user_create(r, &u), IOT_OK);
    assert_true(u.id > 0);
    assert_i64(strlen(u.user_id), IOT_USER_ID_LEN);
    assert_i64(strspn(u.user_id, "0123456789abcdef"), IOT_USER_ID_LEN);
    assert_i64(u.created_at, 1700000000123);
    assert_i64(u.updated_at, 1700000000123);
    assert_i64(u.last_login, 0);

    assert_rc(iot_reg_user_get_by_id(r, u.id, &got), IOT_OK);
    assert_same_user(&got, &u);
    assert_rc(iot_reg_user_get_by_user_id(r, u.user_id, &got), IOT_OK);
    assert_same_user(&got, &u);
    assert_rc(iot_reg_user_get_by_username(r, "alice", &got), IOT_OK);
    assert_same_user(&got, &u);
    assert_rc(iot_reg_user_get_by_email(r, "alice@example.com", &got), IOT_OK);
    assert_same_user(&got, &u);

    assert_rc(iot_reg_user_get_by_id(r, u.id + 1000, &got), IOT_ENOTFOUND);
    assert_rc(iot_reg_user_get_by_user_id(r, "0123456789abcdef0123456789abcdef", &got),
                     IOT_ENOTFOUND);
    assert_rc(iot_reg_user_get_by_username(r, "Alice", &got), IOT_OK); /* any case */
    assert_same_user(&got, &u);
    assert_rc(iot_reg_user_get_by_email(r, "bob@example.com", &got), IOT_ENOTFOUND);

    /* Generated ids differ. */
    struct iot_user v;
    fill_user(&v, "bob");
    assert_rc(iot_reg_user_create(r, &v), IOT_OK);
    assert_true(v.id != u.id);
    assert_string_not_equal(v.user_id, u.user_id);
}

static void test_user_explicit_fields(void **state)
{
    struct iot_registry *r = REG(state);
    struct iot_user u, got;
    fill_user(&u, "carol");
    memcpy(u.user_id, "ffffffffffffffffffffffffffffffff", IOT_USER_ID_LEN + 1);
    u.created_at = 1000;
    u.updated_at = 2000;
    u.last_login = 3000;
    u.is_active = false;
    assert_rc(iot_reg_user_create(r, &u), IOT_OK);
    assert_string_equal(u.user_id, "ffffffffffffffffffffffffffffffff");
    assert_rc(iot_reg_user_get_by_id(r, u.id, &got), IOT_OK);
    assert_same_user(&got, &u);
    assert_i64(got.created_at, 1000);
    assert_i64(got.last_login, 3000);
    assert_false(got.is_active);
}

static void test_user_unique(void **state)
{
    struct iot_registry *r = REG(state);
    struct iot_user a, b;
    fill_user(&a, "dave");
    assert_rc(iot_reg_user_create(r, &a), IOT_OK);

    fill_user(&b, "dave"); /* same username, other email */
    snprintf(b.email, sizeof b.email, "other@example.com");
    assert_rc(iot_reg_user_create(r, &b), IOT_ECONFLICT);
    assert_i64(b.id, 0); /* the caller's struct is untouched on failure */

    fill_user(&b, "dave2"); /* same email */
    snprintf(b.email, sizeof b.email, "dave@example.com");
    assert_rc(iot_reg_user_create(r, &b), IOT_ECONFLICT);

    fill_user(&b, "dave3"); /* same user_id */
    memcpy(b.user_id, a.user_id, sizeof b.user_id);
    assert_rc(iot_reg_user_create(r, &b), IOT_ECONFLICT);

    int64_t total = -1;
    assert_rc(iot_reg_user_list(r, (struct iot_page){.limit = 0}, NULL, NULL, &total),
                     IOT_OK);
    assert_i64(total, 1);
}

/* Usernames and emails are one account whatever their ASCII case: lookups
 * find it, and the database refuses a second one (on create and update). */
static void test_user_case_insensitive(void **state)
{
    struct iot_registry *r = REG(state);
    struct iot_user a, b, got;
    fill_user(&a, "Alice");
    snprintf(a.email, sizeof a.email, "Alice.Smith@Example.COM");
    assert_rc(iot_reg_user_create(r, &a), IOT_OK);
    const char *names[] = {"alice", "ALICE", "aLiCe", "Alice"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        assert_rc(iot_reg_user_get_by_username(r, names[i], &got), IOT_OK);
        assert_i64(got.id, a.id);
        assert_string_equal(got.username, "Alice"); /* stored as registered */
    }
    assert_rc(iot_reg_user_get_by_email(r, "alice.smith@example.com", &got), IOT_OK);
    assert_i64(got.id, a.id);
    assert_rc(iot_reg_user_get_by_username(r, "alic", &got), IOT_ENOTFOUND);

    fill_user(&b, "ALICE"); /* same name in another case, other email */
    assert_rc(iot_reg_user_create(r, &b), IOT_ECONFLICT);
    fill_user(&b, "bob"); /* other name, same email in another case */
    snprintf(b.email, sizeof b.email, "ALICE.SMITH@example.com");
    assert_rc(iot_reg_user_create(r, &b), IOT_ECONFLICT);

    fill_user(&b, "bob");
    assert_rc(iot_reg_user_create(r, &b), IOT_OK);
    struct iot_user c = b;
    snprintf(c.username, sizeof c.username, "alice");
    assert_rc(iot_reg_user_update(r, &c), IOT_ECONFLICT);
    c = b;
    snprintf(c.email, sizeof c.email, "alice.smith@EXAMPLE.com");
    assert_rc(iot_reg_user_update(r, &c), IOT_ECONFLICT);
    c = a; /* a user may change the case of their own name */
    snprintf(c.username, sizeof c.username, "ALICE");
    assert_rc(iot_reg_user_update(r, &c), IOT_OK);
    assert_rc(iot_reg_user_get_by_username(r, "alice", &got), IOT_OK);
    assert_string_equal(got.username, "ALICE");

    /* Only ASCII folds, the same on every backend: these are two names. */
    mk_user(r, "\xc3\x89mile"); /* Émile */
    mk_user(r, "\xc3\xa9mile"); /* émile */
    assert_rc(iot_reg_user_get_by_username(r, "\xc3\xa9MILE", &got), IOT_OK);
    assert_string_equal(got.username, "\xc3\xa9mile");
}

static void test_user_update(void **state)
{
    struct iot_registry *r = REG(state);
    struct iot_user a, b, got;
    fill_user(&a, "erin");
    fill_user(&b, "frank");
    assert_rc(iot_reg_user_create(r, &a), IOT_OK);
    assert_rc(iot_reg_user_create(r, &b), IOT_OK);

    struct iot_user upd = a;
    snprintf(upd.username, sizeof upd.username, "erin2");
    snprintf(upd.email, sizeof upd.email, "erin2@example.com");
    snprintf(upd.password_hash, sizeof upd.password_hash, "newhash");
    upd.is_active = false;
    upd.is_admin = true;
    upd.updated_at = a.updated_at + 5;
    upd.last_login = 123456;
    assert_rc(iot_reg_user_update(r, &upd), IOT_OK);
    assert_rc(iot_reg_user_get_by_id(r, a.id, &got), IOT_OK);
    assert_same_user(&got, &upd);
    assert_rc(iot_reg_user_get_by_username(r, "erin", &got), IOT_ENOTFOUND);

    /* last_login back to "never" */
    upd.last_login = 0;
    assert_rc(iot_reg_user_update(r, &upd), IOT_OK);
    assert_rc(iot_reg_user_get_by_id(r, a.id, &got), IOT_OK);
    assert_i64(got.last_login, 0);

    /* Renames onto the other user conflict and change nothing. */
    struct iot_user clash = upd;
    snprintf(clash.username, sizeof clash.username, "frank");
    assert_rc(iot_reg_user_update(r, &clash), IOT_ECONFLICT);
    clash = upd;
    snprintf(clash.email, sizeof clash.email, "frank@example.com");
    assert_rc(iot_reg_user_update(r, &clash), IOT_ECONFLICT);
    assert_rc(iot_reg_user_get_by_id(r, a.id, &got), IOT_OK);
    assert_same_user(&got, &upd);

    clash.id = b.id + 1000;
    assert_rc(iot_reg_user_update(r, &clash), IOT_ENOTFOUND);
}

static void test_user_delete_cascade(void **state)
{
    struct iot_registry *r = REG(state);
    int64_t u1 = mk_user(r, "gina"), u2 = mk_user(r, "hank");
    int64_t d1 = mk_device(r, u1, "g-dev1", "active", "sensor");
    int64_t d2 = mk_device(r, u1, "g-dev2", "active", "sensor");
    int64_t d3 = mk_device(r, u2, "h-dev1", "active", "sensor");
    int64_t g1 = mk_group(r, u1, "g-group");
    int64_t g2 = mk_group(r, u2, "h-group");
    assert_rc(iot_reg_member_add(r, g1, d1, NULL), IOT_OK);
    assert_rc(iot_reg_member_add(r, g1, d3, NULL), IOT_OK);
    assert_rc(iot_reg_member_add(r, g2, d2, NULL), IOT_OK);
    assert_rc(iot_reg_member_add(r, g2, d3, NULL), IOT_OK);
    assert_i64(group_count(r, g2), 2);

    assert_rc(iot_reg_user_delete(r, u1), IOT_OK);
    struct iot_user u;
    struct iot_device d;
    struct iot_group g;
    assert_rc(iot_reg_user_get_by_id(r, u1, &u), IOT_ENOTFOUND);
    assert_rc(iot_reg_device_get(r, d1, &d), IOT_ENOTFOUND);
    assert_rc(iot_reg_device_get(r, d2, &d), IOT_ENOTFOUND);
    assert_rc(iot_reg_group_get(r, g1, &g), IOT_ENOTFOUND);
    /* hank's group lost gina's device, kept his own */
    assert_i64(group_count(r, g2), 1);
    struct seen_rows s = {0};
    assert_rc(iot_reg_device_groups(r, d3, on_dgroup, &s), IOT_OK);
    assert_ids(&s, (int64_t[]){g2}, 1);
    int64_t total = -1;
    assert_rc(iot_reg_device_list(r, NULL, (struct iot_page){0}, NULL, NULL, &total),
                     IOT_OK);
    assert_i64(total, 1);
    assert_rc(iot_reg_user_delete(r, u1), IOT_ENOTFOUND);
}

static void test_user_list_paging(void **state)
{
    struct iot_registry *r = REG(state);
    int64_t ids[7];
    for (int i = 0; i < 7; i++) {
        char name[16];
        snprintf(name, sizeof name, "user%d", i);
        ids[i] = mk_user(r, name);
    }
    struct seen_rows s = {0};
    int64_t total = -1;
    assert_rc(iot_reg_user_list(r, (struct iot_page){.limit = 3, .offset = 0}, on_user,
                                       &s, &total),
                     IOT_OK);
    assert_i64(total, 7);
    assert_ids(&s, ids, 3);
    s = (struct seen_rows){0};
    assert_rc(iot_reg_user_list(r, (struct iot_page){.limit = 3, .offset = 6}, on_user,
                                       &s, &total),
                     IOT_OK);
    assert_ids(&s, ids + 6, 1);
    s = (struct seen_rows){0};
    assert_rc(iot_reg_user_list(r, (struct iot_page){.limit = 3, .offset = 50}, on_user,
                                       &s, NULL),
                     IOT_OK);
    assert_i64(s.n, 0);
    /* limit 0: total only */
    s = (struct seen_rows){0};
    total = -1;
    assert_rc(iot_reg_user_list(r, (struct iot_page){.limit = 0}, on_user, &s, &total),
                     IOT_OK);
    assert_i64(s.n, 0);
    assert_i64(total, 7);
    /* early stop */
    s = (struct seen_rows){.stop_after = 2};
    assert_rc(iot_reg_user_list(r, (struct iot_page){.limit = 100}, on_user, &s, NULL),
                     IOT_OK);
    assert_ids(&s, ids, 2);
    assert_rc(iot_reg_user_list(r, (struct iot_page){.limit = -1}, on_user, &s, NULL),
                     IOT_EINVAL);
}

/* ---- devices ----------------------------------------------------------- */

static void assert_same_device(const struct iot_device *a, const struct iot_device *b)
{
    assert_i64(a->id, b->id);
    assert_i64(a->user_id, b->user_id);
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->description, b->description);
    assert_string_equal(a->device_type, b->device_type);
    assert_string_equal(a->status, b->status);
    assert_string_equal(a->location, b->location);
    assert_string_equal(a->firmware_version, b->firmware_version);
    assert_string_equal(a->hardware_version, b->hardware_version);
    assert_string_equal(a->api_key_hash, b->api_key_hash);
    assert_string_equal(a->api_key_prefix, b->api_key_prefix);
    assert_i64(a->created_at, b->created_at);
    assert_i64(a->updated_at, b->updated_at);
    assert_i64(a->last_seen, b->last_seen);
}

static void test_device_create_get(void **state)
{
    struct iot_registry *r = REG(state);
    use_fake_clock(1700000001000);
    int64_t owner = mk_user(r, "ivy");
    struct iot_device d, got;
    fill_device(&d, owner, "thermo", "", "temperature_sensor");
    snprintf(d.description, sizeof d.description, "kitchen thermometer");
    snprintf(d.location, sizeof d.location, "Kitchen");
    snprintf(d.firmware_version, sizeof d.firmware_version, "1.2.3");
    snprintf(d.hardware_version, sizeof d.hardware_version, "rev-b");
    assert_rc(iot_reg_device_create(r, &d), IOT_OK);
    assert_true(d.id > 0);
    assert_string_equal(d.status, "active"); /* empty status defaults to active */
    assert_i64(d.created_at, 1700000001000);
    assert_i64(d.updated_at, 1700000001000);
    assert_i64(d.last_seen, 0);

    assert_rc(iot_reg_device_get(r, d.id, &got), IOT_OK);
    assert_same_device(&got, &d);
    assert_rc(iot_reg_device_get_by_key_hash(r, d.api_key_hash, &got), IOT_OK);
    assert_same_device(&got, &d);
    assert_rc(iot_reg_device_get(r, d.id + 99, &got), IOT_ENOTFOUND);
    assert_rc(iot_reg_device_get_by_key_hash(r, "00", &got), IOT_ENOTFOUND);

    /* explicit timestamps and last_seen round-trip */
    struct iot_device e;
    fill_device(&e, owner, "thermo2", "maintenance", "t");
    e.created_at = 10;
    e.updated_at = 20;
    e.last_seen = 30;
    assert_rc(iot_reg_device_create(r, &e), IOT_OK);
    assert_rc(iot_reg_device_get(r, e.id, &got), IOT_OK);
    assert_same_device(&got, &e);

    /* unknown owner */
    fill_device(&e, owner + 1000, "orphan", "active", "t");
    assert_rc(iot_reg_device_create(r, &e), IOT_ENOTFOUND);
}

/* Every device read carries its owner's is_active, in the same query. */
static void test_device_owner_active(void **state)
{
    struct iot_registry *r = REG(state);
    struct iot_user u;
    fill_user(&u, "owner");
    assert_rc(iot_reg_user_create(r, &u), IOT_OK);
    struct iot_device d, got;
    fill_device(&d, u.id, "dev", "active", "t");
    assert_rc(iot_reg_device_create(r, &d), IOT_OK);
    assert_rc(iot_reg_device_get_by_key_hash(r, d.api_key_hash, &got), IOT_OK);
    assert_true(got.owner_active);
    assert_true(iot_device_key_usable(&got));

    u.is_active = false;
    assert_rc(iot_reg_user_update(r, &u), IOT_OK);
    assert_rc(iot_reg_device_get_by_key_hash(r, d.api_key_hash, &got), IOT_OK);
    assert_false(got.owner_active);
    assert_false(iot_device_key_usable(&got));
    assert_rc(iot_reg_device_get(r, d.id, &got), IOT_OK);
    assert_false(got.owner_active);
    struct seen_rows rows = {0};
    struct iot_device_filter f = {.user_id = u.id};
    assert_rc(iot_reg_device_list(r, &f, (struct iot_page){.limit = 10}, on_device, &rows, NULL),
              IOT_OK);
    assert_i64(rows.n, 1);

    /* writes ignore it: an update does not reactivate anyone */
    got.owner_active = true;
    assert_rc(iot_reg_device_update(r, &got), IOT_OK);
    assert_rc(iot_reg_device_get(r, d.id, &got), IOT_OK);
    assert_false(got.owner_active);

    u.is_active = true;
    assert_rc(iot_reg_user_update(r, &u), IOT_OK);
    assert_rc(iot_reg_device_get_by_key_hash(r, d.api_key_hash, &got), IOT_OK);
    assert_true(got.owner_active);
}

/* status_set_by: "new" by default, kept by an update that leaves it empty,
 * and iot_device_held_off only for a device an admin switched off. */
static void test_device_status_set_by(void **state)
{
    struct iot_registry *r = REG(state);
    int64_t u = mk_user(r, "setter");
    struct iot_device d, got;
    fill_device(&d, u, "dev", "inactive", "t");
    assert_rc(iot_reg_device_create(r, &d), IOT_OK);
    assert_string_equal(d.status_set_by, IOT_STATUS_BY_NEW);
    assert_rc(iot_reg_device_get(r, d.id, &got), IOT_OK);
    assert_string_equal(got.status_set_by, IOT_STATUS_BY_NEW);
    assert_false(iot_device_held_off(&got));

    snprintf(got.status_set_by, sizeof got.status_set_by, IOT_STATUS_BY_ADMIN);
    snprintf(got.status, sizeof got.status, "maintenance");
    assert_rc(iot_reg_device_update(r, &got), IOT_OK);
    got.status_set_by[0] = '\0'; /* empty: keep the stored one */
    snprintf(got.location, sizeof got.location, "roof");
    assert_rc(iot_reg_device_update(r, &got), IOT_OK);
    assert_rc(iot_reg_device_get_by_key_hash(r, d.api_key_hash, &got), IOT_OK);
    assert_string_equal(got.status_set_by, IOT_STATUS_BY_ADMIN);
    assert_string_equal(got.location, "roof");
    assert_true(iot_device_held_off(&got));
    assert_false(iot_device_key_usable(&got));

    snprintf(got.status, sizeof got.status, "active");
    assert_true(iot_device_key_usable(&got)); /* on again: usable */

    fill_device(&d, u, "dev2", "inactive", "t");
    snprintf(d.status_set_by, sizeof d.status_set_by, IOT_STATUS_BY_DEVICE);
    assert_rc(iot_reg_device_create(r, &d), IOT_OK);
    assert_rc(iot_reg_device_get(r, d.id, &got), IOT_OK);
    assert_string_equal(got.status_set_by, IOT_STATUS_BY_DEVICE);
    assert_false(iot_device_held_off(&got));

    /* only the three values: the database refuses others */
    snprintf(got.status_set_by, sizeof got.status_set_by, "owner");
    assert_rc(iot_reg_device_update(r, &got), IOT_EINVAL);
    fill_device(&d, u, "dev3", "inactive", "t");
    snprintf(d.status_set_by, sizeof d.status_set_by, "somebody");
    assert_rc(iot_reg_device_create(r, &d), IOT_EINVAL);
    assert_rc(iot_reg_device_get(r, got.id, &got), IOT_OK);
    assert_string_equal(got.status_set_by, IOT_STATUS_BY_DEVICE);
}

#define OWN_ALL (IOT_REG_OWN_LOCATION | IOT_REG_OWN_FIRMWARE | IOT_REG_OWN_HARDWARE)

/* The device's own write: only status, location, versions and updated_at;
 * status_set_by follows a status change; and never over an admin's
 * switch-off, whatever the caller's (cached) copy says. */
static void test_device_update_by_device(void **state)
{
    struct iot_registry *r = REG(state);
    int64_t u = mk_user(r, "selfwriter");
    struct iot_device d, got;
    fill_device(&d, u, "dev", "inactive", "t");
    d.last_seen = 500;
    assert_rc(iot_reg_device_create(r, &d), IOT_OK);

    /* first use: new → active by the device; other columns untouched */
    struct iot_device w = d;
    snprintf(w.status, sizeof w.status, "active");
    snprintf(w.name, sizeof w.name, "renamed");    /* not the device's to write */
    snprintf(w.status_set_by, sizeof w.status_set_by, IOT_STATUS_BY_ADMIN); /* ignored */
    w.last_seen = 0;
    w.updated_at = 777;
    assert_rc(iot_reg_device_update_by_device(r, &w, OWN_ALL), IOT_OK);
    assert_rc(iot_reg_device_get(r, d.id, &got), IOT_OK);
    assert_string_equal(got.status, "active");
    assert_string_equal(got.status_set_by, IOT_STATUS_BY_DEVICE);
    assert_string_equal(got.name, "dev");
    assert_string_equal(got.api_key_hash, d.api_key_hash);
    assert_i64(got.last_seen, 500);
    assert_i64(got.updated_at, 777);

    /* an admin switches it on: a write that keeps the status keeps "admin" */
    struct iot_device cached = got; /* what another instance's key cache holds */
    snprintf(got.status_set_by, sizeof got.status_set_by, IOT_STATUS_BY_ADMIN);
    assert_rc(iot_reg_device_update(r, &got), IOT_OK);
    w = cached;
    snprintf(w.firmware_version, sizeof w.firmware_version, "2.0");
    snprintf(w.location, sizeof w.location, "attic");
    snprintf(w.hardware_version, sizeof w.hardware_version, "rev-c");
    assert_rc(iot_reg_device_update_by_device(r, &w, OWN_ALL), IOT_OK);
    assert_rc(iot_reg_device_get(r, d.id, &got), IOT_OK);
    assert_string_equal(got.status_set_by, IOT_STATUS_BY_ADMIN);
    assert_string_equal(got.firmware_version, "2.0");
    assert_string_equal(got.location, "attic");
    assert_string_equal(got.hardware_version, "rev-c");

    /* an admin switches it off; the stale copy says active/device */
    snprintf(got.status, sizeof got.status, "maintenance");
    assert_rc(iot_reg_device_update(r, &got), IOT_OK);
    w = cached; /* status "active": would undo the switch-off */
    snprintf(w.firmware_version, sizeof w.firmware_version, "3.0");
    assert_rc(iot_reg_device_update_by_device(r, &w, OWN_ALL), IOT_ECONFLICT);
    assert_rc(iot_reg_device_get(r, d.id, &got), IOT_OK);
    assert_string_equal(got.status, "maintenance");
    assert_string_equal(got.status_set_by, IOT_STATUS_BY_ADMIN);
    assert_string_equal(got.firmware_version, "2.0");
    assert_true(iot_device_held_off(&got));
    /* keeping the admin's status, the device may still report firmware */
    snprintf(w.status, sizeof w.status, "maintenance");
    assert_rc(iot_reg_device_update_by_device(r, &w, IOT_REG_OWN_FIRMWARE), IOT_OK);
    assert_rc(iot_reg_device_get(r, d.id, &got), IOT_OK);
    assert_string_equal(got.status, "maintenance");
    assert_string_equal(got.status_set_by, IOT_STATUS_BY_ADMIN);
    assert_string_equal(got.firmware_version, "3.0");
    /* only the fields the device sent: the copy's others are not written */
    snprintf(w.location, sizeof w.location, "stale");
    snprintf(w.firmware_version, sizeof w.firmware_version, "3.1");
    snprintf(w.hardware_version, sizeof w.hardware_version, "stale");
    assert_rc(iot_reg_device_update_by_device(r, &w, IOT_REG_OWN_FIRMWARE), IOT_OK);
    assert_rc(iot_reg_device_get(r, d.id, &got), IOT_OK);
    assert_string_equal(got.firmware_version, "3.1");
    assert_string_equal(got.location, "attic");
    assert_string_equal(got.hardware_version, "rev-c");
    w.location[0] = '\0'; /* "" is a value (cleared), not "unchanged" */
    assert_rc(iot_reg_device_update_by_device(r, &w, IOT_REG_OWN_LOCATION), IOT_OK);
    assert_rc(iot_reg_device_get(r, d.id, &got), IOT_OK);
    assert_string_equal(got.location, "");
    assert_string_equal(got.hardware_version, "rev-c");

    /* heartbeats (last_seen batches) leave status alone too */
    struct iot_seen s = {.device_id = d.id, .last_seen = 900};
    assert_rc(iot_reg_device_touch(r, &s, 1), IOT_OK);
    assert_rc(iot_reg_device_get(r, d.id, &got), IOT_OK);
    assert_string_equal(got.status, "maintenance");
    assert_string_equal(got.status_set_by, IOT_STATUS_BY_ADMIN);
    assert_i64(got.last_seen, 900);

    /* a device that switched itself off switches itself on */
    fill_device(&d, u, "dev2", "maintenance", "t");
    snprintf(d.status_set_by, sizeof d.status_set_by, IOT_STATUS_BY_DEVICE);
    assert_rc(iot_reg_device_create(r, &d), IOT_OK);
    snprintf(d.status, sizeof d.status, "active");
    assert_rc(iot_reg_device_update_by_device(r, &d, OWN_ALL), IOT_OK);
    assert_rc(iot_reg_device_get(r, d.id, &got), IOT_OK);
    assert_string_equal(got.status, "active");
    assert_string_equal(got.status_set_by, IOT_STATUS_BY_DEVICE);

    d.id += 1000;
    assert_rc(iot_reg_device_update_by_device(r, &d, OWN_ALL), IOT_ENOTFOUND);
}

/* Devices writing "active" in a loop while an admin switches the device
 * off: once the admin's write is done, no device write may land, so the
 * admin's status is the last word. A check-then-write outside one atomic
 * step would let a write that checked before the switch-off land after. */
struct self_writer {
    struct iot_registry *r;
    struct iot_device d;
    atomic_int *stop;
    atomic_int ok, conflict, other; /* read by the main thread meanwhile */
};

static void *self_writer_main(void *arg)
{
    struct self_writer *w = arg;
    while (!atomic_load(w->stop)) {
        int rc = iot_reg_device_update_by_device(w->r, &w->d, 0);
        atomic_fetch_add(rc == IOT_OK ? &w->ok : rc == IOT_ECONFLICT ? &w->conflict : &w->other, 1);
    }
    return NULL;
}

static void test_device_update_by_device_race(void **state)
{
    struct iot_registry *r = REG(state);
    int64_t u = mk_user(r, "racer");
    struct iot_device d, admin;
    fill_device(&d, u, "dev", "active", "t");
    snprintf(d.status_set_by, sizeof d.status_set_by, IOT_STATUS_BY_DEVICE);
    assert_rc(iot_reg_device_create(r, &d), IOT_OK);
    enum { N = 3 };
    atomic_int stop = 0;
    struct self_writer w[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        w[i].r = r;
        w[i].d = d;
        w[i].stop = &stop;
        atomic_init(&w[i].ok, 0);
        atomic_init(&w[i].conflict, 0);
        atomic_init(&w[i].other, 0);
        assert_i64(pthread_create(&th[i], NULL, self_writer_main, &w[i]), 0);
    }
    /* let the writers get going, then switch off */
    while (atomic_load(&w[0].ok) + atomic_load(&w[N - 1].ok) < 20)
        sched_yield();
    assert_rc(iot_reg_device_get(r, d.id, &admin), IOT_OK);
    snprintf(admin.status, sizeof admin.status, "inactive");
    snprintf(admin.status_set_by, sizeof admin.status_set_by, IOT_STATUS_BY_ADMIN);
    assert_rc(iot_reg_device_update(r, &admin), IOT_OK);
    /* every writer should see the refusal after the switch; a store that
     * never refuses is caught below, after at most 10 s */
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++) {
        int seen = atomic_load(&w[i].conflict);
        while (atomic_load(&w[i].conflict) == seen && atomic_load(&w[i].other) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - t0.tv_sec > 10)
                break;
            sched_yield();
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_i64(atomic_load(&w[i].other), 0);
        assert_true(atomic_load(&w[i].conflict) > 0);
    }
    assert_rc(iot_reg_device_get(r, d.id, &admin), IOT_OK);
    assert_string_equal(admin.status, "inactive");
    assert_string_equal(admin.status_set_by, IOT_STATUS_BY_ADMIN);
}

static void test_device_unique(void **state)
{
    struct iot_registry *r = REG(state);
    int64_t u1 = mk_user(r, "jack"), u2 = mk_user(r, "kate");
    struct iot_device a, b, got;
    fill_device(&a, u1, "pump", "active", "actuator");
    assert_rc(iot_reg_device_create(r, &a), IOT_OK);
    fill_device(&b, u1, "pump", "active", "actuator"); /* same owner+name */
    assert_rc(iot_reg_device_create(r, &b), IOT_ECONFLICT);
    assert_i64(b.id, 0);
    fill_device(&b, u2, "pump", "active", "actuator"); /* other owner: fine */
    assert_rc(iot_reg_device_create(r, &b), IOT_OK);
    fill_device(&b, u2, "pump-2", "active", "actuator"); /* same key hash */
    memcpy(b.api_key_hash, a.api_key_hash, sizeof b.api_key_hash);
    assert_rc(iot_reg_device_create(r, &b), IOT_ECONFLICT);

    /* an empty key hash is "no key": never conflicts, never matches */
    fill_device(&b, u2, "nokey-1", "active", "x");
    b.api_key_hash[0] = '\0';
    assert_rc(iot_reg_device_create(r, &b), IOT_OK);
    fill_device(&b, u2, "nokey-2", "active", "x");
    b.api_key_hash[0] = '\0';
    assert_rc(iot_reg_device_create(r, &b), IOT_OK);
    assert_rc(iot_reg_device_get(r, b.id, &got), IOT_OK);
    assert_string_equal(got.api_key_hash, "");
    assert_rc(iot_reg_device_get_by_key_hash(r, "", &got), IOT_ENOTFOUND);
}

static void test_device_update(void **state)
{
    struct iot_registry *r = REG(state);
    int64_t u1 = mk_user(r, "leo"), u2 = mk_user(r, "mia");
    struct iot_device a, b, got;
    fill_device(&a, u1, "door", "active", "lock");
    fill_device(&b, u1, "window", "active", "lock");
    a.last_seen = 5000;
    assert_rc(iot_reg_device_create(r, &a), IOT_OK);
    assert_rc(iot_reg_device_create(r, &b), IOT_OK);

    struct iot_device upd = a;
    snprintf(upd.name, sizeof upd.name, "front door");
    snprintf(upd.description, sizeof upd.description, "desc");
    snprintf(upd.device_type, sizeof upd.device_type, "smart_lock");
    snprintf(upd.status, sizeof upd.status, "maintenance");
    snprintf(upd.location, sizeof upd.location, "hall");
    snprintf(upd.firmware_version, sizeof upd.firmware_version, "2.0");
    snprintf(upd.hardware_version, sizeof upd.hardware_version, "3.0");
    snprintf(upd.api_key_hash, sizeof upd.api_key_hash, "%064d", 7); /* key regenerated */
    memcpy(upd.api_key_prefix, "zzzz9999", 9);
    upd.updated_at = a.updated_at + 1;
    upd.last_seen = 6000;
    assert_rc(iot_reg_device_update(r, &upd), IOT_OK);
    assert_rc(iot_reg_device_get(r, a.id, &got), IOT_OK);
    assert_same_device(&got, &upd);
    assert_rc(iot_reg_device_get_by_key_hash(r, a.api_key_hash, &got), IOT_ENOTFOUND);
    assert_rc(iot_reg_device_get_by_key_hash(r, upd.api_key_hash, &got), IOT_OK);

    /* id, user_id and created_at are not rewritten */
    struct iot_device moved = upd;
    moved.user_id = u2;
    moved.created_at = 1;
    assert_rc(iot_reg_device_update(r, &moved), IOT_OK);
    assert_rc(iot_reg_device_get(r, a.id, &got), IOT_OK);
    assert_i64(got.user_id, u1);
    assert_i64(got.created_at, a.created_at);

    /* last_seen never moves backwards through an update */
    moved = upd;
    moved.last_seen = 10;
    assert_rc(iot_reg_device_update(r, &moved), IOT_OK);
    assert_rc(iot_reg_device_get(r, a.id, &got), IOT_OK);
    assert_i64(got.last_seen, 6000);

    /* conflicts: other device's name (same owner), other device's key */
    struct iot_device clash = upd;
    snprintf(clash.name, sizeof clash.name, "window");
    assert_rc(iot_reg_device_update(r, &clash), IOT_ECONFLICT);
    clash = upd;
    memcpy(clash.api_key_hash, b.api_key_hash, sizeof clash.api_key_hash);
    assert_rc(iot_reg_device_update(r, &clash), IOT_ECONFLICT);
    assert_rc(iot_reg_device_get(r, a.id, &got), IOT_OK);
    assert_string_equal(got.name, "front door");
    assert_string_equal(got.api_key_hash, upd.api_key_hash);

    clash.id = b.id + 1000;
    assert_rc(iot_reg_device_update(r, &clash), IOT_ENOTFOUND);
}

static void test_device_delete(void **state)
{
    struct iot_registry *r = REG(state);
    int64_t u = mk_user(r, "nina");
    int64_t d1 = mk_device(r, u, "a", "active", "t"), d2 = mk_device(r, u, "b", "active", "t");
    int64_t g = mk_group(r, u, "grp");
    assert_rc(iot_reg_member_add(r, g, d1, NULL), IOT_OK);
    assert_rc(iot_reg_member_add(r, g, d2, NULL), IOT_OK);
    assert_rc(iot_reg_device_delete(r, d1), IOT_OK);
    struct iot_device d;
    assert_rc(iot_reg_device_get(r, d1, &d), IOT_ENOTFOUND);
    assert_i64(group_count(r, g), 1);
    assert_rc(iot_reg_device_groups(r, d1, on_dgroup, &(struct seen_rows){0}),
                     IOT_ENOTFOUND);
    assert_rc(iot_reg_device_delete(r, d1), IOT_ENOTFOUND);
    /* ids are not reused after a delete (a cached id must never name
     * another device) */
    int64_t d3 = mk_device(r, u, "a", "active", "t");
    assert_true(d3 > d2);
}

static int64_t list_total(struct iot_registry *r, const struct iot_device_filter *f)
{
    int64_t total = -1;
    assert_rc(iot_reg_device_list(r, f, (struct iot_page){.limit = 0}, NULL, NULL, &total),
                     IOT_OK);
    return total;
}

static void test_device_list_filters(void **state)
{
    struct iot_registry *r = REG(state);
    int64_t u1 = mk_user(r, "olga"), u2 = mk_user(r, "pete");
    static const char *const statuses[] = {"active", "inactive", "maintenance"};
    static const char *const types[] = {"sensor", "actuator"};
    int64_t u1_sensor_active[100];
    int n_u1_sa = 0;
    int64_t all[100];
    for (int i = 0; i < 90; i++) {
        char name[16];
        snprintf(name, sizeof name, "dev%d", i);
        int64_t owner = i % 3 == 2 ? u2 : u1;
        const char *st = statuses[i % 3 == 2 ? 0 : (i / 3) % 3], *ty = types[i % 2];
        all[i] = mk_device(r, owner, name, st, ty);
        if (owner == u1 && !strcmp(st, "active") && !strcmp(ty, "sensor"))
            u1_sensor_active[n_u1_sa++] = all[i];
    }
    assert_i64(list_total(r, NULL), 90);
    assert_i64(list_total(r, &(struct iot_device_filter){0}), 90);
    assert_i64(list_total(r, &(struct iot_device_filter){.user_id = u2}), 30);
    assert_i64(list_total(r, &(struct iot_device_filter){.status = ""}), 90);
    assert_i64(list_total(r, &(struct iot_device_filter){.device_type = "actuator"}), 45);
    assert_i64(list_total(r, &(struct iot_device_filter){.user_id = u2, .status = "active"}),
                     30);
    assert_i64(list_total(r, &(struct iot_device_filter){.status = "inactive"}), 20);
    assert_i64(list_total(r, &(struct iot_device_filter){.status = "nope"}), 0);
    assert_i64(list_total(r, &(struct iot_device_filter){.user_id = u1 + u2 + 7}), 0);

    struct iot_device_filter f = {.user_id = u1, .status = "active", .device_type = "sensor"};
    int64_t total = -1;
    struct seen_rows s = {0};
    assert_rc(iot_reg_device_list(r, &f, (struct iot_page){.limit = 100}, on_device, &s,
                                         &total),
                     IOT_OK);
    assert_i64(total, n_u1_sa);
    assert_ids(&s, u1_sensor_active, n_u1_sa);

    /* pages longer than the backend's internal chunking, ascending ids */
    s = (struct seen_rows){0};
    assert_rc(iot_reg_device_list(r, NULL, (struct iot_page){.limit = 70, .offset = 5},
                                         on_device, &s, &total),
                     IOT_OK);
    assert_i64(total, 90);
    assert_ids(&s, all + 5, 70);
    s = (struct seen_rows){0};
    assert_rc(iot_reg_device_list(r, NULL, (struct iot_page){.limit = 1000, .offset = 75},
                                         on_device, &s, NULL),
                     IOT_OK);
    assert_ids(&s, all + 75, 15);
    /* early stop past the first chunk */
    s = (struct seen_rows){.stop_after = 40};
    assert_rc(iot_reg_device_list(r, NULL, (struct iot_page){.limit = 1000}, on_device, &s,
                                         NULL),
                     IOT_OK);
    assert_ids(&s, all, 40);
    /* limit 0: no rows, total filled */
    s = (struct seen_rows){0};
    assert_rc(iot_reg_device_list(r, &(struct iot_device_filter){.user_id = u1},
                                         (struct iot_page){.limit = 0}, on_device, &s, &total),
                     IOT_OK);
    assert_i64(s.n, 0);
    assert_i64(total, 60);
}

/* A callback may call back into the store, including writes. */
struct reenter {
    struct iot_registry *r;
    int calls, errors;
};

static int on_device_reenter(void *ctx, const struct iot_device *d)
{
    struct reenter *re = ctx;
    struct iot_device got;
    re->calls++;
    if (iot_reg_device_get(re->r, d->id, &got) != IOT_OK)
        re->errors++;
    snprintf(got.location, sizeof got.location, "visited");
    if (iot_reg_device_update(re->r, &got) != IOT_OK)
        re->errors++;
    return 0;
}

static void test_callback_reentry(void **state)
{
    struct iot_registry *r = REG(state);
    int64_t u = mk_user(r, "quinn");
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%d", i);
        mk_device(r, u, name, "active", "t");
    }
    struct reenter re = {.r = r};
    assert_rc(iot_reg_device_list(r, NULL, (struct iot_page){.limit = 100},
                                         on_device_reenter, &re, NULL),
                     IOT_OK);
    assert_i64(re.calls, 40);
    assert_i64(re.errors, 0);
}

static void test_device_touch(void **state)
{
    struct iot_registry *r = REG(state);
    int64_t u = mk_user(r, "rita");
    int64_t d1 = mk_device(r, u, "a", "active", "t"), d2 = mk_device(r, u, "b", "active", "t");
    struct iot_seen batch[] = {
        {d1, 1000}, {d2, 3000}, {d1, 2000}, {d1, 1500}, {d2 + 777, 9999}, {d2, 0},
    };
    assert_rc(iot_reg_device_touch(r, batch, 6), IOT_OK);
    struct iot_device got;
    assert_rc(iot_reg_device_get(r, d1, &got), IOT_OK);
    assert_i64(got.last_seen, 2000);
    assert_rc(iot_reg_device_get(r, d2, &got), IOT_OK);
    assert_i64(got.last_seen, 3000);
    /* an older time never moves it back */
    assert_rc(iot_reg_device_touch(r, (struct iot_seen[]){{d1, 100}}, 1), IOT_OK);
    assert_rc(iot_reg_device_get(r, d1, &got), IOT_OK);
    assert_i64(got.last_seen, 2000);
    assert_rc(iot_reg_device_touch(r, NULL, 0), IOT_OK);

    /* a large batch, one transaction */
    struct iot_seen *big = calloc(2000, sizeof *big);
    assert_non_null(big);
    for (int i = 0; i < 2000; i++)
        big[i] = (struct iot_seen){.device_id = i % 2 ? d1 : d2, .last_seen = 10000 + i};
    assert_rc(iot_reg_device_touch(r, big, 2000), IOT_OK);
    free(big);
    assert_rc(iot_reg_device_get(r, d1, &got), IOT_OK);
    assert_i64(got.last_seen, 11999);
    assert_rc(iot_reg_device_get(r, d2, &got), IOT_OK);
    assert_i64(got.last_seen, 11998);
}

static void test_device_stats(void **state)
{
    struct iot_registry *r = REG(state);
    struct iot_device_stats st;
    assert_rc(iot_reg_device_stats(r, 0, &st), IOT_OK);
    assert_i64(st.total, 0);
    assert_i64(st.online, 0);
    int64_t u = mk_user(r, "sam");
    int64_t a1 = mk_device(r, u, "a1", "active", "t");
    int64_t a2 = mk_device(r, u, "a2", "active", "t");
    mk_device(r, u, "a3", "active", "t"); /* never seen */
    int64_t i1 = mk_device(r, u, "i1", "inactive", "t");
    mk_device(r, u, "m1", "maintenance", "t");
    mk_device(r, u, "m2", "maintenance", "t");
    struct iot_seen seen[] = {{a1, 5000}, {a2, 1000}, {i1, 9000}};
    assert_rc(iot_reg_device_touch(r, seen, 3), IOT_OK);
    assert_rc(iot_reg_device_stats(r, 2000, &st), IOT_OK);
    assert_i64(st.total, 6);
    assert_i64(st.active, 3);
    assert_i64(st.inactive, 1);
    assert_i64(st.maintenance, 2);
    assert_i64(st.online, 1); /* a1 only: i1 is not active, a3 never seen */
    assert_rc(iot_reg_device_stats(r, 1000, &st), IOT_OK);
    assert_i64(st.online, 2);
    assert_rc(iot_reg_device_stats(r, 0, &st), IOT_OK);
    assert_i64(st.online, 2); /* "never" is not online */
}

/* ---- groups ------------------------------------------------------------ */

static void test_group_crud(void **state)
{
    struct iot_registry *r = REG(state);
    use_fake_clock(1700000002000);
    int64_t u1 = mk_user(r, "tom"), u2 = mk_user(r, "uma");
    struct iot_group g = {.user_id = u1}, got;
    snprintf(g.name, sizeof g.name, "Living room");
    snprintf(g.description, sizeof g.description, "all the lights");
    assert_rc(iot_reg_group_create(r, &g), IOT_OK);
    assert_true(g.id > 0);
    assert_i64(g.created_at, 1700000002000);
    assert_i64(g.updated_at, 1700000002000);
    assert_rc(iot_reg_group_get(r, g.id, &got), IOT_OK);
    assert_string_equal(got.name, "Living room");
    assert_string_equal(got.description, "all the lights");
    assert_string_equal(got.color, ""); /* unset */
    assert_i64(got.user_id, u1);
    assert_i64(got.device_count, 0);
    assert_i64(got.created_at, g.created_at);

    struct iot_group dup = {.user_id = u1};
    snprintf(dup.name, sizeof dup.name, "Living room");
    assert_rc(iot_reg_group_create(r, &dup), IOT_ECONFLICT);
    dup.user_id = u2;
    assert_rc(iot_reg_group_create(r, &dup), IOT_OK);
    int64_t other = mk_group(r, u1, "Garage");
    dup.user_id = u1 + u2 + 100;
    snprintf(dup.name, sizeof dup.name, "orphan");
    assert_rc(iot_reg_group_create(r, &dup), IOT_ENOTFOUND);

    atomic_store(&fake_now, 1700000003000);
    struct iot_group upd = got;
    snprintf(upd.name, sizeof upd.name, "Lounge");
    memcpy(upd.color, "#112233", 8);
    upd.updated_at = 0; /* store sets now */
    assert_rc(iot_reg_group_update(r, &upd), IOT_OK);
    assert_rc(iot_reg_group_get(r, g.id, &got), IOT_OK);
    assert_string_equal(got.name, "Lounge");
    assert_string_equal(got.color, "#112233");
    assert_i64(got.updated_at, 1700000003000);
    assert_i64(got.created_at, 1700000002000);
    snprintf(upd.name, sizeof upd.name, "Garage");
    assert_rc(iot_reg_group_update(r, &upd), IOT_ECONFLICT);
    upd.id = other + 1000;
    assert_rc(iot_reg_group_update(r, &upd), IOT_ENOTFOUND);

    struct seen_rows s = {0};
    int64_t total = -1;
    assert_rc(iot_reg_group_list(r, u1, (struct iot_page){.limit = 10}, on_group, &s,
                                        &total),
                     IOT_OK);
    assert_i64(total, 2);
    assert_ids(&s, (int64_t[]){g.id, other}, 2);
    s = (struct seen_rows){0};
    assert_rc(iot_reg_group_list(r, 0, (struct iot_page){.limit = 1, .offset = 1},
                                        on_group, &s, &total),
                     IOT_OK);
    assert_i64(total, 3);
    assert_ids(&s, (int64_t[]){dup.id}, 1);

    assert_rc(iot_reg_group_delete(r, g.id), IOT_OK);
    assert_rc(iot_reg_group_get(r, g.id, &got), IOT_ENOTFOUND);
    assert_rc(iot_reg_group_delete(r, g.id), IOT_ENOTFOUND);
}

static void test_members(void **state)
{
    struct iot_registry *r = REG(state);
    use_fake_clock(1700000004000);
    int64_t u = mk_user(r, "vic");
    int64_t d1 = mk_device(r, u, "d1", "active", "t"), d2 = mk_device(r, u, "d2", "active", "t");
    int64_t g = mk_group(r, u, "g");
    int64_t at = -1;
    assert_rc(iot_reg_member_add(r, g, d1, &at), IOT_OK);
    assert_i64(at, 1700000004000);
    assert_rc(iot_reg_member_add(r, g, d1, &at), IOT_ECONFLICT);
    assert_rc(iot_reg_member_add(r, g + 100, d1, &at), IOT_ENOTFOUND);
    assert_rc(iot_reg_member_add(r, g, d2 + 100, &at), IOT_ENOTFOUND);
    assert_rc(iot_reg_member_add(r, g, d2, NULL), IOT_OK);
    assert_i64(group_count(r, g), 2);

    assert_rc(iot_reg_member_remove(r, g, d1), IOT_OK);
    assert_rc(iot_reg_member_remove(r, g, d1), IOT_ENOTFOUND);
    assert_rc(iot_reg_member_remove(r, g + 100, d2), IOT_ENOTFOUND);
    assert_i64(group_count(r, g), 1);
    /* removal and re-adding */
    atomic_store(&fake_now, 1700000005000);
    assert_rc(iot_reg_member_add(r, g, d1, &at), IOT_OK);
    assert_i64(at, 1700000005000);

    /* group delete drops memberships, not devices */
    assert_rc(iot_reg_group_delete(r, g), IOT_OK);
    struct iot_device d;
    assert_rc(iot_reg_device_get(r, d1, &d), IOT_OK);
    struct seen_rows s = {0};
    assert_rc(iot_reg_device_groups(r, d1, on_dgroup, &s), IOT_OK);
    assert_i64(s.n, 0);
}

static void test_group_devices(void **state)
{
    struct iot_registry *r = REG(state);
    int64_t u = mk_user(r, "wes");
    int64_t d[6];
    static const char *const st[] = {"active", "inactive", "active", "active", "maintenance",
                                     "active"};
    static const char *const ty[] = {"s", "s", "a", "s", "s", "a"};
    for (int i = 0; i < 6; i++) {
        char name[8];
        snprintf(name, sizeof name, "d%d", i);
        d[i] = mk_device(r, u, name, st[i], ty[i]);
    }
    int64_t g = mk_group(r, u, "g"), empty = mk_group(r, u, "empty");
    /* join in reverse id order: listing follows membership order */
    for (int i = 5; i >= 0; i--) {
        use_fake_clock(1000 + (5 - i));
        assert_rc(iot_reg_member_add(r, g, d[i], NULL), IOT_OK);
    }
    struct seen_rows s = {0};
    int64_t total = -1;
    assert_rc(iot_reg_group_devices(r, g, NULL, (struct iot_page){.limit = 10}, on_member,
                                           &s, &total),
                     IOT_OK);
    assert_i64(total, 6);
    assert_ids(&s, (int64_t[]){d[5], d[4], d[3], d[2], d[1], d[0]}, 6);
    for (int i = 0; i < 6; i++)
        assert_i64(s.added[i], 1000 + i);

    struct iot_device_filter f = {.status = "active", .user_id = u + 999 /* ignored */};
    s = (struct seen_rows){0};
    assert_rc(iot_reg_group_devices(r, g, &f, (struct iot_page){.limit = 2, .offset = 1},
                                           on_member, &s, &total),
                     IOT_OK);
    assert_i64(total, 4);
    assert_ids(&s, (int64_t[]){d[3], d[2]}, 2);
    f = (struct iot_device_filter){.status = "active", .device_type = "s"};
    s = (struct seen_rows){0};
    assert_rc(iot_reg_group_devices(r, g, &f, (struct iot_page){.limit = 10}, on_member,
                                           &s, &total),
                     IOT_OK);
    assert_i64(total, 2);
    assert_ids(&s, (int64_t[]){d[3], d[0]}, 2);
    /* limit 0 → total only */
    s = (struct seen_rows){0};
    assert_rc(iot_reg_group_devices(r, g, NULL, (struct iot_page){.limit = 0}, on_member,
                                           &s, &total),
                     IOT_OK);
    assert_i64(s.n, 0);
    assert_i64(total, 6);
    /* an empty group is OK and empty; a missing group is not found */
    assert_rc(iot_reg_group_devices(r, empty, NULL, (struct iot_page){.limit = 10},
                                           on_member, &s, &total),
                     IOT_OK);
    assert_i64(total, 0);
    assert_rc(iot_reg_group_devices(r, g + empty + 100, NULL,
                                           (struct iot_page){.limit = 10}, on_member, &s, &total),
                     IOT_ENOTFOUND);
}

static void test_device_groups(void **state)
{
    struct iot_registry *r = REG(state);
    int64_t u = mk_user(r, "xena");
    int64_t dev = mk_device(r, u, "d", "active", "t"), lonely = mk_device(r, u, "l", "active", "t");
    int64_t g[4];
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof name, "g%d", i);
        g[i] = mk_group(r, u, name);
    }
    /* join out of id order: listing is by group id */
    int order[] = {2, 0, 3};
    for (int i = 0; i < 3; i++) {
        use_fake_clock(500 + i);
        assert_rc(iot_reg_member_add(r, g[order[i]], dev, NULL), IOT_OK);
    }
    struct seen_rows s = {0};
    assert_rc(iot_reg_device_groups(r, dev, on_dgroup, &s), IOT_OK);
    assert_ids(&s, (int64_t[]){g[0], g[2], g[3]}, 3);
    assert_i64(s.added[0], 501);
    assert_i64(s.added[1], 500);
    assert_i64(s.added[2], 502);
    s = (struct seen_rows){.stop_after = 1};
    assert_rc(iot_reg_device_groups(r, dev, on_dgroup, &s), IOT_OK);
    assert_i64(s.n, 1);
    s = (struct seen_rows){0};
    assert_rc(iot_reg_device_groups(r, lonely, on_dgroup, &s), IOT_OK);
    assert_i64(s.n, 0);
    assert_rc(iot_reg_device_groups(r, dev + lonely + 100, on_dgroup, &s), IOT_ENOTFOUND);
}

/* ---- strings, persistence ---------------------------------------------- */

/* Fills `dst` (capacity cap incl. NUL) with exactly cap-1 bytes of UTF-8:
 * 3-byte "€" signs, padded with 'x' so the byte count is exact. */
static void fill_max(char *dst, size_t cap)
{
    size_t n = 0;
    while (n + 3 <= cap - 1) {
        memcpy(dst + n, "\xe2\x82\xac", 3);
        n += 3;
    }
    while (n < cap - 1)
        dst[n++] = 'x';
    dst[n] = '\0';
}

static void test_strings_roundtrip(void **state)
{
    struct iot_registry *r = REG(state);
    static const char *const nasty[] = {
        "'; DROP TABLE users; --", "Robert'); DROP TABLE devices;--", "quote\"double'single`back",
        "naïve café 日本語 🚀", "%s%n%x\\0\\", "line\nbreak\ttab\r", "?1 :name @x $y",
    };
    for (size_t i = 0; i < sizeof nasty / sizeof nasty[0]; i++) {
        struct iot_user u, got;
        fill_user(&u, "x");
        snprintf(u.username, sizeof u.username, "%s", nasty[i]);
        snprintf(u.email, sizeof u.email, "%zu-%s", i, nasty[i]);
        snprintf(u.password_hash, sizeof u.password_hash, "%s", nasty[i]);
        assert_rc(iot_reg_user_create(r, &u), IOT_OK);
        assert_rc(iot_reg_user_get_by_username(r, nasty[i], &got), IOT_OK);
        assert_same_user(&got, &u);
        assert_rc(iot_reg_user_get_by_email(r, u.email, &got), IOT_OK);
        assert_i64(got.id, u.id);
        struct iot_device d, dgot;
        fill_device(&d, u.id, nasty[i], "active", nasty[i]);
        snprintf(d.description, sizeof d.description, "%s", nasty[i]);
        snprintf(d.location, sizeof d.location, "%s", nasty[i]);
        assert_rc(iot_reg_device_create(r, &d), IOT_OK);
        assert_rc(iot_reg_device_get(r, d.id, &dgot), IOT_OK);
        assert_same_device(&dgot, &d);
        assert_i64(list_total(r, &(struct iot_device_filter){.device_type = nasty[i]}), 1);
    }
    /* max-length fields, multi-byte up to the last byte */
    struct iot_user u, got;
    memset(&u, 0, sizeof u);
    fill_max(u.username, sizeof u.username);
    fill_max(u.email, sizeof u.email);
    fill_max(u.password_hash, sizeof u.password_hash);
    assert_rc(iot_reg_user_create(r, &u), IOT_OK);
    assert_i64(strlen(u.username), IOT_USERNAME_MAX);
    assert_rc(iot_reg_user_get_by_id(r, u.id, &got), IOT_OK);
    assert_same_user(&got, &u);
    struct iot_device d, dgot;
    memset(&d, 0, sizeof d);
    d.user_id = u.id;
    fill_max(d.name, sizeof d.name);
    fill_max(d.description, sizeof d.description);
    fill_max(d.device_type, sizeof d.device_type);
    fill_max(d.status, sizeof d.status);
    fill_max(d.location, sizeof d.location);
    fill_max(d.firmware_version, sizeof d.firmware_version);
    fill_max(d.hardware_version, sizeof d.hardware_version);
    memset(d.api_key_hash, 'f', IOT_KEY_HASH_LEN);
    memset(d.api_key_prefix, 'p', IOT_KEY_PREFIX_LEN);
    assert_rc(iot_reg_device_create(r, &d), IOT_OK);
    assert_rc(iot_reg_device_get(r, d.id, &dgot), IOT_OK);
    assert_same_device(&dgot, &d);
    assert_i64(strlen(dgot.description), IOT_DESCRIPTION_MAX);
    struct iot_group g = {.user_id = u.id}, ggot;
    fill_max(g.name, sizeof g.name);
    fill_max(g.description, sizeof g.description);
    memcpy(g.color, "#ABCDEF", 8);
    assert_rc(iot_reg_group_create(r, &g), IOT_OK);
    assert_rc(iot_reg_group_get(r, g.id, &ggot), IOT_OK);
    assert_string_equal(ggot.name, g.name);
    assert_string_equal(ggot.description, g.description);
    assert_string_equal(ggot.color, "#ABCDEF");
    /* the tables are all still there */
    int64_t total = -1;
    assert_rc(iot_reg_user_list(r, (struct iot_page){0}, NULL, NULL, &total), IOT_OK);
    assert_i64(total, 8);
}

static void test_reopen(void **state)
{
    struct fixture *fx = *state;
    if (!is_persistent(fx->url))
        skip();
    struct iot_registry *r = &fx->reg;
    int64_t u = mk_user(r, "yara");
    int64_t d = mk_device(r, u, "dev", "active", "t");
    int64_t g = mk_group(r, u, "grp");
    assert_rc(iot_reg_member_add(r, g, d, NULL), IOT_OK);
    int64_t gone = mk_user(r, "zed");
    assert_rc(iot_reg_user_delete(r, gone), IOT_OK);
    for (int round = 0; round < 2; round++) {
        iot_registry_close(r);
        assert_null(r->ops);
        assert_rc(iot_registry_open(fx->url, r), IOT_OK);
        struct iot_user got;
        assert_rc(iot_reg_user_get_by_username(r, "yara", &got), IOT_OK);
        assert_i64(got.id, u);
        assert_i64(group_count(r, g), 1);
        /* constraints and cascades survived the re-open */
        struct iot_device dd;
        fill_device(&dd, u, "dev", "active", "t");
        assert_rc(iot_reg_device_create(r, &dd), IOT_ECONFLICT);
    }
    /* ids keep growing across re-opens, deleted ones are not reused */
    int64_t u2 = mk_user(r, "zed");
    assert_true(u2 > gone);
    assert_rc(iot_reg_user_delete(r, u), IOT_OK);
    struct iot_device dd;
    assert_rc(iot_reg_device_get(r, d, &dd), IOT_ENOTFOUND);
}

/* ---- pending telemetry clean-ups (version 3) ------------------------------ */

/* Every pending clean-up, in the order cleanup_list gives (one page). */
struct cleanups {
    struct iot_pending_cleanup v[IOT_CLEANUP_PAGE_MAX];
    size_t n;
};

static void list_cleanups(struct iot_registry *r, int64_t due_by, struct cleanups *c)
{
    assert_rc(iot_reg_cleanup_list(r, due_by, c->v, IOT_CLEANUP_PAGE_MAX, &c->n), IOT_OK);
}

static void assert_cleanup(const struct iot_pending_cleanup *c, enum iot_cleanup_kind kind,
                           int64_t target, int64_t created, int64_t attempts, int64_t next_at,
                           const char *error)
{
    assert_i64(c->kind, kind);
    assert_i64(c->target_id, target);
    assert_i64(c->created_at, created);
    assert_i64(c->attempts, attempts);
    assert_i64(c->next_at, next_at);
    assert_string_equal(c->last_error, error);
}

/* device_delete and user_delete record their clean-up (the user's only,
 * not one per device of theirs), due after the grace; a delete of nothing
 * records nothing; groups have no telemetry. */
static void test_cleanup_recorded_by_deletes(void **state)
{
    struct iot_registry *r = REG(state);
    assert_true(r->ops->version >= 3);
    const int64_t T = INT64_C(1800000000000);
    use_fake_clock(T);
    int64_t u = mk_user(r, "cleo"), other = mk_user(r, "otto");
    int64_t d1 = mk_device(r, u, "d1", "active", "t");
    mk_device(r, u, "d2", "active", "t");
    int64_t g = mk_group(r, u, "grp");
    struct cleanups c;
    list_cleanups(r, INT64_MAX, &c);
    assert_i64(c.n, 0);

    assert_rc(iot_reg_device_delete(r, d1), IOT_OK);
    list_cleanups(r, INT64_MAX, &c);
    assert_i64(c.n, 1);
    assert_cleanup(&c.v[0], IOT_CLEANUP_DEVICE, d1, T, 0, T + IOT_CLEANUP_GRACE_MS, "");
    list_cleanups(r, T + IOT_CLEANUP_GRACE_MS - 1, &c); /* not due yet */
    assert_i64(c.n, 0);

    assert_rc(iot_reg_device_delete(r, d1), IOT_ENOTFOUND);
    assert_rc(iot_reg_user_delete(r, other + 1000), IOT_ENOTFOUND);
    assert_rc(iot_reg_group_delete(r, g), IOT_OK);
    list_cleanups(r, INT64_MAX, &c);
    assert_i64(c.n, 1);

    atomic_store(&fake_now, T + 5);
    assert_rc(iot_reg_user_delete(r, u), IOT_OK); /* d2 goes with it */
    atomic_store(&fake_now, T + 10);
    assert_rc(iot_reg_user_delete(r, other), IOT_OK);
    list_cleanups(r, T + IOT_CLEANUP_GRACE_MS + 5, &c);
    assert_i64(c.n, 2);
    assert_cleanup(&c.v[0], IOT_CLEANUP_DEVICE, d1, T, 0, T + IOT_CLEANUP_GRACE_MS, "");
    assert_cleanup(&c.v[1], IOT_CLEANUP_USER, u, T + 5, 0, T + 5 + IOT_CLEANUP_GRACE_MS, "");
    list_cleanups(r, INT64_MAX, &c);
    assert_i64(c.n, 3);
    assert_cleanup(&c.v[2], IOT_CLEANUP_USER, other, T + 10, 0, T + 10 + IOT_CLEANUP_GRACE_MS,
                   "");
}

/* failed: attempts counted, next_at and the error kept (cut at a UTF-8
 * character); done: the row goes; both on a row that is gone (another
 * instance finished it): IOT_ENOTFOUND, nothing changed or re-created. */
static void test_cleanup_failed_and_done(void **state)
{
    struct iot_registry *r = REG(state);
    const int64_t T = INT64_C(1800000000000);
    use_fake_clock(T);
    int64_t u = mk_user(r, "fay");
    int64_t d = mk_device(r, u, "d", "active", "t");
    assert_rc(iot_reg_device_delete(r, d), IOT_OK);

    assert_rc(iot_reg_cleanup_failed(r, IOT_CLEANUP_DEVICE, d, T + 100, "unavailable"), IOT_OK);
    struct cleanups c;
    list_cleanups(r, T + 100, &c); /* due earlier than the grace now */
    assert_i64(c.n, 1);
    assert_cleanup(&c.v[0], IOT_CLEANUP_DEVICE, d, T, 1, T + 100, "unavailable");
    /* 199 ASCII bytes then a 2-byte character: the character does not fit */
    char long_error[300];
    memset(long_error, 'e', 199);
    snprintf(long_error + 199, sizeof long_error - 199, "\xc3\xa9 and more");
    assert_rc(iot_reg_cleanup_failed(r, IOT_CLEANUP_DEVICE, d, T + 5000, long_error), IOT_OK);
    list_cleanups(r, INT64_MAX, &c);
    assert_i64(c.n, 1);
    assert_i64(c.v[0].attempts, 2);
    assert_i64(c.v[0].next_at, T + 5000);
    assert_i64(strlen(c.v[0].last_error), 199);
    assert_int_equal(memcmp(c.v[0].last_error, long_error, 199), 0);
    /* the same cut one byte later keeps the whole character */
    memset(long_error, 'e', 198);
    snprintf(long_error + 198, sizeof long_error - 198, "\xc3\xa9 and more");
    assert_rc(iot_reg_cleanup_failed(r, IOT_CLEANUP_DEVICE, d, T + 6000, long_error), IOT_OK);
    list_cleanups(r, INT64_MAX, &c);
    assert_i64(strlen(c.v[0].last_error), IOT_CLEANUP_ERROR_MAX);
    assert_string_equal(c.v[0].last_error + 198, "\xc3\xa9");

    assert_rc(iot_reg_cleanup_done(r, IOT_CLEANUP_USER, d), IOT_ENOTFOUND); /* other kind */
    assert_rc(iot_reg_cleanup_done(r, IOT_CLEANUP_DEVICE, d), IOT_OK);
    list_cleanups(r, INT64_MAX, &c);
    assert_i64(c.n, 0);
    assert_rc(iot_reg_cleanup_done(r, IOT_CLEANUP_DEVICE, d), IOT_ENOTFOUND);
    assert_rc(iot_reg_cleanup_failed(r, IOT_CLEANUP_DEVICE, d, T, "late"), IOT_ENOTFOUND);
    list_cleanups(r, INT64_MAX, &c);
    assert_i64(c.n, 0);
    assert_rc(iot_reg_cleanup_done(r, (enum iot_cleanup_kind)7, d), IOT_EINVAL);
}

/* A page is bounded and ordered by next_at, then kind, then id; what was
 * postponed comes after what is due. */
static void test_cleanup_list_paging(void **state)
{
    struct iot_registry *r = REG(state);
    const int64_t T = INT64_C(1800000000000);
    use_fake_clock(T);
    int64_t u = mk_user(r, "page");
    enum { N = IOT_CLEANUP_PAGE_MAX + 20 };
    int64_t ids[N];
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "dev-%03d", i);
        ids[i] = mk_device(r, u, name, "active", "t");
        assert_rc(iot_reg_device_delete(r, ids[i]), IOT_OK);
    }
    static struct iot_pending_cleanup big[IOT_CLEANUP_PAGE_MAX + 50];
    size_t n = 99;
    assert_rc(iot_reg_cleanup_list(r, INT64_MAX, big, 0, &n), IOT_OK);
    assert_i64(n, 0);
    assert_rc(iot_reg_cleanup_list(r, INT64_MAX, big, 7, &n), IOT_OK);
    assert_i64(n, 7);
    assert_rc(iot_reg_cleanup_list(r, INT64_MAX, big, IOT_CLEANUP_PAGE_MAX + 50, &n), IOT_OK);
    assert_i64(n, IOT_CLEANUP_PAGE_MAX); /* clamped */
    for (size_t i = 0; i < n; i++)
        assert_i64(big[i].target_id, ids[i]);
    /* the first ten are postponed: they come last */
    for (int i = 0; i < 10; i++)
        assert_rc(iot_reg_cleanup_failed(r, IOT_CLEANUP_DEVICE, ids[i], T + 2 * IOT_CLEANUP_GRACE_MS,
                                         "x"), IOT_OK);
    struct cleanups c;
    list_cleanups(r, T + IOT_CLEANUP_GRACE_MS, &c);
    assert_i64(c.n, IOT_CLEANUP_PAGE_MAX);
    assert_i64(c.v[0].target_id, ids[10]);
    for (int i = 0; i < N - 10; i++)
        assert_rc(iot_reg_cleanup_done(r, IOT_CLEANUP_DEVICE, ids[10 + i]), IOT_OK);
    list_cleanups(r, INT64_MAX, &c);
    assert_i64(c.n, 10);
    for (int i = 0; i < 10; i++)
        assert_i64(c.v[i].target_id, ids[i]);
}

/* ---- migrations from older schemas ------------------------------------- */

/* Runs `sql` on the SQLite file of `url` directly (not through the store). */
static void sqlite_exec_file(const char *url, const char *sql)
{
    sqlite3 *db;
    assert_i64(sqlite3_open(sqlite_file_path(url), &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err ? err : "?");
    sqlite3_close(db);
}

/* Runs `sql` on the current backend directly (not through the store): on
 * the SQLite file, or in the PostgreSQL scratch schema. */
static void raw_exec(const struct fixture *fx, const char *sql)
{
    if (is_postgres(fx->url)) {
        char full[2048];
        snprintf(full, sizeof full, "SET search_path = %s; %s", pg_schema(), sql);
        assert_i64(pg_admin_exec(full), 0);
    } else {
        sqlite_exec_file(fx->url, sql);
    }
}

/* A registry at schema version 1 (before usernames and emails were unique
 * regardless of case) holding "Zoe" and "zoe": opening it must fail with
 * IOT_ECONFLICT, changing nothing, rather than pick one; once the operator
 * renames one, it opens and the rule holds. Version 1 is made by taking the
 * current schema back: the later steps' index and column dropped. */
/* iot_registry_open with stderr sent to a file: what it logged (heap, caller
 * frees; NULL if the capture itself failed). */
static char *open_logging_to(const char *url, struct iot_registry *reg, int *rc)
{
    FILE *tmp = tmpfile();
    fflush(stderr);
    int saved = dup(2);
    if (!tmp || saved < 0 || dup2(fileno(tmp), 2) < 0) {
        *rc = iot_registry_open(url, reg);
        return NULL;
    }
    *rc = iot_registry_open(url, reg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    long n = ftell(tmp);
    char *text = n >= 0 ? calloc((size_t)n + 1, 1) : NULL;
    rewind(tmp);
    if (text && fread(text, 1, (size_t)n, tmp) != (size_t)n)
        text[0] = '\0';
    fclose(tmp);
    fputs(text ? text : "", stderr); /* still shown with the test's output */
    return text;
}

static void test_migrate_case_duplicates(void **state)
{
    struct fixture *fx = *state;
    if (!is_persistent(fx->url))
        skip();
    struct iot_registry reg;
    assert_rc(iot_registry_open(fx->url, &reg), IOT_OK);
    int64_t u = mk_user(&reg, "zoe-owner");
    int64_t off = mk_device(&reg, u, "used-off", "maintenance", "t");
    iot_registry_close(&reg);
    raw_exec(fx, "DROP INDEX users_username_nocase; DROP INDEX users_email_nocase;"
                 " ALTER TABLE devices DROP COLUMN status_set_by;"
                 " DROP TABLE telemetry_cleanups;"
                 " INSERT INTO users (user_id, username, email, password_hash, created_at,"
                 " updated_at) VALUES ('a', 'Zoe', 'zoe@example.com', 'h', 1, 1),"
                 " ('b', 'zoe', 'other@example.com', 'h', 1, 1)");
    raw_exec(fx, is_postgres(fx->url) ? "DELETE FROM schema_version WHERE version > 1"
                                      : "PRAGMA user_version = 1");

    int open_rc;
    char *log = open_logging_to(fx->url, &reg, &open_rc);
    assert_rc(open_rc, IOT_ECONFLICT);
    assert_null(reg.ops);
    /* rolled back: nothing to tell about step 3 */
    bool noted = log && strstr(log, "taken as switched off by an admin");
    free(log);
    assert_false(noted);

    raw_exec(fx, "UPDATE users SET username = 'zoe2' WHERE user_id = 'b'");
    log = open_logging_to(fx->url, &reg, &open_rc);
    assert_rc(open_rc, IOT_OK);
    /* step 3 says once how many devices it took as switched off, and how
     * to switch them on */
    char expect_note[256];
    snprintf(expect_note, sizeof expect_note,
             "1 used device(s) that were inactive or in maintenance are now taken as switched off"
             " by an admin (status_set_by = 'admin', ids %" PRId64 ")", off);
    bool has_note = log && strstr(log, expect_note) &&
                    strstr(log, "PUT /api/v1/admin/devices/{id}/status");
    free(log);
    if (!has_note)
        iot_registry_close(&reg);
    assert_true(has_note);
    iot_registry_close(&reg);
    log = open_logging_to(fx->url, &reg, &open_rc); /* migrated: nothing more to say */
    noted = log && strstr(log, "taken as switched off by an admin");
    free(log);
    if (open_rc || noted)
        iot_registry_close(&reg);
    assert_rc(open_rc, IOT_OK);
    assert_false(noted);
    struct iot_user got;
    int rc = iot_reg_user_get_by_username(&reg, "ZOE", &got);
    struct iot_user dup;
    fill_user(&dup, "ZOE2");
    int dup_rc = iot_reg_user_create(&reg, &dup);
    struct iot_device d;
    struct seen_rows rows = {0};
    struct iot_device_filter f = {.user_id = u};
    int list_rc = iot_reg_device_list(&reg, &f, (struct iot_page){.limit = 10}, on_device, &rows,
                                      NULL);
    int get_rc = rows.n == 1 ? iot_reg_device_get(&reg, rows.ids[0], &d) : IOT_ENOTFOUND;
    iot_registry_close(&reg); /* before asserting: a failure must not leak the pool */
    assert_rc(rc, IOT_OK);
    assert_string_equal(got.user_id, "a");
    assert_rc(dup_rc, IOT_ECONFLICT);
    assert_rc(list_rc, IOT_OK);
    assert_rc(get_rc, IOT_OK);
    /* a used device that was off before the migration: a person switches it on */
    assert_string_equal(d.status_set_by, IOT_STATUS_BY_ADMIN);
}

/* The clean-up is written in the delete's transaction: when it cannot be
 * written (its table gone behind the store's back), the delete does not
 * happen either. */
static void test_cleanup_same_transaction(void **state)
{
    struct fixture *fx = *state;
    if (!is_persistent(fx->url))
        skip();
    struct iot_registry *r = &fx->reg;
    int64_t u = mk_user(r, "atom");
    int64_t d = mk_device(r, u, "d", "active", "t");
    raw_exec(fx, "DROP TABLE telemetry_cleanups");
    assert_true(iot_reg_device_delete(r, d) != IOT_OK);
    assert_true(iot_reg_user_delete(r, u) != IOT_OK);
    struct iot_device got;
    assert_rc(iot_reg_device_get(r, d, &got), IOT_OK);
    struct iot_user owner;
    assert_rc(iot_reg_user_get_by_id(r, u, &owner), IOT_OK);
}

/* ---- concurrency ------------------------------------------------------- */

enum { THREADS = 4, OPS = 200 };

struct worker {
    struct iot_registry *r;
    int t;
    int users, devices, groups, members;
    int fail_op, fail_rc; /* first failure, fail_rc 0 if none */
    int64_t owner, group;
    int64_t dev_ids[OPS];
    char dev_keys[OPS][IOT_KEY_HASH_LEN + 1];
};

static void note_fail(struct worker *w, int op, int rc)
{
    if (rc != IOT_OK && w->fail_rc == 0) {
        w->fail_op = op;
        w->fail_rc = rc;
    }
}

static void worker_op(struct worker *w, int i)
{
    char name[64];
    int64_t total = -1;
    struct iot_device d;
    struct iot_user u;
    switch (i % 8) {
    case 0:
        snprintf(name, sizeof name, "t%d-user%d", w->t, i);
        fill_user(&u, name);
        note_fail(w, i, iot_reg_user_create(w->r, &u));
        w->users++;
        break;
    case 1:
    case 2:
        snprintf(name, sizeof name, "t%d-dev%d", w->t, i);
        fill_device(&d, w->owner, name, i % 16 == 1 ? "inactive" : "active", "t");
        note_fail(w, i, iot_reg_device_create(w->r, &d));
        w->dev_ids[w->devices] = d.id;
        memcpy(w->dev_keys[w->devices], d.api_key_hash, sizeof d.api_key_hash);
        w->devices++;
        break;
    case 3: {
        struct iot_seen seen[8];
        size_t n = 0;
        for (int k = w->devices - 1; k >= 0 && n < 8; k--)
            seen[n++] = (struct iot_seen){w->dev_ids[k], iot_now_ms()};
        note_fail(w, i, iot_reg_device_touch(w->r, seen, n));
        break;
    }
    case 4:
        note_fail(w, i, iot_reg_device_get_by_key_hash(w->r, w->dev_keys[w->devices / 2], &d));
        if (d.id != w->dev_ids[w->devices / 2])
            note_fail(w, i, IOT_EINTERNAL);
        break;
    case 5:
        note_fail(w, i, iot_reg_device_list(w->r, &(struct iot_device_filter){.user_id = w->owner},
                                       (struct iot_page){.limit = 5}, on_device,
                                       &(struct seen_rows){0}, &total));
        if (total != w->devices)
            note_fail(w, i, IOT_EINTERNAL);
        break;
    case 6:
        note_fail(w, i, iot_reg_member_add(w->r, w->group, w->dev_ids[w->devices - 1], NULL));
        w->members++;
        break;
    default: {
        struct iot_device_stats st;
        note_fail(w, i, iot_reg_device_stats(w->r, 0, &st));
        snprintf(name, sizeof name, "t%d-owner", w->t);
        note_fail(w, i, iot_reg_user_get_by_username(w->r, name, &u));
        break;
    }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char name[32];
    struct iot_user u;
    snprintf(name, sizeof name, "t%d-owner", w->t);
    fill_user(&u, name);
    note_fail(w, -1, iot_reg_user_create(w->r, &u));
    w->owner = u.id;
    struct iot_group g = {.user_id = u.id};
    snprintf(g.name, sizeof g.name, "t%d-group", w->t);
    note_fail(w, -1, iot_reg_group_create(w->r, &g));
    w->group = g.id;
    for (int i = 0; i < OPS && w->fail_rc == 0; i++)
        worker_op(w, i);
    return NULL;
}

static void test_concurrency(void **state)
{
    struct iot_registry *r = REG(state);
    struct worker *w = calloc(THREADS, sizeof *w);
    assert_non_null(w);
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t] = (struct worker){.r = r, .t = t};
        assert_i64(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    int users = 0, devices = 0, members = 0;
    for (int t = 0; t < THREADS; t++) {
        if (w[t].fail_rc)
            fprintf(stderr, "thread %d op %d: %s\n", t, w[t].fail_op, iot_strerror(w[t].fail_rc));
        assert_i64(w[t].fail_rc, IOT_OK);
        users += 1 + w[t].users;
        devices += w[t].devices;
        members += w[t].members;
        assert_i64(group_count(r, w[t].group), w[t].members);
    }
    free(w);
    int64_t total = -1;
    assert_rc(iot_reg_user_list(r, (struct iot_page){0}, NULL, NULL, &total), IOT_OK);
    assert_i64(total, users);
    assert_i64(users, THREADS * (1 + OPS / 8));
    struct iot_device_stats st;
    assert_rc(iot_reg_device_stats(r, 0, &st), IOT_OK);
    assert_i64(st.total, devices);
    assert_i64(devices, THREADS * OPS / 4);
    assert_i64(st.online, st.active); /* every device was touched */
    assert_i64(members, THREADS * OPS / 8);
}

/* ---- backend table (not per backend) ------------------------------------- */

static void test_backend_table(void **state)
{
    (void)state;
    const struct iot_registry_ops *sq = iot_registry_backend("sqlite::memory:");
    assert_non_null(sq);
    assert_string_equal(sq->name, "sqlite");
    assert_ptr_equal(iot_registry_backend("sqlite:///x.db"), sq);
    assert_ptr_equal(iot_registry_backend("data/registry.db"), sq);
    assert_ptr_equal(iot_registry_backend(""), sq);
    const struct iot_registry_ops *pg = iot_registry_backend("postgresql://localhost/iot");
    assert_non_null(pg);
    assert_string_equal(pg->name, "postgres");
    assert_i64(pg->version, 3);
    assert_i64(sq->version, 3);
    /* version 2's slot and version 3's: every compiled-in backend has them */
    const struct iot_registry_ops *both[] = {sq, pg};
    for (size_t i = 0; i < 2; i++) {
        assert_non_null(both[i]->device_update_by_device);
        assert_non_null(both[i]->cleanup_list);
        assert_non_null(both[i]->cleanup_done);
        assert_non_null(both[i]->cleanup_failed);
    }
    assert_true(pg->caps & IOT_REG_CAP_TRANSACTIONS);
    assert_ptr_equal(iot_registry_backend("postgres://localhost/iot"), pg);
    assert_ptr_equal(iot_registry_backend("PostgreSQL://localhost/iot"), pg);
    assert_null(iot_registry_backend("nosuch://x"));
    assert_string_equal(iot_registry_backend_names(), "sqlite, postgres");
    struct iot_registry reg = {.ops = sq, .self = (void *)1};
    assert_rc(iot_registry_open("nosuch://x", &reg), IOT_EINVAL);
    assert_null(reg.ops);
    assert_null(reg.self);
    iot_registry_close(&reg); /* NULL-safe */
    iot_registry_close(NULL);
}

/* Every URL form opens, in the directory it names (created if missing). */
static void test_url_forms(void **state)
{
    (void)state;
    const char *tmp = getenv("IOT_TEST_TMPDIR");
    char dir[512], cwd[1024];
    snprintf(dir, sizeof dir, "%s/urlforms-%ld", tmp && tmp[0] ? tmp : "/tmp", (long)getpid());
    mkdir(dir, 0755);
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_i64(chdir(dir), 0);
    static const char *const urls[] = {"sqlite:rel-a.db", "sqlite://sub/dir/rel-b.db",
                                       "bare-c.db", "sqlite:sub2/d.db"};
    static const char *const files[] = {"rel-a.db", "sub/dir/rel-b.db", "bare-c.db", "sub2/d.db"};
    for (size_t i = 0; i < 4; i++) {
        struct iot_registry reg;
        assert_rc(iot_registry_open(urls[i], &reg), IOT_OK);
        mk_user(&reg, "someone");
        iot_registry_close(&reg);
        assert_i64(access(files[i], F_OK), 0);
        contract_remove_sqlite_files(files[i]);
    }
    char abs_url[700], abs_file[600];
    snprintf(abs_file, sizeof abs_file, "%s/abs/e.db", dir);
    snprintf(abs_url, sizeof abs_url, "sqlite://%s", abs_file);
    struct iot_registry reg;
    assert_rc(iot_registry_open(abs_url, &reg), IOT_OK);
    iot_registry_close(&reg);
    assert_i64(access(abs_file, F_OK), 0);
    contract_remove_sqlite_files(abs_file);
    /* two memory stores are distinct */
    struct iot_registry m1, m2;
    assert_rc(iot_registry_open("sqlite::memory:", &m1), IOT_OK);
    assert_rc(iot_registry_open(":memory:", &m2), IOT_OK);
    mk_user(&m1, "only-in-m1");
    struct iot_user u;
    assert_rc(iot_reg_user_get_by_username(&m2, "only-in-m1", &u), IOT_ENOTFOUND);
    iot_registry_close(&m1);
    iot_registry_close(&m2);
    assert_rc(iot_registry_open("sqlite:", &reg), IOT_EINVAL);
    assert_i64(chdir(cwd), 0);
    char sub[700];
    static const char *const dirs[] = {"sub/dir", "sub", "sub2", "abs"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, dirs[i]);
        rmdir(sub);
    }
    rmdir(dir);
}

/* ---- PostgreSQL only ----------------------------------------------------- */

static int64_t mono_ms(void) { return iot_mono_us() / 1000; }

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One integer from `sql` on a connection of its own, or -1. */
static int64_t pg_admin_int(const char *sql)
{
    char conninfo[1100];
    pg_admin_conninfo(g_base_url, conninfo, sizeof conninfo);
    PGconn *pg = PQconnectdb(conninfo);
    int64_t v = -1;
    if (PQstatus(pg) == CONNECTION_OK) {
        PGresult *r = PQexec(pg, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        else
            fprintf(stderr, "postgres: %s: %s", sql, PQerrorMessage(pg));
        PQclear(r);
    }
    PQfinish(pg);
    return v;
}

/* Sessions of this process's stores (their application_name). */
static int64_t pg_count_ours(void)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = '%s'", pg_schema());
    return pg_admin_int(sql);
}

/* Waits for the number of our sessions to become `want`: returns as soon
 * as it does, so the deadline (30 s) only bounds a failure on a loaded
 * machine. */
static int64_t pg_wait_count(int64_t want)
{
    int64_t n = -1;
    for (int64_t t0 = mono_ms(); mono_ms() - t0 < 30000; sleep_ms(20))
        if ((n = pg_count_ours()) == want)
            break;
    return n;
}

/* Connections a store on the base URL opens: its pool_size, else 4. */
static int64_t base_pool_size(void)
{
    const char *q = strchr(g_base_url, '?');
    const char *p = q ? strstr(q, "pool_size=") : NULL;
    return p ? strtoll(p + 10, NULL, 10) : 4;
}

/* What the pool must survive: every backend of ours terminated by the
 * server (the iotflow role may end its own sessions). */
static void pg_terminate_ours(void)
{
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
             " WHERE datname = current_database() AND pid <> pg_backend_pid()"
             " AND application_name = '%s'",
             pg_schema());
    assert_i64(pg_admin_exec(sql), 0);
}

struct opener {
    pthread_barrier_t *start;
    const char *url;
    struct iot_registry reg;
    int rc;
    atomic_bool done;
};

static void *opener_main(void *arg)
{
    struct opener *o = arg;
    if (o->start)
        pthread_barrier_wait(o->start);
    o->rc = iot_registry_open(o->url, &o->reg);
    atomic_store(&o->done, true);
    return NULL;
}

/* Several threads open the store on an empty database at the same moment:
 * the migration lock makes them take turns, and all succeed. */
static void test_pg_concurrent_open(void **state)
{
    struct fixture *fx = *state;
    if (!is_postgres(fx->url))
        skip();
    enum { OPENERS = 3 };
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, OPENERS);
    struct opener o[OPENERS];
    pthread_t th[OPENERS];
    for (int i = 0; i < OPENERS; i++) {
        o[i] = (struct opener){.start = &start, .url = fx->url};
        assert_i64(pthread_create(&th[i], NULL, opener_main, &o[i]), 0);
    }
    for (int i = 0; i < OPENERS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < OPENERS; i++)
        assert_rc(o[i].rc, IOT_OK);
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT (COUNT(*) = MAX(version))::int FROM %s.schema_version"
             " WHERE component = 'registry'", pg_schema());
    assert_i64(pg_admin_int(sql), 1); /* each version recorded once: one migration ran */
    int64_t u = mk_user(&o[0].reg, "opener");
    struct iot_user got;
    assert_rc(iot_reg_user_get_by_id(&o[OPENERS - 1].reg, u, &got), IOT_OK);
    for (int i = 0; i < OPENERS; i++)
        iot_registry_close(&o[i].reg);
}

/* An opener waits while someone else holds the migration lock, and goes on
 * when it is released. The key is the one registry_pg.c takes. */
static void test_pg_migration_lock(void **state)
{
    struct fixture *fx = *state;
    if (!is_postgres(fx->url))
        skip();
    char conninfo[1100], sql[96];
    pg_admin_conninfo(g_base_url, conninfo, sizeof conninfo);
    PGconn *admin = PQconnectdb(conninfo);
    assert_i64(PQstatus(admin), CONNECTION_OK);
    snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(%" PRId64 ")",
             INT64_C(0x696f74666c6f7701));
    PGresult *res = PQexec(admin, sql);
    assert_i64(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    struct opener o = {.url = fx->url};
    pthread_t th;
    assert_i64(pthread_create(&th, NULL, opener_main, &o), 0);
    /* Blocked on the lock: wait until the server shows the opener's
     * session (our application_name; others share this server) waiting for
     * an advisory lock, rather than sleeping and hoping it got there. */
    char waiting_sql[400];
    snprintf(waiting_sql, sizeof waiting_sql,
             "SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
             " WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name = '%s'",
             pg_schema());
    int64_t waiting = 0;
    for (int64_t t0 = mono_ms(); waiting < 1 && mono_ms() - t0 < 30000; sleep_ms(20))
        waiting = pg_admin_int(waiting_sql);
    assert_i64(waiting, 1);
    assert_false(atomic_load(&o.done));
    res = PQexec(admin, "COMMIT");
    PQclear(res);
    pthread_join(th, NULL);
    PQfinish(admin);
    assert_rc(o.rc, IOT_OK);
    mk_user(&o.reg, "after-lock");
    iot_registry_close(&o.reg);
}

/* open fails fast and cleanly when the server cannot be reached, and
 * refuses URLs it cannot use before trying. */
static void test_pg_unreachable(void **state)
{
    struct fixture *fx = *state;
    if (!is_postgres(fx->url))
        skip();
    struct iot_registry reg = {0};
    /* A refused connect takes milliseconds; the bound only catches an open
     * that retries or waits for a timeout (connect_timeout alone is 2 s a
     * try), with room for a loaded machine. */
    const int64_t bound_ms = 10000;
    int64_t t0 = mono_ms();
    assert_rc(iot_registry_open("postgresql://x:y@127.0.0.1:1/db", &reg), IOT_EUNAVAILABLE);
    assert_true(mono_ms() - t0 < bound_ms);
    assert_null(reg.ops);
    assert_null(reg.self);
    t0 = mono_ms();
    assert_rc(iot_registry_open("postgres://x:y@127.0.0.1:1/db?pool_size=64&connect_timeout=1",
                                &reg),
              IOT_EUNAVAILABLE);
    assert_true(mono_ms() - t0 < bound_ms);
    static const char *const bad[] = {
        "postgresql://x:y@127.0.0.1:1/db?pool_size=0",
        "postgresql://x:y@127.0.0.1:1/db?pool_size=65",
        "postgresql://x:y@127.0.0.1:1/db?pool_size=abc",
        "postgresql://x:y@127.0.0.1:1/db?pool_size=",
        "postgresql://x:y@127.0.0.1:1/db?pool_size=-1",
        "postgresql://x:y@127.0.0.1:1/db?no_such_param=1", /* libpq's own check */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_rc(iot_registry_open(bad[i], &reg), IOT_EINVAL);
}

/* ?pool_size=N opens exactly N connections (the parameter never reaches
 * libpq), and a pool of one still serves callbacks that call back into the
 * store, and several threads. */
struct pool_worker {
    struct iot_registry *r;
    int64_t device;
    int errors;
};

static void *pool_worker_main(void *arg)
{
    struct pool_worker *w = arg;
    for (int i = 0; i < 50; i++) {
        struct iot_device d;
        if (iot_reg_device_get(w->r, w->device, &d) != IOT_OK)
            w->errors++;
    }
    return NULL;
}

static void test_pg_pool_size(void **state)
{
    struct fixture *fx = *state;
    if (!is_postgres(fx->url))
        skip();
    char url[1200];
    pg_store_url(g_base_url, "pool_size=1", url, sizeof url);
    struct iot_registry reg;
    assert_rc(iot_registry_open(url, &reg), IOT_OK);
    assert_i64(pg_wait_count(1), 1);
    int64_t u = mk_user(&reg, "solo");
    int64_t dev = 0;
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        dev = mk_device(&reg, u, name, "active", "t");
    }
    struct reenter re = {.r = &reg};
    assert_rc(iot_reg_device_list(&reg, NULL, (struct iot_page){.limit = 10}, on_device_reenter,
                                  &re, NULL),
              IOT_OK);
    assert_i64(re.calls, 5);
    assert_i64(re.errors, 0);
    struct pool_worker w[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (struct pool_worker){.r = &reg, .device = dev};
        assert_i64(pthread_create(&th[i], NULL, pool_worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_i64(w[i].errors, 0);
    }
    iot_registry_close(&reg);
    pg_store_url(g_base_url, "pool_size=3", url, sizeof url);
    assert_rc(iot_registry_open(url, &reg), IOT_OK);
    assert_i64(pg_wait_count(3), 3);
    iot_registry_close(&reg);
}

/* SQLSTATEs map to the interface's codes, and a failed write changes
 * nothing. */
static void test_pg_error_mapping(void **state)
{
    struct fixture *fx = *state;
    if (!is_postgres(fx->url))
        skip();
    struct iot_registry *r = &fx->reg;
    int64_t u = mk_user(r, "mapper");
    struct iot_user dup;
    fill_user(&dup, "mapper");
    assert_rc(iot_reg_user_create(r, &dup), IOT_ECONFLICT); /* 23505 */
    int64_t d = mk_device(r, u, "dev", "active", "t");
    int64_t g = mk_group(r, u, "grp");
    assert_rc(iot_reg_member_add(r, g, d + 1000, NULL), IOT_ENOTFOUND); /* 23503 */
    assert_rc(iot_reg_member_add(r, g + 1000, d, NULL), IOT_ENOTFOUND);
    assert_rc(iot_reg_member_add(r, g, d, NULL), IOT_OK);
    assert_rc(iot_reg_member_add(r, g, d, NULL), IOT_ECONFLICT);
    struct iot_device orphan;
    fill_device(&orphan, u + 1000, "orphan", "active", "t");
    assert_rc(iot_reg_device_create(r, &orphan), IOT_ENOTFOUND);
    /* an over-long lookup key matches nothing (it is not cut to the field) */
    char longname[IOT_USERNAME_MAX + 20];
    memset(longname, 'm', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    struct iot_user got;
    assert_rc(iot_reg_user_get_by_username(r, longname, &got), IOT_ENOTFOUND);
    int64_t total = -1;
    assert_rc(iot_reg_user_list(r, (struct iot_page){0}, NULL, NULL, &total), IOT_OK);
    assert_i64(total, 1);
    assert_i64(group_count(r, g), 1);
}

/* A touch batch over more distinct devices than the backend sends in one
 * statement (1000) still applies as a whole. */
static void test_pg_touch_many(void **state)
{
    struct fixture *fx = *state;
    if (!is_postgres(fx->url))
        skip();
    struct iot_registry *r = &fx->reg;
    enum { N = 2300 };
    int64_t u = mk_user(r, "many");
    struct iot_seen *seen = calloc(2 * N, sizeof *seen);
    assert_non_null(seen);
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%d", i);
        int64_t id = mk_device(r, u, name, "active", "t");
        /* listed twice, the later time first: the max wins */
        seen[2 * N - 1 - 2 * i] = (struct iot_seen){id, 100000 + i};
        seen[2 * N - 2 - 2 * i] = (struct iot_seen){id, 200000 + i};
    }
    assert_rc(iot_reg_device_touch(r, seen, 2 * N), IOT_OK);
    struct iot_device_stats st;
    assert_rc(iot_reg_device_stats(r, 200000, &st), IOT_OK);
    assert_i64(st.online, N);
    assert_rc(iot_reg_device_stats(r, 200000 + N - 1, &st), IOT_OK);
    assert_i64(st.online, 1);
    struct iot_device d;
    assert_rc(iot_reg_device_get(r, seen[0].device_id, &d), IOT_OK);
    assert_i64(d.last_seen, 200000 + N - 1);
    free(seen);
}

/* Runs a read until it succeeds, for up to `ms`; anything before success
 * must be IOT_EUNAVAILABLE. Returns the final status. */
static int read_until_ok(struct iot_registry *r, const char *username, int ms, int *failures)
{
    struct iot_user got;
    int rc;
    int64_t t0 = mono_ms();
    while ((rc = iot_reg_user_get_by_username(r, username, &got)) != IOT_OK &&
           mono_ms() - t0 < ms) {
        assert_rc(rc, IOT_EUNAVAILABLE);
        (*failures)++;
        sleep_ms(50);
    }
    return rc;
}

/* The pool survives its backends being killed: dead connections are noticed
 * and replaced, without reopening the store. */
static void test_pg_backend_killed(void **state)
{
    struct fixture *fx = *state;
    if (!is_postgres(fx->url))
        skip();
    struct iot_registry *r = &fx->reg;
    struct iot_user u;
    fill_user(&u, "survivor");
    assert_rc(iot_reg_user_create(r, &u), IOT_OK);
    assert_i64(pg_wait_count(base_pool_size()), base_pool_size());

    /* killed while idle: noticed at checkout, so even a write (never
     * retried) goes through at once on a fresh connection */
    pg_terminate_ours();
    assert_i64(pg_wait_count(0), 0);
    u.last_login = 42;
    assert_rc(iot_reg_user_update(r, &u), IOT_OK);
    int failures = 0;
    assert_rc(read_until_ok(r, "survivor", 30000, &failures), IOT_OK); /* returns at success */
    assert_i64(failures, 0);
    /* every pooled connection works again: all four busy at once */
    struct pool_worker w[4];
    pthread_t th[4];
    int64_t dev = mk_device(r, u.id, "d", "active", "t");
    for (int i = 0; i < 4; i++) {
        w[i] = (struct pool_worker){.r = r, .device = dev};
        assert_i64(pthread_create(&th[i], NULL, pool_worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_i64(w[i].errors, 0);
    }

    /* killed and used at once: the first calls may fail, not for long */
    pg_terminate_ours();
    failures = 0;
    assert_rc(read_until_ok(r, "survivor", 30000, &failures), IOT_OK); /* returns at success */
    assert_true(failures <= 2);
    assert_rc(iot_reg_ping(r), IOT_OK);
    struct iot_user got;
    assert_rc(iot_reg_user_get_by_id(r, u.id, &got), IOT_OK);
    assert_i64(got.last_login, 42);
}

/* A TCP proxy between the store and the server, which the test can take
 * down (listener and every connection closed, so the server looks gone)
 * and bring back on the same port. One thread, poll(), blocking writes. */
enum { PROXY_PAIRS = 32 };

struct proxy {
    struct sockaddr_in upstream;
    int port;
    int listen_fd; /* -1 while down */
    int cmd[2], ack[2];
    int pair[PROXY_PAIRS][2]; /* {client, server}, -1 when unused */
    pthread_t th;
};

static int proxy_listen(struct proxy *px)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)px->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    px->port = ntohs(a.sin_port);
    px->listen_fd = fd;
    return 0;
}

static void proxy_close_pair(struct proxy *px, int i)
{
    for (int k = 0; k < 2; k++)
        if (px->pair[i][k] >= 0)
            close(px->pair[i][k]);
    px->pair[i][0] = px->pair[i][1] = -1;
}

static void proxy_down_all(struct proxy *px)
{
    if (px->listen_fd >= 0)
        close(px->listen_fd);
    px->listen_fd = -1;
    for (int i = 0; i < PROXY_PAIRS; i++)
        proxy_close_pair(px, i);
}

static void proxy_accept(struct proxy *px)
{
    int c = accept(px->listen_fd, NULL, NULL);
    if (c < 0)
        return;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&px->upstream, sizeof px->upstream) != 0) {
        close(s);
        close(c);
        return;
    }
    for (int i = 0; i < PROXY_PAIRS; i++) {
        if (px->pair[i][0] < 0) {
            px->pair[i][0] = c;
            px->pair[i][1] = s;
            return;
        }
    }
    close(s);
    close(c);
}

/* Copies what fd `from` has to its peer; closes the pair at EOF. */
static void proxy_forward(struct proxy *px, int i, int from)
{
    char buf[16384];
    ssize_t n = read(px->pair[i][from], buf, sizeof buf);
    if (n <= 0) {
        proxy_close_pair(px, i);
        return;
    }
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(px->pair[i][!from], buf + off, (size_t)(n - off));
        if (w <= 0) {
            proxy_close_pair(px, i);
            return;
        }
        off += w;
    }
}

/* Commands: 'd' down, 'u' up, 'q' quit; each is acknowledged once done. */
static bool proxy_command(struct proxy *px)
{
    char c = 0;
    if (read(px->cmd[0], &c, 1) != 1)
        c = 'q';
    if (c == 'd' || c == 'q')
        proxy_down_all(px);
    else if (c == 'u' && px->listen_fd < 0)
        proxy_listen(px);
    ssize_t w = write(px->ack[1], &c, 1);
    (void)w;
    return c != 'q';
}

static void *proxy_main(void *arg)
{
    struct proxy *px = arg;
    for (;;) {
        struct pollfd pf[2 + 2 * PROXY_PAIRS];
        int who[2 + 2 * PROXY_PAIRS]; /* pair index * 2 + side, or -1/-2 */
        int n = 0;
        pf[n] = (struct pollfd){.fd = px->cmd[0], .events = POLLIN};
        who[n++] = -1;
        if (px->listen_fd >= 0) {
            pf[n] = (struct pollfd){.fd = px->listen_fd, .events = POLLIN};
            who[n++] = -2;
        }
        for (int i = 0; i < PROXY_PAIRS; i++)
            for (int k = 0; k < 2 && px->pair[i][0] >= 0; k++) {
                pf[n] = (struct pollfd){.fd = px->pair[i][k], .events = POLLIN};
                who[n++] = i * 2 + k;
            }
        if (poll(pf, (nfds_t)n, -1) < 0)
            continue;
        for (int j = 0; j < n; j++) {
            if (!pf[j].revents)
                continue;
            if (who[j] == -1) {
                if (!proxy_command(px))
                    return NULL;
                break; /* the fd set changed */
            }
            if (who[j] == -2)
                proxy_accept(px);
            else if (px->pair[who[j] / 2][0] >= 0)
                proxy_forward(px, who[j] / 2, who[j] % 2);
        }
    }
}

static void proxy_send(struct proxy *px, char c)
{
    char ack;
    assert_i64(write(px->cmd[1], &c, 1), 1);
    assert_i64(read(px->ack[0], &ack, 1), 1);
}

/* Where the base URL points, if it is a plain "…@a.b.c.d:port/…" (or
 * localhost) URL the proxy can stand in for; host_at/host_len locate it. */
static bool url_ipv4_target(const char *url, struct sockaddr_in *out, size_t *host_at,
                            size_t *host_len)
{
    const char *p = strstr(url, "://");
    if (!p)
        return false;
    p += 3;
    size_t auth = strcspn(p, "/?");
    const char *at = memchr(p, '@', auth);
    const char *host = at ? at + 1 : p;
    size_t len = (size_t)(p + auth - host);
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, host, len);
    buf[len] = '\0';
    char *colon = strchr(buf, ':');
    long port = 5432;
    if (colon) {
        *colon = '\0';
        port = strtol(colon + 1, NULL, 10);
    }
    *out = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (strcmp(buf, "localhost") == 0)
        snprintf(buf, sizeof buf, "127.0.0.1");
    if (inet_pton(AF_INET, buf, &out->sin_addr) != 1)
        return false;
    *host_at = (size_t)(host - url);
    *host_len = len;
    return true;
}

/* The server goes away (behind the proxy) and comes back: while it is gone
 * every op fails fast with IOT_EUNAVAILABLE; once it is back, ops work
 * again within the reconnect backoff, with no reopen. */
static void test_pg_server_down(void **state)
{
    struct fixture *fx = *state;
    if (!is_postgres(fx->url))
        skip();
    struct proxy px = {.listen_fd = -1};
    size_t host_at = 0, host_len = 0;
    if (!url_ipv4_target(g_base_url, &px.upstream, &host_at, &host_len))
        skip(); /* a socket directory or a host name: nothing to stand in for */
    for (int i = 0; i < PROXY_PAIRS; i++)
        px.pair[i][0] = px.pair[i][1] = -1;
    assert_i64(pipe(px.cmd), 0);
    assert_i64(pipe(px.ack), 0);
    assert_i64(proxy_listen(&px), 0);
    assert_i64(pthread_create(&px.th, NULL, proxy_main, &px), 0);

    char base[1100], url[1300];
    snprintf(base, sizeof base, "%.*s127.0.0.1:%d%s", (int)host_at, g_base_url, px.port,
             g_base_url + host_at + host_len);
    pg_store_url(base, "", url, sizeof url);
    struct iot_registry reg;
    assert_rc(iot_registry_open(url, &reg), IOT_OK);
    mk_user(&reg, "before");

    proxy_send(&px, 'd');
    struct iot_user got;
    /* Down, every call fails at once: a refused connect takes milliseconds,
     * while a call that waited would wait IOT_PG_POOL_WAIT_MS or IOT_PG_IO_MS
     * (6 s). The bound sits between, with room for a loaded machine. */
    const int64_t fail_fast_ms = 5000;
    for (int i = 0; i < 8; i++) {
        int64_t t0 = mono_ms();
        assert_rc(iot_reg_user_get_by_username(&reg, "before", &got), IOT_EUNAVAILABLE);
        struct iot_user u;
        fill_user(&u, "during");
        assert_rc(iot_reg_user_create(&reg, &u), IOT_EUNAVAILABLE);
        assert_rc(iot_reg_ping(&reg), IOT_EUNAVAILABLE);
        assert_true(mono_ms() - t0 < fail_fast_ms);
        sleep_ms(100);
    }

    proxy_send(&px, 'u');
    int failures = 0;
    /* The backoff is at most 5 s, then one connect: read_until_ok returns
     * as soon as a read succeeds; its 30 s only bound a failure. */
    assert_rc(read_until_ok(&reg, "before", 30000, &failures), IOT_OK);
    mk_user(&reg, "after");
    int64_t total = -1;
    assert_rc(iot_reg_user_list(&reg, (struct iot_page){0}, NULL, NULL, &total), IOT_OK);
    assert_i64(total, 2);
    iot_registry_close(&reg);

    proxy_send(&px, 'q');
    pthread_join(px.th, NULL);
    for (int k = 0; k < 2; k++) {
        close(px.cmd[k]);
        close(px.ack[k]);
    }
}

/* ---- main -------------------------------------------------------------- */

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define T_UNOPENED(fn) cmocka_unit_test_setup_teardown(fn, setup_unopened, teardown)

/* The URL as printed: a password in it becomes "***". */
static void redact_url(const char *url, char *out, size_t size)
{
    snprintf(out, size, "%s", url);
    char *p = strstr(out, "://");
    if (!p)
        return;
    p += 3;
    size_t auth = strcspn(p, "/?");
    char *at = memchr(p, '@', auth);
    char *colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
    if (!colon)
        return;
    char rest[1100];
    snprintf(rest, sizeof rest, "%s", at);
    snprintf(colon + 1, size - (size_t)(colon + 1 - out), "***%s", rest);
}

static int run_backend(const char *url)
{
    const struct CMUnitTest tests[] = {
        T(test_ping),
        T(test_user_create_get),
        T(test_user_explicit_fields),
        T(test_user_unique),
        T(test_user_case_insensitive),
        T(test_user_update),
        T(test_user_delete_cascade),
        T(test_user_list_paging),
        T(test_device_create_get),
        T(test_device_owner_active),
        T(test_device_status_set_by),
        T(test_device_update_by_device),
        T(test_device_update_by_device_race),
        T(test_device_unique),
        T(test_device_update),
        T(test_device_delete),
        T(test_device_list_filters),
        T(test_callback_reentry),
        T(test_device_touch),
        T(test_device_stats),
        T(test_group_crud),
        T(test_members),
        T(test_group_devices),
        T(test_device_groups),
        T(test_strings_roundtrip),
        T(test_reopen),
        T(test_cleanup_recorded_by_deletes),
        T(test_cleanup_failed_and_done),
        T(test_cleanup_list_paging),
        T(test_cleanup_same_transaction),
        T_UNOPENED(test_migrate_case_duplicates),
        T(test_concurrency),
        /* PostgreSQL only; they skip on other backends */
        T_UNOPENED(test_pg_concurrent_open),
        T_UNOPENED(test_pg_migration_lock),
        T_UNOPENED(test_pg_unreachable),
        T_UNOPENED(test_pg_pool_size),
        T(test_pg_error_mapping),
        T(test_pg_touch_many),
        T(test_pg_backend_killed),
        T_UNOPENED(test_pg_server_down),
    };
    char shown[1100], name[1200];
    redact_url(url, shown, sizeof shown);
    snprintf(name, sizeof name, "registry[%s]", shown);
    g_base_url = url;
    printf("[ BACKEND  ] %s\n", shown); /* cmocka 1.1 does not print group names */
    fflush(stdout);
    return cmocka_run_group_tests_name(name, tests, NULL, pg_drop_schema);
}

int main(void)
{
    char defaults[1100];
    snprintf(defaults, sizeof defaults, "sqlite://%s/registry-contract,sqlite::memory:",
             contract_tmpdir());
    const struct CMUnitTest table_tests[] = {
        cmocka_unit_test(test_backend_table),
        cmocka_unit_test(test_url_forms),
    };
    int failed = cmocka_run_group_tests_name("registry_backend_table", table_tests, NULL, NULL);
    failed += contract_run_backends("IOT_REGISTRY_URLS", defaults, run_backend);
    return failed ? 1 : 0;
}
