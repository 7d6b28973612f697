/* telemetry_helpers.h — what the telemetry test suites share: the
 * contract of every backend (telemetry_contract.c) and the SQLite store's
 * own promises (telemetry_sqlite_test.c). Asserts that print both values,
 * message builders, collectors of what reads deliver, a frozen clock, the
 * files of a SQLite telemetry database, and a mix of batches both suites
 * write. Header-only, for the test programs: functions are static inline,
 * so a suite that uses a few of them compiles the rest away. */
#ifndef IOT_TESTS_CONTRACT_TELEMETRY_HELPERS_H
#define IOT_TESTS_CONTRACT_TELEMETRY_HELPERS_H

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>
#include "test_asserts.h"
#include <jansson.h>

#include "store/telemetry.h"
#include "util/clock.h"
#include "util/err.h"

#define H IOT_TM_HOUR
#define D IOT_TM_DAY
#define T0 INT64_C(1767225600000) /* 2026-01-01T00:00:00Z, a day boundary */


/* ---- the files of a SQLite telemetry database -------------------------------- */

static inline const char *sqlite_file_path(const char *url)
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

/* Calls fn(dir/name, ctx) for each commit-log segment of the database
 * file `path` ("<path>-log-NNNNNNNNNN"). */
static inline void each_log_segment(const char *path, void (*fn)(const char *seg, void *ctx),
                                    void *ctx)
{
    char dir[1100];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : path;
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    char prefix[1100];
    snprintf(prefix, sizeof prefix, "%s-log-", base);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            char seg[2300];
            snprintf(seg, sizeof seg, "%s/%s", dir, e->d_name);
            fn(seg, ctx);
        }
    }
    closedir(d);
}

static inline void unlink_segment(const char *seg, void *ctx)
{
    (void)ctx;
    unlink(seg);
}

static inline void remove_db_files(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char buf[1100];
        snprintf(buf, sizeof buf, "%s%s", path, suffixes[i]);
        unlink(buf);
    }
    each_log_segment(path, unlink_segment, NULL);
}

/* ---- building messages ---------------------------------------------------- */

#define MSG_POINTS 100

/* One message under construction; data_json is built from the points with
 * jansson (compact, in point order) unless set by hand. */
struct tmsg {
    struct iot_tm_message m;
    struct iot_tm_point p[MSG_POINTS];
    char names[MSG_POINTS][IOT_TM_NAME_MAX + 1];
    char data[8192];
    json_t *obj;
};

static inline void msg_init(struct tmsg *t, int64_t dev, int64_t uid, int64_t ts, int64_t seq)
{
    memset(&t->m, 0, sizeof t->m);
    t->m = (struct iot_tm_message){.device_id = dev, .user_id = uid, .ts = ts, .seq = seq,
                                   .points = t->p};
    t->obj = json_object();
}

static inline struct iot_tm_point *msg_point(struct tmsg *t, const char *name)
{
    assert_true(t->m.n_points < MSG_POINTS);
    struct iot_tm_point *p = &t->p[t->m.n_points];
    snprintf(t->names[t->m.n_points], sizeof t->names[0], "%s", name);
    p->name = t->names[t->m.n_points++];
    return p;
}

static inline void msg_num(struct tmsg *t, const char *name, double v)
{
    msg_point(t, name)->value = (struct iot_tm_value){.type = IOT_TM_NUMBER, .num = v};
    json_object_set_new(t->obj, name, json_real(v));
}

/* A number given as an integer (exact past 2^53). */
static inline void msg_int(struct tmsg *t, const char *name, int64_t v)
{
    msg_point(t, name)->value =
        (struct iot_tm_value){.type = IOT_TM_NUMBER, .num = (double)v, .is_int = true, .i = v};
    json_object_set_new(t->obj, name, json_integer(v));
}

static inline void msg_bool(struct tmsg *t, const char *name, bool v)
{
    msg_point(t, name)->value = (struct iot_tm_value){.type = IOT_TM_BOOL, .boolean = v};
    json_object_set_new(t->obj, name, json_boolean(v));
}

/* `s` must outlive the write (string literals in these tests). */
static inline void msg_str(struct tmsg *t, const char *name, const char *s)
{
    msg_point(t, name)->value =
        (struct iot_tm_value){.type = IOT_TM_STRING, .str = s, .str_len = strlen(s)};
    json_object_set_new(t->obj, name, json_string(s));
}

static inline void msg_meta(struct tmsg *t, const char *meta)
{
    t->m.meta_json = meta;
    t->m.meta_len = meta ? strlen(meta) : 0;
}

static inline void msg_done(struct tmsg *t)
{
    size_t n = json_dumpb(t->obj, t->data, sizeof t->data - 1, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_true(n > 0 && n < sizeof t->data);
    t->data[n] = '\0';
    t->m.data_json = t->data;
    t->m.data_len = n;
    json_decref(t->obj);
    t->obj = NULL;
}

/* A message with one number. */
static inline void msg_one(struct tmsg *t, int64_t dev, int64_t uid, int64_t ts, int64_t seq,
                           const char *name, double v)
{
    msg_init(t, dev, uid, ts, seq);
    msg_num(t, name, v);
    msg_done(t);
}

static inline void write_msgs(struct iot_telemetry *tm, struct tmsg *t, size_t n)
{
    struct iot_tm_message *m = calloc(n, sizeof *m);
    assert_non_null(m);
    for (size_t i = 0; i < n; i++)
        m[i] = t[i].m;
    int rc = iot_tm_write_batch(tm, m, n);
    free(m);
    assert_rc(rc, IOT_OK);
}

static inline void write_one(struct iot_telemetry *tm, int64_t dev, int64_t uid, int64_t ts,
                             int64_t seq, const char *name, double v)
{
    struct tmsg t;
    msg_one(&t, dev, uid, ts, seq, name, v);
    write_msgs(tm, &t, 1);
}

/* ---- collecting what reads deliver ------------------------------------------ */

struct rec {
    int64_t dev, ts, seq;
    char data[600];
    size_t data_len;
    char meta[300];
    size_t meta_len;
    bool has_meta;
};

struct recs {
    struct rec *v;
    size_t n, cap;
    size_t stop_after; /* 0: never stop */
};

static inline int on_record(void *ctx, const struct iot_tm_record *r)
{
    struct recs *rs = ctx;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? 2 * rs->cap : 64;
        rs->v = realloc(rs->v, rs->cap * sizeof *rs->v);
        assert_non_null(rs->v);
    }
    struct rec *x = &rs->v[rs->n++];
    memset(x, 0, sizeof *x);
    *x = (struct rec){.dev = r->device_id, .ts = r->ts, .seq = r->seq,
                      .data_len = r->data_len, .meta_len = r->meta_len,
                      .has_meta = r->meta_json != NULL};
    assert_true(r->data_len < sizeof x->data && r->meta_len < sizeof x->meta);
    memcpy(x->data, r->data_json, r->data_len);
    if (r->meta_json)
        memcpy(x->meta, r->meta_json, r->meta_len);
    return rs->stop_after && rs->n >= rs->stop_after;
}

static inline struct iot_tm_range all_range(int64_t limit)
{
    return (struct iot_tm_range){.from = INT64_MIN, .to = INT64_MAX, .limit = limit,
                                 .before_ts = INT64_MAX, .before_seq = INT64_MAX};
}

static inline struct recs query_dev(struct iot_telemetry *tm, int64_t dev, struct iot_tm_range r)
{
    struct recs rs = {0};
    assert_rc(iot_tm_query_device(tm, dev, &r, on_record, &rs), IOT_OK);
    return rs;
}

struct latest_row {
    char name[IOT_TM_NAME_MAX + 1];
    enum iot_tm_type type;
    double num;
    bool boolean;
    char str[64];
    int64_t ts;
    bool is_int;
    int64_t i;
};

struct latests {
    struct latest_row v[400];
    int n;
};

static inline int on_latest(void *ctx, const struct iot_tm_latest *l)
{
    struct latests *ls = ctx;
    assert_true(ls->n < 400);
    struct latest_row *x = &ls->v[ls->n++];
    snprintf(x->name, sizeof x->name, "%s", l->name);
    x->type = l->value.type;
    x->num = l->value.num;
    x->boolean = l->value.boolean;
    x->is_int = l->value.type == IOT_TM_NUMBER && l->value.is_int;
    x->i = x->is_int ? l->value.i : 0;
    if (l->value.type == IOT_TM_STRING)
        snprintf(x->str, sizeof x->str, "%.*s", (int)l->value.str_len, l->value.str);
    x->ts = l->ts;
    return 0;
}

static inline const struct latest_row *find_latest(const struct latests *ls, const char *name)
{
    for (int i = 0; i < ls->n; i++)
        if (strcmp(ls->v[i].name, name) == 0)
            return &ls->v[i];
    return NULL;
}

struct rollups {
    struct iot_tm_rollup v[64];
    int n;
};

static inline int on_rollup(void *ctx, const struct iot_tm_rollup *r)
{
    struct rollups *rs = ctx;
    assert_true(rs->n < 64);
    rs->v[rs->n++] = *r;
    return 0;
}

static inline struct rollups get_rollups(struct iot_telemetry *tm, int64_t dev, const char *name,
                                         int64_t width, int64_t from, int64_t to)
{
    struct rollups rs = {.n = 0};
    assert_rc(iot_tm_rollups(tm, dev, name, width, from, to, on_rollup, &rs), IOT_OK);
    return rs;
}

#define assert_rollup(r, start_, count_, sum_, min_, max_)                                     \
    do {                                                                                       \
        assert_i64((r).start, (start_));                                                       \
        assert_i64((r).count, (count_));                                                       \
        assert_f64((r).sum, (sum_));                                                           \
        assert_f64((r).min, (min_));                                                           \
        assert_f64((r).max, (max_));                                                           \
    } while (0)

struct samples {
    int64_t ts[2048];
    double v[2048];
    int n;
};

static inline int on_sample(void *ctx, int64_t ts, double v)
{
    struct samples *s = ctx;
    assert_true(s->n < 2048);
    s->ts[s->n] = ts;
    s->v[s->n++] = v;
    return 0;
}

struct catalog_row {
    char name[IOT_TM_NAME_MAX + 1];
    enum iot_tm_type type;
    char unit[80];
    int64_t first, last, count;
};

struct catalog {
    struct catalog_row v[400];
    int n;
};

static inline int on_catalog(void *ctx, const struct iot_tm_catalog_entry *e)
{
    struct catalog *c = ctx;
    assert_true(c->n < 400);
    struct catalog_row *x = &c->v[c->n++];
    snprintf(x->name, sizeof x->name, "%s", e->name);
    snprintf(x->unit, sizeof x->unit, "%s", e->unit);
    x->type = e->type;
    x->first = e->first_seen;
    x->last = e->last_seen;
    x->count = e->count;
    return 0;
}

static inline const struct catalog_row *find_catalog(const struct catalog *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->v[i].name, name) == 0)
            return &c->v[i];
    return NULL;
}

static inline struct iot_tm_stats get_stats(struct iot_telemetry *tm)
{
    struct iot_tm_stats st = {-1, -1};
    assert_rc(iot_tm_stats(tm, &st), IOT_OK);
    return st;
}

/* ---- a frozen clock ------------------------------------------------------------ */

static _Atomic int64_t fake_now;
static inline int64_t fake_clock(void) { return atomic_load(&fake_now); }

/* A backend may apply derived rows after write_batch returns (the SQLite
 * store flushes a few times a second): with the clock frozen, nothing is
 * flushed merely because time passed. The fixtures' teardown thaws it. */
static inline void freeze_clock(void)
{
    atomic_store(&fake_now, T0);
    iot_clock_override(fake_clock);
}

/* ---- large batches ----------------------------------------------------------------- */

/* A light message for the large tests: 3 points, data built by hand. */
struct small_msg {
    struct iot_tm_message m;
    struct iot_tm_point p[3];
    char data[96];
};

static inline void small_fill(struct small_msg *s, int64_t dev, int64_t uid, int64_t ts,
                              int64_t seq, double v)
{
    s->p[0] = (struct iot_tm_point){"temp", {.type = IOT_TM_NUMBER, .num = v}};
    s->p[1] = (struct iot_tm_point){"hum", {.type = IOT_TM_NUMBER, .num = v / 2}};
    s->p[2] = (struct iot_tm_point){"on", {.type = IOT_TM_BOOL, .boolean = ((int64_t)v) & 1}};
    int n = snprintf(s->data, sizeof s->data, "{\"temp\":%.17g,\"hum\":%.17g,\"on\":%s}", v,
                     v / 2, ((int64_t)v) & 1 ? "true" : "false");
    s->m = (struct iot_tm_message){.device_id = dev, .user_id = uid, .ts = ts, .seq = seq,
                                   .points = s->p, .n_points = 3, .data_json = s->data,
                                   .data_len = (size_t)n};
}

static inline int count_records(void *ctx, const struct iot_tm_record *r)
{
    (*(int64_t *)ctx)++;
    return 0;
}

static inline int64_t count_device(struct iot_telemetry *tm, int64_t dev)
{
    int64_t n = 0;
    struct iot_tm_range r = all_range(INT64_MAX);
    assert_rc(iot_tm_query_device(tm, dev, &r, count_records, &n), IOT_OK);
    return n;
}

/* ---- a mix of batches ------------------------------------------------------------- */

/* Numbers, booleans, strings and units over four devices of two users, in
 * two halves of two batches each: units given by an older sample later
 * (the unit wins), retries (ignored), a device changing hands, a device
 * with strings only. The contract checks the result on every backend
 * (mixed_batches_check); the SQLite suite writes them before crash images. */
static inline void mixed_batches_first(struct iot_telemetry *tm)
{
    struct tmsg t[3];
    msg_init(&t[0], 1, 1, T0 + 100, 0);
    msg_num(&t[0], "temp", 20.5);
    msg_bool(&t[0], "on", true);
    msg_str(&t[0], "mode", "eco \"night\"");
    msg_meta(&t[0], "{\"temp_unit\":\"C\",\"site\":\"a\"}");
    msg_done(&t[0]);
    msg_one(&t[1], 2, 1, T0 + 50, 0, "temp", 10);
    msg_one(&t[2], 3, 2, T0 - 1, 0, "x", 1); /* the hour and day before */
    write_msgs(tm, t, 3);
    msg_init(&t[0], 1, 1, T0 + H + 5, 0);
    msg_num(&t[0], "temp", 21);
    msg_str(&t[0], "mode", "boost");
    msg_done(&t[0]);
    msg_init(&t[1], 1, 1, T0 + 10, 0); /* older sample, later unit: the unit wins */
    msg_num(&t[1], "temp", 19);
    msg_meta(&t[1], "{\"temp_unit\":\"K\"}");
    msg_done(&t[1]);
    msg_one(&t[2], 2, 1, T0 + 50, 0, "temp", 999); /* a retry: ignored */
    write_msgs(tm, t, 3);
}

static inline void mixed_batches_second(struct iot_telemetry *tm)
{
    struct tmsg t[4];
    msg_init(&t[0], 1, 1, T0 + D + 1, 0);
    msg_bool(&t[0], "on", false);
    msg_done(&t[0]);
    msg_init(&t[1], 2, 1, T0 + 60, 1);
    msg_num(&t[1], "temp", 11.125);
    msg_str(&t[1], "s", "caf\xc3\xa9");
    msg_meta(&t[1], "{\"temp_unit\":\"\xc2\xb0" "F\"}");
    msg_done(&t[1]);
    msg_init(&t[2], 3, 2, T0 + 2 * H, 0);
    msg_num(&t[2], "x", 2);
    msg_bool(&t[2], "y", true);
    msg_done(&t[2]);
    write_msgs(tm, t, 3);
    msg_one(&t[0], 1, 1, T0 + H + 5, 0, "temp", 555); /* a retry: ignored */
    msg_one(&t[1], 3, 3, T0 + 2 * H + 1, 0, "x", -7.25); /* device changed hands */
    msg_init(&t[2], 4, 2, T0 + 3, 7);
    msg_str(&t[2], "mode", "strings only");
    msg_done(&t[2]);
    msg_init(&t[3], 2, 1, T0 + 55, 0); /* older sample, later unit: the unit wins */
    msg_num(&t[3], "temp", 12);
    msg_int(&t[3], "big", INT64_C(9007199254740993)); /* kept exactly */
    msg_meta(&t[3], "{\"temp_unit\":\"R\"}");
    msg_done(&t[3]);
    write_msgs(tm, t, 4);
}

/* What a store holds after both halves. */
static inline void mixed_batches_check(struct iot_telemetry *tm)
{
    assert_i64(count_device(tm, 1), 4);
    assert_i64(count_device(tm, 2), 3);
    assert_i64(count_device(tm, 3), 3);
    assert_i64(count_device(tm, 4), 1);
    struct iot_tm_stats st = get_stats(tm);
    assert_i64(st.messages, 11);
    assert_i64(st.devices, 4);
    struct catalog c = {.n = 0};
    assert_rc(iot_tm_catalog(tm, 1, on_catalog, &c), IOT_OK);
    assert_string_equal(find_catalog(&c, "temp")->unit, "K");
    assert_i64(find_catalog(&c, "temp")->count, 3);
    assert_i64(find_catalog(&c, "on")->count, 2);
    c.n = 0;
    assert_rc(iot_tm_catalog(tm, 2, on_catalog, &c), IOT_OK);
    assert_string_equal(find_catalog(&c, "temp")->unit, "R");
    assert_i64(find_catalog(&c, "s")->type, IOT_TM_STRING);
    struct latests ls = {.n = 0};
    assert_rc(iot_tm_latest(tm, 1, on_latest, &ls), IOT_OK);
    assert_false(find_latest(&ls, "on")->boolean);
    assert_i64(find_latest(&ls, "on")->ts, T0 + D + 1);
    assert_string_equal(find_latest(&ls, "mode")->str, "boost");
    ls.n = 0;
    assert_rc(iot_tm_latest(tm, 2, on_latest, &ls), IOT_OK);
    assert_string_equal(find_latest(&ls, "s")->str, "caf\xc3\xa9");
    assert_true(find_latest(&ls, "big")->is_int);
    assert_i64(find_latest(&ls, "big")->i, INT64_C(9007199254740993));
    struct rollups r = get_rollups(tm, 3, "x", H, INT64_MIN, INT64_MAX);
    assert_i64(r.n, 2);
    assert_rollup(r.v[0], T0 - H, 1, 1, 1, 1);
    assert_rollup(r.v[1], T0 + 2 * H, 2, -5.25, -7.25, 2);
    r = get_rollups(tm, 2, "temp", D, INT64_MIN, INT64_MAX);
    assert_rollup(r.v[0], T0, 3, 33.125, 10, 12);
    assert_i64(get_rollups(tm, 4, "mode", H, INT64_MIN, INT64_MAX).n, 0);
}


/* One batch of WIDE_MSGS messages of device `dev`, an hour apart from T0,
 * each with WIDE_POINTS numbers m000..m099 (m<i> = i): 60,000 hourly
 * buckets in one write. */
enum { WIDE_MSGS = 600, WIDE_POINTS = 100 };
static inline void write_wide_batch(struct iot_telemetry *tm, int64_t dev)
{
    static char names[WIDE_POINTS][8];
    struct iot_tm_point p[WIDE_POINTS];
    for (int i = 0; i < WIDE_POINTS; i++) {
        snprintf(names[i], sizeof names[i], "m%03d", i);
        p[i] = (struct iot_tm_point){names[i], {.type = IOT_TM_NUMBER, .num = i}};
    }
    struct iot_tm_message *m = calloc(WIDE_MSGS, sizeof *m);
    assert_non_null(m);
    for (int i = 0; i < WIDE_MSGS; i++)
        m[i] = (struct iot_tm_message){.device_id = dev, .user_id = 1, .ts = T0 + i * H,
                                       .points = p, .n_points = WIDE_POINTS,
                                       .data_json = "{\"m000\":0}", .data_len = 10};
    assert_rc(iot_tm_write_batch(tm, m, WIDE_MSGS), IOT_OK);
    free(m);
}

#endif
