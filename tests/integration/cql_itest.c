/* Integration tests of the CQL client against a real Apache Cassandra
 * (scripts/services.sh start cassandra; CASSANDRA_HOSTS names it, the test
 * exits 77 when it is unset). One keyspace per run: every type round-trips,
 * a counter, prepared statements in unlogged and logged batches writing
 * 10,000 rows read back in pages of 500, 1,000 concurrent requests on one
 * connection, the server's errors for bad CQL and for a consistency that
 * cannot be met, and a reconnect after the server restarts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cql/cql_future.h"
#include "cql/cql_session.h"
#include "cql/cql_types.h"
#include "integration/cql_itest_util.h"

static const struct cql_slice no_values = {NULL, 0};
static struct cql_session *S;
static char KS[64];

/* Runs a statement that must succeed; returns its reply (caller frees). */
static struct cql_reply *must(const char *fmt, ...)
{
    char q[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    struct cql_reply *r;
    struct cql_opts o = {.timeout_ms = 60000};
    int rc = cql_session_query_sync(S, q, no_values, CQL_CONSISTENCY_DEFAULT, &o, &r);
    if (rc)
        fprintf(stderr, "%s\n  -> %s: %s\n", q, cql_strerror(rc), cql_reply_error_text(r));
    assert_int_equal(rc, CQL_OK);
    return r;
}

static void must_free(const char *fmt, const char *arg)
{
    cql_reply_free(must(fmt, arg));
}

static const struct cql_prepared_stmt *prepare(const char *fmt, ...)
{
    char q[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    const struct cql_prepared_stmt *ps;
    struct cql_reply *err;
    int rc = cql_session_prepare_sync(S, q, &ps, &err);
    if (rc)
        fprintf(stderr, "prepare %s: %s\n", q, cql_reply_error_text(err));
    assert_int_equal(rc, CQL_OK);
    return ps;
}

static struct cql_session *new_session(void)
{
    struct cql_session_config cfg = {
        .contact_points = getenv("CASSANDRA_HOSTS"),
        .user = "cassandra",
        .password = "cassandra",
        .consistency = CQL_CONSISTENCY_ONE,
        .connections_per_host = 1,
    };
    struct cql_session *s;
    const char *why;
    int rc = cql_session_new(&cfg, &s, &why);
    if (rc)
        fprintf(stderr, "session: %s\n", why);
    assert_int_equal(rc, CQL_OK);
    rc = cql_session_connect(s);
    if (rc)
        fprintf(stderr, "connect: %s\n", cql_session_error_text(s));
    assert_int_equal(rc, CQL_OK);
    return s;
}

static int setup(void **state)
{
    S = new_session();
    snprintf(KS, sizeof KS, "cql_itest_%ld_%d", (long)time(NULL), (int)getpid());
    must_free("CREATE KEYSPACE %s WITH replication = "
              "{'class': 'SimpleStrategy', 'replication_factor': 1}",
              KS);
    return 0;
}

static int teardown(void **state)
{
    struct cql_opts o = {.timeout_ms = 60000};
    char q[128];
    snprintf(q, sizeof q, "DROP KEYSPACE IF EXISTS %s", KS);
    struct cql_reply *r = NULL;
    int rc = cql_session_query_sync(S, q, no_values, CQL_CONSISTENCY_DEFAULT, &o, &r);
    if (rc)
        fprintf(stderr, "drop keyspace: %s\n", cql_reply_error_text(r));
    cql_reply_free(r);
    cql_session_free(S);
    return rc;
}

/* ---- every type ---------------------------------------------------------------- */

static const uint8_t uuid4[16] = {0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x41, 0xd1,
                                  0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
/* version 1 (time-based), RFC 4122 variant */
static const uint8_t uuid1[16] = {0x5b, 0x6b, 0xc4, 0x7e, 0x2c, 0x12, 0x11, 0xee,
                                  0xbe, 0x56, 0x02, 0x42, 0xac, 0x12, 0x00, 0x02};
static const uint8_t blob[5] = {0x00, 0xff, 0x10, 0x80, 0x7f};

static void encode_row(struct cql_buf *b, int32_t k)
{
    cql_encode_int(b, k);
    cql_encode_int(b, -123456);
    cql_encode_bigint(b, INT64_MIN + 1);
    cql_encode_double(b, 3.141592653589793);
    cql_encode_float(b, -2.5f);
    cql_encode_boolean(b, true);
    cql_encode_text(b, "h\xc3\xa9llo \xe2\x82\xac", 11);
    cql_encode_blob(b, blob, sizeof blob);
    cql_encode_timestamp(b, 1700000000123);
    cql_encode_uuid(b, uuid4);
    cql_encode_uuid(b, uuid1);
    struct cql_str mk[2] = {cql_str_c("b"), cql_str_c("a")},
                   mv[2] = {cql_str_c("2"), cql_str_c("1")};
    cql_encode_map_text(b, mk, mv, 2);
    int32_t li[3] = {3, -1, 3};
    cql_encode_list(b, CQL_TYPE_INT, li, 3);
    struct cql_str si[2] = {cql_str_c("y"), cql_str_c("x")};
    cql_encode_list(b, CQL_TYPE_VARCHAR, si, 2);
    cql_encode_smallint(b, -32768);
    cql_encode_tinyint(b, 127);
    cql_encode_null(b);
}

static const uint16_t want_types[] = {
    CQL_TYPE_INT,      CQL_TYPE_INT,     CQL_TYPE_BIGINT, CQL_TYPE_DOUBLE,    CQL_TYPE_FLOAT,
    CQL_TYPE_BOOLEAN,  CQL_TYPE_VARCHAR, CQL_TYPE_BLOB,   CQL_TYPE_TIMESTAMP, CQL_TYPE_UUID,
    CQL_TYPE_TIMEUUID, CQL_TYPE_MAP,     CQL_TYPE_LIST,   CQL_TYPE_SET,       CQL_TYPE_SMALLINT,
    CQL_TYPE_TINYINT,  CQL_TYPE_INT,
};
#define N_TYPE_COLS (sizeof want_types / sizeof want_types[0])

static void check_row(const struct cql_value *c)
{
    int32_t i;
    int64_t l;
    double d;
    float f;
    bool bo;
    struct cql_str t;
    struct cql_slice bl;
    uint8_t u[16];
    assert_int_equal(cql_decode_int(c[1], &i), CQL_OK);
    assert_int_equal(i, -123456);
    assert_int_equal(cql_decode_bigint(c[2], &l), CQL_OK);
    assert_true(l == INT64_MIN + 1);
    assert_int_equal(cql_decode_double(c[3], &d), CQL_OK);
    assert_true(d == 3.141592653589793);
    assert_int_equal(cql_decode_float(c[4], &f), CQL_OK);
    assert_true(f == -2.5f);
    assert_int_equal(cql_decode_boolean(c[5], &bo), CQL_OK);
    assert_true(bo);
    assert_int_equal(cql_decode_text(c[6], &t), CQL_OK);
    assert_int_equal(t.len, 11);
    assert_memory_equal(t.ptr, "h\xc3\xa9llo \xe2\x82\xac", 11);
    assert_int_equal(cql_decode_blob(c[7], &bl), CQL_OK);
    assert_int_equal(bl.len, sizeof blob);
    assert_memory_equal(bl.ptr, blob, sizeof blob);
    assert_int_equal(cql_decode_timestamp(c[8], &l), CQL_OK);
    assert_true(l == 1700000000123);
    assert_int_equal(cql_decode_uuid(c[9], u), CQL_OK);
    assert_memory_equal(u, uuid4, 16);
    assert_int_equal(cql_decode_uuid(c[10], u), CQL_OK);
    assert_memory_equal(u, uuid1, 16);
    struct cql_str mk[4], mv[4];
    size_t n;
    assert_int_equal(cql_decode_map_text(c[11], mk, mv, 4, &n), CQL_OK);
    assert_int_equal(n, 2); /* sorted by key */
    assert_true(cql_str_eq(mk[0], "a") && cql_str_eq(mv[0], "1"));
    assert_true(cql_str_eq(mk[1], "b") && cql_str_eq(mv[1], "2"));
    int32_t li[4];
    assert_int_equal(cql_decode_list(c[12], CQL_TYPE_INT, li, 4, &n), CQL_OK);
    assert_int_equal(n, 3); /* a list keeps order and duplicates */
    assert_true(li[0] == 3 && li[1] == -1 && li[2] == 3);
    struct cql_str si[4];
    assert_int_equal(cql_decode_list(c[13], CQL_TYPE_VARCHAR, si, 4, &n), CQL_OK);
    assert_int_equal(n, 2); /* a set is sorted */
    assert_true(cql_str_eq(si[0], "x") && cql_str_eq(si[1], "y"));
    int16_t sm;
    assert_int_equal(cql_decode_smallint(c[14], &sm), CQL_OK);
    assert_int_equal(sm, -32768);
    int8_t ti;
    assert_int_equal(cql_decode_tinyint(c[15], &ti), CQL_OK);
    assert_int_equal(ti, 127);
    assert_int_equal(cql_decode_int(c[16], &i), CQL_E_NULL);
}

static void test_every_type_round_trips(void **state)
{
    must_free("CREATE TABLE %s.types (k int PRIMARY KEY, i int, b bigint, d double, f float, "
              "bo boolean, t text, bl blob, ts timestamp, u uuid, tu timeuuid, "
              "m map<text, text>, l list<int>, st set<text>, si smallint, ti tinyint, n int)",
              KS);
    const char *cols = "k, i, b, d, f, bo, t, bl, ts, u, tu, m, l, st, si, ti, n";
    const struct cql_prepared_stmt *ins =
        prepare("INSERT INTO %s.types (%s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?)",
                KS, cols);
    assert_int_equal(cql_prepared_params(ins)->pk_count, 1);
    struct cql_buf v = {0};
    encode_row(&v, 1);
    struct cql_reply *r;
    assert_int_equal(
        cql_session_execute_sync(S, ins, slice_of(&v), CQL_CONSISTENCY_DEFAULT, NULL, &r), CQL_OK);
    cql_reply_free(r);
    /* the same row through QUERY with bound values */
    cql_buf_reset(&v);
    encode_row(&v, 2);
    char q[512];
    snprintf(q, sizeof q,
             "INSERT INTO %s.types (%s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             KS, cols);
    int rc = cql_session_query_sync(S, q, slice_of(&v), CQL_CONSISTENCY_DEFAULT, NULL, &r);
    if (rc)
        fprintf(stderr, "query with values: %s\n", cql_reply_error_text(r));
    assert_int_equal(rc, CQL_OK);
    cql_reply_free(r);

    const struct cql_prepared_stmt *sel = prepare("SELECT %s FROM %s.types WHERE k = ?", cols, KS);
    for (int32_t k = 1; k <= 2; k++) {
        cql_buf_reset(&v);
        cql_encode_int(&v, k);
        assert_int_equal(
            cql_session_execute_sync(S, sel, slice_of(&v), CQL_CONSISTENCY_DEFAULT, NULL, &r),
            CQL_OK);
        const struct cql_rows *rows = cql_reply_rows(r);
        assert_non_null(rows);
        assert_int_equal(rows->n_rows, 1);
        assert_int_equal(rows->meta.n_columns, N_TYPE_COLS);
        for (size_t i = 0; i < N_TYPE_COLS; i++)
            assert_int_equal(rows->meta.columns[i].type->id, want_types[i]);
        struct cql_value cells[N_TYPE_COLS];
        struct cql_row_iter it = cql_rows_iter(rows);
        assert_true(cql_rows_next(&it, cells, N_TYPE_COLS));
        check_row(cells);
        cql_reply_free(r);
    }
    cql_buf_free(&v);
}

static void test_counter(void **state)
{
    must_free("CREATE TABLE %s.counts (k int PRIMARY KEY, c counter)", KS);
    const struct cql_prepared_stmt *up = prepare("UPDATE %s.counts SET c = c + ? WHERE k = ?", KS);
    assert_int_equal(cql_prepared_params(up)->columns[0].type->id, CQL_TYPE_COUNTER);
    for (int i = 0; i < 3; i++) {
        struct cql_buf v = {0};
        cql_encode_counter(&v, 5);
        cql_encode_int(&v, 1);
        struct cql_reply *r;
        assert_int_equal(
            cql_session_execute_sync(S, up, slice_of(&v), CQL_CONSISTENCY_DEFAULT, NULL, &r),
            CQL_OK);
        cql_reply_free(r);
        cql_buf_free(&v);
    }
    struct cql_reply *r = must("SELECT c FROM %s.counts WHERE k = 1", KS);
    struct cql_row_iter it = cql_rows_iter(cql_reply_rows(r));
    struct cql_value cell;
    assert_true(cql_rows_next(&it, &cell, 1));
    int64_t c;
    assert_int_equal(cql_decode_counter(cell, &c), CQL_OK);
    assert_int_equal(c, 15);
    cql_reply_free(r);
}

/* ---- batches and paging ---------------------------------------------------------- */

#define N_PART 10
#define PER_PART 1000
#define BATCH 100

static void value_text(char *out, size_t cap, int32_t p, int32_t c)
{
    snprintf(out, cap, "v-%d-%d", p, c);
}

static void test_batches_then_paging_10000(void **state)
{
    must_free("CREATE TABLE %s.rows (p int, c int, v text, PRIMARY KEY (p, c))", KS);
    const struct cql_prepared_stmt *ins =
        prepare("INSERT INTO %s.rows (p, c, v) VALUES (?, ?, ?)", KS);
    struct cql_buf vals[BATCH] = {{0}};
    struct cql_batch_item items[BATCH];
    int n_batches = 0;
    for (int32_t p = 0; p < N_PART; p++)
        for (int32_t c0 = 0; c0 < PER_PART; c0 += BATCH, n_batches++) {
            for (int32_t j = 0; j < BATCH; j++) {
                char text[32];
                value_text(text, sizeof text, p, c0 + j);
                cql_buf_reset(&vals[j]);
                cql_encode_int(&vals[j], p);
                cql_encode_int(&vals[j], c0 + j);
                cql_encode_text(&vals[j], text, strlen(text));
                items[j] = (struct cql_batch_item){.prepared = ins, .values = slice_of(&vals[j])};
            }
            uint8_t type = n_batches % 2 ? CQL_BATCH_LOGGED : CQL_BATCH_UNLOGGED;
            struct cql_reply *r;
            int rc =
                cql_session_batch_sync(S, type, items, BATCH, CQL_CONSISTENCY_DEFAULT, NULL, &r);
            if (rc)
                fprintf(stderr, "batch: %s\n", cql_reply_error_text(r));
            assert_int_equal(rc, CQL_OK);
            cql_reply_free(r);
        }
    for (int j = 0; j < BATCH; j++)
        cql_buf_free(&vals[j]);
    assert_int_equal(n_batches, N_PART * PER_PART / BATCH);

    /* every row once, 500 at a time */
    uint8_t *seen = calloc(N_PART * PER_PART, 1);
    char q[128];
    snprintf(q, sizeof q, "SELECT p, c, v FROM %s.rows", KS);
    struct cql_opts o = {.page_size = 500};
    struct cql_reply *page;
    int rc = cql_session_query_sync(S, q, no_values, CQL_CONSISTENCY_DEFAULT, &o, &page);
    int pages = 0, rows = 0;
    while (rc == CQL_OK) {
        pages++;
        const struct cql_rows *rs = cql_reply_rows(page);
        assert_non_null(rs);
        assert_true(rs->n_rows <= 500);
        struct cql_row_iter it = cql_rows_iter(rs);
        struct cql_value cells[3];
        while (cql_rows_next(&it, cells, 3)) {
            int32_t p, c;
            struct cql_str v;
            char want[32];
            assert_int_equal(cql_decode_int(cells[0], &p), CQL_OK);
            assert_int_equal(cql_decode_int(cells[1], &c), CQL_OK);
            assert_int_equal(cql_decode_text(cells[2], &v), CQL_OK);
            assert_true(p >= 0 && p < N_PART && c >= 0 && c < PER_PART);
            value_text(want, sizeof want, p, c);
            assert_true(cql_str_eq(v, want));
            assert_int_equal(seen[p * PER_PART + c]++, 0);
            rows++;
        }
        if (!cql_reply_has_more_pages(page))
            break;
        struct cql_reply *next;
        rc = cql_session_next_page_sync(S, page, &next);
        cql_reply_free(page);
        page = next;
    }
    if (rc)
        fprintf(stderr, "paging: %s\n", cql_reply_error_text(page));
    assert_int_equal(rc, CQL_OK);
    cql_reply_free(page);
    assert_int_equal(rows, N_PART * PER_PART);
    assert_true(pages >= N_PART * PER_PART / 500);
    free(seen);
}

/* ---- concurrency ------------------------------------------------------------------ */

struct read_check {
    atomic_uint *ok, *done;
    int32_t p, c;
};

static void read_cb(int rc, struct cql_reply *r, void *ctx)
{
    struct read_check *rc_ = ctx;
    const struct cql_rows *rows = cql_reply_rows(r);
    if (rc == CQL_OK && rows && rows->n_rows == 1) {
        struct cql_row_iter it = cql_rows_iter(rows);
        struct cql_value cell;
        struct cql_str v;
        char want[32];
        value_text(want, sizeof want, rc_->p, rc_->c);
        if (cql_rows_next(&it, &cell, 1) && cql_decode_text(cell, &v) == CQL_OK &&
            cql_str_eq(v, want))
            atomic_fetch_add(rc_->ok, 1);
    } else if (rc) {
        fprintf(stderr, "read: %s\n", cql_reply_error_text(r));
    }
    atomic_fetch_add(rc_->done, 1);
    cql_reply_free(r);
}

static void test_1000_concurrent_on_one_connection(void **state)
{
    const struct cql_prepared_stmt *sel =
        prepare("SELECT v FROM %s.rows WHERE p = ? AND c = ?", KS);
    atomic_uint ok = 0, done = 0;
    struct read_check *rc = calloc(1000, sizeof *rc);
    struct cql_buf v = {0};
    for (int i = 0; i < 1000; i++) {
        rc[i] = (struct read_check){&ok, &done, i % N_PART, (i * 7) % PER_PART};
        cql_buf_reset(&v);
        cql_encode_int(&v, rc[i].p);
        cql_encode_int(&v, rc[i].c);
        assert_int_equal(cql_session_execute(S, sel, slice_of(&v), CQL_CONSISTENCY_DEFAULT, NULL,
                                             read_cb, &rc[i]),
                         CQL_OK);
    }
    cql_buf_free(&v);
    uint64_t until = now_ms() + 60000;
    while (atomic_load(&done) < 1000 && now_ms() < until)
        usleep(1000);
    assert_int_equal(atomic_load(&done), 1000);
    assert_int_equal(atomic_load(&ok), 1000);
    struct cql_session_stats st;
    cql_session_stats(S, &st);
    assert_int_equal(st.connections_ready, 1); /* all on one connection */
    free(rc);
}

/* ---- errors ----------------------------------------------------------------------- */

static void expect_error(const char *q, int want, const char *needle)
{
    struct cql_reply *r;
    int rc = cql_session_query_sync(S, q, no_values, CQL_CONSISTENCY_DEFAULT, NULL, &r);
    fprintf(stderr, "  %s -> %s: %s\n", q, cql_strerror(rc), cql_reply_error_text(r));
    assert_int_equal(rc, want);
    const struct cql_error_body *e = cql_reply_error(r);
    assert_non_null(e);
    assert_int_equal(e->code, cql_err_server_code(want));
    assert_true(e->message.len > 0);
    assert_non_null(strstr(cql_reply_error_text(r), needle));
    cql_reply_free(r);
}

static void test_server_errors(void **state)
{
    expect_error("SELEC * FROM system.local", CQL_E_SRV_SYNTAX, "no viable alternative");
    char q[128];
    snprintf(q, sizeof q, "SELECT * FROM %s.no_such_table", KS);
    expect_error(q, CQL_E_SRV_INVALID, "no_such_table");
    snprintf(q, sizeof q, "CREATE TABLE %s.rows (p int PRIMARY KEY)", KS);
    expect_error(q, CQL_E_SRV_ALREADY_EXISTS, "rows");
}

static void test_unavailable(void **state)
{
    char ks3[80];
    snprintf(ks3, sizeof ks3, "%s_rf3", KS);
    must_free("CREATE KEYSPACE %s WITH replication = "
              "{'class': 'SimpleStrategy', 'replication_factor': 3}",
              ks3);
    must_free("CREATE TABLE %s.t (k int PRIMARY KEY, v int)", ks3);
    char q[160];
    snprintf(q, sizeof q, "INSERT INTO %s.t (k, v) VALUES (1, 1)", ks3);
    struct cql_reply *r;
    int rc = cql_session_query_sync(S, q, no_values, CQL_CONSISTENCY_QUORUM, NULL, &r);
    fprintf(stderr, "  QUORUM write with RF=3 on one node -> %s: %s\n", cql_strerror(rc),
            cql_reply_error_text(r));
    assert_int_equal(rc, CQL_E_SRV_UNAVAILABLE);
    const struct cql_error_body *e = cql_reply_error(r);
    assert_non_null(e);
    assert_int_equal(e->consistency, CQL_CONSISTENCY_QUORUM);
    assert_int_equal(e->required, 2);
    assert_int_equal(e->alive, 1);
    cql_reply_free(r);
    must_free("DROP KEYSPACE %s", ks3);
}

/* A schema change makes the server drop the table's prepared statements:
 * the next EXECUTE gets UNPREPARED, and the session re-prepares and retries
 * it without the caller noticing. */
static void test_unprepared_after_schema_change(void **state)
{
    must_free("CREATE TABLE %s.alter_me (k int PRIMARY KEY, v int)", KS);
    const struct cql_prepared_stmt *ins =
        prepare("INSERT INTO %s.alter_me (k, v) VALUES (?, ?)", KS);
    struct cql_session_stats before, after;
    cql_session_stats(S, &before);
    for (int i = 0; i < 2; i++) {
        if (i == 1)
            must_free("ALTER TABLE %s.alter_me ADD extra int", KS);
        struct cql_buf v = {0};
        cql_encode_int(&v, i);
        cql_encode_int(&v, i);
        struct cql_reply *r;
        int rc = cql_session_execute_sync(S, ins, slice_of(&v), CQL_CONSISTENCY_DEFAULT, NULL, &r);
        if (rc)
            fprintf(stderr, "execute: %s\n", cql_reply_error_text(r));
        assert_int_equal(rc, CQL_OK);
        cql_reply_free(r);
        cql_buf_free(&v);
    }
    cql_session_stats(S, &after);
    fprintf(stderr, "  re-prepared after ALTER TABLE: %llu\n",
            (unsigned long long)(after.reprepares - before.reprepares));
    assert_int_equal(after.reprepares - before.reprepares, 1);
}

/* ---- restart ------------------------------------------------------------------------ */

static int read_one(const struct cql_prepared_stmt *sel, struct cql_reply **out)
{
    struct cql_buf v = {0};
    cql_encode_int(&v, 3);
    cql_encode_int(&v, 33);
    struct cql_opts o = {.idempotent = true};
    int rc = cql_session_execute_sync(S, sel, slice_of(&v), CQL_CONSISTENCY_DEFAULT, &o, out);
    cql_buf_free(&v);
    return rc;
}

static void test_reconnect_after_restart(void **state)
{
    const struct cql_prepared_stmt *sel =
        prepare("SELECT v FROM %s.rows WHERE p = ? AND c = ?", KS);
    struct cql_reply *r;
    assert_int_equal(read_one(sel, &r), CQL_OK);
    cql_reply_free(r);
    struct cql_session_stats before;
    cql_session_stats(S, &before);

    assert_int_equal(services("stop", "cassandra"), 0);
    assert_int_not_equal(read_one(sel, &r), CQL_OK); /* nobody there */
    cql_reply_free(r);
    assert_int_equal(services("start", "cassandra"), 0);

    uint64_t t0 = now_ms(), until = t0 + 60000;
    int rc = -1;
    while (rc != CQL_OK && now_ms() < until) {
        rc = read_one(sel, &r);
        if (rc == CQL_OK) {
            struct cql_row_iter it = cql_rows_iter(cql_reply_rows(r));
            struct cql_value cell;
            assert_true(cql_rows_next(&it, &cell, 1));
            assert_true(
                cql_str_eq((struct cql_str){(const char *)cell.ptr, (size_t)cell.len}, "v-3-33"));
        }
        cql_reply_free(r);
        if (rc)
            usleep(200000);
    }
    fprintf(stderr, "  back %llu ms after the restart\n", (unsigned long long)(now_ms() - t0));
    assert_int_equal(rc, CQL_OK);
    struct cql_session_stats after;
    cql_session_stats(S, &after);
    /* Cassandra >= 3.10 reloads prepared statements from
     * system.prepared_statements at start, so usually nothing was
     * re-prepared; if it had forgotten one, the session re-prepared it. */
    fprintf(stderr, "  re-prepared after the restart: %llu\n",
            (unsigned long long)(after.reprepares - before.reprepares));
}

int main(void)
{
    if (!getenv("CASSANDRA_HOSTS") || !*getenv("CASSANDRA_HOSTS")) {
        fprintf(stderr, "CASSANDRA_HOSTS not set: skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_round_trips),
        cmocka_unit_test(test_counter),
        cmocka_unit_test(test_batches_then_paging_10000),
        cmocka_unit_test(test_1000_concurrent_on_one_connection),
        cmocka_unit_test(test_server_errors),
        cmocka_unit_test(test_unavailable),
        cmocka_unit_test(test_unprepared_after_schema_change),
        cmocka_unit_test(test_reconnect_after_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
