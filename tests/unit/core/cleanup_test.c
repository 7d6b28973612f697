/* Unit tests of core/cleanup with the real SQLite registry, telemetry and
 * documents stores. Failures are injected by "faulty" telemetry and
 * documents stores that delegate to the real ones and fail the next N
 * removals (SQLite's test_vfs.c pattern): nothing is faked, the data is
 * written, stays while the removals fail, and is really gone afterwards.
 *
 * Most tests drive iot_cleaner_pass with the time they want (an injected
 * wall clock, no sleeping); one runs the cleaner's own thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "test_asserts.h"
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "unit/core/docs_fixture.h"


#define T0 INT64_C(1800000000000) /* the injected "now" of the clocked tests */
#define RETRY_MIN INT64_C(1000)
#define RETRY_MAX INT64_C(8000)

/* ---- the faulty telemetry store ---------------------------------------------- */

/* Delegates to the real store; the next `fail_left` removals fail with
 * IOT_EUNAVAILABLE (as a Cassandra that is down would) without reaching
 * it. The cleaner calls only the two removal slots. */
struct faulty {
    struct iot_telemetry *real;
    atomic_int fail_left;
    atomic_int removals; /* calls, failed or not */
};

static bool take_failure(struct faulty *f)
{
    int left = atomic_load(&f->fail_left);
    while (left > 0 && !atomic_compare_exchange_weak(&f->fail_left, &left, left - 1))
        ;
    return left > 0;
}

static int faulty_delete_device(void *self, int64_t id)
{
    struct faulty *f = self;
    atomic_fetch_add(&f->removals, 1);
    return take_failure(f) ? IOT_EUNAVAILABLE : iot_tm_delete_device(f->real, id);
}

static int faulty_delete_user(void *self, int64_t id)
{
    struct faulty *f = self;
    atomic_fetch_add(&f->removals, 1);
    return take_failure(f) ? IOT_EUNAVAILABLE : iot_tm_delete_user(f->real, id);
}

static const struct iot_telemetry_ops faulty_ops = {
    .name = "faulty", .version = 1,
    .delete_device = faulty_delete_device, .delete_user = faulty_delete_user};

/* The same for the documents store: the cleaner calls only delete_where. */
struct faulty_docs {
    struct iot_docs *real;
    atomic_int fail_left;
    atomic_int removals;
};

static int faulty_delete_where(void *self, enum iot_docs_coll coll,
                               const struct iot_docs_filter *flt, int64_t *deleted)
{
    struct faulty_docs *f = self;
    atomic_fetch_add(&f->removals, 1);
    int left = atomic_load(&f->fail_left);
    while (left > 0 && !atomic_compare_exchange_weak(&f->fail_left, &left, left - 1))
        ;
    return left > 0 ? IOT_EUNAVAILABLE : iot_docs_delete_where(f->real, coll, flt, deleted);
}

static const struct iot_docs_ops faulty_docs_ops = {
    .name = "faulty", .version = 1, .delete_where = faulty_delete_where};

/* ---- fixture ------------------------------------------------------------------- */

struct fx {
    char dir[FX_DIR_MAX];
    struct iot_registry reg;
    struct iot_telemetry tm;
    struct faulty faulty;
    struct iot_telemetry faulty_tm; /* what the cleaner gets */
    struct iot_docs docs;
    struct faulty_docs faulty_docs;
    struct iot_docs faulty_docs_store; /* what the cleaner gets */
    struct iot_cleaner *cleaner;
};

static _Atomic int64_t fake_now;
static int64_t fake_clock(void) { return atomic_load(&fake_now); }

static void set_now(int64_t now) { atomic_store(&fake_now, now); }

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f || fx_dir_make(f->dir, "cleanup-test"))
        return -1;
    char url[FX_URL_MAX];
    fx_store_url(url, f->dir, "registry.db");
    if (iot_registry_open(url, &f->reg))
        return -1;
    fx_store_url(url, f->dir, "telemetry.db");
    if (iot_telemetry_open(url, false, &f->tm))
        return -1;
    f->faulty.real = &f->tm;
    f->faulty_tm = (struct iot_telemetry){.ops = &faulty_ops, .self = &f->faulty};
    fx_store_url(url, f->dir, "documents.db");
    if (iot_docs_open(url, &f->docs))
        return -1;
    f->faulty_docs.real = &f->docs;
    f->faulty_docs_store = (struct iot_docs){.ops = &faulty_docs_ops, .self = &f->faulty_docs};
    struct iot_cleaner_config cfg = {.poll_ms = 20, .retry_min_ms = RETRY_MIN,
                                     .retry_max_ms = RETRY_MAX};
    f->cleaner = iot_cleaner_new(&cfg, &f->reg, &f->faulty_tm, &f->faulty_docs_store);
    if (!f->cleaner)
        return -1;
    set_now(T0);
    iot_clock_override(fake_clock);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    iot_cleaner_free(f->cleaner);
    iot_clock_override(NULL);
    iot_docs_close(&f->docs);
    iot_telemetry_close(&f->tm);
    iot_registry_close(&f->reg);
    fx_dir_remove(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------- */

static int64_t mk_user(struct fx *f, const char *name)
{
    struct iot_user u = {.is_active = true};
    snprintf(u.username, sizeof u.username, "%s", name);
    snprintf(u.email, sizeof u.email, "%s@example.com", name);
    snprintf(u.password_hash, sizeof u.password_hash, "hash");
    assert_rc(iot_reg_user_create(&f->reg, &u), IOT_OK);
    return u.id;
}

static int64_t mk_device(struct fx *f, int64_t owner, const char *name)
{
    static atomic_uint key_seq;
    struct iot_device d = {.user_id = owner};
    snprintf(d.name, sizeof d.name, "%s", name);
    snprintf(d.api_key_hash, sizeof d.api_key_hash, "%064x", atomic_fetch_add(&key_seq, 1) + 1);
    assert_rc(iot_reg_device_create(&f->reg, &d), IOT_OK);
    return d.id;
}

/* `n` messages {"x": i} of one device, a minute apart before T0. */
static void write_telemetry(struct fx *f, int64_t dev, int64_t owner, int n)
{
    struct iot_tm_message msgs[16];
    struct iot_tm_point points[16];
    char json[16][32];
    assert_true(n <= 16);
    for (int i = 0; i < n; i++) {
        points[i] = (struct iot_tm_point){"x", {.type = IOT_TM_NUMBER, .num = i, .is_int = true,
                                                .i = i}};
        snprintf(json[i], sizeof json[i], "{\"x\":%d}", i);
        msgs[i] = (struct iot_tm_message){.device_id = dev, .user_id = owner,
                                          .ts = T0 - (i + 1) * 60000, .seq = 0,
                                          .points = &points[i], .n_points = 1,
                                          .data_json = json[i], .data_len = strlen(json[i])};
    }
    assert_rc(iot_tm_write_batch(&f->tm, msgs, (size_t)n), IOT_OK);
}

static int count_record(void *ctx, const struct iot_tm_record *rec)
{
    (void)rec;
    ++*(int64_t *)ctx;
    return 0;
}

static int count_latest(void *ctx, const struct iot_tm_latest *l)
{
    (void)l;
    ++*(int64_t *)ctx;
    return 0;
}

static int count_catalog(void *ctx, const struct iot_tm_catalog_entry *e)
{
    (void)e;
    ++*(int64_t *)ctx;
    return 0;
}

/* What the real store holds of a device: messages + latest + catalog rows. */
static int64_t stored(struct fx *f, int64_t dev)
{
    struct iot_tm_range all = {.from = INT64_MIN, .to = INT64_MAX, .limit = 1000,
                               .before_ts = INT64_MAX, .before_seq = INT64_MAX};
    int64_t n = 0;
    assert_rc(iot_tm_query_device(&f->tm, dev, &all, count_record, &n), IOT_OK);
    assert_rc(iot_tm_latest(&f->tm, dev, count_latest, &n), IOT_OK);
    assert_rc(iot_tm_catalog(&f->tm, dev, count_catalog, &n), IOT_OK);
    return n;
}

/* One document of `coll` for the device (0: none) of user `owner`. */
static void put_doc(struct fx *f, enum iot_docs_coll coll, const char *id, int64_t owner,
                    int64_t dev)
{
    struct iot_doc doc = {.id = id, .user_id = owner, .device_id = dev, .ts_ms = T0,
                          .k1 = id, /* a rule's name, unique per user */
                          .body = "{}", .body_len = 2};
    assert_rc(iot_docs_put(&f->docs, coll, &doc, IOT_DOCS_ANY_REV, NULL), IOT_OK);
}

static int add_count(void *ctx, const char *k1, const char *k2, int64_t count)
{
    (void)k1;
    (void)k2;
    *(int64_t *)ctx += count;
    return 0;
}

/* Documents of `coll` with that user (0: any) and device (0: any). */
static int64_t docs_of(struct fx *f, enum iot_docs_coll coll, int64_t owner, int64_t dev)
{
    struct iot_docs_filter flt = {.user_id = owner, .device_id = dev};
    int64_t n = 0;
    assert_rc(iot_docs_count_by(&f->docs, coll, &flt, IOT_DOCS_GROUP_NONE, add_count, &n), IOT_OK);
    return n;
}

/* A device's documents in every collection but the event log, and a
 * user's in all of them. */
static void put_documents(struct fx *f, int64_t owner, int64_t dev, const char *tag)
{
    char id[64];
    for (int coll = 0; coll < IOT_DOCS_N_COLLS; coll++) {
        snprintf(id, sizeof id, "%s-%d-dev", tag, coll);
        put_doc(f, (enum iot_docs_coll)coll, id, owner, dev);
        snprintf(id, sizeof id, "%s-%d-user", tag, coll);
        put_doc(f, (enum iot_docs_coll)coll, id, owner, 0);
    }
}

static int64_t all_docs(struct fx *f, int64_t owner, int64_t dev)
{
    int64_t n = 0;
    for (int coll = 0; coll < IOT_DOCS_N_COLLS; coll++)
        n += docs_of(f, (enum iot_docs_coll)coll, owner, dev);
    return n;
}

struct pending {
    struct iot_pending_cleanup v[IOT_CLEANUP_PAGE_MAX];
    size_t n;
};

static void list_pending(struct fx *f, struct pending *p)
{
    assert_rc(iot_reg_cleanup_list(&f->reg, INT64_MAX, p->v, IOT_CLEANUP_PAGE_MAX, &p->n), IOT_OK);
}

static struct iot_cleaner_pass pass_at(struct fx *f, int64_t now)
{
    struct iot_cleaner_pass p;
    assert_rc(iot_cleaner_pass(f->cleaner, now, &p), IOT_OK);
    return p;
}

static void assert_pass(struct iot_cleaner_pass p, size_t attempted, size_t done, size_t failed)
{
    assert_i64(p.attempted, attempted);
    assert_i64(p.done, done);
    assert_i64(p.failed, failed);
}

/* ---- tests ------------------------------------------------------------------------ */

/* The common case: the deleting request removes the telemetry at once and
 * nothing stays pending. */
static void test_removed_at_once(void **state)
{
    struct fx *f = *state;
    int64_t u = mk_user(f, "ann");
    int64_t d = mk_device(f, u, "d");
    write_telemetry(f, d, u, 5);
    assert_i64(stored(f, d), 5 + 1 + 1);
    assert_rc(iot_reg_device_delete(&f->reg, d), IOT_OK);
    assert_rc(iot_cleaner_after_delete(f->cleaner, IOT_CLEANUP_DEVICE, d), IOT_OK);
    assert_i64(stored(f, d), 0);
    struct pending p;
    list_pending(f, &p);
    assert_i64(p.n, 0);
}

/* The store fails the removal at delete time and on the first retry: the
 * row stays with its attempts and error, the data stays, nothing is tried
 * before the row is due; the retry after the backoff removes the data and
 * the row. The device's neighbour keeps its data. */
static void test_retried_until_the_store_succeeds(void **state)
{
    struct fx *f = *state;
    int64_t u = mk_user(f, "bob");
    int64_t doomed = mk_device(f, u, "doomed"), kept = mk_device(f, u, "kept");
    write_telemetry(f, doomed, u, 4);
    write_telemetry(f, kept, u, 3);
    atomic_store(&f->faulty.fail_left, 2);

    assert_rc(iot_reg_device_delete(&f->reg, doomed), IOT_OK);
    assert_rc(iot_cleaner_after_delete(f->cleaner, IOT_CLEANUP_DEVICE, doomed), IOT_EUNAVAILABLE);
    struct pending p;
    list_pending(f, &p);
    assert_i64(p.n, 1);
    assert_i64(p.v[0].kind, IOT_CLEANUP_DEVICE);
    assert_i64(p.v[0].target_id, doomed);
    assert_i64(p.v[0].attempts, 1);
    assert_i64(p.v[0].next_at, T0 + RETRY_MIN);
    assert_string_equal(p.v[0].last_error, "unavailable");
    assert_i64(stored(f, doomed), 4 + 1 + 1); /* still there: nothing faked */

    assert_pass(pass_at(f, T0 + RETRY_MIN - 1), 0, 0, 0); /* not due */
    assert_i64(atomic_load(&f->faulty.removals), 1);
    assert_pass(pass_at(f, T0 + RETRY_MIN), 1, 0, 1); /* due, fails again */
    list_pending(f, &p);
    assert_i64(p.n, 1);
    assert_i64(p.v[0].attempts, 2);
    assert_i64(p.v[0].next_at, T0 + RETRY_MIN + 2 * RETRY_MIN); /* doubled */
    assert_i64(stored(f, doomed), 4 + 1 + 1);

    assert_pass(pass_at(f, T0 + 3 * RETRY_MIN), 1, 1, 0);
    list_pending(f, &p);
    assert_i64(p.n, 0);
    assert_i64(stored(f, doomed), 0);
    assert_i64(stored(f, kept), 3 + 1 + 1);
    assert_i64(atomic_load(&f->faulty.removals), 3);
    assert_pass(pass_at(f, INT64_MAX), 0, 0, 0); /* nothing left */
}

/* A user's one row covers every device of theirs. */
static void test_user_retried(void **state)
{
    struct fx *f = *state;
    int64_t u = mk_user(f, "cat"), other = mk_user(f, "dan");
    int64_t d1 = mk_device(f, u, "d1"), d2 = mk_device(f, u, "d2"), theirs = mk_device(f, other, "t");
    write_telemetry(f, d1, u, 2);
    write_telemetry(f, d2, u, 3);
    write_telemetry(f, theirs, other, 1);
    atomic_store(&f->faulty.fail_left, 1);
    assert_rc(iot_reg_user_delete(&f->reg, u), IOT_OK);
    assert_rc(iot_cleaner_after_delete(f->cleaner, IOT_CLEANUP_USER, u), IOT_EUNAVAILABLE);
    int64_t count = -1;
    assert_rc(iot_tm_count_user(&f->tm, u, INT64_MIN, INT64_MAX, &count), IOT_OK);
    assert_i64(count, 5);
    assert_pass(pass_at(f, T0 + RETRY_MIN), 1, 1, 0);
    assert_rc(iot_tm_count_user(&f->tm, u, INT64_MIN, INT64_MAX, &count), IOT_OK);
    assert_i64(count, 0);
    assert_i64(stored(f, d1) + stored(f, d2), 0);
    assert_i64(stored(f, theirs), 1 + 1 + 1);
    struct pending p;
    list_pending(f, &p);
    assert_i64(p.n, 0);
}

/* The process died between the registry delete and the removal: the row
 * is taken up once its grace is over. */
static void test_crash_before_the_attempt(void **state)
{
    struct fx *f = *state;
    int64_t u = mk_user(f, "eve");
    int64_t d = mk_device(f, u, "d");
    write_telemetry(f, d, u, 3);
    assert_rc(iot_reg_device_delete(&f->reg, d), IOT_OK); /* and no after_delete */
    assert_pass(pass_at(f, T0 + IOT_CLEANUP_GRACE_MS - 1), 0, 0, 0);
    assert_i64(stored(f, d), 3 + 1 + 1);
    assert_pass(pass_at(f, T0 + IOT_CLEANUP_GRACE_MS), 1, 1, 0);
    assert_i64(stored(f, d), 0);
}

/* One failure ends a pass (the store is down: the other rows wait rather
 * than each costing a failed attempt), and the waits double up to the cap. */
static void test_failure_ends_the_pass_and_backoff_is_capped(void **state)
{
    struct fx *f = *state;
    int64_t u = mk_user(f, "fred");
    int64_t ids[3];
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "d%d", i);
        ids[i] = mk_device(f, u, name);
        write_telemetry(f, ids[i], u, 2);
        assert_rc(iot_reg_device_delete(&f->reg, ids[i]), IOT_OK);
    }
    atomic_store(&f->faulty.fail_left, 1000);
    int64_t now = T0 + IOT_CLEANUP_GRACE_MS;
    assert_pass(pass_at(f, now), 1, 0, 1);
    struct pending p;
    list_pending(f, &p);
    assert_i64(p.n, 3);
    assert_i64(p.v[0].attempts + p.v[1].attempts + p.v[2].attempts, 1);

    for (int64_t k = 1; k <= 8; k++)
        assert_i64(iot_cleaner_retry_delay(f->cleaner, k),
                   k == 1 ? 1000 : k == 2 ? 2000 : k == 3 ? 4000 : 8000);
    /* each pass, the row due first fails once more */
    for (int i = 0; i < 12; i++) {
        now += RETRY_MAX;
        assert_pass(pass_at(f, now), 1, 0, 1);
    }
    list_pending(f, &p);
    int64_t attempts = 0;
    for (size_t i = 0; i < p.n; i++) {
        attempts += p.v[i].attempts;
        assert_true(p.v[i].next_at <= now + RETRY_MAX);
    }
    assert_i64(attempts, 13);
    atomic_store(&f->faulty.fail_left, 0);
    assert_pass(pass_at(f, now + RETRY_MAX), 3, 3, 0);
    for (int i = 0; i < 3; i++)
        assert_i64(stored(f, ids[i]), 0);
}

/* stderr of `fn(f)`, as a heap string. */
static char *capture_stderr(void (*fn)(struct fx *), struct fx *f)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    fn(f);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    long n = ftell(tmp);
    char *text = calloc((size_t)n + 1, 1);
    rewind(tmp);
    if (fread(text, 1, (size_t)n, tmp) != (size_t)n)
        text[0] = '\0';
    fclose(tmp);
    fputs(text, stderr);
    return text;
}

static int count_lines(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* Ten deletes while the store is down, then passes: one warning; the
 * recovery: one line. */
static void failing_then_recovering(struct fx *f)
{
    int64_t u = mk_user(f, "gus");
    atomic_store(&f->faulty.fail_left, 1000);
    for (int i = 0; i < 10; i++) {
        char name[8];
        snprintf(name, sizeof name, "d%d", i);
        int64_t d = mk_device(f, u, name);
        assert_rc(iot_reg_device_delete(&f->reg, d), IOT_OK);
        assert_rc(iot_cleaner_after_delete(f->cleaner, IOT_CLEANUP_DEVICE, d), IOT_EUNAVAILABLE);
    }
    for (int i = 1; i <= 5; i++)
        pass_at(f, T0 + i * RETRY_MAX);
    atomic_store(&f->faulty.fail_left, 0);
    assert_pass(pass_at(f, T0 + 10 * RETRY_MAX), 10, 10, 0);
}

static void test_logs_once_per_outage(void **state)
{
    struct fx *f = *state;
    iot_log_set_level(IOT_LOG_INFO);
    char *log = capture_stderr(failing_then_recovering, f);
    int warned = count_lines(log, " not removed: unavailable");
    int recovered = count_lines(
        log, "clean-ups of deleted devices and users succeed again (after 15 failed attempts)");
    free(log);
    assert_i64(warned, 1);
    assert_i64(recovered, 1);
}

/* Two instances' cleaners working on the same rows at the same time: every
 * row is done once, none counts as failed, the data is gone. */
struct runner {
    struct iot_cleaner *c;
    struct iot_cleaner_pass total;
    int rc;
};

static void *runner_main(void *arg)
{
    struct runner *r = arg;
    for (;;) {
        struct iot_cleaner_pass p;
        r->rc = iot_cleaner_pass(r->c, INT64_MAX, &p);
        r->total.attempted += p.attempted;
        r->total.done += p.done;
        r->total.failed += p.failed;
        if (r->rc || p.attempted == 0)
            return NULL;
    }
}

static void test_two_cleaners_at_once(void **state)
{
    struct fx *f = *state;
    enum { N = 40 };
    int64_t u = mk_user(f, "hal");
    int64_t ids[N];
    for (int i = 0; i < N; i++) {
        char name[8];
        snprintf(name, sizeof name, "d%d", i);
        ids[i] = mk_device(f, u, name);
        write_telemetry(f, ids[i], u, 2);
        assert_rc(iot_reg_device_delete(&f->reg, ids[i]), IOT_OK);
    }
    struct iot_cleaner_config cfg = {.retry_min_ms = RETRY_MIN, .retry_max_ms = RETRY_MAX};
    struct runner r[2] = {{.c = f->cleaner},
                          {.c = iot_cleaner_new(&cfg, &f->reg, &f->tm, &f->docs)}};
    assert_non_null(r[1].c);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, runner_main, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    iot_cleaner_free(r[1].c);
    for (int i = 0; i < 2; i++) {
        assert_rc(r[i].rc, IOT_OK);
        assert_i64(r[i].total.failed, 0);
    }
    assert_true(r[0].total.done + r[1].total.done >= N);
    struct pending p;
    list_pending(f, &p);
    assert_i64(p.n, 0);
    for (int i = 0; i < N; i++)
        assert_i64(stored(f, ids[i]), 0);
}

/* The cleaner's own thread, on the real clock: a removal that failed at
 * delete time is retried without anyone calling a pass. */
static void test_thread_retries(void **state)
{
    struct fx *f = *state;
    iot_clock_override(NULL);
    int64_t u = mk_user(f, "ida");
    int64_t d = mk_device(f, u, "d");
    write_telemetry(f, d, u, 3);
    atomic_store(&f->faulty.fail_left, 1);
    assert_rc(iot_cleaner_start(f->cleaner), IOT_OK);
    assert_rc(iot_reg_device_delete(&f->reg, d), IOT_OK);
    assert_rc(iot_cleaner_after_delete(f->cleaner, IOT_CLEANUP_DEVICE, d), IOT_EUNAVAILABLE);
    struct pending p;
    int64_t deadline = iot_mono_us() + 10 * 1000000;
    do {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000000};
        nanosleep(&ts, NULL);
        list_pending(f, &p);
    } while (p.n > 0 && iot_mono_us() < deadline);
    iot_cleaner_stop(f->cleaner);
    assert_i64(p.n, 0);
    assert_i64(stored(f, d), 0);
    assert_i64(atomic_load(&f->faulty.removals), 2);
}

/* A device's documents go with it, in every collection but the event log
 * (the owner keeps the audit trail); its owner's and its neighbour's stay.
 * The owner's deletion then takes every document of theirs, events too. */
static void test_documents_removed(void **state)
{
    struct fx *f = *state;
    int64_t u = mk_user(f, "jo"), other = mk_user(f, "kim");
    int64_t doomed = mk_device(f, u, "doomed"), kept = mk_device(f, u, "kept");
    int64_t theirs = mk_device(f, other, "theirs");
    put_documents(f, u, doomed, "a");
    put_documents(f, u, kept, "b");
    put_documents(f, other, theirs, "c");
    assert_rc(iot_reg_device_delete(&f->reg, doomed), IOT_OK);
    assert_rc(iot_cleaner_after_delete(f->cleaner, IOT_CLEANUP_DEVICE, doomed), IOT_OK);
    assert_i64(all_docs(f, 0, doomed), 1);
    assert_i64(docs_of(f, IOT_DOCS_EVENTS, 0, doomed), 1);
    assert_i64(all_docs(f, 0, kept), IOT_DOCS_N_COLLS);
    assert_i64(all_docs(f, u, 0), 1 + 3 * IOT_DOCS_N_COLLS); /* the event, kept's, the user's */

    assert_rc(iot_reg_user_delete(&f->reg, u), IOT_OK);
    assert_rc(iot_cleaner_after_delete(f->cleaner, IOT_CLEANUP_USER, u), IOT_OK);
    assert_i64(all_docs(f, u, 0), 0);
    assert_i64(all_docs(f, other, 0), 2 * IOT_DOCS_N_COLLS);
    struct pending p;
    list_pending(f, &p);
    assert_i64(p.n, 0);
}

/* The documents store fails after the telemetry went: the row stays
 * pending until both stores are done; the retry repeats the (idempotent)
 * telemetry removal and finishes the documents. */
static void test_documents_failure_keeps_the_row(void **state)
{
    struct fx *f = *state;
    int64_t u = mk_user(f, "lee");
    int64_t d = mk_device(f, u, "d");
    write_telemetry(f, d, u, 3);
    put_documents(f, u, d, "x");
    atomic_store(&f->faulty_docs.fail_left, 1);
    assert_rc(iot_reg_device_delete(&f->reg, d), IOT_OK);
    assert_rc(iot_cleaner_after_delete(f->cleaner, IOT_CLEANUP_DEVICE, d), IOT_EUNAVAILABLE);
    struct pending p;
    list_pending(f, &p);
    assert_i64(p.n, 1);
    assert_i64(p.v[0].attempts, 1);
    assert_i64(stored(f, d), 0);
    assert_i64(all_docs(f, 0, d), IOT_DOCS_N_COLLS);

    assert_pass(pass_at(f, T0 + RETRY_MIN), 1, 1, 0);
    list_pending(f, &p);
    assert_i64(p.n, 0);
    assert_i64(all_docs(f, 0, d), 1); /* its event */
    assert_i64(all_docs(f, u, 0), 1 + IOT_DOCS_N_COLLS);
}

int main(void)
{
    iot_log_set_level(IOT_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_removed_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retried_until_the_store_succeeds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_before_the_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_ends_the_pass_and_backoff_is_capped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_logs_once_per_outage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_cleaners_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_documents_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_documents_failure_keeps_the_row, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
