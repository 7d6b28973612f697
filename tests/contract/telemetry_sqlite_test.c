/* telemetry_sqlite_test.c — what only the SQLite telemetry store promises,
 * beyond the contract every backend passes (telemetry_contract.c): its
 * commit log beside the database file (one record per batch, applied by a
 * later flush that records the newest batch applied in log_state), the
 * kinds of flush, bounded flushes, schema migrations, and crash images —
 * the database, its WAL and the log copied as kill -9 would leave them —
 * recovered with nothing acknowledged lost or counted twice. These tests
 * read the files with their own handles (sqlite3, the commit log).
 *
 * Each test opens a fresh SQLite file under IOT_TEST_TMPDIR (or /tmp). */
#include <sqlite3.h>

#include "contract/contract_runner.h"
#include "contract/telemetry_helpers.h"
#include "store/commit_log.h"

struct fixture {
    struct iot_telemetry tm;
    char url[1024];
    char path[1000]; /* the database file */
};

static atomic_uint g_seq;

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->path, sizeof fx->path, "%s/telemetry-sqlite-%ld-%u.db", contract_tmpdir(),
             (long)getpid(), atomic_fetch_add(&g_seq, 1));
    snprintf(fx->url, sizeof fx->url, "sqlite://%s", fx->path);
    remove_db_files(fx->path);
    int rc = iot_telemetry_open(fx->url, false, &fx->tm);
    if (rc != IOT_OK) {
        fprintf(stderr, "open %s: %s\n", fx->url, iot_strerror(rc));
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
    remove_db_files(fx->path);
    free(fx);
    return 0;
}

/* ---- reading the files --------------------------------------------------------- */

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int rc = sqlite3_step(st);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_true(rc == SQLITE_ROW || rc == SQLITE_DONE);
    return v;
}

struct unapplied {
    int64_t applied, n;
};

static int count_unapplied(void *ctx, uint64_t segment, uint64_t id, const unsigned char *data,
                           size_t len)
{
    (void)segment;
    (void)data;
    (void)len;
    struct unapplied *u = ctx;
    if ((int64_t)id > u->applied)
        u->n++;
    return IOT_OK;
}

/* Batches in the commit log that no flush has applied yet. */
static int64_t pending_rows(const char *path)
{
    struct unapplied u = {.applied = raw_int(path, "SELECT flushed_upto FROM log_state")};
    char base[1100];
    snprintf(base, sizeof base, "%s-log-", path);
    struct iot_clog *log = NULL;
    assert_rc(iot_clog_open(base, false, 0, &log), IOT_OK);
    assert_rc(iot_clog_replay(log, count_unapplied, &u), IOT_OK);
    iot_clog_close(log);
    return u.n;
}

/* Waits (up to 10 s) for the flusher thread to bring the unapplied batches
 * down to `want`. */
static void wait_pending(const char *path, int64_t want)
{
    for (int i = 0; i < 1000 && pending_rows(path) != want; i++)
        usleep(10000);
    assert_i64(pending_rows(path), want);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        return; /* no WAL: nothing to copy */
    FILE *out = fopen(to, "wb");
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_true(fwrite(buf, 1, n, out) == n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

struct image {
    const char *from, *to;
};

static void copy_segment(const char *seg, void *ctx)
{
    const struct image *im = ctx;
    char to[2300];
    snprintf(to, sizeof to, "%s%s", im->to, seg + strlen(im->from));
    copy_file(seg, to);
}

/* What kill -9 of the process would leave on disk now: the database file,
 * its WAL (the shared-memory index is rebuilt from the WAL on open) and the
 * commit log. The store is idle, so the files are not changing while they
 * are copied. */
static void crash_image(const char *path, const char *to)
{
    char a[1100], b[1100];
    remove_db_files(to);
    copy_file(path, to);
    snprintf(a, sizeof a, "%s-wal", path);
    snprintf(b, sizeof b, "%s-wal", to);
    copy_file(a, b);
    struct image im = {path, to};
    each_log_segment(path, copy_segment, &im);
}

/* The derived views of `dev` are the same in both stores. */
static void assert_same_derived(struct iot_telemetry *a, struct iot_telemetry *b, int64_t dev)
{
    struct latests *la = calloc(1, sizeof *la), *lb = calloc(1, sizeof *lb);
    assert_rc(iot_tm_latest(a, dev, on_latest, la), IOT_OK);
    assert_rc(iot_tm_latest(b, dev, on_latest, lb), IOT_OK);
    assert_i64(lb->n, la->n);
    for (int i = 0; i < la->n; i++) {
        const struct latest_row *x = &la->v[i], *y = &lb->v[i];
        assert_string_equal(y->name, x->name);
        assert_i64(y->type, x->type);
        assert_i64(y->ts, x->ts);
        if (x->type == IOT_TM_STRING)
            assert_string_equal(y->str, x->str);
        else if (x->type == IOT_TM_BOOL)
            assert_i64(y->boolean, x->boolean);
        else
            assert_f64(y->num, x->num);
        assert_i64(y->is_int, x->is_int);
        assert_i64(y->i, x->i);
    }
    free(la);
    free(lb);
    struct catalog *ca = calloc(1, sizeof *ca), *cb = calloc(1, sizeof *cb);
    assert_rc(iot_tm_catalog(a, dev, on_catalog, ca), IOT_OK);
    assert_rc(iot_tm_catalog(b, dev, on_catalog, cb), IOT_OK);
    assert_i64(cb->n, ca->n);
    for (int i = 0; i < ca->n; i++) {
        const struct catalog_row *x = &ca->v[i], *y = &cb->v[i];
        assert_string_equal(y->name, x->name);
        assert_i64(y->type, x->type);
        assert_string_equal(y->unit, x->unit);
        assert_i64(y->first, x->first);
        assert_i64(y->last, x->last);
        assert_i64(y->count, x->count);
        for (int w = 0; w < 2; w++) {
            int64_t width = w ? D : H;
            struct rollups ra = get_rollups(a, dev, x->name, width, INT64_MIN, INT64_MAX);
            struct rollups rb = get_rollups(b, dev, x->name, width, INT64_MIN, INT64_MAX);
            assert_i64(rb.n, ra.n);
            for (int k = 0; k < ra.n; k++) {
                assert_rollup(rb.v[k], ra.v[k].start, ra.v[k].count, ra.v[k].sum, ra.v[k].min,
                              ra.v[k].max);
                assert_i64(rb.v[k].ints, ra.v[k].ints);
                assert_i64(rb.v[k].isum, ra.v[k].isum);
                assert_i64(rb.v[k].isum_exact, ra.v[k].isum_exact);
                assert_i64(rb.v[k].imin, ra.v[k].imin);
                assert_i64(rb.v[k].imax, ra.v[k].imax);
            }
        }
    }
    free(ca);
    free(cb);
    assert_i64(count_device(b, dev), count_device(a, dev));
}

static void assert_same_store(struct iot_telemetry *a, struct iot_telemetry *b, int64_t devs)
{
    for (int64_t dev = 1; dev <= devs; dev++)
        assert_same_derived(a, b, dev);
    struct iot_tm_stats sa = get_stats(a), sb = get_stats(b);
    assert_i64(sb.messages, sa.messages);
    assert_i64(sb.devices, sa.devices);
}

/* The mix of batches of telemetry_helpers.h, its second half still
 * unapplied at the crash (the clock is frozen, nothing reads them). */
static void write_crash_batches(struct fixture *fx)
{
    mixed_batches_first(&fx->tm);
    assert_i64(pending_rows(fx->path), 2);
    assert_i64(get_stats(&fx->tm).messages, 5); /* a read applies both */
    assert_i64(pending_rows(fx->path), 0);
    mixed_batches_second(&fx->tm);
    assert_i64(pending_rows(fx->path), 2);
}

/* A database of schema version 4 (before exact numbers and totals) is
 * migrated at open: integral numbers of its latest values keep printing as
 * integers, reals stay reals, the totals equal what `devices` holds, and old
 * rollup rows (no integer part) merge with new ones as "not all integers". */
static void test_migration_from_v4(void **state)
{
    struct fixture *fx = *state;
    struct tmsg t[3];
    msg_init(&t[0], 1, 1, T0 + 10, 0);
    msg_int(&t[0], "i", 42);
    msg_num(&t[0], "r", 2.5);
    msg_num(&t[0], "w", 3.0);
    msg_done(&t[0]);
    msg_one(&t[1], 1, 1, T0 + 20, 0, "x", 1);
    msg_one(&t[2], 2, 1, T0 + 30, 0, "x", 2);
    write_msgs(&fx->tm, t, 3);
    iot_telemetry_close(&fx->tm);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db,
                          "DROP TRIGGER totals_ins; DROP TRIGGER totals_upd; DROP TRIGGER totals_del;"
                          "DROP TABLE totals; ALTER TABLE latest DROP COLUMN val;"
                          "ALTER TABLE rollups DROP COLUMN ints; ALTER TABLE rollups DROP COLUMN isum;"
                          "ALTER TABLE rollups DROP COLUMN imin; ALTER TABLE rollups DROP COLUMN imax;"
                          "PRAGMA user_version = 4;",
                          NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fail_msg("making a version 4 database: %s", err ? err : "?");
    sqlite3_close(db);
    assert_rc(iot_telemetry_open(fx->url, false, &fx->tm), IOT_OK);
    struct latests ls = {.n = 0};
    assert_rc(iot_tm_latest(&fx->tm, 1, on_latest, &ls), IOT_OK);
    assert_true(find_latest(&ls, "i")->is_int);
    assert_i64(find_latest(&ls, "i")->i, 42);
    assert_true(find_latest(&ls, "w")->is_int); /* integral: printed as 3, as version 4 did */
    assert_false(find_latest(&ls, "r")->is_int);
    assert_f64(find_latest(&ls, "r")->num, 2.5);
    struct iot_tm_stats st = get_stats(&fx->tm);
    assert_i64(st.messages, 3);
    assert_i64(st.devices, 2);
    struct tmsg u;
    msg_init(&u, 1, 1, T0 + 40, 0);
    msg_int(&u, "x", 7);
    msg_done(&u);
    write_msgs(&fx->tm, &u, 1);
    struct rollups r = get_rollups(&fx->tm, 1, "x", H, INT64_MIN, INT64_MAX);
    assert_i64(r.v[0].count, 2);
    assert_i64(r.v[0].ints, 1); /* the old sample has no integer part */
    st = get_stats(&fx->tm);
    assert_i64(st.messages, 4);
    assert_i64(st.devices, 2);
}

/* A crash before the flush: open rebuilds the pending deltas from the
 * messages and the store ends up as if it had never crashed. */
static void test_crash_recovery(void **state)
{
    struct fixture *fx = *state;
    freeze_clock();
    write_crash_batches(fx);
    char crash[1024];
    snprintf(crash, sizeof crash, "%s-crash", fx->path);
    crash_image(fx->path, crash);
    assert_i64(pending_rows(crash), 2);

    struct iot_telemetry rec;
    assert_rc(iot_telemetry_open(crash, false, &rec), IOT_OK);
    assert_i64(pending_rows(crash), 0); /* applied and gone at open */
    assert_same_store(&fx->tm, &rec, 4);
    /* the staged-only batches: every message present, exactly once */
    assert_i64(raw_int(crash, "SELECT count(*) FROM messages"), 11);
    mixed_batches_check(&rec);

    /* the recovered store goes on; a retry of a recovered message adds
     * nothing; at close it flushes, and a second open has nothing to do */
    struct tmsg t[2];
    msg_one(&t[0], 1, 1, T0 + 2 * D, 0, "temp", 30);
    msg_one(&t[1], 3, 2, T0 + 2 * H, 0, "x", 2);
    write_msgs(&rec, t, 2);
    write_msgs(&fx->tm, t, 2);
    assert_same_store(&fx->tm, &rec, 4);
    write_msgs(&rec, t, 1);
    iot_telemetry_close(&rec);
    assert_i64(pending_rows(crash), 0);
    assert_rc(iot_telemetry_open(crash, false, &rec), IOT_OK);
    assert_same_store(&fx->tm, &rec, 4);
    iot_telemetry_close(&rec);
    remove_db_files(crash);
}

/* A staged message that is in `messages` already at recovery (inserted
 * behind the store's back): recovery keeps the stored row, adds nothing of
 * the staged one (only rows it really inserts count), and applies the rest.
 * (Version 2 of the store logged keys of inserted messages instead, and this
 * test deleted one of them.) */
static void test_crash_recovery_missing_message(void **state)
{
    struct fixture *fx = *state;
    freeze_clock();
    write_crash_batches(fx);
    char crash[1024];
    snprintf(crash, sizeof crash, "%s-crash", fx->path);
    crash_image(fx->path, crash);
    char sql[200];
    snprintf(sql, sizeof sql, "INSERT INTO messages (device_id, ts, seq, user_id, data)"
             " VALUES (3, %" PRId64 ", 0, 2, '{}') RETURNING 1", T0 + 2 * H);
    assert_i64(raw_int(crash, sql), 1);
    assert_i64(pending_rows(crash), 2);
    struct iot_telemetry rec;
    assert_rc(iot_telemetry_open(crash, false, &rec), IOT_OK);
    assert_i64(pending_rows(crash), 0);
    assert_same_derived(&fx->tm, &rec, 1);
    assert_same_derived(&fx->tm, &rec, 2);
    assert_same_derived(&fx->tm, &rec, 4);
    assert_i64(get_stats(&rec).messages, 10);
    assert_i64(count_device(&rec, 3), 3); /* the stored one, once */
    struct rollups r = get_rollups(&rec, 3, "x", H, INT64_MIN, INT64_MAX);
    assert_i64(r.n, 2);
    assert_rollup(r.v[1], T0 + 2 * H, 1, -7.25, -7.25, -7.25);
    struct catalog c = {.n = 0};
    assert_rc(iot_tm_catalog(&rec, 3, on_catalog, &c), IOT_OK);
    assert_i64(c.n, 1); /* "y" was only in the deleted message */
    assert_i64(c.v[0].count, 2);
    iot_telemetry_close(&rec);
    remove_db_files(crash);
}

/* A little-endian integer of n bytes at p; returns n. */
static size_t put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return (size_t)n;
}

/* A batch as the store encodes it (telemetry_sqlite_batch.c): one message
 * of device 1 at T0 with one real point "x" = v. */
static size_t one_real_batch(unsigned char *b, double v)
{
    size_t n = put_le(b, 1, 4); /* messages */
    n += put_le(b + n, 1, 8);   /* device_id */
    n += put_le(b + n, 1, 8);   /* user_id */
    n += put_le(b + n, (uint64_t)T0, 8);
    n += put_le(b + n, 0, 8);          /* seq */
    n += put_le(b + n, 7, 4);          /* data_len */
    n += put_le(b + n, UINT32_MAX, 4); /* no metadata */
    n += put_le(b + n, 1, 4);          /* points */
    memcpy(b + n, "{\"x\":1}", 7);
    n += 7;
    b[n++] = 1; /* name length, name, NUL */
    memcpy(b + n, "x", 2);
    n += 2;
    b[n++] = IOT_TM_NUMBER;
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return n + put_le(b + n, u, 8);
}

/* Appends a record holding `batch` to the store's commit log as its batch 1. */
static void log_batch(const char *path, const unsigned char *batch, size_t len)
{
    char base[1100];
    snprintf(base, sizeof base, "%s-log-", path);
    struct iot_clog *log = NULL;
    uint64_t segment = 0;
    assert_rc(iot_clog_open(base, false, 0, &log), IOT_OK);
    assert_rc(iot_clog_append(log, 1, batch, len, &segment), IOT_OK);
    iot_clog_close(log);
}

/* A record whose checksum holds but whose batch carries a number that is
 * not finite (write_batch refuses those) is not applied: the open fails and
 * the log stays. The same record with a finite number is replayed. */
static void test_replay_refuses_non_finite(void **state)
{
    struct fixture *fx = *state;
    iot_telemetry_close(&fx->tm); /* nothing written: log_state says batch 0 */
    unsigned char batch[128];
    log_batch(fx->path, batch, one_real_batch(batch, NAN));
    assert_rc(iot_telemetry_open(fx->url, false, &fx->tm), IOT_EINTERNAL);
    each_log_segment(fx->path, unlink_segment, NULL);
    log_batch(fx->path, batch, one_real_batch(batch, INFINITY));
    assert_rc(iot_telemetry_open(fx->url, false, &fx->tm), IOT_EINTERNAL);
    each_log_segment(fx->path, unlink_segment, NULL);
    log_batch(fx->path, batch, one_real_batch(batch, 2.5));
    assert_rc(iot_telemetry_open(fx->url, false, &fx->tm), IOT_OK);
    assert_i64(count_device(&fx->tm, 1), 1);
    struct latests ls = {.n = 0};
    assert_rc(iot_tm_latest(&fx->tm, 1, on_latest, &ls), IOT_OK);
    assert_i64(ls.n, 1);
    assert_f64(ls.v[0].num, 2.5);
}

/* Each kind of flush applies every pending batch and deletes its row:
 * time, size, every read, deletes, purge, close. */
static void test_pending_flushes(void **state)
{
    struct fixture *fx = *state;
    freeze_clock();
    struct iot_telemetry *tm = &fx->tm;
    const char *path = fx->path;
    write_one(tm, 1, 1, T0, 0, "x", 1);
    write_one(tm, 1, 1, T0 + 1, 0, "x", 2);
    write_one(tm, 1, 1, T0 + 1, 0, "x", 2); /* logged; its flush inserts nothing */
    assert_i64(pending_rows(path), 3);
    write_one(tm, 2, 1, T0 + 2, 0, "x", 3);
    usleep(300000); /* the clock stands still: the flusher waits */
    assert_i64(pending_rows(path), 4);
    atomic_fetch_add(&fake_now, 250); /* now the flusher flushes by itself */
    wait_pending(path, 0);
    assert_i64(raw_int(path, "SELECT sum(messages) FROM devices"), 3);

    int64_t n = 0;
    /* every read flushes, reads of raw messages too (since version 3 of the
     * store the pending log holds messages not yet in `messages`) */
    write_one(tm, 1, 1, T0 + 3, 0, "x", 4);
    assert_i64(pending_rows(path), 1);
    assert_i64(count_device(tm, 1), 3);
    assert_i64(pending_rows(path), 0);
    write_one(tm, 1, 1, T0 + 3, 1, "x", 4);
    struct samples sm = {.n = 0};
    assert_rc(iot_tm_samples(tm, 1, "x", INT64_MIN, INT64_MAX, on_sample, &sm), IOT_OK);
    assert_i64(pending_rows(path), 0);
    write_one(tm, 1, 1, T0 + 3, 2, "x", 4);
    assert_rc(iot_tm_count_user(tm, 1, INT64_MIN, INT64_MAX, &n), IOT_OK);
    assert_i64(pending_rows(path), 0);
    write_one(tm, 1, 1, T0 + 3, 3, "x", 4);
    struct recs qr = {.n = 0};
    struct iot_tm_range ar = all_range(1);
    assert_rc(iot_tm_query_user(tm, 1, &ar, on_record, &qr), IOT_OK);
    free(qr.v);
    assert_i64(pending_rows(path), 0);
    write_one(tm, 1, 1, T0 + 3, 4, "x", 4);
    struct latests ls = {.n = 0};
    assert_rc(iot_tm_latest(tm, 1, on_latest, &ls), IOT_OK);
    assert_i64(pending_rows(path), 0);
    write_one(tm, 1, 1, T0 + 4, 0, "x", 5);
    get_rollups(tm, 9, "x", H, INT64_MIN, INT64_MAX); /* another device: flushes too */
    assert_i64(pending_rows(path), 0);
    write_one(tm, 1, 1, T0 + 5, 0, "x", 6);
    struct catalog c = {.n = 0};
    assert_rc(iot_tm_catalog(tm, 9, on_catalog, &c), IOT_OK);
    assert_i64(pending_rows(path), 0);
    write_one(tm, 1, 1, T0 + 6, 0, "x", 7);
    get_stats(tm);
    assert_i64(pending_rows(path), 0);
    write_one(tm, 1, 1, T0 + 7, 0, "x", 8);
    assert_rc(iot_tm_delete_range(tm, 9, 0, 1, &n), IOT_OK);
    assert_i64(pending_rows(path), 0);
    write_one(tm, 1, 1, T0 + 8, 0, "x", 9);
    assert_rc(iot_tm_delete_device(tm, 9), IOT_OK);
    assert_i64(pending_rows(path), 0);
    write_one(tm, 1, 1, T0 + 9, 0, "x", 10);
    assert_rc(iot_tm_delete_user(tm, 9), IOT_OK);
    assert_i64(pending_rows(path), 0);
    write_one(tm, 1, 1, T0 + 10, 0, "x", 11);
    assert_rc(iot_tm_purge(tm, INT64_MIN, INT64_MIN, &n), IOT_OK);
    assert_i64(pending_rows(path), 0);
    struct rollups r = get_rollups(tm, 1, "x", H, INT64_MIN, INT64_MAX);
    assert_rollup(r.v[0], T0, 14, 79, 1, 11); /* 1, 2, 4 x 5, 5..11 */

    /* more keys than the map keeps (60,000 hour rollups of one batch) */
    write_wide_batch(tm, 5);
    wait_pending(path, 0); /* a batch this big is due at once, clock or not */
    assert_i64(raw_int(path, "SELECT count(*) FROM rollups WHERE device_id = 5 AND width = 3600000"),
               WIDE_MSGS * WIDE_POINTS);

    /* close flushes */
    write_one(tm, 1, 1, T0 + 11, 0, "x", 12);
    assert_i64(pending_rows(path), 1);
    iot_telemetry_close(tm);
    assert_i64(pending_rows(path), 0);
    assert_rc(iot_telemetry_open(fx->url, false, tm), IOT_OK);
    assert_i64(get_rollups(tm, 1, "x", H, INT64_MIN, INT64_MAX).v[0].count, 15);
}

/* The flusher takes whole batches up to a bound (SQLite store: 16384
 * messages + points a transaction) until none is left; nothing is lost or
 * doubled, and the log keeps what is not applied yet. */
static void test_bounded_flush(void **state)
{
    struct fixture *fx = *state;
    freeze_clock();
    struct iot_telemetry *tm = &fx->tm;
    enum { BATCHES = 9, PER = 1000, DEVS = 50 };
    struct small_msg *sm = calloc(PER, sizeof *sm);
    struct iot_tm_message *m = calloc(PER, sizeof *m);
    assert_non_null(sm);
    assert_non_null(m);
    for (int b = 0; b < BATCHES; b++) {
        for (int i = 0; i < PER; i++) {
            int k = b * PER + i;
            small_fill(&sm[i], 1 + k % DEVS, 1, T0 + k, 0, k);
            m[i] = sm[i].m;
        }
        assert_rc(iot_tm_write_batch(tm, m, PER), IOT_OK);
        if (b == 0) /* and its retry: nothing */
            assert_rc(iot_tm_write_batch(tm, m, PER), IOT_OK);
    }
    free(sm);
    free(m);
    /* 18,000 messages + points (and the retry): below the size that makes a
     * flush due */
    assert_i64(pending_rows(fx->path), BATCHES + 1);
    assert_i64(raw_int(fx->path, "SELECT count(*) FROM messages"), 0);
    atomic_fetch_add(&fake_now, 250);
    wait_pending(fx->path, 0);
    assert_i64(raw_int(fx->path, "SELECT count(*) FROM messages"), BATCHES * PER);
    assert_i64(get_stats(tm).messages, BATCHES * PER);
    int64_t total = 0;
    for (int d = 1; d <= DEVS; d++)
        total += count_device(tm, d);
    assert_i64(total, BATCHES * PER);
    struct catalog c = {.n = 0};
    assert_rc(iot_tm_catalog(tm, 1, on_catalog, &c), IOT_OK);
    assert_i64(find_catalog(&c, "temp")->count, BATCHES * PER / DEVS);
}

/* ---- main -------------------------------------------------------------- */

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_migration_from_v4),
        T(test_bounded_flush),
        T(test_crash_recovery),
        T(test_crash_recovery_missing_message),
        T(test_replay_refuses_non_finite),
        T(test_pending_flushes),
    };
    return cmocka_run_group_tests_name("telemetry_sqlite", tests, NULL, NULL) ? 1 : 0;
}
