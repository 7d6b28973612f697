/* telemetry_contract.c — the contract of store/telemetry.h: what every
 * backend must do, run against every backend URL in IOT_TELEMETRY_URLS
 * (comma separated), then IOT_TELEMETRY_URLS_EXTRA. Default: a fresh SQLite
 * file under IOT_TEST_TMPDIR (or /tmp) and sqlite::memory:. What only the
 * SQLite store promises — its file, commit log, migrations, flushes and
 * crash images — is tested in telemetry_sqlite_test.c; the helpers both
 * use are in telemetry_helpers.h.
 *
 * Each test opens a fresh store: a new file per test for file-backed SQLite,
 * a new uniquely named database for :memory:. A server backend URL must
 * point at an empty keyspace (a reset hook comes with the first one). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contract/contract_runner.h"
#include "contract/telemetry_helpers.h"
#include "cql/cql_session.h"

struct fixture {
    struct iot_telemetry tm;
    char url[1024];
    char path[1024]; /* SQLite file to delete at teardown, "" if none */
    char keyspace[64]; /* Cassandra keyspace to drop at teardown, "" if none */
};

static const char *g_base_url;
static atomic_uint g_seq;

/* ---- fixture ----------------------------------------------------------- */

/* ---- Cassandra: a keyspace per test ------------------------------------------ */

static bool is_cassandra_url(const char *url)
{
    return strncasecmp(url, "cassandra://", 12) == 0;
}

/* cassandra://[user:pass@]hosts/keyspace[?options] with the keyspace made
 * unique to this test: <keyspace>_<pid>_<n> (the store creates it). */
static void cassandra_fresh_url(struct fixture *fx)
{
    const char *url = g_base_url, *slash = strchr(url + 12, '/');
    if (!slash) { /* no keyspace: let open refuse it */
        snprintf(fx->url, sizeof fx->url, "%s", url);
        return;
    }
    const char *ks = slash + 1, *query = strchr(ks, '?');
    int ks_len = query ? (int)(query - ks) : (int)strlen(ks);
    snprintf(fx->keyspace, sizeof fx->keyspace, "%.*s_%ld_%u", ks_len, ks, (long)getpid(),
             atomic_fetch_add(&g_seq, 1));
    snprintf(fx->url, sizeof fx->url, "%.*s%s%s", (int)(ks - url), url, fx->keyspace,
             query ? query : "");
}

/* Drops the test's keyspace with a session of its own (the store is
 * closed by then). Failures only warn: the next test has its own. */
static void cassandra_drop_keyspace(const struct fixture *fx)
{
    char hosts[512], user[128] = "", password[128] = "";
    const char *start = fx->url + 12, *end = strchr(start, '/');
    const char *at = memchr(start, '@', (size_t)(end - start));
    if (at) {
        const char *colon = memchr(start, ':', (size_t)(at - start));
        snprintf(user, sizeof user, "%.*s", (int)((colon ? colon : at) - start), start);
        if (colon)
            snprintf(password, sizeof password, "%.*s", (int)(at - colon - 1), colon + 1);
        start = at + 1;
    }
    snprintf(hosts, sizeof hosts, "%.*s", (int)(end - start), start);
    struct cql_session_config cfg = {.contact_points = hosts,
                                     .user = user[0] ? user : NULL,
                                     .password = user[0] ? password : NULL,
                                     .request_timeout_ms = 60000};
    struct cql_session *s = NULL;
    int rc = cql_session_new(&cfg, &s, NULL);
    if (rc == CQL_OK)
        rc = cql_session_connect(s);
    if (rc == CQL_OK) {
        char cql[128];
        snprintf(cql, sizeof cql, "DROP KEYSPACE IF EXISTS \"%s\"", fx->keyspace);
        rc = cql_session_query_sync(s, cql, (struct cql_slice){NULL, 0},
                                    CQL_CONSISTENCY_DEFAULT, NULL, NULL);
    }
    if (rc != CQL_OK)
        fprintf(stderr, "dropping keyspace %s: %s\n", fx->keyspace, cql_strerror(rc));
    cql_session_free(s);
}

/* Whether the store under test purges by scanning (SQLite) rather than
 * expiring rows by itself (IOT_TM_CAP_TTL: its purge removes nothing). */
static bool purges_by_scan(void **state)
{
    return !(((struct fixture *)*state)->tm.ops->caps & IOT_TM_CAP_TTL);
}

static void fresh_url(struct fixture *fx)
{
    fx->path[0] = '\0';
    fx->keyspace[0] = '\0';
    if (is_cassandra_url(g_base_url)) {
        cassandra_fresh_url(fx);
    } else if (sqlite_file_path(g_base_url)) {
        snprintf(fx->url, sizeof fx->url, "%s-%ld-%u.db", g_base_url, (long)getpid(),
                 atomic_fetch_add(&g_seq, 1));
        snprintf(fx->path, sizeof fx->path, "%s", sqlite_file_path(fx->url));
        remove_db_files(fx->path);
    } else {
        snprintf(fx->url, sizeof fx->url, "%s", g_base_url);
    }
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    fresh_url(fx);
    int rc = iot_telemetry_open(fx->url, false, &fx->tm);
    if (rc != IOT_OK) {
        fprintf(stderr, "open %s: %s\n", fx->url, iot_strerror(rc));
        if (fx->keyspace[0])
            cassandra_drop_keyspace(fx);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    iot_clock_override(NULL);
    iot_telemetry_close(&fx->tm);
    if (fx->path[0])
        remove_db_files(fx->path);
    if (fx->keyspace[0])
        cassandra_drop_keyspace(fx);
    free(fx);
    return 0;
}

static struct iot_telemetry *TM(void **state)
{
    return &((struct fixture *)*state)->tm;
}
/* ---- basics ------------------------------------------------------------- */

static void test_ping_empty(void **state)
{
    struct iot_telemetry *tm = TM(state);
    assert_rc(iot_tm_ping(tm), IOT_OK);
    struct iot_tm_stats st = get_stats(tm);
    assert_i64(st.messages, 0);
    assert_i64(st.devices, 0);
    struct recs rs = query_dev(tm, 1, all_range(10));
    assert_i64(rs.n, 0);
    struct latests ls = {.n = 0};
    assert_rc(iot_tm_latest(tm, 1, on_latest, &ls), IOT_OK);
    assert_i64(ls.n, 0);
    assert_rc(iot_tm_write_batch(tm, NULL, 0), IOT_OK);
}

/* data and meta come back byte for byte: UTF-8, quotes, escapes. */
static void test_roundtrip_bytes(void **state)
{
    struct iot_telemetry *tm = TM(state);
    static const char data[] = "{\"msg\":\"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac "
                               "\xf0\x9f\x8c\xa1 \\\"q\\\" \\\\ \\n\\t\\u0000\\u00e9\","
                               "\"t\":-1.5e-7,\"ok\":true}";
    static const char meta[] = "{\"loc\":\"Z\xc3\xbcrich \\\"lab\\\"\",\"note\":\"a\\\\b\\/c\"}";
    struct tmsg t[2];
    msg_init(&t[0], 7, 70, T0, 0);
    msg_str(&t[0], "msg", "caf\xc3\xa9");
    msg_num(&t[0], "t", -1.5e-7);
    msg_bool(&t[0], "ok", true);
    msg_done(&t[0]);
    t[0].m.data_json = data; /* as the server built it, not as jansson would */
    t[0].m.data_len = strlen(data);
    msg_meta(&t[0], meta);
    msg_one(&t[1], 7, 70, T0 + 1, 0, "t", 2); /* no metadata */
    write_msgs(tm, t, 2);

    struct recs rs = query_dev(tm, 7, all_range(10));
    assert_i64(rs.n, 2);
    assert_i64(rs.v[0].ts, T0 + 1);
    assert_false(rs.v[0].has_meta);
    assert_bytes(rs.v[0].data, rs.v[0].data_len, t[1].data);
    assert_bytes(rs.v[1].data, rs.v[1].data_len, data);
    assert_true(rs.v[1].has_meta);
    assert_bytes(rs.v[1].meta, rs.v[1].meta_len, meta);
    assert_i64(rs.v[1].dev, 7);
    free(rs.v);
    struct recs us = {0};
    struct iot_tm_range r = all_range(10);
    assert_rc(iot_tm_query_user(tm, 70, &r, on_record, &us), IOT_OK);
    assert_i64(us.n, 2);
    assert_bytes(us.v[1].data, us.v[1].data_len, data);
    assert_bytes(us.v[1].meta, us.v[1].meta_len, meta);
    assert_i64(us.v[1].dev, 7);
    free(us.v);
}

static void test_order_range_limit(void **state)
{
    struct iot_telemetry *tm = TM(state);
    struct tmsg t[10];
    for (int i = 0; i < 10; i++) /* written oldest last */
        msg_one(&t[i], 1, 1, T0 + (10 - i) * 1000, 0, "v", 10 - i);
    write_msgs(tm, t, 10);
    struct recs rs = query_dev(tm, 1, all_range(100));
    assert_i64(rs.n, 10);
    for (int i = 0; i < 10; i++)
        assert_i64(rs.v[i].ts, T0 + (10 - i) * 1000);
    free(rs.v);
    /* [3000, 7000] inclusive both ends */
    struct iot_tm_range r = all_range(100);
    r.from = T0 + 3000;
    r.to = T0 + 7000;
    rs = query_dev(tm, 1, r);
    assert_i64(rs.n, 5);
    assert_i64(rs.v[0].ts, T0 + 7000);
    assert_i64(rs.v[4].ts, T0 + 3000);
    free(rs.v);
    r.limit = 2;
    rs = query_dev(tm, 1, r);
    assert_i64(rs.n, 2);
    assert_i64(rs.v[1].ts, T0 + 6000);
    free(rs.v);
    r.limit = 0;
    rs = query_dev(tm, 1, r);
    assert_i64(rs.n, 0);
    r.limit = -1;
    assert_rc(iot_tm_query_device(tm, 1, &r, on_record, &rs), IOT_EINVAL);
    /* a callback returning non-zero stops the scan, and that is IOT_OK */
    struct recs stop = {.stop_after = 3};
    r = all_range(100);
    assert_rc(iot_tm_query_device(tm, 1, &r, on_record, &stop), IOT_OK);
    assert_i64(stop.n, 3);
    free(stop.v);
    /* another device sees nothing */
    rs = query_dev(tm, 2, all_range(100));
    assert_i64(rs.n, 0);
}

/* 1000 messages, 5 per ts, read back by pages of 37: no gap, no duplicate. */
static void test_cursor_paging(void **state)
{
    struct iot_telemetry *tm = TM(state);
    enum { N = 1000, PER_TS = 5, PAGE = 37 };
    struct tmsg *t = calloc(N, sizeof *t);
    assert_non_null(t);
    for (int i = 0; i < N; i++) /* seq not in ts order, not dense */
        msg_one(&t[i], 3, 1, T0 + (i / PER_TS) * 10, (i % PER_TS) * 7 + 1, "v", i);
    write_msgs(tm, t, N);
    free(t);
    bool *seen = calloc(N, sizeof *seen);
    assert_non_null(seen);
    struct iot_tm_range r = all_range(PAGE);
    int total = 0, pages = 0;
    int64_t prev_ts = INT64_MAX, prev_seq = INT64_MAX;
    for (;;) {
        struct recs rs = query_dev(tm, 3, r);
        pages++;
        for (size_t i = 0; i < rs.n; i++) {
            struct rec *x = &rs.v[i];
            assert_true(x->ts < prev_ts || (x->ts == prev_ts && x->seq < prev_seq));
            int idx = (int)((x->ts - T0) / 10) * PER_TS + (int)(x->seq - 1) / 7;
            assert_true(idx >= 0 && idx < N);
            assert_false(seen[idx]);
            seen[idx] = true;
            prev_ts = x->ts;
            prev_seq = x->seq;
        }
        total += (int)rs.n;
        if (rs.n < PAGE) {
            free(rs.v);
            break;
        }
        r.before_ts = rs.v[rs.n - 1].ts;
        r.before_seq = rs.v[rs.n - 1].seq;
        free(rs.v);
    }
    assert_i64(total, N);
    assert_i64(pages, N / PAGE + 1);
    free(seen);
    /* the same with a range: only ts in [T0+500, T0+1500] (101 ts x 5) */
    r = all_range(PAGE);
    r.from = T0 + 500;
    r.to = T0 + 1500;
    total = 0;
    for (;;) {
        struct recs rs = query_dev(tm, 3, r);
        for (size_t i = 0; i < rs.n; i++)
            assert_true(rs.v[i].ts >= r.from && rs.v[i].ts <= r.to);
        total += (int)rs.n;
        if (rs.n < PAGE) {
            free(rs.v);
            break;
        }
        r.before_ts = rs.v[rs.n - 1].ts;
        r.before_seq = rs.v[rs.n - 1].seq;
        free(rs.v);
    }
    assert_i64(total, 101 * PER_TS);
}

/* max_bytes: a page ends after the record with which the summed
 * data_len + meta_len reaches the budget (always at least one record), the
 * callback never asking to stop; paging on covers every record once, for
 * the device and the per-user scan. */
static void test_page_byte_budget(void **state)
{
    struct iot_telemetry *tm = TM(state);
    enum { N = 300 };
    struct tmsg *t = calloc(N, sizeof *t);
    assert_non_null(t);
    for (int i = 0; i < N; i++) { /* lengths vary: {"v":0} .. {"v":299.5} */
        msg_one(&t[i], 4, 2, T0 + i, 1, "v", i % 2 ? i + 0.5 : i);
        msg_meta(&t[i], i % 3 ? NULL : "{\"k\":\"some metadata\"}");
    }
    write_msgs(tm, t, N);
    /* newest first: record j of a full scan is message N-1-j */
    size_t size[N];
    for (int j = 0; j < N; j++)
        size[j] = t[N - 1 - j].m.data_len + t[N - 1 - j].m.meta_len;
    free(t);
    int64_t prefix = 0;
    for (int k = 1; k <= 40; k++) {
        prefix += (int64_t)size[k - 1];
        struct iot_tm_range r = all_range(N);
        for (int64_t budget = prefix - (int64_t)size[k - 1] + 1; budget <= prefix;
             budget += (int64_t)size[k - 1] - 1 > 0 ? (int64_t)size[k - 1] - 1 : 1) {
            r.max_bytes = budget;
            struct recs rs = query_dev(tm, 4, r);
            if (rs.n != (size_t)k)
                fail_msg("max_bytes %" PRId64 " gave %zu records, want %d", budget, rs.n, k);
            free(rs.v);
        }
    }
    /* a budget smaller than one record still gives one */
    struct iot_tm_range r = all_range(N);
    r.max_bytes = 1;
    struct recs one = query_dev(tm, 4, r);
    assert_i64(one.n, 1);
    free(one.v);
    for (int user = 0; user < 2; user++) {
        bool seen[N] = {false};
        r = all_range(N);
        r.max_bytes = 700;
        int pages = 0, total = 0;
        for (;;) {
            struct recs rs = {0};
            assert_rc(user ? iot_tm_query_user(tm, 2, &r, on_record, &rs)
                           : iot_tm_query_device(tm, 4, &r, on_record, &rs),
                      IOT_OK);
            int64_t bytes = 0;
            for (size_t i = 0; i < rs.n; i++) {
                int idx = (int)(rs.v[i].ts - T0);
                assert_false(seen[idx]);
                seen[idx] = true;
                bytes += (int64_t)(rs.v[i].data_len + rs.v[i].meta_len);
            }
            pages++;
            total += (int)rs.n;
            bool full = bytes >= r.max_bytes;
            if (rs.n)
                r.before_ts = rs.v[rs.n - 1].ts, r.before_seq = rs.v[rs.n - 1].seq;
            free(rs.v);
            if (!full)
                break;
            assert_true(pages < N);
        }
        assert_i64(total, N);
        assert_true(pages > 5);
    }
}

/* Integers stay exact: the latest value, the rollups' integer part, typed
 * samples and sample_edge, also past 2^53, also after delete_range
 * recomputes them; a sum that overflows int64 is marked not exact; a real
 * in the mix makes a bucket not all-integer; booleans are the integers 0/1. */
struct typed {
    struct iot_tm_sample v[16];
    int n;
};

static int on_typed(void *ctx, const struct iot_tm_sample *s)
{
    struct typed *t = ctx;
    assert_true(t->n < 16);
    t->v[t->n++] = *s;
    return 0;
}

static void test_exact_integers(void **state)
{
    struct iot_telemetry *tm = TM(state);
    const int64_t big = INT64_C(9007199254740993); /* 2^53 + 1: no double has it */
    struct tmsg t[6];
    msg_init(&t[0], 7, 1, T0 + 1000, 0);
    msg_int(&t[0], "v", big);
    msg_done(&t[0]);
    msg_init(&t[1], 7, 1, T0 + 2000, 0);
    msg_int(&t[1], "v", big + 2);
    msg_num(&t[1], "r", 2.0); /* a real, though integral */
    msg_done(&t[1]);
    msg_init(&t[2], 7, 1, T0 + 3000, 0);
    msg_int(&t[2], "v", -3);
    msg_bool(&t[2], "b", true);
    msg_done(&t[2]);
    msg_init(&t[3], 8, 1, T0 + 1000, 0);
    msg_int(&t[3], "v", INT64_MAX);
    msg_done(&t[3]);
    msg_init(&t[4], 8, 1, T0 + 2000, 0);
    msg_int(&t[4], "v", 1);
    msg_done(&t[4]);
    msg_init(&t[5], 8, 1, T0 + 3000, 0);
    msg_num(&t[5], "v", 0.5);
    msg_done(&t[5]);
    write_msgs(tm, t, 3);
    write_msgs(tm, t + 3, 3);

    struct latests ls = {.n = 0};
    assert_rc(iot_tm_latest(tm, 7, on_latest, &ls), IOT_OK);
    assert_true(find_latest(&ls, "v")->is_int);
    assert_i64(find_latest(&ls, "v")->i, -3);
    assert_false(find_latest(&ls, "r")->is_int);
    assert_f64(find_latest(&ls, "r")->num, 2.0);

    struct rollups r = get_rollups(tm, 7, "v", H, INT64_MIN, INT64_MAX);
    assert_i64(r.n, 1);
    assert_i64(r.v[0].count, 3);
    assert_i64(r.v[0].ints, 3);
    assert_true(r.v[0].isum_exact);
    assert_i64(r.v[0].isum, 2 * big + 2 - 3);
    assert_i64(r.v[0].imin, -3);
    assert_i64(r.v[0].imax, big + 2);
    r = get_rollups(tm, 7, "b", D, INT64_MIN, INT64_MAX);
    assert_i64(r.v[0].ints, 1);
    assert_i64(r.v[0].isum, 1);
    r = get_rollups(tm, 8, "v", H, INT64_MIN, INT64_MAX);
    assert_i64(r.v[0].count, 3);
    assert_i64(r.v[0].ints, 2); /* 0.5 is no integer */
    assert_false(r.v[0].isum_exact); /* INT64_MAX + 1 */
    assert_i64(r.v[0].imax, INT64_MAX);

    struct typed ty = {.n = 0};
    assert_rc(iot_tm_samples_typed(tm, 7, "v", INT64_MIN, INT64_MAX, on_typed, &ty), IOT_OK);
    assert_i64(ty.n, 3);
    assert_true(ty.v[0].is_int && ty.v[1].is_int && ty.v[2].is_int);
    assert_i64(ty.v[0].i, big);
    assert_i64(ty.v[1].i, big + 2);
    ty.n = 0;
    assert_rc(iot_tm_samples_typed(tm, 7, "r", INT64_MIN, INT64_MAX, on_typed, &ty), IOT_OK);
    assert_i64(ty.n, 1);
    assert_false(ty.v[0].is_int);

    struct iot_tm_sample e;
    assert_rc(iot_tm_sample_edge(tm, 7, "v", T0, T0 + H, false, &e), IOT_OK);
    assert_true(e.is_int);
    assert_i64(e.i, big);
    assert_i64(e.ts, T0 + 1000);
    assert_rc(iot_tm_sample_edge(tm, 7, "v", T0, T0 + 3000, true, &e), IOT_OK);
    assert_i64(e.i, big + 2); /* `to` is exclusive */
    assert_rc(iot_tm_sample_edge(tm, 8, "v", T0, T0 + H, true, &e), IOT_OK);
    assert_false(e.is_int);
    assert_f64(e.num, 0.5);
    assert_rc(iot_tm_sample_edge(tm, 7, "v", T0 + 3001, T0 + H, false, &e), IOT_ENOTFOUND);
    assert_rc(iot_tm_sample_edge(tm, 7, "r", T0, T0 + 1500, false, &e), IOT_ENOTFOUND);

    /* delete the newest: latest and rollups are recomputed, still exact */
    int64_t deleted = 0;
    assert_rc(iot_tm_delete_range(tm, 7, T0 + 3000, T0 + 3000, &deleted), IOT_OK);
    assert_i64(deleted, 1);
    ls.n = 0;
    assert_rc(iot_tm_latest(tm, 7, on_latest, &ls), IOT_OK);
    assert_true(find_latest(&ls, "v")->is_int);
    assert_i64(find_latest(&ls, "v")->i, big + 2);
    r = get_rollups(tm, 7, "v", H, INT64_MIN, INT64_MAX);
    assert_i64(r.v[0].count, 2);
    assert_i64(r.v[0].ints, 2);
    assert_i64(r.v[0].imin, big);
    assert_i64(r.v[0].imax, big + 2);
    /* a sum past 2^53 that fits int64 stays exact */
    assert_true(r.v[0].isum_exact);
    assert_i64(r.v[0].isum, 2 * big + 2);
    assert_rc(iot_tm_delete_range(tm, 8, T0 + 3000, T0 + 3000, &deleted), IOT_OK);
    r = get_rollups(tm, 8, "v", H, INT64_MIN, INT64_MAX);
    assert_i64(r.v[0].ints, 2);
    assert_false(r.v[0].isum_exact);
    write_one(tm, 9, 1, T0, 0, "v", 1.5);
    struct tmsg u;
    msg_init(&u, 9, 1, T0 + 1, 0);
    msg_int(&u, "v", 40);
    msg_done(&u);
    write_msgs(tm, &u, 1);
    assert_rc(iot_tm_delete_range(tm, 9, T0, T0, &deleted), IOT_OK);
    r = get_rollups(tm, 9, "v", H, INT64_MIN, INT64_MAX);
    assert_i64(r.v[0].count, 1);
    assert_i64(r.v[0].ints, 1);
    assert_true(r.v[0].isum_exact);
    assert_i64(r.v[0].isum, 40);

    /* -0.0 keeps its sign in the latest value, written and recomputed */
    write_one(tm, 10, 1, T0, 0, "z", -0.0);
    ls.n = 0;
    assert_rc(iot_tm_latest(tm, 10, on_latest, &ls), IOT_OK);
    assert_true(find_latest(&ls, "z")->num == 0.0 && signbit(find_latest(&ls, "z")->num));
    write_one(tm, 10, 1, T0 + 1, 0, "z", 5.5);
    assert_rc(iot_tm_delete_range(tm, 10, T0 + 1, T0 + 1, &deleted), IOT_OK);
    ls.n = 0;
    assert_rc(iot_tm_latest(tm, 10, on_latest, &ls), IOT_OK);
    assert_false(find_latest(&ls, "z")->is_int);
    assert_true(find_latest(&ls, "z")->num == 0.0 && signbit(find_latest(&ls, "z")->num));
}

/* delete_range recomputes buckets holding INT64_MIN and INT64_MAX (no
 * SQL abs() or sum() to overflow), keeps an int64 sum past 2^53 exact and
 * marks only a sum that really leaves int64 as not exact. */
static void test_delete_int64_extremes(void **state)
{
    struct iot_telemetry *tm = TM(state);
    const int64_t vals[] = {INT64_MIN, INT64_MAX, 1, 7};
    struct tmsg t[4];
    for (int i = 0; i < 4; i++) {
        msg_init(&t[i], 1, 1, T0 + 1000 * (i + 1), 0);
        msg_int(&t[i], "x", vals[i]);
        msg_done(&t[i]);
    }
    write_msgs(tm, t, 4);
    int64_t deleted = 0;
    assert_rc(iot_tm_delete_range(tm, 1, T0 + 4000, T0 + 4000, &deleted), IOT_OK);
    assert_i64(deleted, 1);
    for (int w = 0; w < 2; w++) {
        struct rollups r = get_rollups(tm, 1, "x", w ? D : H, INT64_MIN, INT64_MAX);
        assert_i64(r.n, 1);
        assert_i64(r.v[0].count, 3);
        assert_i64(r.v[0].ints, 3);
        assert_true(r.v[0].isum_exact);
        assert_i64(r.v[0].isum, 0); /* INT64_MIN + INT64_MAX + 1 */
        assert_i64(r.v[0].imin, INT64_MIN);
        assert_i64(r.v[0].imax, INT64_MAX);
    }
    /* without INT64_MIN the sum overflows: not exact, bounds still exact */
    assert_rc(iot_tm_delete_range(tm, 1, T0 + 1000, T0 + 1000, &deleted), IOT_OK);
    struct rollups r = get_rollups(tm, 1, "x", H, INT64_MIN, INT64_MAX);
    assert_i64(r.v[0].count, 2);
    assert_false(r.v[0].isum_exact);
    assert_i64(r.v[0].isum, 0); /* not a conversion of the REAL 2^63 */
    assert_i64(r.v[0].imin, 1);
    assert_i64(r.v[0].imax, INT64_MAX);
    assert_f64(r.v[0].sum, 9223372036854775808.0);

    /* 2^60, 3, 5; deleting the 5 leaves the exact sum 2^60 + 3 */
    const int64_t big[] = {INT64_C(1) << 60, 3, 5};
    for (int i = 0; i < 3; i++) {
        msg_init(&t[i], 2, 1, T0 + 1000 * (i + 1), 0);
        msg_int(&t[i], "x", big[i]);
        msg_done(&t[i]);
    }
    write_msgs(tm, t, 3);
    assert_rc(iot_tm_delete_range(tm, 2, T0 + 3000, T0 + 3000, &deleted), IOT_OK);
    r = get_rollups(tm, 2, "x", D, INT64_MIN, INT64_MAX);
    assert_true(r.v[0].isum_exact);
    assert_i64(r.v[0].isum, (INT64_C(1) << 60) + 3);
}

/* Writing an identity again is a no-op: not a second row, not counted
 * twice in rollups or the catalog, and the first data stays. */
static void test_idempotent(void **state)
{
    struct iot_telemetry *tm = TM(state);
    struct tmsg t[3];
    msg_one(&t[0], 1, 1, T0 + 10, 1, "v", 5);
    msg_one(&t[1], 1, 1, T0 + 20, 1, "v", 7);
    msg_one(&t[2], 1, 1, T0 + 10, 1, "v", 5); /* duplicate inside the batch */
    write_msgs(tm, t, 3);
    write_msgs(tm, t, 2); /* the retry */
    struct tmsg other;
    msg_one(&other, 1, 1, T0 + 10, 1, "v", 99); /* same identity, other data */
    write_msgs(tm, &other, 1);
    struct recs rs = query_dev(tm, 1, all_range(10));
    assert_i64(rs.n, 2);
    assert_bytes(rs.v[1].data, rs.v[1].data_len, t[0].data);
    free(rs.v);
    assert_i64(get_stats(tm).messages, 2);
    struct rollups ru = get_rollups(tm, 1, "v", H, INT64_MIN, INT64_MAX);
    assert_i64(ru.n, 1);
    assert_rollup(ru.v[0], T0, 2, 12, 5, 7);
    struct catalog c = {.n = 0};
    assert_rc(iot_tm_catalog(tm, 1, on_catalog, &c), IOT_OK);
    assert_i64(c.n, 1);
    assert_i64(c.v[0].count, 2);
    /* same ts, other seq: a distinct message */
    write_one(tm, 1, 1, T0 + 10, 2, "v", 6);
    assert_i64(get_stats(tm).messages, 3);
}

static void test_query_user(void **state)
{
    struct iot_telemetry *tm = TM(state);
    struct tmsg t[7];
    msg_one(&t[0], 10, 1, T0 + 100, 0, "a", 1);
    msg_one(&t[1], 11, 1, T0 + 200, 0, "a", 2);
    msg_one(&t[2], 10, 1, T0 + 300, 0, "a", 3);
    msg_one(&t[3], 20, 2, T0 + 250, 0, "a", 4); /* another user's */
    msg_one(&t[4], 11, 1, T0 + 400, 0, "a", 5);
    msg_one(&t[5], 10, 1, T0 + 400, 1, "a", 6);
    msg_one(&t[6], 11, 1, T0 + 50, 0, "a", 7);
    write_msgs(tm, t, 7);
    struct recs rs = {0};
    struct iot_tm_range r = all_range(100);
    assert_rc(iot_tm_query_user(tm, 1, &r, on_record, &rs), IOT_OK);
    assert_i64(rs.n, 6);
    static const int64_t want_ts[] = {400, 400, 300, 200, 100, 50};
    static const int64_t want_dev[] = {10, 11, 10, 11, 10, 11};
    for (int i = 0; i < 6; i++) {
        assert_i64(rs.v[i].ts, T0 + want_ts[i]);
        assert_i64(rs.v[i].dev, want_dev[i]);
    }
    free(rs.v);
    /* paging with the cursor, pages of 2 */
    r = all_range(2);
    int total = 0;
    for (int page = 0; page < 5; page++) {
        struct recs p = {0};
        assert_rc(iot_tm_query_user(tm, 1, &r, on_record, &p), IOT_OK);
        for (size_t i = 0; i < p.n; i++, total++)
            assert_i64(p.v[i].ts, T0 + want_ts[total]);
        if (p.n)
            r.before_ts = p.v[p.n - 1].ts, r.before_seq = p.v[p.n - 1].seq;
        free(p.v);
    }
    assert_i64(total, 6);
    r = all_range(100);
    r.from = T0 + 100;
    r.to = T0 + 300;
    rs = (struct recs){0};
    assert_rc(iot_tm_query_user(tm, 1, &r, on_record, &rs), IOT_OK);
    assert_i64(rs.n, 3);
    free(rs.v);
    int64_t n = -1;
    assert_rc(iot_tm_count_user(tm, 1, INT64_MIN, INT64_MAX, &n), IOT_OK);
    assert_i64(n, 6);
    assert_rc(iot_tm_count_user(tm, 1, T0 + 100, T0 + 300, &n), IOT_OK);
    assert_i64(n, 3);
    assert_rc(iot_tm_count_user(tm, 2, INT64_MIN, INT64_MAX, &n), IOT_OK);
    assert_i64(n, 1);
    assert_rc(iot_tm_count_user(tm, 3, INT64_MIN, INT64_MAX, &n), IOT_OK);
    assert_i64(n, 0);
}

/* Devices of one user sharing every (ts, seq): one call reads them all,
 * across chunk boundaries, once each. */
static void test_query_user_ties(void **state)
{
    struct iot_telemetry *tm = TM(state);
    enum { DEVS = 3, PER = 300 };
    struct tmsg *t = calloc(DEVS * PER, sizeof *t);
    assert_non_null(t);
    for (int d = 0; d < DEVS; d++)
        for (int i = 0; i < PER; i++)
            msg_one(&t[d * PER + i], 40 + d, 4, T0 + i / 3, i % 3, "v", d);
    write_msgs(tm, t, DEVS * PER);
    free(t);
    struct recs rs = {0};
    struct iot_tm_range r = all_range(INT64_MAX);
    assert_rc(iot_tm_query_user(tm, 4, &r, on_record, &rs), IOT_OK);
    assert_i64(rs.n, DEVS * PER);
    for (size_t i = 1; i < rs.n; i++) {
        const struct rec *a = &rs.v[i - 1], *b = &rs.v[i];
        bool desc = a->ts > b->ts || (a->ts == b->ts && (a->seq > b->seq ||
                                                          (a->seq == b->seq && a->dev > b->dev)));
        if (!desc)
            fail_msg("row %zu (%" PRId64 ",%" PRId64 ",%" PRId64 ") after (%" PRId64 ",%" PRId64
                     ",%" PRId64 ")", i, b->ts, b->seq, b->dev, a->ts, a->seq, a->dev);
    }
    free(rs.v);
}


/* ---- latest, rollups, samples, catalog -------------------------------------- */

static void test_latest(void **state)
{
    struct iot_telemetry *tm = TM(state);
    struct tmsg t;
    msg_init(&t, 1, 1, T0 + 2000, 0);
    msg_num(&t, "temp", 20.5);
    msg_bool(&t, "on", true);
    msg_str(&t, "mode", "eco \"night\"");
    msg_done(&t);
    write_msgs(tm, &t, 1);
    /* an older message written later loses, except for a name it alone has */
    msg_init(&t, 1, 1, T0 + 1000, 0);
    msg_num(&t, "temp", 10);
    msg_bool(&t, "on", false);
    msg_num(&t, "old_only", 1);
    msg_done(&t);
    write_msgs(tm, &t, 1);
    struct latests ls = {.n = 0};
    assert_rc(iot_tm_latest(tm, 1, on_latest, &ls), IOT_OK);
    assert_i64(ls.n, 4);
    const struct latest_row *l = find_latest(&ls, "temp");
    assert_non_null(l);
    assert_i64(l->type, IOT_TM_NUMBER);
    assert_f64(l->num, 20.5);
    assert_i64(l->ts, T0 + 2000);
    l = find_latest(&ls, "on");
    assert_non_null(l);
    assert_i64(l->type, IOT_TM_BOOL);
    assert_true(l->boolean);
    l = find_latest(&ls, "mode");
    assert_non_null(l);
    assert_i64(l->type, IOT_TM_STRING);
    assert_string_equal(l->str, "eco \"night\"");
    l = find_latest(&ls, "old_only");
    assert_non_null(l);
    assert_i64(l->ts, T0 + 1000);
    /* a newer message changes the type; equal ts: the higher seq wins, in
     * one batch or in two */
    struct tmsg two[2];
    msg_init(&two[0], 1, 1, T0 + 3000, 5);
    msg_str(&two[0], "temp", "broken");
    msg_done(&two[0]);
    msg_one(&two[1], 1, 1, T0 + 3000, 4, "temp", 1);
    write_msgs(tm, two, 2);
    write_one(tm, 1, 1, T0 + 3000, 3, "temp", 2);
    ls.n = 0;
    assert_rc(iot_tm_latest(tm, 1, on_latest, &ls), IOT_OK);
    l = find_latest(&ls, "temp");
    assert_i64(l->type, IOT_TM_STRING);
    assert_string_equal(l->str, "broken");
    assert_i64(l->ts, T0 + 3000);
    ls.n = 0;
    assert_rc(iot_tm_latest(tm, 2, on_latest, &ls), IOT_OK);
    assert_i64(ls.n, 0);
}

static void test_rollups(void **state)
{
    struct iot_telemetry *tm = TM(state);
    struct tmsg t[5];
    /* hour 0: 1, 3 ; hour 2: 10 ; next day hour 1: -4 */
    msg_init(&t[0], 1, 1, T0 + 5, 0);
    msg_num(&t[0], "x", 1);
    msg_bool(&t[0], "b", true);
    msg_str(&t[0], "s", "text");
    msg_done(&t[0]);
    msg_init(&t[1], 1, 1, T0 + H - 1, 0);
    msg_num(&t[1], "x", 3);
    msg_bool(&t[1], "b", false);
    msg_done(&t[1]);
    msg_one(&t[2], 1, 1, T0 + 2 * H, 0, "x", 10);
    msg_one(&t[3], 1, 1, T0 + D + H + 7, 0, "x", -4);
    msg_one(&t[4], 2, 1, T0 + 5, 0, "x", 1000); /* another device */
    write_msgs(tm, t, 5);
    struct rollups r = get_rollups(tm, 1, "x", H, INT64_MIN, INT64_MAX);
    assert_i64(r.n, 3);
    assert_i64(r.v[0].width, H);
    assert_rollup(r.v[0], T0, 2, 4, 1, 3);
    assert_rollup(r.v[1], T0 + 2 * H, 1, 10, 10, 10);
    assert_rollup(r.v[2], T0 + D + H, 1, -4, -4, -4);
    r = get_rollups(tm, 1, "x", D, INT64_MIN, INT64_MAX);
    assert_i64(r.n, 2);
    assert_i64(r.v[0].width, D);
    assert_rollup(r.v[0], T0, 3, 14, 1, 10);
    assert_rollup(r.v[1], T0 + D, 1, -4, -4, -4);
    /* [from, to) on start */
    r = get_rollups(tm, 1, "x", H, T0, T0 + 2 * H);
    assert_i64(r.n, 1);
    r = get_rollups(tm, 1, "x", H, T0 + 1, T0 + 2 * H + 1);
    assert_i64(r.n, 1);
    assert_i64(r.v[0].start, T0 + 2 * H);
    /* booleans as 0/1, strings not rolled up */
    r = get_rollups(tm, 1, "b", H, INT64_MIN, INT64_MAX);
    assert_i64(r.n, 1);
    assert_rollup(r.v[0], T0, 2, 1, 0, 1);
    r = get_rollups(tm, 1, "s", H, INT64_MIN, INT64_MAX);
    assert_i64(r.n, 0);
    /* a second batch merges into the same buckets */
    struct tmsg more[2];
    msg_one(&more[0], 1, 1, T0 + 30, 0, "x", -2);
    msg_one(&more[1], 1, 1, T0 + 40, 0, "x", 8);
    write_msgs(tm, more, 2);
    r = get_rollups(tm, 1, "x", H, T0, T0 + 1);
    assert_i64(r.n, 1);
    assert_rollup(r.v[0], T0, 4, 10, -2, 8);
    r = get_rollups(tm, 1, "x", D, T0, T0 + 1);
    assert_rollup(r.v[0], T0, 5, 20, -2, 10);
    /* before 1970: buckets floor, they do not round toward zero */
    write_one(tm, 3, 1, -1, 0, "x", 1);
    r = get_rollups(tm, 3, "x", H, INT64_MIN, INT64_MAX);
    assert_i64(r.n, 1);
    assert_i64(r.v[0].start, -H);
    /* bad arguments */
    assert_rc(iot_tm_rollups(tm, 1, "x", 60000, 0, 1, on_rollup, &r), IOT_EINVAL);
    assert_rc(iot_tm_rollups(tm, 1, "x'y", H, 0, 1, on_rollup, &r), IOT_EINVAL);
}

static void test_samples(void **state)
{
    struct iot_telemetry *tm = TM(state);
    struct tmsg t[6];
    msg_one(&t[0], 1, 1, T0 + 50, 0, "a.b-c", 1.25);
    msg_init(&t[1], 1, 1, T0 + 10, 0);
    msg_bool(&t[1], "a.b-c", true);
    msg_done(&t[1]);
    msg_init(&t[2], 1, 1, T0 + 20, 0);
    msg_str(&t[2], "a.b-c", "12");
    msg_done(&t[2]);
    msg_one(&t[3], 1, 1, T0 + 30, 0, "other", 9);
    msg_init(&t[4], 1, 1, T0 + 40, 0);
    msg_bool(&t[4], "a.b-c", false);
    msg_done(&t[4]);
    msg_one(&t[5], 1, 1, T0 + 60, 0, "a.b-c", -3);
    write_msgs(tm, t, 6);
    struct samples s = {.n = 0};
    assert_rc(iot_tm_samples(tm, 1, "a.b-c", T0 + 10, T0 + 60, on_sample, &s), IOT_OK);
    assert_i64(s.n, 3); /* 10 (true), 40 (false), 50; not 20 (string), 30, 60 (= to) */
    assert_i64(s.ts[0], T0 + 10);
    assert_f64(s.v[0], 1);
    assert_i64(s.ts[1], T0 + 40);
    assert_f64(s.v[1], 0);
    assert_i64(s.ts[2], T0 + 50);
    assert_f64(s.v[2], 1.25);
    s.n = 0;
    assert_rc(iot_tm_samples(tm, 1, "a.b-c", INT64_MIN, INT64_MAX, on_sample, &s), IOT_OK);
    assert_i64(s.n, 4);
    assert_f64(s.v[3], -3);
    s.n = 0;
    assert_rc(iot_tm_samples(tm, 1, "missing", INT64_MIN, INT64_MAX, on_sample, &s), IOT_OK);
    assert_i64(s.n, 0);
    assert_rc(iot_tm_samples(tm, 1, "bad\"name", 0, 1, on_sample, &s), IOT_EINVAL);
    assert_rc(iot_tm_samples(tm, 1, "", 0, 1, on_sample, &s), IOT_EINVAL);
}

static void test_catalog(void **state)
{
    struct iot_telemetry *tm = TM(state);
    struct tmsg t[3];
    msg_init(&t[0], 1, 1, T0 + 100, 0);
    msg_num(&t[0], "temp", 20);
    msg_bool(&t[0], "door", false);
    msg_meta(&t[0], "{\"temp_unit\":\"\xc2\xb0" "C\",\"site\":\"a\"}");
    msg_done(&t[0]);
    msg_init(&t[1], 1, 1, T0 + 300, 0);
    msg_num(&t[1], "temp", 21);
    msg_str(&t[1], "door", "jammed");
    msg_done(&t[1]);
    msg_one(&t[2], 1, 1, T0 + 200, 0, "temp", 19);
    write_msgs(tm, t, 3);
    struct catalog c = {.n = 0};
    assert_rc(iot_tm_catalog(tm, 1, on_catalog, &c), IOT_OK);
    assert_i64(c.n, 2);
    const struct catalog_row *e = find_catalog(&c, "temp");
    assert_non_null(e);
    assert_i64(e->type, IOT_TM_NUMBER);
    assert_string_equal(e->unit, "\xc2\xb0" "C");
    assert_i64(e->first, T0 + 100);
    assert_i64(e->last, T0 + 300);
    assert_i64(e->count, 3);
    e = find_catalog(&c, "door");
    assert_non_null(e);
    assert_i64(e->type, IOT_TM_STRING); /* the type of the latest value */
    assert_string_equal(e->unit, "");
    assert_i64(e->count, 2);
    /* a later batch: older and newer samples, a new unit */
    struct tmsg u;
    msg_init(&u, 1, 1, T0 + 50, 0);
    msg_num(&u, "temp", 290);
    msg_meta(&u, "{\"temp_unit\":\"K\"}");
    msg_done(&u);
    write_msgs(tm, &u, 1);
    c.n = 0;
    assert_rc(iot_tm_catalog(tm, 1, on_catalog, &c), IOT_OK);
    e = find_catalog(&c, "temp");
    assert_string_equal(e->unit, "K");
    assert_i64(e->first, T0 + 50);
    assert_i64(e->last, T0 + 300);
    assert_i64(e->count, 4);
    assert_i64(e->type, IOT_TM_NUMBER);
    /* metadata without a unit, and a message without metadata, keep it */
    struct tmsg v;
    msg_one(&v, 1, 1, T0 + 400, 0, "temp", 1);
    msg_meta(&v, "{\"site\":\"b\"}");
    write_msgs(tm, &v, 1);
    c.n = 0;
    assert_rc(iot_tm_catalog(tm, 1, on_catalog, &c), IOT_OK);
    assert_string_equal(find_catalog(&c, "temp")->unit, "K");
    c.n = 0;
    assert_rc(iot_tm_catalog(tm, 2, on_catalog, &c), IOT_OK);
    assert_i64(c.n, 0);
}

/* ---- deletes and retention -------------------------------------------------- */

/* Device 1: x = 1 @T0+10, 2 @T0+20 (with y = 5), 3 @T0+H+10, 4 @T0+H+20;
 * device 2: x = 100 @T0+20. */
static void seed_two_devices(struct iot_telemetry *tm)
{
    struct tmsg t[5];
    msg_one(&t[0], 1, 1, T0 + 10, 0, "x", 1);
    msg_init(&t[1], 1, 1, T0 + 20, 0);
    msg_num(&t[1], "x", 2);
    msg_num(&t[1], "y", 5);
    msg_done(&t[1]);
    msg_one(&t[2], 1, 1, T0 + H + 10, 0, "x", 3);
    msg_one(&t[3], 1, 1, T0 + H + 20, 0, "x", 4);
    msg_one(&t[4], 2, 1, T0 + 20, 0, "x", 100);
    write_msgs(tm, t, 5);
}

static void test_delete_range(void **state)
{
    struct iot_telemetry *tm = TM(state);
    seed_two_devices(tm);
    /* the newest message goes: latest falls back, rollups and catalog follow */
    int64_t n = -1;
    assert_rc(iot_tm_delete_range(tm, 1, T0 + H + 20, T0 + H + 20, &n), IOT_OK);
    assert_i64(n, 1);
    struct latests ls = {.n = 0};
    assert_rc(iot_tm_latest(tm, 1, on_latest, &ls), IOT_OK);
    assert_f64(find_latest(&ls, "x")->num, 3);
    assert_i64(find_latest(&ls, "x")->ts, T0 + H + 10);
    struct rollups r = get_rollups(tm, 1, "x", H, INT64_MIN, INT64_MAX);
    assert_i64(r.n, 2);
    assert_rollup(r.v[0], T0, 2, 3, 1, 2);
    assert_rollup(r.v[1], T0 + H, 1, 3, 3, 3);
    r = get_rollups(tm, 1, "x", D, INT64_MIN, INT64_MAX);
    assert_rollup(r.v[0], T0, 3, 6, 1, 3);
    struct catalog c = {.n = 0};
    assert_rc(iot_tm_catalog(tm, 1, on_catalog, &c), IOT_OK);
    assert_i64(find_catalog(&c, "x")->count, 3);
    assert_i64(find_catalog(&c, "x")->last, T0 + H + 10);
    assert_i64(find_catalog(&c, "x")->first, T0 + 10);
    assert_i64(get_stats(tm).messages, 4);

    /* the first hour goes: its bucket goes, y goes everywhere, first moves */
    assert_rc(iot_tm_delete_range(tm, 1, T0, T0 + H - 1, &n), IOT_OK);
    assert_i64(n, 2);
    r = get_rollups(tm, 1, "x", H, INT64_MIN, INT64_MAX);
    assert_i64(r.n, 1);
    assert_rollup(r.v[0], T0 + H, 1, 3, 3, 3);
    r = get_rollups(tm, 1, "x", D, INT64_MIN, INT64_MAX);
    assert_rollup(r.v[0], T0, 1, 3, 3, 3);
    r = get_rollups(tm, 1, "y", H, INT64_MIN, INT64_MAX);
    assert_i64(r.n, 0);
    ls.n = 0;
    assert_rc(iot_tm_latest(tm, 1, on_latest, &ls), IOT_OK);
    assert_i64(ls.n, 1);
    assert_null(find_latest(&ls, "y"));
    c.n = 0;
    assert_rc(iot_tm_catalog(tm, 1, on_catalog, &c), IOT_OK);
    assert_i64(c.n, 1);
    assert_i64(c.v[0].count, 1);
    assert_i64(c.v[0].first, T0 + H + 10);
    assert_i64(c.v[0].last, T0 + H + 10);

    /* device 2 untouched */
    struct recs rs = query_dev(tm, 2, all_range(10));
    assert_i64(rs.n, 1);
    free(rs.v);
    r = get_rollups(tm, 2, "x", H, INT64_MIN, INT64_MAX);
    assert_rollup(r.v[0], T0, 1, 100, 100, 100);
    assert_i64(get_stats(tm).messages, 2);
    assert_i64(get_stats(tm).devices, 2);

    /* an empty range, then the rest */
    assert_rc(iot_tm_delete_range(tm, 1, T0 + 5 * D, T0 + 6 * D, &n), IOT_OK);
    assert_i64(n, 0);
    assert_rc(iot_tm_delete_range(tm, 1, INT64_MIN, INT64_MAX, &n), IOT_OK);
    assert_i64(n, 1);
    ls.n = 0;
    assert_rc(iot_tm_latest(tm, 1, on_latest, &ls), IOT_OK);
    assert_i64(ls.n, 0);
    c.n = 0;
    assert_rc(iot_tm_catalog(tm, 1, on_catalog, &c), IOT_OK);
    assert_i64(c.n, 0);
    r = get_rollups(tm, 1, "x", D, INT64_MIN, INT64_MAX);
    assert_i64(r.n, 0);
    assert_i64(get_stats(tm).devices, 1);
}

/* A range in the middle: the value outside it on both sides stays. */
static void test_delete_range_middle(void **state)
{
    struct iot_telemetry *tm = TM(state);
    struct tmsg t[4];
    msg_one(&t[0], 1, 1, T0 + 1, 0, "x", 10);
    msg_init(&t[1], 1, 1, T0 + 2, 0);
    msg_bool(&t[1], "x", true);
    msg_done(&t[1]);
    msg_init(&t[2], 1, 1, T0 + 3, 0);
    msg_str(&t[2], "x", "s");
    msg_done(&t[2]);
    msg_one(&t[3], 1, 1, T0 + 4, 0, "x", 40);
    write_msgs(tm, t, 4);
    assert_rc(iot_tm_delete_range(tm, 1, T0 + 2, T0 + 3, NULL), IOT_OK);
    struct rollups r = get_rollups(tm, 1, "x", H, INT64_MIN, INT64_MAX);
    assert_rollup(r.v[0], T0, 2, 50, 10, 40);
    struct latests ls = {.n = 0};
    assert_rc(iot_tm_latest(tm, 1, on_latest, &ls), IOT_OK);
    assert_f64(ls.v[0].num, 40);
    struct catalog c = {.n = 0};
    assert_rc(iot_tm_catalog(tm, 1, on_catalog, &c), IOT_OK);
    assert_i64(c.v[0].count, 2);
    /* now the newest: latest falls back past nothing to the oldest */
    assert_rc(iot_tm_delete_range(tm, 1, T0 + 4, T0 + 4, NULL), IOT_OK);
    ls.n = 0;
    assert_rc(iot_tm_latest(tm, 1, on_latest, &ls), IOT_OK);
    assert_i64(ls.v[0].ts, T0 + 1);
    assert_f64(ls.v[0].num, 10);
    /* a type that comes back from the raw data: bool and string */
    struct tmsg u[2];
    msg_init(&u[0], 5, 1, T0 + 1, 0);
    msg_bool(&u[0], "b", true);
    msg_str(&u[0], "s", "old \"one\"");
    msg_done(&u[0]);
    msg_init(&u[1], 5, 1, T0 + 2, 0);
    msg_bool(&u[1], "b", false);
    msg_str(&u[1], "s", "new");
    msg_done(&u[1]);
    write_msgs(tm, u, 2);
    assert_rc(iot_tm_delete_range(tm, 5, T0 + 2, T0 + 2, NULL), IOT_OK);
    ls.n = 0;
    assert_rc(iot_tm_latest(tm, 5, on_latest, &ls), IOT_OK);
    assert_i64(ls.n, 2);
    assert_i64(find_latest(&ls, "b")->type, IOT_TM_BOOL);
    assert_true(find_latest(&ls, "b")->boolean);
    assert_i64(find_latest(&ls, "s")->type, IOT_TM_STRING);
    assert_string_equal(find_latest(&ls, "s")->str, "old \"one\"");
}

static void test_delete_device(void **state)
{
    struct iot_telemetry *tm = TM(state);
    seed_two_devices(tm);
    assert_rc(iot_tm_delete_device(tm, 1), IOT_OK);
    struct recs rs = query_dev(tm, 1, all_range(10));
    assert_i64(rs.n, 0);
    struct latests ls = {.n = 0};
    assert_rc(iot_tm_latest(tm, 1, on_latest, &ls), IOT_OK);
    assert_i64(ls.n, 0);
    assert_i64(get_rollups(tm, 1, "x", H, INT64_MIN, INT64_MAX).n, 0);
    assert_i64(get_rollups(tm, 1, "x", D, INT64_MIN, INT64_MAX).n, 0);
    struct catalog c = {.n = 0};
    assert_rc(iot_tm_catalog(tm, 1, on_catalog, &c), IOT_OK);
    assert_i64(c.n, 0);
    rs = query_dev(tm, 2, all_range(10));
    assert_i64(rs.n, 1);
    free(rs.v);
    assert_i64(get_rollups(tm, 2, "x", H, INT64_MIN, INT64_MAX).n, 1);
    struct iot_tm_stats st = get_stats(tm);
    assert_i64(st.messages, 1);
    assert_i64(st.devices, 1);
    assert_rc(iot_tm_delete_device(tm, 1), IOT_OK); /* again: nothing to do */
    assert_rc(iot_tm_delete_device(tm, 99), IOT_OK);
}

static void test_delete_user(void **state)
{
    struct iot_telemetry *tm = TM(state);
    struct tmsg t[3];
    msg_one(&t[0], 10, 1, T0, 0, "x", 1);
    msg_one(&t[1], 11, 1, T0, 0, "x", 2);
    msg_one(&t[2], 20, 2, T0, 0, "x", 3);
    write_msgs(tm, t, 3);
    assert_rc(iot_tm_delete_user(tm, 1), IOT_OK);
    int64_t n = -1;
    assert_rc(iot_tm_count_user(tm, 1, INT64_MIN, INT64_MAX, &n), IOT_OK);
    assert_i64(n, 0);
    for (int64_t dev = 10; dev <= 11; dev++) {
        struct latests ls = {.n = 0};
        assert_rc(iot_tm_latest(tm, dev, on_latest, &ls), IOT_OK);
        assert_i64(ls.n, 0);
        assert_i64(get_rollups(tm, dev, "x", D, INT64_MIN, INT64_MAX).n, 0);
        struct catalog c = {.n = 0};
        assert_rc(iot_tm_catalog(tm, dev, on_catalog, &c), IOT_OK);
        assert_i64(c.n, 0);
    }
    assert_rc(iot_tm_count_user(tm, 2, INT64_MIN, INT64_MAX, &n), IOT_OK);
    assert_i64(n, 1);
    struct latests ls = {.n = 0};
    assert_rc(iot_tm_latest(tm, 20, on_latest, &ls), IOT_OK);
    assert_i64(ls.n, 1);
    struct iot_tm_stats st = get_stats(tm);
    assert_i64(st.messages, 1);
    assert_i64(st.devices, 1);
}

/* Raw kept 90 days, rollups 365: a purge drops the old raw messages and
 * keeps their rollups, latest values and catalog. */
static void test_purge(void **state)
{
    if (!purges_by_scan(state))
        skip(); /* the store expires rows by TTL; its purge removes nothing */
    struct iot_telemetry *tm = TM(state);
    atomic_store(&fake_now, T0 + 400 * D + 12345);
    iot_clock_override(fake_clock);
    int64_t now = iot_now_ms();
    struct tmsg t[3];
    msg_one(&t[0], 1, 1, now - 100 * D, 0, "x", 1);
    msg_one(&t[1], 1, 1, now - 10 * D, 0, "x", 2);
    msg_one(&t[2], 2, 1, now - 400 * D, 0, "x", 3);
    write_msgs(tm, t, 3);
    int64_t removed = -1;
    assert_rc(iot_tm_purge(tm, now - 90 * D, now - 365 * D, &removed), IOT_OK);
    assert_i64(removed, 2);
    struct recs rs = query_dev(tm, 1, all_range(10));
    assert_i64(rs.n, 1);
    assert_i64(rs.v[0].ts, now - 10 * D);
    free(rs.v);
    struct rollups r = get_rollups(tm, 1, "x", D, INT64_MIN, INT64_MAX);
    assert_i64(r.n, 2); /* the -100d day is kept */
    assert_i64(r.v[0].start, (now - 100 * D) / D * D);
    assert_i64(get_rollups(tm, 1, "x", H, INT64_MIN, INT64_MAX).n, 2);
    assert_i64(get_rollups(tm, 2, "x", H, INT64_MIN, INT64_MAX).n, 0); /* -400d */
    assert_i64(get_rollups(tm, 2, "x", D, INT64_MIN, INT64_MAX).n, 0);
    struct latests ls = {.n = 0};
    assert_rc(iot_tm_latest(tm, 2, on_latest, &ls), IOT_OK);
    assert_i64(ls.n, 1);
    struct catalog c = {.n = 0};
    assert_rc(iot_tm_catalog(tm, 1, on_catalog, &c), IOT_OK);
    assert_i64(c.v[0].count, 2);
    struct iot_tm_stats st = get_stats(tm);
    assert_i64(st.messages, 1);
    assert_i64(st.devices, 1);
    /* purging again removes nothing; a shorter rollup retention drops -100d */
    assert_rc(iot_tm_purge(tm, now - 90 * D, now - 365 * D, &removed), IOT_OK);
    assert_i64(removed, 0);
    assert_rc(iot_tm_purge(tm, now - 90 * D, now - 50 * D, &removed), IOT_OK);
    r = get_rollups(tm, 1, "x", D, INT64_MIN, INT64_MAX);
    assert_i64(r.n, 1);
    assert_i64(r.v[0].start, (now - 10 * D) / D * D);
}

/* Purge walks devices in chunks: more devices than one chunk. */
static void test_purge_many_devices(void **state)
{
    if (!purges_by_scan(state))
        skip(); /* the store expires rows by TTL; its purge removes nothing */
    struct iot_telemetry *tm = TM(state);
    enum { N = 300 };
    struct tmsg *t = calloc(2 * N, sizeof *t);
    assert_non_null(t);
    for (int i = 0; i < N; i++) {
        msg_one(&t[2 * i], 1000 + i, 1, T0, 0, "x", i);
        msg_one(&t[2 * i + 1], 1000 + i, 1, T0 + D, 0, "x", i);
    }
    write_msgs(tm, t, 2 * N);
    free(t);
    int64_t removed = -1;
    assert_rc(iot_tm_purge(tm, T0 + 1, T0 + 1, &removed), IOT_OK);
    assert_i64(removed, N);
    struct iot_tm_stats st = get_stats(tm);
    assert_i64(st.messages, N);
    assert_i64(st.devices, N);
    assert_i64(get_rollups(tm, 1000 + N - 1, "x", D, INT64_MIN, INT64_MAX).n, 1);
}

static void test_stats(void **state)
{
    struct iot_telemetry *tm = TM(state);
    seed_two_devices(tm);
    write_one(tm, 3, 2, T0, 0, "z", 1);
    struct iot_tm_stats st = get_stats(tm);
    assert_i64(st.messages, 6);
    assert_i64(st.devices, 3);
    assert_rc(iot_tm_stats(tm, NULL), IOT_EINVAL);
    /* stats follow every way messages leave: a range, a device (emptied
     * by a range, then deleted), a user, retention; and retries add none */
    int64_t n = 0;
    write_one(tm, 3, 2, T0, 0, "z", 1);
    assert_rc(iot_tm_delete_range(tm, 1, T0 + 10, T0 + 20, &n), IOT_OK);
    st = get_stats(tm);
    assert_i64(st.messages, 4);
    assert_i64(st.devices, 3);
    assert_rc(iot_tm_delete_range(tm, 2, INT64_MIN + 1, INT64_MAX - 1, &n), IOT_OK);
    st = get_stats(tm);
    assert_i64(st.messages, 3);
    assert_i64(st.devices, 2);
    assert_rc(iot_tm_delete_device(tm, 2), IOT_OK);
    assert_rc(iot_tm_delete_user(tm, 2), IOT_OK);
    st = get_stats(tm);
    assert_i64(st.messages, 2);
    assert_i64(st.devices, 1);
    if (!purges_by_scan(state))
        return; /* retention by TTL: no purge to follow */
    assert_rc(iot_tm_purge(tm, T0 + H + 15, INT64_MIN, &n), IOT_OK);
    st = get_stats(tm);
    assert_i64(st.messages, 1);
    assert_i64(st.devices, 1);
    assert_rc(iot_tm_purge(tm, INT64_MAX, INT64_MIN, &n), IOT_OK);
    st = get_stats(tm);
    assert_i64(st.messages, 0);
    assert_i64(st.devices, 0);
}

/* ---- batches, bounds, concurrency --------------------------------------------- */
static void test_big_batches(void **state)
{
    struct iot_telemetry *tm = TM(state);
    enum { BATCH = 1000, BATCHES = 5, DEVICES = 7 };
    struct small_msg *s = calloc(BATCH, sizeof *s);
    struct iot_tm_message *m = calloc(BATCH, sizeof *m);
    assert_non_null(s);
    assert_non_null(m);
    int64_t k = 0;
    for (int b = 0; b < BATCHES; b++) {
        for (int i = 0; i < BATCH; i++, k++) {
            small_fill(&s[i], 1 + k % DEVICES, 1, T0 + k * 1000, 0, (double)k);
            m[i] = s[i].m;
        }
        assert_rc(iot_tm_write_batch(tm, m, BATCH), IOT_OK);
    }
    for (int i = 0; i < BATCH; i++) { /* the first batch again: a retry adds nothing */
        small_fill(&s[i], 1 + i % DEVICES, 1, T0 + (int64_t)i * 1000, 0, (double)i);
        m[i] = s[i].m;
    }
    assert_rc(iot_tm_write_batch(tm, m, BATCH), IOT_OK);
    free(s);
    free(m);
    struct iot_tm_stats st = get_stats(tm);
    assert_i64(st.messages, BATCH * BATCHES);
    assert_i64(st.devices, DEVICES);
    int64_t total = 0, count = 0;
    double sum = 0;
    for (int dev = 1; dev <= DEVICES; dev++) {
        total += count_device(tm, dev);
        struct rollups r = get_rollups(tm, dev, "temp", D, INT64_MIN, INT64_MAX);
        for (int i = 0; i < r.n; i++) {
            count += r.v[i].count;
            sum += r.v[i].sum;
        }
    }
    assert_i64(total, BATCH * BATCHES);
    assert_i64(count, BATCH * BATCHES);
    assert_f64(sum, (double)(BATCH * BATCHES) * (BATCH * BATCHES - 1) / 2);
    int64_t n = 0;
    assert_rc(iot_tm_count_user(tm, 1, INT64_MIN, INT64_MAX, &n), IOT_OK);
    assert_i64(n, BATCH * BATCHES);
}

/* A bad message anywhere fails the whole batch before anything is written. */
static void test_invalid_batches(void **state)
{
    struct iot_telemetry *tm = TM(state);
    struct tmsg t[2];
    msg_one(&t[0], 1, 1, T0, 0, "ok", 1);
    msg_one(&t[1], 1, 1, T0 + 1, 0, "ok", 2);
    t[1].names[0][0] = '$'; /* "$k": not a measurement name */
    struct iot_tm_message m[2] = {t[0].m, t[1].m};
    assert_rc(iot_tm_write_batch(tm, m, 2), IOT_EINVAL);
    t[1].names[0][0] = 'o';
    t[1].p[0].value.num = NAN;
    m[1] = t[1].m;
    assert_rc(iot_tm_write_batch(tm, m, 2), IOT_EINVAL);
    t[1].p[0].value = (struct iot_tm_value){.type = IOT_TM_STRING, .str = "x",
                                            .str_len = IOT_TM_STRING_MAX + 1};
    assert_rc(iot_tm_write_batch(tm, m, 2), IOT_EINVAL);
    t[1].p[0].value = (struct iot_tm_value){.type = (enum iot_tm_type)9};
    assert_rc(iot_tm_write_batch(tm, m, 2), IOT_EINVAL);
    m[1] = t[0].m;
    m[1].ts = INT64_MIN;
    assert_rc(iot_tm_write_batch(tm, m, 2), IOT_EINVAL);
    m[1] = t[0].m;
    m[1].data_json = NULL;
    assert_rc(iot_tm_write_batch(tm, m, 2), IOT_EINVAL);
    m[1] = t[0].m;
    m[1].n_points = IOT_TM_POINTS_MAX + 1;
    assert_rc(iot_tm_write_batch(tm, m, 2), IOT_EINVAL);
    char longname[IOT_TM_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    struct iot_tm_point lp = {longname, {.type = IOT_TM_NUMBER, .num = 1}};
    m[1] = t[0].m;
    m[1].points = &lp;
    assert_rc(iot_tm_write_batch(tm, m, 2), IOT_EINVAL);
    longname[IOT_TM_NAME_MAX] = '\0'; /* exactly the maximum is fine */
    assert_rc(iot_tm_write_batch(tm, m, 2), IOT_OK);
    assert_i64(get_stats(tm).messages, 1); /* m[0] and m[1] share an identity */
}

/* Callbacks run with no connection held: they may read and write the store. */
struct reentry {
    struct iot_telemetry *tm;
    int calls;
};

static int reenter(void *ctx, const struct iot_tm_record *r)
{
    struct reentry *re = ctx;
    re->calls++;
    struct latests ls = {.n = 0};
    if (iot_tm_latest(re->tm, r->device_id, on_latest, &ls) != IOT_OK || ls.n != 1)
        return 1;
    struct tmsg t;
    msg_one(&t, 100 + re->calls, 1, r->ts, r->seq, "copy", 1);
    return iot_tm_write_batch(re->tm, &t.m, 1) != IOT_OK;
}

static void test_callback_reentry(void **state)
{
    struct iot_telemetry *tm = TM(state);
    enum { N = 600 }; /* more than one chunk */
    struct tmsg *t = calloc(N, sizeof *t);
    assert_non_null(t);
    for (int i = 0; i < N; i++)
        msg_one(&t[i], 1, 1, T0 + i, 0, "v", i);
    write_msgs(tm, t, N);
    free(t);
    struct reentry re = {.tm = tm};
    struct iot_tm_range r = all_range(INT64_MAX);
    assert_rc(iot_tm_query_device(tm, 1, &r, reenter, &re), IOT_OK);
    assert_i64(re.calls, N);
    assert_i64(get_stats(tm).messages, 2 * N);
}

/* Rows bigger than a chunk's byte budget, and more names than a chunk. */
static void test_large_rows_and_many_names(void **state)
{
    struct iot_telemetry *tm = TM(state);
    enum { N = 40, BIG = 100000 };
    char *data = malloc(BIG + 32);
    assert_non_null(data);
    memcpy(data, "{\"s\":\"", 6);
    memset(data + 6, 'x', BIG);
    memcpy(data + 6 + BIG, "\"}", 3);
    struct iot_tm_message *m = calloc(N, sizeof *m);
    struct iot_tm_point p = {"s", {.type = IOT_TM_STRING, .str = "x", .str_len = 1}};
    for (int i = 0; i < N; i++)
        m[i] = (struct iot_tm_message){.device_id = 1, .user_id = 1, .ts = T0 + i,
                                       .points = &p, .n_points = 1, .data_json = data,
                                       .data_len = BIG + 8, .meta_json = data,
                                       .meta_len = BIG + 8};
    assert_rc(iot_tm_write_batch(tm, m, N), IOT_OK);
    free(m);
    int64_t n = 0;
    struct iot_tm_range r = all_range(INT64_MAX);
    assert_rc(iot_tm_query_device(tm, 1, &r, count_records, &n), IOT_OK);
    assert_i64(n, N);
    free(data);
    /* 300 names over 3 messages of 100 points */
    struct tmsg *t = calloc(3, sizeof *t);
    for (int k = 0; k < 3; k++) {
        msg_init(&t[k], 2, 1, T0 + k, 0);
        for (int i = 0; i < 100; i++) {
            char name[16];
            snprintf(name, sizeof name, "m%03d", k * 100 + i);
            msg_num(&t[k], name, i);
        }
        msg_done(&t[k]);
    }
    write_msgs(tm, t, 3);
    free(t);
    struct latests *ls = calloc(1, sizeof *ls);
    assert_rc(iot_tm_latest(tm, 2, on_latest, ls), IOT_OK);
    assert_i64(ls->n, 300);
    for (int i = 1; i < 300; i++)
        assert_true(strcmp(ls->v[i - 1].name, ls->v[i].name) < 0);
    free(ls);
    struct catalog *c = calloc(1, sizeof *c);
    assert_rc(iot_tm_catalog(tm, 2, on_catalog, c), IOT_OK);
    assert_i64(c->n, 300);
    free(c);
}

enum { THREADS = 4, ROUNDS = 40, PER_BATCH = 25 };

struct worker {
    struct iot_telemetry *tm;
    int t;
    int fail_rc;
    const char *fail_what;
};

static void note(struct worker *w, int rc, const char *what)
{
    if (rc != IOT_OK && w->fail_rc == IOT_OK) {
        w->fail_rc = rc;
        w->fail_what = what;
    }
}

/* Each thread writes its own device and reads it back (read-your-writes),
 * and reads the others' while they write. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct small_msg s[PER_BATCH];
    struct iot_tm_message m[PER_BATCH];
    int64_t dev = 1 + w->t;
    for (int round = 0; round < ROUNDS && w->fail_rc == IOT_OK; round++) {
        for (int i = 0; i < PER_BATCH; i++) {
            small_fill(&s[i], dev, 1 + w->t % 2, T0 + (round * PER_BATCH + i) * 1000, 0, i);
            m[i] = s[i].m;
        }
        note(w, iot_tm_write_batch(w->tm, m, PER_BATCH), "write");
        int64_t n = 0;
        struct iot_tm_range r = all_range(INT64_MAX);
        note(w, iot_tm_query_device(w->tm, dev, &r, count_records, &n), "query");
        if (n != (round + 1) * PER_BATCH)
            note(w, IOT_EINTERNAL, "read-your-writes");
        int64_t other = 1 + (w->t + 1) % THREADS;
        struct latests ls = {.n = 0};
        note(w, iot_tm_latest(w->tm, other, on_latest, &ls), "latest");
        struct rollups ru = {.n = 0};
        note(w, iot_tm_rollups(w->tm, other, "temp", IOT_TM_HOUR, INT64_MIN, INT64_MAX,
                               on_rollup, &ru), "rollups");
        int64_t cnt;
        note(w, iot_tm_count_user(w->tm, 1, INT64_MIN, INT64_MAX, &cnt), "count_user");
        struct iot_tm_stats st;
        note(w, iot_tm_stats(w->tm, &st), "stats");
    }
    return NULL;
}

static void test_concurrency(void **state)
{
    struct iot_telemetry *tm = TM(state);
    struct worker w[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t] = (struct worker){.tm = tm, .t = t};
        assert_i64(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < THREADS; t++) {
        if (w[t].fail_rc)
            fprintf(stderr, "thread %d %s: %s\n", t, w[t].fail_what, iot_strerror(w[t].fail_rc));
        assert_rc(w[t].fail_rc, IOT_OK);
    }
    struct iot_tm_stats st = get_stats(tm);
    assert_i64(st.messages, THREADS * ROUNDS * PER_BATCH);
    assert_i64(st.devices, THREADS);
    struct rollups r = get_rollups(tm, 1, "temp", D, INT64_MIN, INT64_MAX);
    assert_i64(r.n, 1);
    assert_i64(r.v[0].count, ROUNDS * PER_BATCH);
}

/* File-backed stores keep everything across a close; durable opens too. */
static void test_reopen_durable(void **state)
{
    struct fixture *fx = *state;
    seed_two_devices(&fx->tm);
    if (!fx->path[0] && strstr(fx->url, ":memory:"))
        skip(); /* a memory store ends with its handle */
    iot_telemetry_close(&fx->tm);
    assert_rc(iot_telemetry_open(fx->url, true, &fx->tm), IOT_OK);
    assert_i64(get_stats(&fx->tm).messages, 5);
    write_one(&fx->tm, 9, 9, T0, 0, "x", 1);
    iot_telemetry_close(&fx->tm);
    assert_rc(iot_telemetry_open(fx->url, false, &fx->tm), IOT_OK);
    assert_i64(get_stats(&fx->tm).messages, 6);
    assert_i64(get_rollups(&fx->tm, 1, "x", H, INT64_MIN, INT64_MAX).n, 2);
}

/* ---- derived rows applied after the write ------------------------------------ */

/* A backend may apply latest values, rollups, catalog and stats after
 * write_batch returns (the SQLite store aggregates them over many batches),
 * but every read sees every message written before it, and a crash loses
 * nothing that write_batch acknowledged. The clock is frozen here, so no
 * flush happens merely because time passed. */
/* Each read right after each write sees it, in every derived view. */
static void test_read_after_write(void **state)
{
    struct iot_telemetry *tm = TM(state);
    freeze_clock();
    enum { N = 30, DEVS = 3 };
    for (int i = 0; i < N; i++) {
        int64_t dev = 1 + i % DEVS, n_dev = i / DEVS + 1;
        write_one(tm, dev, 1, T0 + i * 1000, 0, "x", i);
        struct latests ls = {.n = 0};
        assert_rc(iot_tm_latest(tm, dev, on_latest, &ls), IOT_OK);
        assert_i64(ls.n, 1);
        assert_f64(ls.v[0].num, i);
        assert_i64(ls.v[0].ts, T0 + i * 1000);
        struct rollups r = get_rollups(tm, dev, "x", D, INT64_MIN, INT64_MAX);
        assert_i64(r.n, 1);
        assert_i64(r.v[0].count, n_dev);
        assert_f64(r.v[0].max, i);
        struct catalog c = {.n = 0};
        assert_rc(iot_tm_catalog(tm, dev, on_catalog, &c), IOT_OK);
        assert_i64(c.v[0].count, n_dev);
        assert_i64(c.v[0].last, T0 + i * 1000);
        struct iot_tm_stats st = get_stats(tm);
        assert_i64(st.messages, i + 1);
        assert_i64(st.devices, i + 1 < DEVS ? i + 1 : DEVS);
    }
}

/* Rewriting messages already written adds nothing, whether their
 * derived rows were applied in between or not. */
static void test_idempotent_across_flushes(void **state)
{
    struct iot_telemetry *tm = TM(state);
    freeze_clock();
    struct tmsg t[3];
    msg_one(&t[0], 1, 1, T0 + 10, 0, "v", 5);
    msg_one(&t[1], 1, 1, T0 + 20, 0, "v", 7);
    write_msgs(tm, t, 2);
    write_msgs(tm, t, 2); /* before any read */
    struct rollups r = get_rollups(tm, 1, "v", H, INT64_MIN, INT64_MAX);
    assert_i64(r.n, 1);
    assert_rollup(r.v[0], T0, 2, 12, 5, 7);
    msg_one(&t[2], 1, 1, T0 + 30, 0, "v", 1);
    write_msgs(tm, t, 3); /* after a read: two old, one new */
    write_msgs(tm, t, 3);
    r = get_rollups(tm, 1, "v", H, INT64_MIN, INT64_MAX);
    assert_rollup(r.v[0], T0, 3, 13, 1, 7);
    r = get_rollups(tm, 1, "v", D, INT64_MIN, INT64_MAX);
    assert_rollup(r.v[0], T0, 3, 13, 1, 7);
    struct catalog c = {.n = 0};
    assert_rc(iot_tm_catalog(tm, 1, on_catalog, &c), IOT_OK);
    assert_i64(c.v[0].count, 3);
    assert_i64(get_stats(tm).messages, 3);
    struct latests ls = {.n = 0};
    assert_rc(iot_tm_latest(tm, 1, on_latest, &ls), IOT_OK);
    assert_f64(ls.v[0].num, 1);
    assert_i64(ls.v[0].ts, T0 + 30);
}

/* Every kind of read sees each message right after its write, raw reads
 * included, and retries add nothing — also in a backend that applies
 * writes later (the SQLite store stages them: with the clock frozen nothing
 * is flushed unless a read asks). */
static void test_staged_visible(void **state)
{
    struct iot_telemetry *tm = TM(state);
    freeze_clock();
    write_one(tm, 1, 7, T0 + 5, 0, "v", 3);
    struct recs rs = query_dev(tm, 1, all_range(10));
    assert_i64(rs.n, 1);
    free(rs.v);
    write_one(tm, 1, 7, T0 + 6, 0, "v", 4);
    struct recs ru = {0};
    struct iot_tm_range r = all_range(10);
    assert_rc(iot_tm_query_user(tm, 7, &r, on_record, &ru), IOT_OK);
    assert_i64(ru.n, 2);
    free(ru.v);
    write_one(tm, 1, 7, T0 + 7, 0, "v", 5);
    int64_t n = 0;
    assert_rc(iot_tm_count_user(tm, 7, INT64_MIN, INT64_MAX, &n), IOT_OK);
    assert_i64(n, 3);
    write_one(tm, 1, 7, T0 + 8, 0, "v", 6);
    struct samples sm = {.n = 0};
    assert_rc(iot_tm_samples(tm, 1, "v", INT64_MIN, INT64_MAX, on_sample, &sm), IOT_OK);
    assert_i64(sm.n, 4);
    write_one(tm, 1, 7, T0 + 9, 0, "v", 7);
    write_one(tm, 1, 7, T0 + 9, 0, "v", 70); /* a retry of a staged message */
    assert_i64(get_rollups(tm, 1, "v", H, INT64_MIN, INT64_MAX).v[0].count, 5);
    assert_i64(get_stats(tm).messages, 5);
    write_one(tm, 1, 7, T0 + 9, 0, "v", 71); /* a retry of a stored one */
    write_one(tm, 1, 7, T0 + 10, 0, "v", 8);
    struct latests ls = {.n = 0};
    assert_rc(iot_tm_latest(tm, 1, on_latest, &ls), IOT_OK);
    assert_f64(ls.v[0].num, 8);
    assert_i64(count_device(tm, 1), 6);
    struct rollups ro = get_rollups(tm, 1, "v", D, INT64_MIN, INT64_MAX);
    assert_rollup(ro.v[0], T0, 6, 33, 3, 8);
}
/* A mix of numbers, booleans, strings, units, retries and a device
 * changing hands (telemetry_helpers.h) gives the same views on every
 * backend; the SQLite suite recovers the same mix from crash images. */
static void test_mixed_batches(void **state)
{
    struct iot_telemetry *tm = TM(state);
    mixed_batches_first(tm);
    assert_i64(get_stats(tm).messages, 5);
    mixed_batches_second(tm);
    mixed_batches_check(tm);
}

static int count_rollups(void *ctx, const struct iot_tm_rollup *r)
{
    (void)r;
    (*(int64_t *)ctx)++;
    return 0;
}

/* Writes between every kind of operation: each sees what came before, and
 * deletes and purges of other devices and users leave the data alone. A
 * batch of 60,000 distinct hourly series-buckets, and a reopen. */
static void test_ops_between_writes(void **state)
{
    struct fixture *fx = *state;
    struct iot_telemetry *tm = &fx->tm;
    write_one(tm, 1, 1, T0, 0, "x", 1);
    write_one(tm, 1, 1, T0 + 1, 0, "x", 2);
    write_one(tm, 1, 1, T0 + 1, 0, "x", 2); /* a retry */
    write_one(tm, 2, 1, T0 + 2, 0, "x", 3);
    write_one(tm, 1, 1, T0 + 3, 0, "x", 4);
    assert_i64(count_device(tm, 1), 3);
    write_one(tm, 1, 1, T0 + 3, 1, "x", 4);
    struct samples sm = {.n = 0};
    assert_rc(iot_tm_samples(tm, 1, "x", INT64_MIN, INT64_MAX, on_sample, &sm), IOT_OK);
    assert_i64(sm.n, 4);
    write_one(tm, 1, 1, T0 + 3, 2, "x", 4);
    int64_t n = 0;
    assert_rc(iot_tm_count_user(tm, 1, INT64_MIN, INT64_MAX, &n), IOT_OK);
    assert_i64(n, 6);
    write_one(tm, 1, 1, T0 + 3, 3, "x", 4);
    struct recs qr = {.n = 0};
    struct iot_tm_range ar = all_range(1);
    assert_rc(iot_tm_query_user(tm, 1, &ar, on_record, &qr), IOT_OK);
    assert_i64(qr.n, 1);
    assert_i64(qr.v[0].seq, 3);
    free(qr.v);
    write_one(tm, 1, 1, T0 + 3, 4, "x", 4);
    struct latests ls = {.n = 0};
    assert_rc(iot_tm_latest(tm, 1, on_latest, &ls), IOT_OK);
    assert_i64(find_latest(&ls, "x")->ts, T0 + 3);
    write_one(tm, 1, 1, T0 + 4, 0, "x", 5);
    assert_i64(get_rollups(tm, 9, "x", H, INT64_MIN, INT64_MAX).n, 0);
    write_one(tm, 1, 1, T0 + 5, 0, "x", 6);
    struct catalog c = {.n = 0};
    assert_rc(iot_tm_catalog(tm, 9, on_catalog, &c), IOT_OK);
    assert_i64(c.n, 0);
    write_one(tm, 1, 1, T0 + 6, 0, "x", 7);
    assert_i64(get_stats(tm).messages, 11);
    write_one(tm, 1, 1, T0 + 7, 0, "x", 8);
    assert_rc(iot_tm_delete_range(tm, 9, 0, 1, &n), IOT_OK);
    write_one(tm, 1, 1, T0 + 8, 0, "x", 9);
    assert_rc(iot_tm_delete_device(tm, 9), IOT_OK);
    write_one(tm, 1, 1, T0 + 9, 0, "x", 10);
    assert_rc(iot_tm_delete_user(tm, 9), IOT_OK);
    write_one(tm, 1, 1, T0 + 10, 0, "x", 11);
    assert_rc(iot_tm_purge(tm, INT64_MIN, INT64_MIN, &n), IOT_OK);
    struct rollups r = get_rollups(tm, 1, "x", H, INT64_MIN, INT64_MAX);
    assert_rollup(r.v[0], T0, 14, 79, 1, 11); /* 1, 2, 4 x 5, 5..11 */
    assert_i64(get_stats(tm).messages, 15);

    /* 600 hours x 100 names in one batch */
    write_wide_batch(tm, 5);
    for (const char *name = "m000"; name; name = strcmp(name, "m000") == 0 ? "m099" : NULL) {
        int64_t buckets = 0;
        assert_rc(iot_tm_rollups(tm, 5, name, H, INT64_MIN, INT64_MAX, count_rollups, &buckets),
                  IOT_OK);
        assert_i64(buckets, WIDE_MSGS);
    }
    c.n = 0;
    assert_rc(iot_tm_catalog(tm, 5, on_catalog, &c), IOT_OK);
    assert_i64(c.n, WIDE_POINTS);
    assert_i64(find_catalog(&c, "m099")->count, WIDE_MSGS);

    if (!fx->path[0] && strstr(fx->url, ":memory:"))
        return; /* a memory store ends with its handle */
    write_one(tm, 1, 1, T0 + 11, 0, "x", 12);
    iot_telemetry_close(tm);
    assert_rc(iot_telemetry_open(fx->url, false, tm), IOT_OK);
    assert_i64(get_rollups(tm, 1, "x", H, INT64_MIN, INT64_MAX).v[0].count, 15);
}

/* ---- export_scan (version 3) ------------------------------------------------ */

/* A backend without export_scan (version < 3, or the slot NULL) skips these:
 * export_scan is optional. */
static void need_export_scan(struct iot_telemetry *tm)
{
    if (tm->ops->version < 3 || !tm->ops->export_scan)
        skip();
}

struct export_row {
    struct rec r;
    int64_t uid;
};

struct exports {
    struct export_row *v;
    size_t n, cap;
    size_t stop_after; /* 0: never stop */
};

static int on_export(void *ctx, const struct iot_tm_record *r, int64_t uid)
{
    struct exports *xs = ctx;
    if (xs->n == xs->cap) {
        xs->cap = xs->cap ? 2 * xs->cap : 64;
        xs->v = realloc(xs->v, xs->cap * sizeof *xs->v);
        assert_non_null(xs->v);
    }
    struct export_row *x = &xs->v[xs->n++];
    memset(x, 0, sizeof *x);
    x->uid = uid;
    x->r = (struct rec){.dev = r->device_id, .ts = r->ts, .seq = r->seq,
                        .data_len = r->data_len, .meta_len = r->meta_len,
                        .has_meta = r->meta_json != NULL};
    assert_true(r->data_len < sizeof x->r.data && r->meta_len < sizeof x->r.meta);
    memcpy(x->r.data, r->data_json, r->data_len);
    if (r->meta_json)
        memcpy(x->r.meta, r->meta_json, r->meta_len);
    return xs->stop_after && xs->n >= xs->stop_after;
}

/* Everything strictly after (dev, ts, seq), at most `limit`. */
static struct exports export_after(struct iot_telemetry *tm, int64_t dev, int64_t ts, int64_t seq,
                                   int64_t limit)
{
    struct exports xs = {0};
    assert_rc(iot_tm_export_scan(tm, dev, ts, seq, limit, on_export, &xs), IOT_OK);
    return xs;
}

static bool key_before(const struct rec *a, const struct rec *b)
{
    if (a->dev != b->dev)
        return a->dev < b->dev;
    return a->ts != b->ts ? a->ts < b->ts : a->seq < b->seq;
}

/* The whole store in (device_id, ts, seq) order, whatever the order of the
 * writes, each message with its owner and its data and metadata byte for
 * byte (NULL metadata stays NULL). Read right after the write: a store that
 * stages writes flushes first. */
static void test_export_scan_order(void **state)
{
    struct iot_telemetry *tm = TM(state);
    need_export_scan(tm);
    struct exports none = export_after(tm, INT64_MIN, INT64_MIN, INT64_MIN, 100);
    assert_i64(none.n, 0);
    static const char meta[] = "{\"temp_unit\":\"C\",\"loc\":\"Z\\u00fcrich \\\"lab\\\"\"}";
    /* (device, user, ts offset, seq, has metadata), in a scrambled order */
    static const int64_t spec[][5] = {
        {9, 90, 5, 1, 0}, {2, 20, 3, 7, 1}, {5, 50, 3, 0, 0}, {2, 20, 1, 9, 0},
        {9, 90, 5, 0, 1}, {5, 50, 0, INT64_C(1) << 40, 1}, {2, 20, 3, 2, 0},
        {5, 50, 3, 1, 1}, {9, 20, 0, 4, 0}, /* a device of user 20 too */
    };
    enum { N = sizeof spec / sizeof spec[0] };
    struct tmsg t[N];
    for (int i = 0; i < N; i++) {
        msg_init(&t[i], spec[i][0], spec[i][1], T0 + spec[i][2] * 1000, spec[i][3]);
        msg_int(&t[i], "n", i);
        msg_num(&t[i], "temp", 20.5 + i);
        msg_bool(&t[i], "on", i & 1);
        msg_str(&t[i], "state", "ok \"quoted\"");
        msg_done(&t[i]);
        if (spec[i][4])
            msg_meta(&t[i], meta);
    }
    write_msgs(tm, t, N);

    struct exports xs = export_after(tm, INT64_MIN, INT64_MIN, INT64_MIN, 100);
    assert_i64(xs.n, N);
    for (size_t k = 0; k < xs.n; k++) {
        const struct rec *x = &xs.v[k].r;
        if (k > 0 && !key_before(&xs.v[k - 1].r, x))
            fail_msg("record %zu (%" PRId64 ", %" PRId64 ", %" PRId64 ") is not after the one"
                     " before it", k, x->dev, x->ts, x->seq);
        int i = 0; /* the message written with this identity */
        while (i < N && !(spec[i][0] == x->dev && T0 + spec[i][2] * 1000 == x->ts &&
                          spec[i][3] == x->seq))
            i++;
        assert_true(i < N);
        assert_i64(xs.v[k].uid, spec[i][1]);
        assert_bytes(x->data, x->data_len, t[i].data);
        assert_true(x->has_meta == (spec[i][4] != 0));
        if (spec[i][4])
            assert_bytes(x->meta, x->meta_len, meta);
        else
            assert_i64(x->meta_len, 0);
    }
    assert_i64(xs.v[0].r.dev, 2);
    assert_i64(xs.v[N - 1].r.dev, 9);
    free(xs.v);
}

/* Paging with the last record as the cursor reads every message once, in
 * order, across more rows than a backend reads at a time; limit bounds a
 * call; a callback returning non-zero stops it (IOT_OK). */
static void test_export_scan_cursor(void **state)
{
    struct iot_telemetry *tm = TM(state);
    need_export_scan(tm);
    enum { N = 600, DEVS = 3, PAGE = 7 };
    struct small_msg *sm = calloc(N, sizeof *sm);
    struct iot_tm_message *m = calloc(N, sizeof *m);
    assert_non_null(sm);
    assert_non_null(m);
    for (int i = 0; i < N; i++) { /* 2 messages per ts, devices interleaved */
        small_fill(&sm[i], 100 + i % DEVS, 1 + i % 2, T0 + (i / (2 * DEVS)) * 10,
                   (i / DEVS) % 2, i);
        m[i] = sm[i].m;
    }
    assert_rc(iot_tm_write_batch(tm, m, N), IOT_OK);
    free(sm);
    free(m);

    struct exports all = export_after(tm, INT64_MIN, INT64_MIN, INT64_MIN, 10 * N);
    assert_i64(all.n, N);
    for (size_t k = 1; k < all.n; k++)
        assert_true(key_before(&all.v[k - 1].r, &all.v[k].r));
    size_t got = 0;
    int64_t dev = INT64_MIN, ts = INT64_MIN, seq = INT64_MIN;
    for (;;) {
        struct exports page = export_after(tm, dev, ts, seq, PAGE);
        assert_true(page.n <= PAGE);
        for (size_t k = 0; k < page.n; k++, got++) {
            assert_true(got < all.n);
            assert_i64(page.v[k].r.dev, all.v[got].r.dev);
            assert_i64(page.v[k].r.ts, all.v[got].r.ts);
            assert_i64(page.v[k].r.seq, all.v[got].r.seq);
            assert_i64(page.v[k].uid, all.v[got].uid);
        }
        if (page.n == 0) {
            free(page.v);
            break;
        }
        dev = page.v[page.n - 1].r.dev;
        ts = page.v[page.n - 1].r.ts;
        seq = page.v[page.n - 1].r.seq;
        free(page.v);
    }
    assert_i64(got, N);

    struct exports part = export_after(tm, INT64_MIN, INT64_MIN, INT64_MIN, 300);
    assert_i64(part.n, 300); /* more than one chunk, exactly the limit */
    assert_i64(part.v[299].r.seq, all.v[299].r.seq);
    assert_i64(part.v[299].r.ts, all.v[299].r.ts);
    free(part.v);
    part = export_after(tm, INT64_MIN, INT64_MIN, INT64_MIN, 0);
    assert_i64(part.n, 0);
    /* strictly after the cursor: from the middle of a ts, past a device */
    part = export_after(tm, all.v[10].r.dev, all.v[10].r.ts, all.v[10].r.seq, 1);
    assert_i64(part.n, 1);
    assert_i64(part.v[0].r.ts, all.v[11].r.ts);
    assert_i64(part.v[0].r.seq, all.v[11].r.seq);
    free(part.v);
    part = export_after(tm, 100, INT64_MAX, INT64_MAX, 10 * N);
    assert_i64(part.n, N - N / DEVS);
    assert_i64(part.v[0].r.dev, 101);
    free(part.v);
    part = export_after(tm, 102, INT64_MAX, INT64_MAX, 10);
    assert_i64(part.n, 0);
    struct exports stop = {.stop_after = 5};
    assert_rc(iot_tm_export_scan(tm, INT64_MIN, INT64_MIN, INT64_MIN, 100, on_export, &stop),
              IOT_OK);
    assert_i64(stop.n, 5);
    free(stop.v);
    assert_rc(iot_tm_export_scan(tm, INT64_MIN, INT64_MIN, INT64_MIN, -1, on_export, &stop),
              IOT_EINVAL);
    assert_rc(iot_tm_export_scan(tm, INT64_MIN, INT64_MIN, INT64_MIN, 10, NULL, NULL),
              IOT_EINVAL);
    free(all.v);
}

/* ---- backend table (not per backend) ---------------------------------------- */

static void test_backend_table(void **state)
{
    (void)state;
    const struct iot_telemetry_ops *sq = iot_telemetry_backend("sqlite::memory:");
    assert_non_null(sq);
    assert_string_equal(sq->name, "sqlite");
    assert_i64(sq->version, 3);
    assert_non_null(sq->samples_typed); /* version 2 slots */
    assert_non_null(sq->sample_edge);
    assert_non_null(sq->export_scan); /* version 3 (set_retention: none, the purge does it) */
    assert_true(sq->caps & IOT_TM_CAP_ATOMIC_BATCH);
    assert_ptr_equal(iot_telemetry_backend("sqlite:///x.db"), sq);
    assert_ptr_equal(iot_telemetry_backend("data/telemetry.db"), sq);
    assert_ptr_equal(iot_telemetry_backend(""), sq);
    assert_ptr_equal(iot_telemetry_backend(NULL), sq);
    const struct iot_telemetry_ops *cs = iot_telemetry_backend("cassandra://127.0.0.1:9042/iot");
    assert_non_null(cs);
    assert_string_equal(cs->name, "cassandra");
    assert_i64(cs->version, 3);
    assert_true(cs->caps & IOT_TM_CAP_TTL);
    assert_ptr_equal(iot_telemetry_backend("CASSANDRA://h/ks"), cs);
    assert_non_null(strstr(iot_telemetry_backend_names(), "cassandra"));
    assert_null(iot_telemetry_backend("nosuch://x"));
    assert_non_null(strstr(iot_telemetry_backend_names(), "sqlite"));
    struct iot_telemetry t = {.ops = sq, .self = (void *)1};
    assert_rc(iot_telemetry_open("cassandra://127.0.0.1", false, &t), IOT_EINVAL); /* no keyspace */
    assert_null(t.ops);
    assert_null(t.self);
    iot_telemetry_close(&t); /* NULL-safe */
    iot_telemetry_close(NULL);
    assert_rc(iot_telemetry_open("sqlite:", false, &t), IOT_EINVAL);
    assert_rc(iot_telemetry_open("sqlite::memory:", false, NULL), IOT_EINVAL);
    /* the file of an embedded store's URL, found without opening it */
    char path[32];
    assert_rc(iot_telemetry_file("sqlite:///var/t.db", path, sizeof path), IOT_OK);
    assert_string_equal(path, "/var/t.db");
    assert_rc(iot_telemetry_file("SQLite:data/t.db", path, sizeof path), IOT_OK);
    assert_string_equal(path, "data/t.db");
    assert_rc(iot_telemetry_file("data/t.db", path, sizeof path), IOT_OK);
    assert_string_equal(path, "data/t.db");
    assert_rc(iot_telemetry_file("sqlite::memory:", path, sizeof path), IOT_ENOTFOUND);
    assert_rc(iot_telemetry_file("sqlite:", path, sizeof path), IOT_ENOTFOUND);
    assert_rc(iot_telemetry_file("nosuch://x", path, sizeof path), IOT_EINVAL);
    assert_rc(iot_telemetry_file("sqlite:///a/very/long/path/to/telemetry.db", path, sizeof path),
              IOT_EINVAL);
}

/* ---- main -------------------------------------------------------------- */

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static int run_backend(const char *url)
{
    const struct CMUnitTest tests[] = {
        T(test_ping_empty),
        T(test_roundtrip_bytes),
        T(test_order_range_limit),
        T(test_cursor_paging),
        T(test_page_byte_budget),
        T(test_exact_integers),
        T(test_delete_int64_extremes),
        T(test_idempotent),
        T(test_query_user),
        T(test_query_user_ties),
        T(test_latest),
        T(test_rollups),
        T(test_samples),
        T(test_catalog),
        T(test_delete_range),
        T(test_delete_range_middle),
        T(test_delete_device),
        T(test_delete_user),
        T(test_purge),
        T(test_purge_many_devices),
        T(test_stats),
        T(test_big_batches),
        T(test_invalid_batches),
        T(test_callback_reentry),
        T(test_large_rows_and_many_names),
        T(test_concurrency),
        T(test_reopen_durable),
        T(test_read_after_write),
        T(test_idempotent_across_flushes),
        T(test_staged_visible),
        T(test_export_scan_order),
        T(test_export_scan_cursor),
        T(test_mixed_batches),
        T(test_ops_between_writes),
    };
    char name[1100];
    snprintf(name, sizeof name, "telemetry[%.1000s]", url);
    g_base_url = url;
    printf("[ BACKEND  ] %s\n", url); /* cmocka 1.1 does not print group names */
    fflush(stdout);
    return cmocka_run_group_tests_name(name, tests, NULL, NULL);
}

int main(void)
{
    char defaults[1100];
    snprintf(defaults, sizeof defaults, "sqlite://%s/telemetry-contract,sqlite::memory:",
             contract_tmpdir());
    const struct CMUnitTest table_tests[] = {
        cmocka_unit_test(test_backend_table),
    };
    int failed = cmocka_run_group_tests_name("telemetry_backend_table", table_tests, NULL, NULL);
    failed += contract_run_backends("IOT_TELEMETRY_URLS", defaults, run_backend);
    return failed ? 1 : 0;
}
