/* copy_telemetry_itest.c — `iotflowd copy-telemetry` end to end: the real
 * binary (IOTFLOWD names it) copies a real SQLite store, filled through the
 * submission parser with several devices and users (integers, reals,
 * booleans, strings, metadata, units), and every message, per-user view,
 * latest value, rollup, catalog entry and the totals must then be equal in
 * both stores. A copy stopped at a known batch (--max-batches), killed with
 * SIGKILL and stopped with SIGTERM resumes from its state file to the same
 * end: nothing lost, nothing twice. Errors name the problem and never print
 * a password.
 *
 * The destination is a fresh SQLite file, and again the store named by
 * IOT_COPY_TEST_TO (e.g. a Cassandra URL) when that is set: it must be
 * empty, or hold only what an earlier run of this test left (the devices
 * this test uses are deleted from it first). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "test_asserts.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "contract/contract_runner.h"
#include "core/secrets.h"
#include "core/tm_message.h"
#include "store/telemetry.h"
#include "util/clock.h"
#include "util/err.h"

#define HOUR_MS INT64_C(3600000)


static const char *g_bin;      /* the iotflowd under test */
static char g_dir[1024];       /* this run's scratch directory */
static const char *g_extra_to; /* IOT_COPY_TEST_TO, or NULL */

/* One scenario's source: devices first_dev.., users first_user.. */
struct source {
    int64_t first_dev, n_devs, per_dev, first_user, n_users;
    char url[1200];
};

static int64_t user_of(const struct source *s, int64_t dev)
{
    return s->first_user + (dev - s->first_dev) % s->n_users;
}

/* ---- filling the source through the submission parser ------------------------ */

/* Message i of device d: the numbers, strings and metadata vary with i;
 * every fifth shares its predecessor's timestamp; a unit is always the same
 * for a (device, measurement), so its last writer does not matter. */
static json_t *message_json(int64_t d, int64_t i, int64_t base)
{
    int64_t ts = base + (i - (i % 5 == 4)) * 7 * 60 * 1000;
    char when[IOT_ISO8601_LEN + 1];
    iot_iso8601(ts, when, sizeof when);
    json_t *data = json_pack("{s:f, s:I, s:b}", "temp", 20.01 + (double)d + (double)(i % 50) * 0.25,
                             "count", (json_int_t)(i * 1000 + d), "on", (int)(i % 2 == 0));
    json_object_set_new(data, "mode", json_string(i % 3 ? "eco" : "caf\xc3\xa9 \"x\" \\ \t"));
    if (i % 10 == 0)
        json_object_set_new(data, "big", json_integer(INT64_C(9007199254740993) + i));
    if (i % 7 == 0)
        json_object_set_new(data, "rpm", json_integer(-5 - i));
    if (i % 11 == 0)
        json_object_set_new(data, "z", json_real(-0.0));
    json_t *msg = json_pack("{s:o, s:s}", "data", data, "timestamp", when);
    if (i % 4 == 0)
        json_object_set_new(msg, "metadata",
                            json_pack("{s:s, s:s}", "temp_unit", "C", "site", "lab \"A\" \xe2\x9c\x93"));
    else if (i % 4 == 1)
        json_object_set_new(msg, "metadata", json_pack("{s:s}", "count_unit", "pcs"));
    return msg;
}

static void fill_source(struct source *s)
{
    static int filled; /* a file per fill: the extra pass must not add to the first's */
    snprintf(s->url, sizeof s->url, "sqlite://%s/src-%" PRId64 "-%d.db", g_dir, s->first_dev,
             filled++);
    struct iot_telemetry tm;
    assert_int_equal(iot_telemetry_open(s->url, false, &tm), IOT_OK);
    int64_t now = iot_now_ms();
    int64_t base = (now - 5 * 24 * HOUR_MS) / HOUR_MS * HOUR_MS;
    for (int64_t d = s->first_dev; d < s->first_dev + s->n_devs; d++) {
        for (int64_t from = 0; from < s->per_dev; from += IOT_TM_BATCH_MAX) {
            json_t *arr = json_array();
            for (int64_t i = from; i < s->per_dev && i < from + IOT_TM_BATCH_MAX; i++)
                json_array_append_new(arr, message_json(d, i, base));
            struct iot_tm_parsed p;
            char err[256] = "";
            int rc = iot_tm_parse_batch(arr, d, user_of(s, d), now, &p, err, sizeof err);
            if (rc)
                fail_msg("parse: %s", err);
            assert_int_equal(iot_tm_write_batch(&tm, p.msgs, p.n), IOT_OK);
            iot_tm_parsed_free(&p);
            json_decref(arr);
        }
    }
    struct iot_tm_stats st;
    assert_int_equal(iot_tm_stats(&tm, &st), IOT_OK);
    assert_i64(st.messages, s->n_devs * s->per_dev);
    iot_telemetry_close(&tm);
}

/* ---- running the binary --------------------------------------------------------- */

/* Starts `iotflowd copy-telemetry <args...>` in g_dir, its stderr into
 * `log` (appended). */
static pid_t start_copy(const char *log, const char *const *args)
{
    const char *argv[16] = {g_bin, "copy-telemetry"};
    int n = 2;
    for (; args[n - 2] && n < 15; n++)
        argv[n] = args[n - 2];
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0 || dup2(fd, 2) < 0 || chdir(g_dir) != 0)
            _exit(99);
        execv(g_bin, (char *const *)argv);
        _exit(98);
    }
    return pid;
}

/* The exit status, or 128 + the signal that ended it. */
static int wait_copy(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run_copy(const char *log, const char *const *args)
{
    return wait_copy(start_copy(log, args));
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static void assert_log_has(const char *log, const char *want)
{
    char *text = slurp(log);
    if (!strstr(text, want))
        fail_msg("%s lacks \"%s\"; it holds:\n%s", log, want, text);
    free(text);
}

/* The state file's "copied=" count (-1 while there is none). */
static int64_t state_copied(const char *path)
{
    char *text = slurp(path);
    const char *p = strstr(text, "\ncopied=");
    int64_t n = p ? strtoll(p + 8, NULL, 10) : -1;
    free(text);
    return n;
}

/* Polls until the state file records more than `beyond` messages or the
 * copy ended; true if it is still running. */
static bool wait_progress(pid_t pid, const char *state, int64_t beyond)
{
    int64_t deadline = iot_mono_us() + INT64_C(120) * 1000000;
    while (iot_mono_us() < deadline) {
        if (state_copied(state) > beyond)
            return true;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fail_msg("the copy ended (status %d) before it passed %" PRId64 " messages", status,
                     beyond);
        }
        struct timespec ms = {0, 2 * 1000 * 1000};
        nanosleep(&ms, NULL);
    }
    fail_msg("no progress past %" PRId64 " messages in 120 s", beyond);
    return false;
}

/* ---- comparing two stores -------------------------------------------------------- */

struct row {
    int64_t dev, ts, seq;
    char *data, *meta; /* meta NULL when the message had none */
};

struct rows {
    struct row *v;
    size_t n, cap;
};

static int on_row(void *ctx, const struct iot_tm_record *r)
{
    struct rows *rs = ctx;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? 2 * rs->cap : 256;
        rs->v = realloc(rs->v, rs->cap * sizeof *rs->v);
        assert_non_null(rs->v);
    }
    rs->v[rs->n++] = (struct row){.dev = r->device_id, .ts = r->ts, .seq = r->seq,
                                  .data = strndup(r->data_json, r->data_len),
                                  .meta = r->meta_json ? strndup(r->meta_json, r->meta_len) : NULL};
    return 0;
}

static void rows_free(struct rows *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        free(rs->v[i].data);
        free(rs->v[i].meta);
    }
    free(rs->v);
}

static const struct iot_tm_range everything = {.from = INT64_MIN, .to = INT64_MAX,
                                               .limit = INT64_MAX, .before_ts = INT64_MAX,
                                               .before_seq = INT64_MAX};

static void same_rows(const char *what, int64_t id, struct rows *a, struct rows *b)
{
    if (a->n != b->n)
        fail_msg("%s %" PRId64 ": %zu messages in the source, %zu in the copy", what, id, a->n,
                 b->n);
    for (size_t i = 0; i < a->n; i++) {
        const struct row *x = &a->v[i], *y = &b->v[i];
        if (x->dev != y->dev || x->ts != y->ts || x->seq != y->seq || strcmp(x->data, y->data) ||
            !x->meta != !y->meta || (x->meta && strcmp(x->meta, y->meta)))
            fail_msg("%s %" PRId64 ", message %zu: (%" PRId64 ", %" PRId64 ", %" PRId64 ") %s %s"
                     " vs (%" PRId64 ", %" PRId64 ", %" PRId64 ") %s %s", what, id, i, x->dev,
                     x->ts, x->seq, x->data, x->meta ? x->meta : "NULL", y->dev, y->ts, y->seq,
                     y->data, y->meta ? y->meta : "NULL");
    }
}

/* A store's derived rows of one device, printed one per line: comparing
 * two such texts compares every field. */
struct text {
    char *s;
    size_t len, cap;
};

static void put(struct text *t, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof line);
    if (t->len + (size_t)n + 1 > t->cap) {
        t->cap = 2 * (t->len + (size_t)n + 1);
        t->s = realloc(t->s, t->cap);
        assert_non_null(t->s);
    }
    memcpy(t->s + t->len, line, (size_t)n + 1);
    t->len += (size_t)n;
}

static int put_latest(void *ctx, const struct iot_tm_latest *l)
{
    const struct iot_tm_value *v = &l->value;
    put(ctx, "latest %s type %d ts %" PRId64 " num %a int %d %" PRId64 " bool %d str %.*s\n",
        l->name, v->type, l->ts, v->type == IOT_TM_NUMBER ? v->num : 0.0,
        v->type == IOT_TM_NUMBER && v->is_int, v->type == IOT_TM_NUMBER ? v->i : 0,
        v->type == IOT_TM_BOOL && v->boolean, v->type == IOT_TM_STRING ? (int)v->str_len : 0,
        v->type == IOT_TM_STRING ? v->str : "");
    return 0;
}

/* The sum of reals is the one field not compared as text: a store adds a
 * flush's values up before it adds them to the bucket, so how the messages
 * fell into flushes moves its last bits (the integer sum is exact). */
struct derived {
    struct text t;
    double *sums;
    size_t n_sums;
};

static int put_rollup(void *ctx, const struct iot_tm_rollup *r)
{
    struct derived *dv = ctx;
    put(&dv->t, "  rollup %" PRId64 "/%" PRId64 " n %" PRId64 " min %a max %a ints %" PRId64
                " isum %" PRId64 " %d imin %" PRId64 " imax %" PRId64 "\n",
        r->start, r->width, r->count, r->min, r->max, r->ints, r->isum, r->isum_exact, r->imin,
        r->imax);
    dv->sums = realloc(dv->sums, (dv->n_sums + 1) * sizeof *dv->sums);
    assert_non_null(dv->sums);
    dv->sums[dv->n_sums++] = r->sum;
    return 0;
}

struct names {
    char v[64][IOT_TM_NAME_MAX + 1];
    int n;
};

struct catalog_ctx {
    struct text *t;
    struct names *names;
};

static int put_catalog(void *ctx, const struct iot_tm_catalog_entry *e)
{
    struct catalog_ctx *c = ctx;
    put(c->t, "catalog %s type %d unit '%s' first %" PRId64 " last %" PRId64 " count %" PRId64 "\n",
        e->name, e->type, e->unit, e->first_seen, e->last_seen, e->count);
    assert_true(c->names->n < 64);
    snprintf(c->names->v[c->names->n++], IOT_TM_NAME_MAX + 1, "%s", e->name);
    return 0;
}

static struct derived derived_of(struct iot_telemetry *tm, int64_t dev)
{
    struct derived dv = {0};
    put(&dv.t, "device %" PRId64 "\n", dev);
    assert_int_equal(iot_tm_latest(tm, dev, put_latest, &dv.t), IOT_OK);
    struct names names = {.n = 0};
    struct catalog_ctx c = {&dv.t, &names};
    assert_int_equal(iot_tm_catalog(tm, dev, put_catalog, &c), IOT_OK);
    for (int i = 0; i < names.n; i++) {
        put(&dv.t, "rollups of %s\n", names.v[i]);
        assert_int_equal(iot_tm_rollups(tm, dev, names.v[i], IOT_TM_HOUR, INT64_MIN, INT64_MAX,
                                        put_rollup, &dv), IOT_OK);
        assert_int_equal(iot_tm_rollups(tm, dev, names.v[i], IOT_TM_DAY, INT64_MIN, INT64_MAX,
                                        put_rollup, &dv), IOT_OK);
    }
    return dv;
}

/* Fails naming the first line that differs. */
static void assert_same_text(const char *a, const char *b)
{
    size_t i = 0, line = 0;
    while (a[i] && a[i] == b[i])
        i++;
    if (!a[i] && !b[i])
        return;
    while (line < i && a[i - line - 1] != '\n')
        line++;
    const char *la = a + i - line, *lb = b + i - line;
    fail_msg("derived rows differ:\n  source: %.*s\n  copy:   %.*s", (int)strcspn(la, "\n"), la,
             (int)strcspn(lb, "\n"), lb);
}

/* Every message (per device and per user), latest, catalog, rollups and
 * the totals are equal; the copy holds nothing of these devices and users
 * that the source does not. */
static void assert_same(const struct source *s, const char *copy_url)
{
    struct iot_telemetry a, b;
    assert_int_equal(iot_telemetry_open(s->url, false, &a), IOT_OK);
    assert_int_equal(iot_telemetry_open(copy_url, false, &b), IOT_OK);
    for (int64_t d = s->first_dev; d < s->first_dev + s->n_devs; d++) {
        struct rows ra = {0}, rb = {0};
        assert_int_equal(iot_tm_query_device(&a, d, &everything, on_row, &ra), IOT_OK);
        assert_int_equal(iot_tm_query_device(&b, d, &everything, on_row, &rb), IOT_OK);
        assert_i64(ra.n, s->per_dev);
        same_rows("device", d, &ra, &rb);
        rows_free(&ra);
        rows_free(&rb);
        struct derived da = derived_of(&a, d), db = derived_of(&b, d);
        assert_same_text(da.t.s, db.t.s);
        assert_i64(db.n_sums, da.n_sums);
        for (size_t i = 0; i < da.n_sums; i++)
            if (!(fabs(da.sums[i] - db.sums[i]) <= 1e-12 * (1 + fabs(da.sums[i]))))
                fail_msg("device %" PRId64 ", rollup %zu: sum %.17g, copied %.17g", d, i,
                         da.sums[i], db.sums[i]);
        free(da.t.s);
        free(db.t.s);
        free(da.sums);
        free(db.sums);
    }
    for (int64_t u = s->first_user; u < s->first_user + s->n_users; u++) {
        struct rows ra = {0}, rb = {0};
        assert_int_equal(iot_tm_query_user(&a, u, &everything, on_row, &ra), IOT_OK);
        assert_int_equal(iot_tm_query_user(&b, u, &everything, on_row, &rb), IOT_OK);
        same_rows("user", u, &ra, &rb);
        rows_free(&ra);
        rows_free(&rb);
        int64_t na = -1, nb = -2;
        assert_int_equal(iot_tm_count_user(&a, u, INT64_MIN, INT64_MAX, &na), IOT_OK);
        assert_int_equal(iot_tm_count_user(&b, u, INT64_MIN, INT64_MAX, &nb), IOT_OK);
        assert_i64(nb, na);
    }
    struct iot_tm_stats sa, sb;
    assert_int_equal(iot_tm_stats(&a, &sa), IOT_OK);
    assert_int_equal(iot_tm_stats(&b, &sb), IOT_OK);
    assert_i64(sb.messages, sa.messages);
    assert_i64(sb.devices, sa.devices);
    iot_telemetry_close(&b);
    iot_telemetry_close(&a);
}

/* ---- destinations ---------------------------------------------------------------- */

/* A fresh SQLite file, or the IOT_COPY_TEST_TO store emptied of every
 * device this test uses. */
static void destination(bool extra, const char *name, char *url, size_t size)
{
    if (!extra) {
        snprintf(url, size, "sqlite://%s/%s.db", g_dir, name);
        return;
    }
    snprintf(url, size, "%s", g_extra_to);
    struct iot_telemetry tm;
    int rc = iot_telemetry_open(url, false, &tm);
    if (rc)
        fail_msg("cannot open IOT_COPY_TEST_TO: %s", iot_strerror(rc));
    for (int64_t d = 1; d <= 200; d++)
        assert_int_equal(iot_tm_delete_device(&tm, d), IOT_OK);
    struct iot_tm_stats st;
    assert_int_equal(iot_tm_stats(&tm, &st), IOT_OK);
    if (st.messages != 0)
        fail_msg("IOT_COPY_TEST_TO must name an empty store; it holds %" PRId64 " messages",
                 st.messages);
    iot_telemetry_close(&tm);
}

/* The password of a URL's user info, or "" (never to be printed). */
static void password_of(const char *url, char *out, size_t size)
{
    out[0] = '\0';
    const char *auth = strstr(url, "://");
    const char *at = auth ? strrchr(auth + 3, '@') : NULL;
    const char *colon = at ? memchr(auth + 3, ':', (size_t)(at - auth - 3)) : NULL;
    if (colon && at - colon > 1)
        snprintf(out, size, "%.*s", (int)(at - colon - 1), colon + 1);
}

static void assert_no_password(const char *log, const char *url)
{
    char pw[256];
    password_of(url, pw, sizeof pw);
    if (!pw[0])
        return;
    /* As it would appear in a URL: the password may also be a common word
     * (Cassandra's default superuser is cassandra:cassandra). */
    char shown[300];
    snprintf(shown, sizeof shown, ":%s@", pw);
    char *text = slurp(log);
    if (strstr(text, shown))
        fail_msg("%s shows the password of the destination URL", log);
    free(text);
}

/* ---- the tests ------------------------------------------------------------------- */

static void copy_everything(bool extra)
{
    if (extra && !g_extra_to)
        skip();
    struct source s = {.first_dev = 1, .n_devs = 9, .per_dev = 240, .first_user = 1, .n_users = 3};
    fill_source(&s);
    char to[1200], state[1200], log[1200];
    destination(extra, "copy-all", to, sizeof to);
    snprintf(state, sizeof state, "%s/copy-all-%d.state", g_dir, extra);
    snprintf(log, sizeof log, "%s/copy-all-%d.log", g_dir, extra);
    const char *args[] = {"--from", s.url, "--to", to, "--state", state, "--batch", "37", NULL};
    assert_int_equal(run_copy(log, args), 0);
    assert_log_has(log, "copying 2160 messages of 9 devices");
    assert_log_has(log, "done: 2160 messages copied (2160 in this run");
    assert_log_has(log, "source: 2160 messages of 9 devices; destination: 2160 messages of 9 devices");
    assert_i64(state_copied(state), 2160);
    assert_same(&s, to);

    /* Again: it says the copy had finished, finds nothing after its last
     * message, and the destination is unchanged. */
    assert_int_equal(run_copy(log, args), 0);
    assert_log_has(log, "says this copy finished (2160 messages)");
    assert_log_has(log, "done: 2160 messages copied (0 in this run");
    assert_same(&s, to);
    assert_no_password(log, to);
}

static void test_copy_everything(void **state) { copy_everything(false); }
static void test_copy_everything_extra(void **state) { copy_everything(true); }

/* Stopped four ways, resumed each time, the same end. */
static void copy_resumes(bool extra)
{
    if (extra && !g_extra_to)
        skip();
    struct source s = {.first_dev = 101, .n_devs = 30, .per_dev = 400, .first_user = 11,
                       .n_users = 4};
    fill_source(&s);
    const int64_t total = s.n_devs * s.per_dev;
    char to[1200], state[1200], log[1200];
    destination(extra, "copy-resume", to, sizeof to);
    snprintf(state, sizeof state, "%s/copy-resume-%d.state", g_dir, extra);
    snprintf(log, sizeof log, "%s/copy-resume-%d.log", g_dir, extra);

    /* 1. at a known point: 4 batches of 50 */
    const char *stop_args[] = {"--from", s.url, "--to", to, "--state", state, "--batch", "50",
                               "--max-batches", "4", NULL};
    assert_int_equal(run_copy(log, stop_args), 3);
    assert_log_has(log, "stopped after 4 batches (--max-batches), 200 messages copied");
    assert_i64(state_copied(state), 200);
    struct iot_telemetry tm;
    assert_int_equal(iot_telemetry_open(to, false, &tm), IOT_OK);
    struct iot_tm_stats st;
    assert_int_equal(iot_tm_stats(&tm, &st), IOT_OK);
    assert_i64(st.messages, 200);
    iot_telemetry_close(&tm);

    /* 2. kill -9 in the middle of it (a batch may be written and not yet
     * recorded: the rerun writes it again, which stores nothing new) */
    const char *args[] = {"--from", s.url, "--to", to, "--state", state, "--batch", "20", NULL};
    pid_t pid = start_copy(log, args);
    wait_progress(pid, state, 1000);
    kill(pid, SIGKILL);
    assert_int_equal(wait_copy(pid), 128 + SIGKILL);
    assert_log_has(log, "resuming from");
    int64_t killed_at = state_copied(state);
    assert_true(killed_at > 1000 && killed_at < total);

    /* 3. SIGTERM: it ends between two batches, state saved */
    pid = start_copy(log, args);
    wait_progress(pid, state, killed_at + 1000);
    kill(pid, SIGTERM);
    int status = wait_copy(pid);
    if (status != 0) { /* 0 only if it finished before the signal came */
        assert_int_equal(status, 128 + SIGTERM);
        assert_log_has(log, "interrupted by signal 15");
    }

    /* 4. to the end */
    assert_int_equal(run_copy(log, args), 0);
    char want[128];
    snprintf(want, sizeof want, "source: %" PRId64 " messages of 30 devices; destination: %" PRId64
                                " messages of 30 devices", total, total);
    assert_log_has(log, want);
    assert_i64(state_copied(state), total);
    assert_same(&s, to);
    assert_no_password(log, to);
}

static void test_copy_resumes(void **state) { copy_resumes(false); }
static void test_copy_resumes_extra(void **state) { copy_resumes(true); }

/* Mistakes are refused before anything is written, with what to do; a URL
 * is never printed with its password. */
static void test_copy_refusals(void **state)
{
    char log[1200], missing[1200], src[1200], dst[1200], st[1200];
    snprintf(log, sizeof log, "%s/refusals.log", g_dir);
    snprintf(missing, sizeof missing, "%s/no-such.db", g_dir);
    snprintf(dst, sizeof dst, "sqlite://%s/refused-dst.db", g_dir);
    const char *no_src[] = {"--from", missing, "--to", dst, NULL};
    assert_int_equal(run_copy(log, no_src), 1);
    assert_log_has(log, "no source store at");
    struct stat sb;
    assert_int_not_equal(stat(missing, &sb), 0); /* not created */

    struct source s = {.first_dev = 180, .n_devs = 2, .per_dev = 10, .first_user = 30,
                       .n_users = 1};
    fill_source(&s);
    const char *bad_url[] = {"--from", s.url, "--to", "nosuch://admin:Sup3rS3cret@db:1/x", NULL};
    assert_int_equal(run_copy(log, bad_url), 2);
    assert_log_has(log, "no telemetry backend takes the --to URL nosuch://admin:***@db:1/x");
    const char *same[] = {"--from", s.url, "--to", s.url + strlen("sqlite://"), NULL};
    assert_int_equal(run_copy(log, same), 2);
    assert_log_has(log, "--from and --to are the same store");
    const char *bad_batch[] = {"--from", s.url, "--to", dst, "--batch", "0", NULL};
    assert_int_equal(run_copy(log, bad_batch), 2);
    const char *no_to[] = {"--from", s.url, NULL};
    assert_int_equal(run_copy(log, no_to), 2);
    assert_log_has(log, "--from and --to are required");

    /* a state file of another copy */
    snprintf(st, sizeof st, "%s/refusals.state", g_dir);
    const char *first[] = {"--from", s.url, "--to", dst, "--state", st, NULL};
    assert_int_equal(run_copy(log, first), 0);
    snprintf(src, sizeof src, "sqlite://%s/other-dst.db", g_dir);
    const char *other[] = {"--from", s.url, "--to", src, "--state", st, NULL};
    assert_int_equal(run_copy(log, other), 1);
    assert_log_has(log, "belongs to a copy from");

    /* the default state file, named after --to, in the current directory;
     * a URL from the environment (env:NAME) */
    const char *unset[] = {"--from", s.url, "--to", "env:IOT_COPY_TEST_UNSET", NULL};
    assert_int_equal(run_copy(log, unset), 2);
    assert_log_has(log, "--to names the environment variable IOT_COPY_TEST_UNSET, which is not set");
    setenv("IOT_COPY_TEST_URL", "sqlite://user:Sup3rS3cret@/x.db", 1);
    const char *dflt[] = {"--from", s.url, "--to", "env:IOT_COPY_TEST_URL", NULL};
    assert_int_equal(run_copy(log, dflt), 0);
    assert_log_has(log, "to sqlite://user:***@/x.db, in batches of 500");
    char *text = slurp(log);
    assert_null(strstr(text, "Sup3rS3cret"));
    free(text);
    assert_log_has(log, "(state: .copy-telemetry-");
}

/* ---- main ------------------------------------------------------------------------ */

static int clean_dir(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    g_bin = getenv("IOTFLOWD");
    if (!g_bin || !*g_bin) {
        fprintf(stderr, "IOTFLOWD is not set: nothing to test\n");
        return 77;
    }
    g_extra_to = getenv("IOT_COPY_TEST_TO");
    if (g_extra_to && !*g_extra_to)
        g_extra_to = NULL;
    snprintf(g_dir, sizeof g_dir, "%s/copy-telemetry-%ld", contract_tmpdir(), (long)getpid());
    if (mkdir(g_dir, 0700) != 0 || iot_secrets_init() != 0) {
        fprintf(stderr, "cannot make %s\n", g_dir);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_everything),
        cmocka_unit_test(test_copy_resumes),
        cmocka_unit_test(test_copy_refusals),
        cmocka_unit_test(test_copy_everything_extra),
        cmocka_unit_test(test_copy_resumes_extra),
    };
    int failed = cmocka_run_group_tests_name("copy_telemetry", tests, NULL, NULL);
    if (!failed && !getenv("IOT_COPY_TEST_KEEP")) /* set it to look at the logs */
        clean_dir();
    return failed ? 1 : 0;
}
