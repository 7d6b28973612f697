/* Tests of the session's cluster side: the token ring (owner lookup, wrap
 * around, distinct replicas), the retry policy's decisions, and routing over
 * three fake peers on 127.0.0.1-3 sharing one port: the control connection
 * finds the peers and their tokens, an EXECUTE goes to the owner of its
 * partition key's token, UNAVAILABLE moves on to the next host, a host that
 * stops listening is skipped and is used again once it is back. */
#include "unit/cql/cql_test_util.h"

#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "cql/cql_murmur3.h"
#include "cql/cql_retry.h"
#include "cql/cql_ring.h"
#include "cql/cql_session.h"
#include "unit/cql/cql_fake_peer.c"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- ring ----------------------------------------------------------------------- */

static bool odd_only(uint32_t host, void *arg)
{
    return host % 2 == 1;
}

static void test_ring_lookup(void **state)
{
    struct cql_ring_entry e[] = {{100, 1}, {-50, 0}, {300, 2}, {200, 0}, {400, 3}};
    struct cql_ring r = {0};
    assert_int_equal(cql_ring_build(&r, e, 5), CQL_OK);
    assert_int_equal(r.entries[0].token, -50);
    assert_int_equal(r.entries[4].token, 400);
    assert_int_equal(cql_ring_find(&r, INT64_MIN), 0);
    assert_int_equal(cql_ring_find(&r, -50), 0); /* owner: first token >= key */
    assert_int_equal(cql_ring_find(&r, -49), 1);
    assert_int_equal(cql_ring_find(&r, 100), 1);
    assert_int_equal(cql_ring_find(&r, 399), 4);
    assert_int_equal(cql_ring_find(&r, 401), 0); /* wraps */
    assert_int_equal(cql_ring_find(&r, INT64_MAX), 0);

    uint32_t out[8];
    /* from 150: 200 (host 0), 300 (2), 400 (3), wrap: -50 (0 again), 100 (1) */
    assert_int_equal(cql_ring_replicas(&r, 150, NULL, NULL, out, 8), 4);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 2);
    assert_int_equal(out[2], 3);
    assert_int_equal(out[3], 1);
    assert_int_equal(cql_ring_replicas(&r, 150, NULL, NULL, out, 2), 2);
    assert_int_equal(cql_ring_replicas(&r, 150, odd_only, NULL, out, 8), 2);
    assert_int_equal(out[0], 3);
    assert_int_equal(out[1], 1);
    cql_ring_free(&r);
    assert_int_equal(cql_ring_replicas(&r, 0, NULL, NULL, out, 8), 0);
}

/* ---- retry policy ------------------------------------------------------------------ */

static enum cql_retry_action decide(int err, const struct cql_error_body *e, bool idem,
                                    unsigned retries)
{
    struct cql_retry_in in = {.err = err, .srv = e, .idempotent = idem, .retries = retries};
    return cql_retry_decide(&in);
}

static void test_retry_decisions(void **state)
{
    struct cql_error_body rt = {.received = 2, .block_for = 2, .data_present = false};
    assert_int_equal(decide(CQL_E_SRV_READ_TIMEOUT, &rt, false, 0), CQL_RETRY_SAME_HOST);
    assert_int_equal(decide(CQL_E_SRV_READ_TIMEOUT, &rt, false, 1), CQL_RETRY_FAIL);
    rt.data_present = true;
    assert_int_equal(decide(CQL_E_SRV_READ_TIMEOUT, &rt, true, 0), CQL_RETRY_FAIL);
    rt = (struct cql_error_body){.received = 1, .block_for = 2};
    assert_int_equal(decide(CQL_E_SRV_READ_TIMEOUT, &rt, true, 0), CQL_RETRY_FAIL);

    struct cql_error_body wt = {.write_type = cql_str_c("SIMPLE")};
    assert_int_equal(decide(CQL_E_SRV_WRITE_TIMEOUT, &wt, false, 0), CQL_RETRY_FAIL);
    assert_int_equal(decide(CQL_E_SRV_WRITE_TIMEOUT, &wt, true, 0), CQL_RETRY_SAME_HOST);
    assert_int_equal(decide(CQL_E_SRV_WRITE_TIMEOUT, &wt, true, 1), CQL_RETRY_FAIL);
    wt.write_type = cql_str_c("BATCH_LOG");
    assert_int_equal(decide(CQL_E_SRV_WRITE_TIMEOUT, &wt, false, 0), CQL_RETRY_SAME_HOST);
    wt.write_type = cql_str_c("BATCH");
    assert_int_equal(decide(CQL_E_SRV_WRITE_TIMEOUT, &wt, false, 0), CQL_RETRY_FAIL);

    struct cql_error_body un = {.required = 2, .alive = 1};
    assert_int_equal(decide(CQL_E_SRV_UNAVAILABLE, &un, false, 0), CQL_RETRY_NEXT_HOST);
    assert_int_equal(decide(CQL_E_SRV_UNAVAILABLE, &un, false, 1), CQL_RETRY_FAIL);

    int next_if_idem[] = {CQL_E_CLOSED, CQL_E_SRV_OVERLOADED, CQL_E_SRV_BOOTSTRAPPING};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(decide(next_if_idem[i], NULL, false, 0), CQL_RETRY_FAIL);
        assert_int_equal(decide(next_if_idem[i], NULL, true, 0), CQL_RETRY_NEXT_HOST);
        assert_int_equal(decide(next_if_idem[i], NULL, true, CQL_RETRY_MAX), CQL_RETRY_FAIL);
    }
    int never[] = {CQL_E_SRV_SYNTAX, CQL_E_SRV_INVALID,       CQL_E_SRV_AUTH,
                   CQL_E_TIMEOUT,    CQL_E_SRV_WRITE_FAILURE, CQL_E_SRV_SERVER};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(decide(never[i], NULL, true, 0), CQL_RETRY_FAIL);
}

/* ---- three fake nodes ------------------------------------------------------------- */

#define N_NODES 3
static const char *const node_ip[N_NODES] = {"127.0.0.1", "127.0.0.2", "127.0.0.3"};
static const char *const node_token[N_NODES] = {"-6000000000000000000", "0", "6000000000000000000"};
static const int64_t node_tok[N_NODES] = {-6000000000000000000LL, 0, 6000000000000000000LL};

struct node_state {
    int32_t number; /* 1..3 */
    atomic_uint executes;
};

/* The key node 1 answers UNAVAILABLE for (set by the test). */
static atomic_int unavailable_key = -1;

/* PREPARE -> "PID1" (pk = marker 0); EXECUTE -> the node's number, except
 * for unavailable_key on node 1. */
static bool node_handler(struct fake_peer *p, struct fake_conn *c, const struct fake_req *q,
                         void *arg)
{
    struct node_state *ns = arg;
    if (q->h.opcode == CQL_OP_PREPARE) {
        fake_send_prepared(c, q->h.stream, "PID1");
        return true;
    }
    if (q->h.opcode != CQL_OP_EXECUTE && q->h.opcode != CQL_OP_QUERY)
        return false;
    if (q->h.opcode == CQL_OP_EXECUTE) {
        atomic_fetch_add(&ns->executes, 1);
        struct cql_reader r = cql_reader_make(q->values.ptr, q->values.len);
        struct cql_value v;
        int32_t k = 0;
        if (cql_read_value(&r, &v) == CQL_OK)
            cql_decode_int(v, &k);
        if (k == atomic_load(&unavailable_key) && ns->number == 1) {
            fake_send_error(c, q->h.stream, 0x1000, "Cannot achieve consistency level QUORUM",
                            "\x00\x04"
                            "\x00\x00\x00\x02"
                            "\x00\x00\x00\x01",
                            10);
            return true;
        }
    }
    fake_send_rows_int(c, q->h.stream, &ns->number, 1);
    return true;
}

struct cluster {
    struct fake_peer *peer[N_NODES];
    struct node_state st[N_NODES];
    struct fake_node others[N_NODES][N_NODES - 1];
};

/* Starts three nodes on one port; false if 127.0.0.2/.3 cannot be bound. */
static bool cluster_start(struct cluster *cl)
{
    uint16_t port = 0;
    for (int i = 0; i < N_NODES; i++) {
        int k = 0;
        for (int j = 0; j < N_NODES; j++)
            if (j != i)
                cl->others[i][k++] = (struct fake_node){node_ip[j], node_token[j]};
        cl->st[i].number = i + 1;
        struct fake_peer_config cfg = {.ip = node_ip[i],
                                       .port = port,
                                       .token = node_token[i],
                                       .peers = cl->others[i],
                                       .n_peers = N_NODES - 1,
                                       .handler = node_handler,
                                       .arg = &cl->st[i]};
        if (fake_peer_start(&cfg, &cl->peer[i])) {
            for (int j = 0; j < i; j++)
                fake_peer_stop(cl->peer[j]);
            return false;
        }
        port = fake_peer_port(cl->peer[0]);
    }
    return true;
}

static void cluster_stop(struct cluster *cl)
{
    for (int i = 0; i < N_NODES; i++)
        fake_peer_stop(cl->peer[i]);
}

static int hosts_up(struct cql_session *s, const char *which)
{
    struct cql_host_info hi[8];
    size_t n = cql_session_hosts(s, hi, 8);
    int up = 0;
    for (size_t i = 0; i < n && i < 8; i++)
        if (hi[i].up && hi[i].n_tokens == 1 && (!which || strcmp(hi[i].name, which) == 0))
            up++;
    return up;
}

static bool wait_hosts_up(struct cql_session *s, const char *which, int want, uint32_t ms)
{
    uint64_t until = now_ms() + ms;
    while (hosts_up(s, which) != want && now_ms() < until)
        usleep(2000);
    return hosts_up(s, which) == want;
}

/* The node owning key k's token: the first node token >= it, else node 0. */
static int owner_of(int32_t k)
{
    struct cql_buf b = {0};
    cql_encode_int(&b, k);
    int64_t t = cql_murmur3_token(b.data + 4, 4);
    cql_buf_free(&b);
    for (int i = 0; i < N_NODES; i++)
        if (node_tok[i] >= t)
            return i;
    return 0;
}

static int execute_key(struct cql_session *s, const struct cql_prepared_stmt *ps, int32_t k,
                       char *host, size_t cap, int32_t *node)
{
    struct cql_buf vals = {0};
    cql_encode_int(&vals, k);
    struct cql_reply *r;
    int rc = cql_session_execute_sync(s, ps, (struct cql_slice){vals.data, vals.len},
                                      CQL_CONSISTENCY_DEFAULT, NULL, &r);
    cql_buf_free(&vals);
    snprintf(host, cap, "%s", cql_reply_host(r));
    if (rc == CQL_OK) {
        struct cql_row_iter it = cql_rows_iter(cql_reply_rows(r));
        struct cql_value cell;
        assert_true(cql_rows_next(&it, &cell, 1));
        cql_decode_int(cell, node);
    }
    cql_reply_free(r);
    return rc;
}

static void test_token_aware_routing_and_down_host(void **state)
{
    struct cluster cl = {0};
    if (!cluster_start(&cl)) {
        fprintf(stderr, "cannot bind 127.0.0.2/.3 on one port: skipped\n");
        skip();
    }
    struct cql_session_config cfg = {.contact_points = fake_peer_addr(cl.peer[0]),
                                     .reconnect_max_ms = 500};
    struct cql_session *s;
    assert_int_equal(cql_session_new(&cfg, &s, NULL), CQL_OK);
    assert_int_equal(cql_session_connect(s), CQL_OK);
    assert_true(wait_hosts_up(s, NULL, 3, 5000)); /* peers found, each with its token */

    const struct cql_prepared_stmt *ps;
    assert_int_equal(cql_session_prepare_sync(s, "SELECT v FROM ks.t WHERE k = ?", &ps, NULL),
                     CQL_OK);
    char host[64];
    int32_t node = 0;
    int per_node[N_NODES] = {0};
    for (int32_t k = 0; k < 300; k++) {
        int o = owner_of(k);
        assert_int_equal(execute_key(s, ps, k, host, sizeof host, &node), CQL_OK);
        if (strcmp(host, fake_peer_addr(cl.peer[o])) != 0)
            fprintf(stderr, "key %d: served by %s, owner %s\n", k, host,
                    fake_peer_addr(cl.peer[o]));
        assert_string_equal(host, fake_peer_addr(cl.peer[o]));
        assert_int_equal(node, o + 1);
        per_node[o]++;
    }
    for (int i = 0; i < N_NODES; i++)
        assert_true(per_node[i] > 0);

    /* UNAVAILABLE from the owner: retried once on the next host */
    int32_t uk = 1000000;
    while (owner_of(uk) != 0)
        uk++;
    atomic_store(&unavailable_key, uk);
    assert_int_equal(execute_key(s, ps, uk, host, sizeof host, &node), CQL_OK);
    assert_int_equal(node, 2);
    assert_string_equal(host, fake_peer_addr(cl.peer[1]));

    /* node 2 goes away: nothing is sent to it, its keys go to node 3 */
    fake_peer_stop_listening(cl.peer[1]);
    assert_true(wait_hosts_up(s, fake_peer_addr(cl.peer[1]), 0, 5000));
    unsigned before = atomic_load(&cl.st[1].executes);
    for (int32_t k = 0; k < 100; k++) {
        assert_int_equal(execute_key(s, ps, k, host, sizeof host, &node), CQL_OK);
        assert_string_not_equal(host, fake_peer_addr(cl.peer[1]));
        if (owner_of(k) == 1)
            assert_string_equal(host, fake_peer_addr(cl.peer[2]));
    }
    assert_int_equal(atomic_load(&cl.st[1].executes), before);

    /* back: reconnected in the background and used again */
    assert_int_equal(fake_peer_listen_again(cl.peer[1]), 0);
    assert_true(wait_hosts_up(s, fake_peer_addr(cl.peer[1]), 1, 5000));
    int32_t k = 0;
    while (owner_of(k) != 1)
        k++;
    assert_int_equal(execute_key(s, ps, k, host, sizeof host, &node), CQL_OK);
    assert_string_equal(host, fake_peer_addr(cl.peer[1]));
    cql_session_free(s);
    cluster_stop(&cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_lookup),
        cmocka_unit_test(test_retry_decisions),
        cmocka_unit_test(test_token_aware_routing_and_down_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
