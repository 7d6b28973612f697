/* Integration test of the CQL client against a 3-node Cassandra cluster
 * (scripts/services.sh start cassandra3; CASSANDRA3_HOSTS names it, the test
 * exits 77 when it is unset): the control connection finds all three nodes
 * and their tokens; with RF=3, a prepared statement goes to the node owning
 * its partition key's token (checked against the tokens each node reports
 * and the token the server computes); with node 2 stopped, QUORUM writes and
 * reads go on and nothing is sent to node 2; once node 2 is started again it
 * serves requests again. The cluster is left running with all nodes up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cql/cql_session.h"
#include "cql/cql_types.h"
#include "integration/cql_itest_util.h"

#define N_NODES 3
#define MAX_TOKENS 64

static const struct cql_slice no_values = {NULL, 0};
static struct cql_session *S;
static char KS[64];
static char node_name[N_NODES][64]; /* "127.0.0.N:port" from CASSANDRA3_HOSTS */

static int node_index(const char *host)
{
    for (int i = 0; i < N_NODES; i++)
        if (strcmp(node_name[i], host) == 0)
            return i;
    return -1;
}

static int run(const char *q, uint16_t cl, struct cql_reply **out)
{
    struct cql_opts o = {.timeout_ms = 60000, .idempotent = true};
    int rc = cql_session_query_sync(S, q, no_values, cl, &o, out);
    if (rc)
        fprintf(stderr, "%s\n  -> %s: %s\n", q, cql_strerror(rc), cql_reply_error_text(*out));
    return rc;
}

static void must(const char *q)
{
    struct cql_reply *r;
    assert_int_equal(run(q, CQL_CONSISTENCY_DEFAULT, &r), CQL_OK);
    cql_reply_free(r);
}

/* ---- cluster state ---------------------------------------------------------------- */

static int hosts_ready(void)
{
    struct cql_host_info hi[8];
    size_t n = cql_session_hosts(S, hi, 8);
    int ready = 0;
    for (size_t i = 0; i < n && i < 8; i++)
        if (hi[i].up && hi[i].n_tokens > 0 && node_index(hi[i].name) >= 0)
            ready++;
    return ready;
}

static bool host_up(int node)
{
    struct cql_host_info hi[8];
    size_t n = cql_session_hosts(S, hi, 8);
    for (size_t i = 0; i < n && i < 8; i++)
        if (strcmp(hi[i].name, node_name[node]) == 0)
            return hi[i].up;
    return false;
}

static uint64_t served_by(int node)
{
    struct cql_host_info hi[8];
    size_t n = cql_session_hosts(S, hi, 8);
    for (size_t i = 0; i < n && i < 8; i++)
        if (strcmp(hi[i].name, node_name[node]) == 0)
            return hi[i].served;
    return 0;
}

/* Round-robin a per-node query until every node answered it; each node's
 * first answer is handed to fn. */
static void ask_every_node(const char *q, void (*fn)(int node, const struct cql_reply *r))
{
    bool seen[N_NODES] = {false};
    int left = N_NODES;
    for (int tries = 0; left > 0 && tries < 60; tries++) {
        struct cql_reply *r;
        assert_int_equal(run(q, CQL_CONSISTENCY_ONE, &r), CQL_OK);
        int node = node_index(cql_reply_host(r));
        if (node >= 0 && !seen[node]) {
            seen[node] = true;
            left--;
            fn(node, r);
        }
        cql_reply_free(r);
    }
    assert_int_equal(left, 0);
}

static char schema[N_NODES][64];

static void note_schema(int node, const struct cql_reply *r)
{
    struct cql_row_iter it = cql_rows_iter(cql_reply_rows(r));
    struct cql_value cell;
    schema[node][0] = '\0';
    if (cql_rows_next(&it, &cell, 1) && cell.len == 16)
        for (int i = 0; i < 16; i++)
            snprintf(schema[node] + 2 * i, 3, "%02x", cell.ptr[i]);
}

/* Waits until the three nodes report the same schema version. */
static void wait_schema_agreement(void)
{
    uint64_t until = now_ms() + 60000;
    for (;;) {
        ask_every_node("SELECT schema_version FROM system.local", note_schema);
        if (!strcmp(schema[0], schema[1]) && !strcmp(schema[1], schema[2]) && schema[0][0])
            return;
        assert_true(now_ms() < until);
        usleep(200000);
    }
}

static int64_t tokens[N_NODES][MAX_TOKENS];
static size_t n_tokens[N_NODES];

static void note_tokens(int node, const struct cql_reply *r)
{
    struct cql_row_iter it = cql_rows_iter(cql_reply_rows(r));
    struct cql_value cell;
    assert_true(cql_rows_next(&it, &cell, 1));
    struct cql_str t[MAX_TOKENS];
    assert_int_equal(cql_decode_list(cell, CQL_TYPE_VARCHAR, t, MAX_TOKENS, &n_tokens[node]),
                     CQL_OK);
    for (size_t i = 0; i < n_tokens[node]; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.*s", (int)t[i].len, t[i].ptr);
        tokens[node][i] = strtoll(buf, NULL, 10);
    }
}

/* The node owning a token: the one with the smallest token >= it, else
 * (wrap around) the one with the smallest token of all. */
static int owner_of_token(int64_t t)
{
    int best = -1, lowest = -1;
    int64_t best_tok = 0, lowest_tok = 0;
    for (int n = 0; n < N_NODES; n++)
        for (size_t i = 0; i < n_tokens[n]; i++) {
            int64_t tok = tokens[n][i];
            if (tok >= t && (best < 0 || tok < best_tok)) {
                best = n;
                best_tok = tok;
            }
            if (lowest < 0 || tok < lowest_tok) {
                lowest = n;
                lowest_tok = tok;
            }
        }
    return best >= 0 ? best : lowest;
}

/* ---- setup --------------------------------------------------------------------------- */

static void parse_hosts(const char *list)
{
    const char *p = list;
    for (int i = 0; i < N_NODES; i++) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        snprintf(node_name[i], sizeof node_name[i], "%.*s", (int)n, p);
        p = end ? end + 1 : p + n;
    }
}

static int setup(void **state)
{
    const char *hosts = getenv("CASSANDRA3_HOSTS");
    parse_hosts(hosts);
    struct cql_session_config cfg = {
        .contact_points = hosts,
        .user = "cassandra",
        .password = "cassandra",
        .consistency = CQL_CONSISTENCY_QUORUM,
    };
    const char *why;
    assert_int_equal(cql_session_new(&cfg, &S, &why), CQL_OK);
    int rc = cql_session_connect(S);
    if (rc)
        fprintf(stderr, "connect: %s\n", cql_session_error_text(S));
    assert_int_equal(rc, CQL_OK);
    uint64_t until = now_ms() + 60000;
    while (hosts_ready() < N_NODES && now_ms() < until)
        usleep(100000);
    assert_int_equal(hosts_ready(), N_NODES); /* three peers, each with tokens, all up */

    snprintf(KS, sizeof KS, "cql_cluster_itest_%ld_%d", (long)time(NULL), (int)getpid());
    char q[256];
    snprintf(q, sizeof q,
             "CREATE KEYSPACE %s WITH replication = "
             "{'class': 'SimpleStrategy', 'replication_factor': 3}",
             KS);
    must(q);
    snprintf(q, sizeof q, "CREATE TABLE %s.kv (k int PRIMARY KEY, v int)", KS);
    must(q);
    wait_schema_agreement();
    ask_every_node("SELECT tokens FROM system.local", note_tokens);
    return 0;
}

static int teardown(void **state)
{
    char q[128];
    snprintf(q, sizeof q, "DROP KEYSPACE IF EXISTS %s", KS);
    struct cql_reply *r = NULL;
    int rc = run(q, CQL_CONSISTENCY_DEFAULT, &r);
    cql_reply_free(r);
    cql_session_free(S);
    return rc;
}

/* ---- requests -------------------------------------------------------------------------- */

static const struct cql_prepared_stmt *prepare(const char *fmt)
{
    char q[256];
    snprintf(q, sizeof q, fmt, KS);
    const struct cql_prepared_stmt *ps;
    assert_int_equal(cql_session_prepare_sync(S, q, &ps, NULL), CQL_OK);
    return ps;
}

/* Executes with key k (and value k*10 when two markers); returns the node
 * that served it, -1 on failure. */
static int exec_key(const struct cql_prepared_stmt *ps, int32_t k, struct cql_reply **out)
{
    struct cql_buf v = {0};
    cql_encode_int(&v, k);
    if (cql_prepared_params(ps)->n_columns == 2)
        cql_encode_int(&v, k * 10);
    struct cql_opts o = {.idempotent = true};
    struct cql_reply *r;
    int rc = cql_session_execute_sync(S, ps, slice_of(&v), CQL_CONSISTENCY_QUORUM, &o, &r);
    cql_buf_free(&v);
    if (rc)
        fprintf(stderr, "key %d: %s: %s\n", k, cql_strerror(rc), cql_reply_error_text(r));
    int node = rc == CQL_OK ? node_index(cql_reply_host(r)) : -1;
    if (out)
        *out = r;
    else
        cql_reply_free(r);
    return node;
}

static int64_t server_token(const struct cql_prepared_stmt *tok, int32_t k)
{
    struct cql_reply *r;
    assert_true(exec_key(tok, k, &r) >= 0);
    struct cql_row_iter it = cql_rows_iter(cql_reply_rows(r));
    struct cql_value cell;
    assert_true(cql_rows_next(&it, &cell, 1));
    int64_t t;
    assert_int_equal(cql_decode_bigint(cell, &t), CQL_OK);
    cql_reply_free(r);
    return t;
}

static void test_token_aware_routing(void **state)
{
    const struct cql_prepared_stmt *ins = prepare("INSERT INTO %s.kv (k, v) VALUES (?, ?)");
    const struct cql_prepared_stmt *tok = prepare("SELECT token(k) FROM %s.kv WHERE k = ?");
    int per_node[N_NODES] = {0};
    for (int32_t k = 0; k < 200; k++) {
        int served = exec_key(ins, k, NULL);
        int owner = owner_of_token(server_token(tok, k));
        if (served != owner)
            fprintf(stderr, "key %d: served by node %d, owner node %d\n", k, served + 1, owner + 1);
        assert_int_equal(served, owner);
        per_node[owner]++;
    }
    fprintf(stderr, "  keys per owner: %d %d %d\n", per_node[0], per_node[1], per_node[2]);
    for (int i = 0; i < N_NODES; i++)
        assert_true(per_node[i] > 0);
}

static void test_node_down_then_back(void **state)
{
    const struct cql_prepared_stmt *ins = prepare("INSERT INTO %s.kv (k, v) VALUES (?, ?)");
    const struct cql_prepared_stmt *sel = prepare("SELECT v FROM %s.kv WHERE k = ?");
    const struct cql_prepared_stmt *tok = prepare("SELECT token(k) FROM %s.kv WHERE k = ?");
    int32_t node2_key = -1;
    for (int32_t k = 0; k < 200 && node2_key < 0; k++)
        if (owner_of_token(server_token(tok, k)) == 1)
            node2_key = k;
    assert_true(node2_key >= 0);

    assert_int_equal(services("stop", "cassandra3.2"), 0);
    uint64_t until = now_ms() + 30000;
    while (host_up(1) && now_ms() < until)
        usleep(50000);
    assert_false(host_up(1));
    uint64_t served2 = served_by(1);
    int per_node[N_NODES] = {0};
    for (int32_t k = 1000; k < 1200; k++) {
        int w = exec_key(ins, k, NULL);
        int r = exec_key(sel, k, NULL);
        assert_true(w >= 0 && r >= 0); /* QUORUM with 2 of 3 replicas */
        assert_int_not_equal(w, 1);
        assert_int_not_equal(r, 1);
        per_node[w]++;
    }
    assert_int_equal(exec_key(sel, node2_key, NULL) == 1, false);
    assert_true(served_by(1) == served2); /* not one request went to node 2 */
    fprintf(stderr, "  node 2 down: writes per node %d %d %d\n", per_node[0], per_node[1],
            per_node[2]);

    assert_int_equal(services("start", "cassandra3.2"), 0);
    uint64_t t0 = now_ms();
    until = t0 + 60000;
    int node = -1;
    while (node != 1 && now_ms() < until) {
        node = exec_key(sel, node2_key, NULL);
        if (node != 1)
            usleep(200000);
    }
    fprintf(stderr, "  node 2 serving again %llu ms after its start\n",
            (unsigned long long)(now_ms() - t0));
    assert_int_equal(node, 1);
    assert_true(host_up(1));
}

int main(void)
{
    const char *hosts = getenv("CASSANDRA3_HOSTS");
    if (!hosts || !*hosts) {
        fprintf(stderr, "CASSANDRA3_HOSTS not set: skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_aware_routing),
        cmocka_unit_test(test_node_down_then_back),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
