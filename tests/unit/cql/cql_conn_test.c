/* Tests of the CQL connection layer and session against a scripted fake
 * peer (cql_fake_peer.c): handshake with and without authentication,
 * responses split into 1-byte writes or packed several to a write, answers
 * out of order, unknown header flags with warnings, every server ERROR with
 * its code and message, the retry policy, UNPREPARED -> re-prepare, paging
 * and client timestamps, a dropped connection and the reconnect, a request
 * timeout whose late answer is ignored, 1000+ requests in flight on one
 * connection, and more than 32768 requests waiting for stream ids. */
#include "unit/cql/cql_test_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "cql/cql_future.h"
#include "cql/cql_session.h"
#include "unit/cql/cql_fake_peer.c"

static const struct cql_slice no_values = {NULL, 0};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct fake_peer *start_peer(struct fake_peer_config cfg)
{
    struct fake_peer *p;
    assert_int_equal(fake_peer_start(&cfg, &p), 0);
    return p;
}

/* A connected session on p; cfg may set anything but the contact points. */
static struct cql_session *session_on(struct fake_peer *p, struct cql_session_config cfg)
{
    cfg.contact_points = fake_peer_addr(p);
    struct cql_session *s;
    const char *why;
    int rc = cql_session_new(&cfg, &s, &why);
    if (rc)
        fprintf(stderr, "session_new: %s\n", why);
    assert_int_equal(rc, CQL_OK);
    rc = cql_session_connect(s);
    if (rc)
        fprintf(stderr, "connect: %s (%s)\n", cql_strerror(rc), cql_session_error_text(s));
    assert_int_equal(rc, CQL_OK);
    return s;
}

/* The first int of the first row. */
static int32_t first_int(const struct cql_reply *r)
{
    const struct cql_rows *rows = cql_reply_rows(r);
    assert_non_null(rows);
    struct cql_row_iter it = cql_rows_iter(rows);
    struct cql_value cell;
    assert_true(cql_rows_next(&it, &cell, 1));
    int32_t v;
    assert_int_equal(cql_decode_int(cell, &v), CQL_OK);
    return v;
}

static int32_t query_int(struct cql_session *s, const char *cql)
{
    struct cql_reply *r;
    int rc = cql_session_query_sync(s, cql, no_values, CQL_CONSISTENCY_DEFAULT, NULL, &r);
    if (rc)
        fprintf(stderr, "%s: %s (%s)\n", cql, cql_strerror(rc), cql_reply_error_text(r));
    assert_int_equal(rc, CQL_OK);
    int32_t v = first_int(r);
    cql_reply_free(r);
    return v;
}

/* The decimal number at q[off..], digits only. */
static int32_t digits_at(struct cql_str q, size_t off)
{
    int32_t v = 0;
    for (size_t i = off; i < q.len && q.ptr[i] >= '0' && q.ptr[i] <= '9'; i++)
        v = v * 10 + (q.ptr[i] - '0');
    return v;
}

/* "Q <n>" -> n, else -1. */
static int32_t number_in(struct cql_str q)
{
    if (q.len < 3 || q.ptr[0] != 'Q' || q.ptr[1] != ' ')
        return -1;
    return digits_at(q, 2);
}

/* ---- handlers -------------------------------------------------------------------- */

/* Answers "Q <n>" with one row holding n. */
static bool echo_handler(struct fake_peer *p, struct fake_conn *c, const struct fake_req *q,
                         void *arg)
{
    int32_t v = number_in(q->query);
    if (q->h.opcode != CQL_OP_QUERY || v < 0)
        return false;
    fake_send_rows_int(c, q->h.stream, &v, 1);
    return true;
}

/* Holds "Q <n>" requests until `hold_until` are outstanding, then answers
 * them all in one write, last first; later ones at once. */
struct holder {
    uint32_t hold_until;
    struct held {
        struct fake_conn *c;
        int16_t stream;
        int32_t v;
    } * held;
    uint32_t n_held;
    atomic_bool released;
    bool gated; /* with hold_tick: release only once `open` */
    atomic_bool full, open;
};

static void release_held(struct holder *h)
{
    for (uint32_t i = h->n_held; i-- > 0;)
        fake_send_rows_int(h->held[i].c, h->held[i].stream, &h->held[i].v, 1);
    atomic_store(&h->released, true);
}

static bool hold_handler(struct fake_peer *p, struct fake_conn *c, const struct fake_req *q,
                         void *arg)
{
    struct holder *h = arg;
    int32_t v = number_in(q->query);
    if (q->h.opcode != CQL_OP_QUERY || v < 0)
        return false;
    if (atomic_load(&h->released)) {
        fake_send_rows_int(c, q->h.stream, &v, 1);
        return true;
    }
    h->held[h->n_held++] = (struct held){c, q->h.stream, v};
    if (h->n_held == h->hold_until) {
        atomic_store(&h->full, true);
        if (!h->gated)
            release_held(h);
    }
    return true;
}

static void hold_tick(struct fake_peer *p, void *arg)
{
    struct holder *h = arg;
    if (atomic_load(&h->full) && atomic_load(&h->open) && !atomic_load(&h->released))
        release_held(h);
}

/* ---- async bookkeeping ------------------------------------------------------------- */

struct tally {
    atomic_uint ok, bad, done;
    atomic_int last_rc;
};

struct expect {
    struct tally *t;
    int32_t want;
};

static void check_value_cb(int rc, struct cql_reply *r, void *ctx)
{
    struct expect *e = ctx;
    if (rc == CQL_OK && cql_reply_rows(r)) {
        struct cql_row_iter it = cql_rows_iter(cql_reply_rows(r));
        struct cql_value cell;
        int32_t v = -1;
        if (cql_rows_next(&it, &cell, 1) && cql_decode_int(cell, &v) == CQL_OK && v == e->want)
            atomic_fetch_add(&e->t->ok, 1);
        else
            atomic_fetch_add(&e->t->bad, 1);
    } else {
        atomic_store(&e->t->last_rc, rc);
        atomic_fetch_add(&e->t->bad, 1);
    }
    atomic_fetch_add(&e->t->done, 1);
    cql_reply_free(r);
}

static void wait_done(struct tally *t, uint32_t n, uint32_t timeout_ms)
{
    uint64_t until = now_ms() + timeout_ms;
    while (atomic_load(&t->done) < n && now_ms() < until)
        usleep(1000);
    if (atomic_load(&t->done) != n)
        fprintf(stderr, "done %u of %u (ok %u, bad %u)\n", atomic_load(&t->done), n,
                atomic_load(&t->ok), atomic_load(&t->bad));
    assert_int_equal(atomic_load(&t->done), n);
}

/* Submits n "Q <i>" queries, each checking its own answer. */
static struct expect *submit_numbered(struct cql_session *s, struct tally *t, uint32_t n)
{
    struct expect *e = calloc(n, sizeof *e);
    assert_non_null(e);
    char q[32];
    for (uint32_t i = 0; i < n; i++) {
        e[i] = (struct expect){t, (int32_t)i};
        snprintf(q, sizeof q, "Q %u", i);
        assert_int_equal(cql_session_query(s, q, no_values, CQL_CONSISTENCY_DEFAULT, NULL,
                                           check_value_cb, &e[i]),
                         CQL_OK);
    }
    return e;
}

/* ---- handshake ----------------------------------------------------------------------- */

static void test_handshake_no_auth(void **state)
{
    struct fake_peer *p = start_peer((struct fake_peer_config){.handler = echo_handler});
    struct cql_session *s = session_on(p, (struct cql_session_config){0});
    assert_int_equal(query_int(s, "Q 42"), 42);
    /* control + one pool connection, each OPTIONS -> SUPPORTED, STARTUP -> READY */
    assert_int_equal(fake_peer_conns(p), 2);
    assert_int_equal(fake_peer_count(p, CQL_OP_OPTIONS), 2);
    assert_int_equal(fake_peer_count(p, CQL_OP_STARTUP), 2);
    assert_int_equal(fake_peer_count(p, CQL_OP_REGISTER), 1);
    assert_int_equal(fake_peer_count(p, CQL_OP_AUTH_RESPONSE), 0);
    struct cql_host_info hi[4];
    assert_int_equal(cql_session_hosts(s, hi, 4), 1);
    assert_true(hi[0].up);
    assert_int_equal(hi[0].n_tokens, 1);
    assert_string_equal(hi[0].dc, "dc1");
    cql_session_free(s);
    fake_peer_stop(p);
}

static void test_handshake_auth(void **state)
{
    struct fake_peer *p = start_peer((struct fake_peer_config){
        .user = "cassandra", .password = "s3cret", .handler = echo_handler});
    struct cql_session *s =
        session_on(p, (struct cql_session_config){.user = "cassandra", .password = "s3cret"});
    assert_int_equal(query_int(s, "Q 7"), 7);
    assert_int_equal(fake_peer_count(p, CQL_OP_AUTH_RESPONSE), 2);
    cql_session_free(s);
    fake_peer_stop(p);
}

static void test_handshake_wrong_password(void **state)
{
    struct fake_peer *p =
        start_peer((struct fake_peer_config){.user = "cassandra", .password = "s3cret"});
    struct cql_session_config cfg = {
        .contact_points = fake_peer_addr(p), .user = "cassandra", .password = "nope"};
    struct cql_session *s;
    assert_int_equal(cql_session_new(&cfg, &s, NULL), CQL_OK);
    assert_int_equal(cql_session_connect(s), CQL_E_SRV_AUTH);
    assert_non_null(strstr(cql_session_error_text(s), "password are incorrect"));
    /* requests have nowhere to go */
    struct cql_reply *r;
    assert_int_equal(cql_session_query_sync(s, "Q 1", no_values, CQL_CONSISTENCY_DEFAULT, NULL, &r),
                     CQL_E_NO_HOST);
    cql_reply_free(r);
    cql_session_free(s);

    cfg.user = cfg.password = NULL; /* no credentials at all */
    assert_int_equal(cql_session_new(&cfg, &s, NULL), CQL_OK);
    assert_int_equal(cql_session_connect(s), CQL_E_AUTH_REQUIRED);
    cql_session_free(s);
    fake_peer_stop(p);
}

/* USE of a keyspace the server refuses: connect fails with its error. */
static bool use_handler(struct fake_peer *p, struct fake_conn *c, const struct fake_req *q,
                        void *arg)
{
    if (q->h.opcode == CQL_OP_QUERY && cql_str_eq(q->query, "USE nope")) {
        fake_send_error(c, q->h.stream, 0x2200, "Keyspace 'nope' does not exist", NULL, 0);
        return true;
    }
    return echo_handler(p, c, q, arg);
}

static void test_bad_config_and_keyspace(void **state)
{
    struct cql_session *s;
    const char *why = NULL;
    struct cql_session_config cfg = {.contact_points = ""};
    assert_int_equal(cql_session_new(&cfg, &s, &why), CQL_E_INVALID);
    assert_string_equal(why, "no contact points");
    cfg.contact_points = "[::1:9042";
    assert_int_equal(cql_session_new(&cfg, &s, &why), CQL_E_INVALID);
    cfg.contact_points = "127.0.0.1:9042";
    cfg.consistency = 0x0042;
    assert_int_equal(cql_session_new(&cfg, &s, &why), CQL_E_INVALID);

    struct fake_peer *p = start_peer((struct fake_peer_config){.handler = use_handler});
    cfg = (struct cql_session_config){.contact_points = fake_peer_addr(p), .keyspace = "nope"};
    assert_int_equal(cql_session_new(&cfg, &s, NULL), CQL_OK);
    assert_int_equal(cql_session_connect(s), CQL_E_SRV_INVALID);
    assert_non_null(strstr(cql_session_error_text(s), "does not exist"));
    cql_session_free(s);
    cfg.keyspace = "ks";
    s = session_on(p, cfg);
    assert_int_equal(query_int(s, "Q 8"), 8);
    cql_session_free(s);
    fake_peer_stop(p);
}

/* ---- framing ----------------------------------------------------------------------- */

static void test_split_one_byte_writes(void **state)
{
    struct fake_peer *p =
        start_peer((struct fake_peer_config){.split_writes = true, .handler = echo_handler});
    struct cql_session *s = session_on(p, (struct cql_session_config){0});
    for (int i = 0; i < 5; i++)
        assert_int_equal(query_int(s, i % 2 ? "Q 123456" : "Q 9"), i % 2 ? 123456 : 9);
    cql_session_free(s);
    fake_peer_stop(p);
}

/* 64 responses in one write, answered last first: each goes to its own
 * request. */
static void test_many_in_one_write_out_of_order(void **state)
{
    struct holder h = {.hold_until = 64};
    h.held = calloc(64, sizeof *h.held);
    struct fake_peer *p = start_peer((struct fake_peer_config){.handler = hold_handler, .arg = &h});
    struct cql_session *s = session_on(p, (struct cql_session_config){0});
    struct tally t = {0};
    struct expect *e = submit_numbered(s, &t, 64);
    wait_done(&t, 64, 5000);
    assert_int_equal(atomic_load(&t.ok), 64);
    assert_int_equal(fake_peer_max_outstanding(p), 64);
    cql_session_free(s);
    fake_peer_stop(p);
    free(e);
    free(h.held);
}

/* Tracing id, custom payload, warnings and two flags the spec does not
 * define, all on one VOID result. */
static bool flags_handler(struct fake_peer *p, struct fake_conn *c, const struct fake_req *q,
                          void *arg)
{
    if (q->h.opcode != CQL_OP_QUERY)
        return false;
    struct cql_buf b = {0};
    size_t at =
        cql_frame_begin(&b, CQL_VERSION_RESPONSE,
                        CQL_FLAG_TRACING | CQL_FLAG_CUSTOM_PAYLOAD | CQL_FLAG_WARNING | 0x40 | 0x80,
                        q->h.stream, CQL_OP_RESULT);
    static const uint8_t trace[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    cql_write_uuid(&b, trace);
    struct cql_str warns[2] = {cql_str_c("Aggregation query used without partition key"),
                               cql_str_c("second warning")};
    cql_write_string_list(&b, warns, 2);
    struct cql_str key = cql_str_c("k");
    struct cql_value val = {(const uint8_t *)"v", 1};
    cql_write_bytes_map(&b, &key, &val, 1);
    cql_write_int(&b, CQL_RESULT_VOID);
    cql_frame_end(&b, at);
    fake_send_raw(c, b.data, b.len);
    cql_buf_free(&b);
    return true;
}

static void test_unknown_flags_and_warnings(void **state)
{
    struct fake_peer *p = start_peer((struct fake_peer_config){.handler = flags_handler});
    struct cql_session *s = session_on(p, (struct cql_session_config){0});
    struct cql_reply *r;
    assert_int_equal(
        cql_session_query_sync(s, "WARN", no_values, CQL_CONSISTENCY_DEFAULT, NULL, &r), CQL_OK);
    const struct cql_message *m = cql_reply_message(r);
    assert_non_null(m);
    assert_int_equal(cql_reply_kind(r), CQL_RESULT_VOID);
    assert_true(m->env.has_tracing_id);
    assert_int_equal(m->env.tracing_id[15], 16);
    assert_int_equal(m->env.warnings.count, 2);
    struct cql_iter it = cql_str_list_iter(&m->env.warnings);
    struct cql_str w;
    assert_true(cql_str_list_next(&it, &w));
    assert_str(w, "Aggregation query used without partition key");
    assert_int_equal(m->env.custom_payload.count, 1);
    cql_reply_free(r);
    cql_session_free(s);
    fake_peer_stop(p);
}

/* ---- server errors ------------------------------------------------------------------ */

struct err_case {
    int32_t code;
    int want;
    const char *extra;
    size_t extra_len;
};

#define EXTRA(lit) lit, sizeof(lit) - 1
/* clang-format off */
static const struct err_case err_cases[] = {
    {0x0000, CQL_E_SRV_SERVER, EXTRA("")},
    {0x000A, CQL_E_SRV_PROTOCOL, EXTRA("")},
    {0x0100, CQL_E_SRV_AUTH, EXTRA("")},
    {0x1000, CQL_E_SRV_UNAVAILABLE, EXTRA("\x00\x04" "\x00\x00\x00\x03" "\x00\x00\x00\x01")},
    {0x1001, CQL_E_SRV_OVERLOADED, EXTRA("")},
    {0x1002, CQL_E_SRV_BOOTSTRAPPING, EXTRA("")},
    {0x1003, CQL_E_SRV_TRUNCATE, EXTRA("")},
    {0x1100, CQL_E_SRV_WRITE_TIMEOUT,
     EXTRA("\x00\x01" "\x00\x00\x00\x00" "\x00\x00\x00\x01" "\x00\x06" "SIMPLE")},
    {0x1200, CQL_E_SRV_READ_TIMEOUT, EXTRA("\x00\x01" "\x00\x00\x00\x00" "\x00\x00\x00\x01" "\x00")},
    {0x1300, CQL_E_SRV_READ_FAILURE,
     EXTRA("\x00\x04" "\x00\x00\x00\x01" "\x00\x00\x00\x02" "\x00\x00\x00\x01" "\x00")},
    {0x1400, CQL_E_SRV_FUNCTION_FAILURE,
     EXTRA("\x00\x02" "ks" "\x00\x01" "f" "\x00\x01" "\x00\x03" "int")},
    {0x1500, CQL_E_SRV_WRITE_FAILURE,
     EXTRA("\x00\x04" "\x00\x00\x00\x01" "\x00\x00\x00\x02" "\x00\x00\x00\x01" "\x00\x06" "SIMPLE")},
    {0x2000, CQL_E_SRV_SYNTAX, EXTRA("")},
    {0x2100, CQL_E_SRV_UNAUTHORIZED, EXTRA("")},
    {0x2200, CQL_E_SRV_INVALID, EXTRA("")},
    {0x2300, CQL_E_SRV_CONFIG, EXTRA("")},
    {0x2400, CQL_E_SRV_ALREADY_EXISTS, EXTRA("\x00\x02" "ks" "\x00\x01" "t")},
    {0x2500, CQL_E_SRV_UNPREPARED, EXTRA("\x00\x03" "abc")},
    {0x7777, CQL_E_SRV_UNKNOWN, EXTRA("")},
};
/* clang-format on */
#define N_ERR_CASES (sizeof err_cases / sizeof err_cases[0])

/* "ERR <i>" -> the ERROR of err_cases[i], message "boom <i>". */
static bool error_handler(struct fake_peer *p, struct fake_conn *c, const struct fake_req *q,
                          void *arg)
{
    if (q->h.opcode != CQL_OP_QUERY || q->query.len < 5 || memcmp(q->query.ptr, "ERR ", 4))
        return false;
    size_t i = (size_t)digits_at(q->query, 4);
    char msg[32];
    snprintf(msg, sizeof msg, "boom %zu", i);
    fake_send_error(c, q->h.stream, err_cases[i].code, msg, err_cases[i].extra,
                    err_cases[i].extra_len);
    return true;
}

static void test_every_server_error(void **state)
{
    struct fake_peer *p = start_peer((struct fake_peer_config){.handler = error_handler});
    struct cql_session *s = session_on(p, (struct cql_session_config){0});
    for (size_t i = 0; i < N_ERR_CASES; i++) {
        char q[32], msg[32];
        snprintf(q, sizeof q, "ERR %zu", i);
        snprintf(msg, sizeof msg, "boom %zu", i);
        struct cql_reply *r;
        int rc = cql_session_query_sync(s, q, no_values, CQL_CONSISTENCY_DEFAULT, NULL, &r);
        if (rc != err_cases[i].want)
            fprintf(stderr, "code 0x%04x: got %d (%s), want %d\n", err_cases[i].code, rc,
                    cql_reply_error_text(r), err_cases[i].want);
        assert_int_equal(rc, err_cases[i].want);
        assert_int_equal(cql_reply_rc(r), rc);
        assert_string_equal(cql_reply_error_text(r), msg);
        const struct cql_error_body *e = cql_reply_error(r);
        assert_non_null(e);
        assert_int_equal(e->code, err_cases[i].code);
        if (e->code == 0x1000) {
            assert_int_equal(e->required, 3);
            assert_int_equal(e->alive, 1);
        }
        if (e->code == 0x2400)
            assert_str(e->table, "t");
        assert_string_equal(cql_reply_host(r), fake_peer_addr(p));
        cql_reply_free(r);
    }
    struct cql_session_stats st;
    cql_session_stats(s, &st);
    assert_int_equal(st.retries, 1); /* UNAVAILABLE: once, but no other host */
    cql_session_free(s);
    fake_peer_stop(p);
}

/* ---- retry policy ------------------------------------------------------------------ */

/* "RT <scenario>": the first attempt gets the scenario's error, the next
 * ones a row holding the attempt count. */
struct retry_state {
    atomic_uint attempts[8];
};

/* clang-format off */
static const struct err_case retry_errors[] = {
    /* 0: read timeout, enough replicas, no data: retried */
    {0x1200, 0, EXTRA("\x00\x04" "\x00\x00\x00\x02" "\x00\x00\x00\x02" "\x00")},
    /* 1: read timeout with data present: not retried */
    {0x1200, 0, EXTRA("\x00\x04" "\x00\x00\x00\x02" "\x00\x00\x00\x02" "\x01")},
    /* 2, 3: write timeout SIMPLE: retried only when idempotent */
    {0x1100, 0, EXTRA("\x00\x04" "\x00\x00\x00\x00" "\x00\x00\x00\x02" "\x00\x06" "SIMPLE")},
    {0x1100, 0, EXTRA("\x00\x04" "\x00\x00\x00\x00" "\x00\x00\x00\x02" "\x00\x06" "SIMPLE")},
    /* 4: write timeout of the batch log: retried */
    {0x1100, 0, EXTRA("\x00\x04" "\x00\x00\x00\x00" "\x00\x00\x00\x02" "\x00\x09" "BATCH_LOG")},
    /* 5: overloaded, idempotent, one host: no next host */
    {0x1001, 0, EXTRA("")},
};
/* clang-format on */

static bool retry_handler(struct fake_peer *p, struct fake_conn *c, const struct fake_req *q,
                          void *arg)
{
    struct retry_state *rs = arg;
    if (q->h.opcode != CQL_OP_QUERY || q->query.len < 4 || memcmp(q->query.ptr, "RT ", 3))
        return false;
    int i = digits_at(q->query, 3);
    int32_t n = (int32_t)atomic_fetch_add(&rs->attempts[i], 1) + 1;
    if (n == 1)
        fake_send_error(c, q->h.stream, retry_errors[i].code, "first try", retry_errors[i].extra,
                        retry_errors[i].extra_len);
    else
        fake_send_rows_int(c, q->h.stream, &n, 1);
    return true;
}

static int run_rt(struct cql_session *s, int i, bool idempotent)
{
    char q[8];
    snprintf(q, sizeof q, "RT %d", i);
    struct cql_opts o = {.idempotent = idempotent};
    struct cql_reply *r;
    int rc = cql_session_query_sync(s, q, no_values, CQL_CONSISTENCY_DEFAULT, &o, &r);
    if (rc == CQL_OK)
        assert_int_equal(first_int(r), 2);
    else
        assert_string_equal(cql_reply_error_text(r), "first try");
    cql_reply_free(r);
    return rc;
}

static void test_retry_policy(void **state)
{
    struct retry_state rs = {0};
    struct fake_peer *p =
        start_peer((struct fake_peer_config){.handler = retry_handler, .arg = &rs});
    struct cql_session *s = session_on(p, (struct cql_session_config){0});
    assert_int_equal(run_rt(s, 0, false), CQL_OK);
    assert_int_equal(run_rt(s, 1, false), CQL_E_SRV_READ_TIMEOUT);
    assert_int_equal(run_rt(s, 2, false), CQL_E_SRV_WRITE_TIMEOUT);
    assert_int_equal(run_rt(s, 3, true), CQL_OK);
    assert_int_equal(run_rt(s, 4, false), CQL_OK);
    assert_int_equal(run_rt(s, 5, true), CQL_E_SRV_OVERLOADED);
    unsigned want[6] = {2, 1, 1, 2, 2, 1};
    for (int i = 0; i < 6; i++)
        assert_int_equal(atomic_load(&rs.attempts[i]), want[i]);
    cql_session_free(s);
    fake_peer_stop(p);
}

/* ---- prepared statements --------------------------------------------------------- */

struct prep_state {
    atomic_uint executes;
};

/* PREPARE -> id "PID1"; the first EXECUTE -> UNPREPARED, later ones -> k+1. */
static bool prep_handler(struct fake_peer *p, struct fake_conn *c, const struct fake_req *q,
                         void *arg)
{
    struct prep_state *ps = arg;
    if (q->h.opcode == CQL_OP_PREPARE) {
        fake_send_prepared(c, q->h.stream, "PID1");
        return true;
    }
    if (q->h.opcode != CQL_OP_EXECUTE)
        return false;
    if (atomic_fetch_add(&ps->executes, 1) == 0) {
        fake_send_error(c, q->h.stream, 0x2500, "Prepared query with ID PID1 not found",
                        "\x00\x04"
                        "PID1",
                        6);
        return true;
    }
    struct cql_reader r = cql_reader_make(q->values.ptr, q->values.len);
    struct cql_value v;
    int32_t k = -100;
    if (q->n_values == 1 && cql_read_value(&r, &v) == CQL_OK)
        cql_decode_int(v, &k);
    k++;
    fake_send_rows_int(c, q->h.stream, &k, 1);
    return true;
}

static void test_unprepared_reprepare(void **state)
{
    struct prep_state ps = {0};
    struct fake_peer *p =
        start_peer((struct fake_peer_config){.handler = prep_handler, .arg = &ps});
    struct cql_session *s = session_on(p, (struct cql_session_config){0});
    const char *text = "SELECT v FROM ks.t WHERE k = ?";
    const struct cql_prepared_stmt *stmt;
    assert_int_equal(cql_session_prepare_sync(s, text, &stmt, NULL), CQL_OK);
    assert_string_equal(cql_prepared_query(stmt), text);
    assert_int_equal(cql_prepared_params(stmt)->pk_count, 1);
    const struct cql_prepared_stmt *again;
    assert_int_equal(cql_session_prepare_sync(s, text, &again, NULL), CQL_OK);
    assert_ptr_equal(stmt, again); /* cached: no round trip */
    assert_int_equal(fake_peer_count(p, CQL_OP_PREPARE), 1);

    struct cql_buf vals = {0};
    cql_encode_int(&vals, 41);
    struct cql_reply *r;
    int rc = cql_session_execute_sync(s, stmt, (struct cql_slice){vals.data, vals.len},
                                      CQL_CONSISTENCY_DEFAULT, NULL, &r);
    if (rc)
        fprintf(stderr, "execute: %s\n", cql_reply_error_text(r));
    assert_int_equal(rc, CQL_OK);
    assert_int_equal(first_int(r), 42);
    cql_reply_free(r);
    assert_int_equal(fake_peer_count(p, CQL_OP_PREPARE), 2);
    assert_int_equal(fake_peer_count(p, CQL_OP_EXECUTE), 2);
    struct cql_session_stats st;
    cql_session_stats(s, &st);
    assert_int_equal(st.reprepares, 1);
    cql_buf_free(&vals);
    cql_session_free(s);
    fake_peer_stop(p);
}

/* ---- paging and timestamps ----------------------------------------------------------- */

struct page_state {
    int64_t last_ts;
    atomic_uint bad_ts, pages;
};

/* "PAGE" with one bound int and page size 2: rows 1,2 and state "ps1", then
 * row 3 for a request carrying "ps1" (with the same value and size). */
static bool page_handler(struct fake_peer *p, struct fake_conn *c, const struct fake_req *q,
                         void *arg)
{
    struct page_state *ps = arg;
    if (q->h.opcode != CQL_OP_QUERY || !cql_str_eq(q->query, "PAGE"))
        return false;
    if (!(q->flags & CQL_QUERY_DEFAULT_TIMESTAMP) || q->timestamp <= ps->last_ts)
        atomic_fetch_add(&ps->bad_ts, 1);
    ps->last_ts = q->timestamp;
    struct cql_reader r = cql_reader_make(q->values.ptr, q->values.len);
    struct cql_value v;
    int32_t bound = 0;
    if (q->n_values != 1 || cql_read_value(&r, &v) || cql_decode_int(v, &bound) || bound != 5 ||
        q->page_size != 2) {
        fake_send_error(c, q->h.stream, 0x2200, "bad paging request", NULL, 0);
        return true;
    }
    atomic_fetch_add(&ps->pages, 1);
    if (q->paging_state.len < 0) {
        int32_t rows[2] = {1, 2};
        fake_send_rows_page(c, q->h.stream, rows, 2, "ps1");
    } else if (q->paging_state.len == 3 && memcmp(q->paging_state.ptr, "ps1", 3) == 0) {
        int32_t row = 3;
        fake_send_rows_page(c, q->h.stream, &row, 1, NULL);
    } else {
        fake_send_error(c, q->h.stream, 0x2200, "bad paging state", NULL, 0);
    }
    return true;
}

static void test_paging_and_timestamps(void **state)
{
    struct page_state ps = {0};
    struct fake_peer *p =
        start_peer((struct fake_peer_config){.handler = page_handler, .arg = &ps});
    struct cql_session *s = session_on(p, (struct cql_session_config){0});
    struct cql_buf vals = {0};
    cql_encode_int(&vals, 5);
    struct cql_opts o = {.page_size = 2};
    int32_t seen = 0, count = 0;
    struct cql_reply *page;
    int rc = cql_session_query_sync(s, "PAGE", (struct cql_slice){vals.data, vals.len},
                                    CQL_CONSISTENCY_DEFAULT, &o, &page);
    cql_buf_free(&vals); /* the request has its own copy */
    while (rc == CQL_OK) {
        struct cql_row_iter it = cql_rows_iter(cql_reply_rows(page));
        struct cql_value cell;
        while (cql_rows_next(&it, &cell, 1)) {
            int32_t v;
            assert_int_equal(cql_decode_int(cell, &v), CQL_OK);
            assert_int_equal(v, ++seen);
            count++;
        }
        if (!cql_reply_has_more_pages(page))
            break;
        struct cql_reply *next;
        rc = cql_session_next_page_sync(s, page, &next);
        cql_reply_free(page);
        page = next;
    }
    if (rc)
        fprintf(stderr, "paging: %s\n", cql_reply_error_text(page));
    assert_int_equal(rc, CQL_OK);
    assert_false(cql_reply_has_more_pages(page));
    assert_int_equal(cql_session_next_page(s, page, check_value_cb, NULL), CQL_E_INVALID);
    cql_reply_free(page);
    assert_int_equal(count, 3);
    assert_int_equal(atomic_load(&ps.pages), 2);
    assert_int_equal(atomic_load(&ps.bad_ts), 0);
    cql_session_free(s);
    fake_peer_stop(p);
}

/* ---- failures: dropped connections, timeouts ------------------------------------------ */

/* "HOLD" requests are kept; the fifth closes its connection. */
struct drop_state {
    uint32_t held;
};

static bool drop_handler(struct fake_peer *p, struct fake_conn *c, const struct fake_req *q,
                         void *arg)
{
    struct drop_state *ds = arg;
    if (q->h.opcode == CQL_OP_QUERY && cql_str_eq(q->query, "HOLD")) {
        if (++ds->held == 5)
            fake_close(c);
        return true;
    }
    return echo_handler(p, c, q, arg);
}

static void test_dropped_connection_and_reconnect(void **state)
{
    struct drop_state ds = {0};
    struct fake_peer *p =
        start_peer((struct fake_peer_config){.handler = drop_handler, .arg = &ds});
    struct cql_session *s = session_on(p, (struct cql_session_config){0});
    struct cql_future *f[5];
    for (int i = 0; i < 5; i++) {
        struct cql_opts o = {.idempotent = i == 4};
        f[i] = cql_session_query_async(s, "HOLD", no_values, CQL_CONSISTENCY_DEFAULT, &o);
        assert_non_null(f[i]);
    }
    for (int i = 0; i < 5; i++) {
        struct cql_reply *r;
        assert_int_equal(cql_future_get(f[i], &r), CQL_E_CLOSED);
        assert_non_null(strstr(cql_reply_error_text(r), "closed"));
        cql_reply_free(r);
        cql_future_free(f[i]);
    }
    /* the host is down until its pool reconnects (100 ms backoff) */
    uint64_t until = now_ms() + 5000;
    int rc = -1;
    while (rc != CQL_OK && now_ms() < until) {
        struct cql_reply *r;
        rc = cql_session_query_sync(s, "Q 5", no_values, CQL_CONSISTENCY_DEFAULT, NULL, &r);
        if (rc == CQL_OK)
            assert_int_equal(first_int(r), 5);
        cql_reply_free(r);
        if (rc)
            usleep(20000);
    }
    assert_int_equal(rc, CQL_OK);
    assert_int_equal(fake_peer_conns(p), 3); /* control, pool, pool again */
    cql_session_free(s);
    fake_peer_stop(p);
}

/* "SLOW" is answered 600 ms late with 7; "Q <n>" at once. */
struct slow_state {
    struct fake_conn *c;
    int16_t stream;
    uint64_t at;
    atomic_bool answered;
};

static bool slow_handler(struct fake_peer *p, struct fake_conn *c, const struct fake_req *q,
                         void *arg)
{
    struct slow_state *ss = arg;
    if (q->h.opcode == CQL_OP_QUERY && cql_str_eq(q->query, "SLOW")) {
        ss->c = c;
        ss->stream = q->h.stream;
        ss->at = now_ms() + 600;
        return true;
    }
    return echo_handler(p, c, q, arg);
}

static void slow_tick(struct fake_peer *p, void *arg)
{
    struct slow_state *ss = arg;
    if (ss->c && now_ms() >= ss->at) {
        int32_t v = 7;
        fake_send_rows_int(ss->c, ss->stream, &v, 1);
        ss->c = NULL;
        atomic_store(&ss->answered, true);
    }
}

static uint32_t orphans_now(struct cql_session *s)
{
    struct cql_session_stats st;
    cql_session_stats(s, &st);
    return st.orphans;
}

static void wait_orphans(struct cql_session *s, uint32_t want)
{
    uint64_t until = now_ms() + 3000;
    while (orphans_now(s) != want && now_ms() < until)
        usleep(1000);
    assert_int_equal(orphans_now(s), want);
}

static void test_timeout_late_answer_ignored(void **state)
{
    struct slow_state ss = {0};
    struct fake_peer *p = start_peer(
        (struct fake_peer_config){.handler = slow_handler, .tick = slow_tick, .arg = &ss});
    struct cql_session *s = session_on(p, (struct cql_session_config){.request_timeout_ms = 200});
    uint64_t t0 = now_ms();
    struct cql_reply *r;
    assert_int_equal(
        cql_session_query_sync(s, "SLOW", no_values, CQL_CONSISTENCY_DEFAULT, NULL, &r),
        CQL_E_TIMEOUT);
    uint64_t took = now_ms() - t0;
    assert_true(took >= 190 && took < 500);
    assert_non_null(strstr(cql_reply_error_text(r), "timed out"));
    cql_reply_free(r);
    wait_orphans(s, 1);          /* its stream id stays reserved */
    for (int i = 0; i < 50; i++) /* other ids meanwhile, answers matched right */
        assert_int_equal(query_int(s, i % 2 ? "Q 11" : "Q 12"), i % 2 ? 11 : 12);
    while (!atomic_load(&ss.answered))
        usleep(1000);
    wait_orphans(s, 0); /* the late answer freed it and went nowhere */
    assert_int_equal(query_int(s, "Q 13"), 13);
    assert_int_equal(fake_peer_dup_streams(p), 0);
    struct cql_session_stats st;
    cql_session_stats(s, &st);
    assert_int_equal(st.timeouts, 1);
    cql_session_free(s);
    fake_peer_stop(p);
}

/* ---- many streams --------------------------------------------------------------------- */

static void test_2000_concurrent_on_one_connection(void **state)
{
    struct holder h = {.hold_until = 1500};
    h.held = calloc(h.hold_until, sizeof *h.held);
    struct fake_peer *p = start_peer((struct fake_peer_config){.handler = hold_handler, .arg = &h});
    struct cql_session *s = session_on(p, (struct cql_session_config){0});
    struct tally t = {0};
    struct expect *e = submit_numbered(s, &t, 2000);
    wait_done(&t, 2000, 10000);
    assert_int_equal(atomic_load(&t.ok), 2000);
    assert_true(fake_peer_max_outstanding(p) >= 1500);
    assert_int_equal(fake_peer_dup_streams(p), 0);
    cql_session_free(s);
    fake_peer_stop(p);
    free(e);
    free(h.held);
}

/* 40000 requests on one connection: the peer holds answers until 32768 are
 * outstanding, so the rest must wait for ids, and then all succeed. */
static void test_stream_id_exhaustion_waits(void **state)
{
    struct holder h = {.hold_until = 32768, .gated = true};
    h.held = calloc(h.hold_until, sizeof *h.held);
    struct fake_peer *p = start_peer(
        (struct fake_peer_config){.handler = hold_handler, .tick = hold_tick, .arg = &h});
    struct cql_session *s = session_on(p, (struct cql_session_config){.request_timeout_ms = 60000});
    struct tally t = {0};
    struct expect *e = submit_numbered(s, &t, 40000);
    /* every id is taken: the other 7232 wait in the connection, not failed */
    uint64_t until = now_ms() + 20000;
    struct cql_session_stats st = {0};
    while (now_ms() < until) {
        cql_session_stats(s, &st);
        if (atomic_load(&h.full) && st.waiting == 40000 - 32768)
            break;
        usleep(1000);
    }
    assert_true(atomic_load(&h.full));
    assert_int_equal(st.in_flight, 32768);
    assert_int_equal(st.waiting, 40000 - 32768);
    assert_int_equal(atomic_load(&t.done), 0);
    atomic_store(&h.open, true);
    wait_done(&t, 40000, 30000);
    assert_int_equal(atomic_load(&t.ok), 40000);
    assert_int_equal(fake_peer_max_outstanding(p), 32768);
    assert_int_equal(fake_peer_dup_streams(p), 0);
    cql_session_free(s);
    fake_peer_stop(p);
    free(e);
    free(h.held);
}

/* ---- events and shutdown ---------------------------------------------------------------- */

static bool host_up(struct cql_session *s)
{
    struct cql_host_info hi;
    return cql_session_hosts(s, &hi, 1) == 1 && hi.up;
}

static void test_status_events(void **state)
{
    struct fake_peer *p = start_peer((struct fake_peer_config){.handler = echo_handler});
    struct cql_session *s = session_on(p, (struct cql_session_config){.reconnect_base_ms = 5000});
    assert_true(host_up(s));
    fake_peer_push_status(p, "DOWN", "127.0.0.1");
    uint64_t until = now_ms() + 2000;
    while (host_up(s) && now_ms() < until)
        usleep(1000);
    assert_false(host_up(s)); /* and not reconnected before 5 s */
    struct cql_reply *r;
    assert_int_equal(cql_session_query_sync(s, "Q 1", no_values, CQL_CONSISTENCY_DEFAULT, NULL, &r),
                     CQL_E_NO_HOST);
    cql_reply_free(r);
    fake_peer_push_status(p, "UP", "127.0.0.1"); /* reconnects at once */
    until = now_ms() + 2000;
    while (!host_up(s) && now_ms() < until)
        usleep(1000);
    assert_true(host_up(s));
    assert_int_equal(query_int(s, "Q 3"), 3);
    cql_session_free(s);
    fake_peer_stop(p);
}

/* Requests still held by the server when the session is freed complete with
 * an error, callbacks included; nothing leaks (ASan run). */
static void test_free_with_requests_in_flight(void **state)
{
    struct holder h = {.hold_until = 1000000};
    h.held = calloc(100, sizeof *h.held);
    struct fake_peer *p = start_peer((struct fake_peer_config){.handler = hold_handler, .arg = &h});
    struct cql_session *s = session_on(p, (struct cql_session_config){0});
    struct tally t = {0};
    struct expect *e = submit_numbered(s, &t, 100);
    while (fake_peer_count(p, CQL_OP_QUERY) < 102) /* + system.local/peers */
        usleep(1000);
    cql_session_free(s);
    assert_int_equal(atomic_load(&t.done), 100);
    assert_int_equal(atomic_load(&t.bad), 100);
    fake_peer_stop(p);
    free(e);
    free(h.held);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_no_auth),
        cmocka_unit_test(test_handshake_auth),
        cmocka_unit_test(test_handshake_wrong_password),
        cmocka_unit_test(test_bad_config_and_keyspace),
        cmocka_unit_test(test_split_one_byte_writes),
        cmocka_unit_test(test_many_in_one_write_out_of_order),
        cmocka_unit_test(test_unknown_flags_and_warnings),
        cmocka_unit_test(test_every_server_error),
        cmocka_unit_test(test_retry_policy),
        cmocka_unit_test(test_unprepared_reprepare),
        cmocka_unit_test(test_paging_and_timestamps),
        cmocka_unit_test(test_dropped_connection_and_reconnect),
        cmocka_unit_test(test_timeout_late_answer_ignored),
        cmocka_unit_test(test_2000_concurrent_on_one_connection),
        cmocka_unit_test(test_stream_id_exhaustion_waits),
        cmocka_unit_test(test_status_events),
        cmocka_unit_test(test_free_with_requests_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
