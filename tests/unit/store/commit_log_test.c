/* Unit tests of store/commit_log: append/reopen/replay round trips, new
 * segments after open, rotation, torn tails, corrupt records, garbage and
 * foreign files, release_before, callback errors, IOT_ELIMIT, failed
 * appends and the durable path. Each test works in a fresh directory under
 * IOT_TEST_TMPDIR (or /tmp), removed at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/commit_log.h"
#include "util/err.h"
#include "util/log.h"

#define HEADER 24     /* bytes of a record's header */
#define MAX_RECS 256  /* records one test writes, at most */
#define MAX_DATA 1000 /* bytes of data in one record, at most */
#define PREFIX "t-log-"

/* ---- scratch directory ------------------------------------------------- */

struct env {
    char dir[256];
    char base[300]; /* dir + "/" PREFIX */
};

static void remove_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[600];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

static int setup(void **state)
{
    const char *tmp = getenv("IOT_TEST_TMPDIR");
    if (!tmp || !tmp[0])
        tmp = "/tmp";
    mkdir(tmp, 0755);
    struct env *env = calloc(1, sizeof *env);
    if (!env)
        return -1;
    snprintf(env->dir, sizeof env->dir, "%s/clog-XXXXXX", tmp);
    if (!mkdtemp(env->dir)) {
        free(env);
        return -1;
    }
    snprintf(env->base, sizeof env->base, "%s/" PREFIX, env->dir);
    *state = env;
    return 0;
}

static int teardown(void **state)
{
    struct env *env = *state;
    remove_files(env->dir);
    rmdir(env->dir);
    free(env);
    return 0;
}

/* ---- files ------------------------------------------------------------- */

static void file_in(const struct env *env, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", env->dir, name);
}

static void seg_file(const struct env *env, uint64_t seg, char *buf, size_t size)
{
    snprintf(buf, size, "%s%010llu", env->base, (unsigned long long)seg);
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static size_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (size_t)st.st_size;
}

static size_t count_files(const struct env *env)
{
    DIR *d = opendir(env->dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Reads a whole (small) file into a malloc'ed buffer. */
static unsigned char *read_all(const char *path, size_t *len)
{
    *len = file_size(path);
    unsigned char *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

static void flip_byte(const char *path, size_t offset)
{
    size_t len;
    unsigned char *buf = read_all(path, &len);
    assert_true(offset < len);
    buf[offset] ^= 0x5A;
    write_file(path, buf, len);
    free(buf);
}

static void cut_to(const char *path, size_t len)
{
    assert_int_equal(truncate(path, (off_t)len), 0);
}

/* ---- records: what was appended, and what replay returned -------------- */

static const size_t sizes[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 100, 255, MAX_DATA, 3};

static size_t len_of(uint64_t id)
{
    return sizes[id % (sizeof sizes / sizeof sizes[0])];
}

static void payload(uint64_t id, unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(id * 131 + i * 7 + (i >> 8));
}

/* Bytes a record of `id` takes in its segment. */
static size_t rec_bytes(uint64_t id)
{
    return HEADER + len_of(id);
}

struct model { /* the records appended, in order */
    size_t n;
    uint64_t id[MAX_RECS], seg[MAX_RECS];
};

struct seen { /* the records replay returned, in order */
    size_t n;
    uint64_t id[MAX_RECS], seg[MAX_RECS];
    bool intact[MAX_RECS]; /* length and bytes as appended */
    size_t stop_after;     /* return stop_rc from this call on (0: never) */
    int stop_rc;
};

static int on_record(void *ctx, uint64_t segment, uint64_t id, const unsigned char *data,
                     size_t len)
{
    struct seen *s = ctx;
    assert_true(s->n < MAX_RECS);
    unsigned char want[MAX_DATA];
    payload(id, want, len_of(id));
    s->id[s->n] = id;
    s->seg[s->n] = segment;
    s->intact[s->n] = len == len_of(id) && (len == 0 || memcmp(data, want, len) == 0);
    s->n++;
    return s->stop_after && s->n >= s->stop_after ? s->stop_rc : IOT_OK;
}

/* Appends records first, first+1, ... first+n-1 and notes them in m. */
static void append_ids(struct iot_clog *l, uint64_t first, size_t n, struct model *m)
{
    unsigned char data[MAX_DATA];
    for (uint64_t id = first; id < first + n; id++) {
        uint64_t seg = 0;
        payload(id, data, len_of(id));
        assert_int_equal(iot_clog_append(l, id, data, len_of(id), &seg), IOT_OK);
        assert_true(seg >= 1);
        assert_int_equal(iot_clog_current(l), seg);
        assert_true(m->n < MAX_RECS);
        m->id[m->n] = id;
        m->seg[m->n] = seg;
        m->n++;
    }
}

/* One session: open, append, close. */
static void session(const struct env *env, size_t segment_bytes, uint64_t first, size_t n,
                    struct model *m)
{
    struct iot_clog *l = NULL;
    assert_int_equal(iot_clog_open(env->base, false, segment_bytes, &l), IOT_OK);
    append_ids(l, first, n, m);
    iot_clog_close(l);
}

/* Opens the log, replays it into s (which it clears), closes it. */
static void replay_all(const struct env *env, struct seen *s)
{
    struct iot_clog *l = NULL;
    memset(s, 0, sizeof *s);
    assert_int_equal(iot_clog_open(env->base, false, 0, &l), IOT_OK);
    assert_int_equal(iot_clog_replay(l, on_record, s), IOT_OK);
    iot_clog_close(l);
}

/* s[at..] holds m[from..to) exactly; returns the position after them. */
static size_t expect_range(const struct seen *s, size_t at, const struct model *m, size_t from,
                           size_t to)
{
    for (size_t i = from; i < to; i++, at++) {
        assert_true(at < s->n);
        assert_int_equal(s->id[at], m->id[i]);
        assert_int_equal(s->seg[at], m->seg[i]);
        assert_true(s->intact[at]);
    }
    return at;
}

/* Offset of record k (0-based) in its segment, which starts at m[first]. */
static size_t offset_of(const struct model *m, size_t first, size_t k)
{
    size_t off = 0;
    for (size_t i = first; i < first + k; i++)
        off += rec_bytes(m->id[i]);
    return off;
}

/* ---- round trips ------------------------------------------------------- */

static void round_trip_after_reopen(void **state)
{
    struct env *env = *state;
    struct model m = {0};
    session(env, 0, 0, 40, &m); /* ids 0, 13, 26, 39 have no data */
    for (size_t i = 0; i < m.n; i++)
        assert_int_equal(m.seg[i], 1);
    struct seen s;
    replay_all(env, &s);
    assert_int_equal(expect_range(&s, 0, &m, 0, m.n), m.n);
    assert_int_equal(s.n, m.n);
}

static void fresh_open_of_empty_dir(void **state)
{
    struct env *env = *state;
    struct iot_clog *l = NULL;
    assert_int_equal(iot_clog_open(env->base, false, 0, &l), IOT_OK);
    assert_non_null(l);
    assert_int_equal(iot_clog_current(l), 1);
    struct seen s = {0};
    assert_int_equal(iot_clog_replay(l, on_record, &s), IOT_OK);
    assert_int_equal(s.n, 0);
    iot_clog_release_before(l, 100);
    iot_clog_close(l);
    assert_int_equal(count_files(env), 0); /* open, replay, close create nothing */
    iot_clog_close(NULL);
}

static void open_of_missing_dir_fails(void **state)
{
    struct env *env = *state;
    char base[400];
    snprintf(base, sizeof base, "%s/no-such-dir/" PREFIX, env->dir);
    struct iot_clog *l = NULL;
    assert_int_equal(iot_clog_open(base, false, 0, &l), IOT_EUNAVAILABLE);
    assert_null(l);
}

/* Every reopen appends to max+1, never into a segment left behind. */
static void reopen_appends_to_new_segment(void **state)
{
    struct env *env = *state;
    struct model m = {0};
    char path[400];
    session(env, 0, 1, 3, &m);
    seg_file(env, 1, path, sizeof path);
    size_t size1 = file_size(path);
    session(env, 0, 4, 2, &m);
    assert_int_equal(m.seg[2], 1);
    assert_int_equal(m.seg[3], 2);
    assert_int_equal(file_size(path), size1);

    /* A crash left segment 7 with a torn record: it is never appended to. */
    seg_file(env, 7, path, sizeof path);
    write_file(path, "IOTL\x10\x00", 6);
    struct iot_clog *l = NULL;
    assert_int_equal(iot_clog_open(env->base, false, 0, &l), IOT_OK);
    assert_int_equal(iot_clog_current(l), 8);
    append_ids(l, 6, 1, &m);
    assert_int_equal(m.seg[5], 8);
    iot_clog_close(l);
    assert_int_equal(file_size(path), 6);

    struct seen s;
    replay_all(env, &s);
    assert_int_equal(expect_range(&s, 0, &m, 0, m.n), m.n);
    assert_int_equal(s.n, m.n);
}

/* Replay reads the segments that existed at open, not the one appends
 * opened since. */
static void replay_skips_segment_opened_since(void **state)
{
    struct env *env = *state;
    struct model m = {0};
    session(env, 0, 1, 3, &m);
    struct iot_clog *l = NULL;
    assert_int_equal(iot_clog_open(env->base, false, 0, &l), IOT_OK);
    append_ids(l, 4, 2, &m);
    struct seen s = {0};
    int rc = iot_clog_replay(l, on_record, &s);
    iot_clog_close(l);
    assert_int_equal(rc, IOT_OK);
    assert_int_equal(s.n, 3);
    assert_int_equal(expect_range(&s, 0, &m, 0, 3), 3);
}

/* Same, when the appends since open filled more than one segment. */
static void replay_skips_segments_rotated_since(void **state)
{
    struct env *env = *state;
    struct model m = {0};
    session(env, 0, 1, 3, &m);
    struct iot_clog *l = NULL;
    assert_int_equal(iot_clog_open(env->base, false, 100, &l), IOT_OK);
    append_ids(l, 4, 10, &m);
    struct seen s = {0};
    int rc = iot_clog_replay(l, on_record, &s);
    iot_clog_close(l);
    assert_true(m.seg[m.n - 1] > m.seg[3]); /* the appends rotated */
    assert_int_equal(rc, IOT_OK);
    assert_int_equal(s.n, 3); /* not the records of the segments filled since */
    assert_int_equal(expect_range(&s, 0, &m, 0, 3), 3);
}

/* ---- rotation ---------------------------------------------------------- */

/* A segment is left once it holds segment_bytes: every one but the last
 * holds at least that, and held less before its last record. */
static void check_rotation_sizes(const struct env *env, const struct model *m, size_t limit)
{
    size_t first = 0;
    while (first < m->n) {
        size_t end = first;
        while (end < m->n && m->seg[end] == m->seg[first])
            end++;
        char path[400];
        seg_file(env, m->seg[first], path, sizeof path);
        size_t size = file_size(path);
        assert_int_equal(size, offset_of(m, first, end - first));
        if (end < m->n) {
            assert_int_equal(m->seg[end], m->seg[first] + 1);
            assert_true(size >= limit);
            assert_true(size - rec_bytes(m->id[end - 1]) < limit);
        }
        first = end;
    }
}

static void rotation_by_segment_bytes(void **state)
{
    struct env *env = *state;
    struct model m = {0};
    session(env, 100, 0, 60, &m);
    assert_true(m.seg[m.n - 1] >= 5);
    check_rotation_sizes(env, &m, 100);
    struct seen s;
    replay_all(env, &s);
    assert_int_equal(expect_range(&s, 0, &m, 0, m.n), m.n);
    assert_int_equal(s.n, m.n);
}

/* ---- torn tails and corruption ------------------------------------------ */

/* Five records in segment 1, the last with 1000 bytes of data; the file is
 * cut `back` bytes before its end. */
static void torn_tail(const struct env *env, size_t back)
{
    struct model m = {0};
    session(env, 0, 7, 5, &m);
    assert_int_equal(len_of(11), MAX_DATA);
    char path[400];
    seg_file(env, 1, path, sizeof path);
    cut_to(path, file_size(path) - back);
    struct seen s;
    replay_all(env, &s);
    assert_int_equal(expect_range(&s, 0, &m, 0, 4), 4);
    assert_int_equal(s.n, 4);
}

static void torn_tail_in_data(void **state)
{
    torn_tail(*state, MAX_DATA / 2);
    remove_files(((struct env *)*state)->dir);
    torn_tail(*state, 1);
}

static void torn_tail_in_header(void **state)
{
    torn_tail(*state, MAX_DATA + HEADER / 2);
    remove_files(((struct env *)*state)->dir);
    torn_tail(*state, MAX_DATA + HEADER - 1); /* one byte of the header left */
}

/* Segments 1 (ids 1-5), 2 (ids 6-8) and 3 (ids 9-10); one byte of record
 * k of segment 1, at `at` bytes into the record, is changed. */
static void corrupt_one(const struct env *env, size_t k, size_t at)
{
    struct model m = {0};
    session(env, 0, 1, 5, &m);
    session(env, 0, 6, 3, &m);
    session(env, 0, 9, 2, &m);
    char path[400];
    seg_file(env, 1, path, sizeof path);
    flip_byte(path, offset_of(&m, 0, k) + at);
    struct seen s;
    replay_all(env, &s);
    size_t at_seen = expect_range(&s, 0, &m, 0, k);
    assert_int_equal(expect_range(&s, at_seen, &m, 5, 10), s.n);
    assert_int_equal(s.n, k + 5);
    remove_files(env->dir);
}

/* Every field the checksum covers, and the magic, of each record in turn. */
static void corrupt_record_ends_its_segment(void **state)
{
    for (size_t k = 0; k < 5; k++) {
        size_t len = len_of(k + 1);
        assert_true(len > 0);
        const size_t where[] = {0, 3, 4, 8, 15, 16, 19, HEADER, HEADER + len - 1};
        for (size_t w = 0; w < sizeof where / sizeof where[0]; w++)
            corrupt_one(*state, k, where[w]);
    }
}

/* Segments that hold no intact record at all: garbage, a wrong magic, an
 * empty file, a header shorter than 24 bytes, a length past the end. */
static void garbage_segments_yield_nothing(void **state)
{
    struct env *env = *state;
    struct model m = {0};
    char path[400];
    session(env, 0, 1, 2, &m); /* segment 1 */
    unsigned char junk[300];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 97 + 13);
    seg_file(env, 2, path, sizeof path);
    write_file(path, junk, sizeof junk);
    seg_file(env, 3, path, sizeof path);
    write_file(path, "", 0);
    seg_file(env, 4, path, sizeof path);
    write_file(path, "IOTL", 4);
    const unsigned char huge[HEADER] = {'I', 'O', 'T', 'L', 0xff, 0xff, 0xff, 0xff};
    seg_file(env, 5, path, sizeof path);
    write_file(path, huge, sizeof huge);
    session(env, 0, 3, 2, &m); /* segment 6 */
    session(env, 0, 5, 2, &m); /* segment 7, its first record's magic broken */
    seg_file(env, 7, path, sizeof path);
    flip_byte(path, 0);
    session(env, 0, 7, 2, &m); /* segment 8 */
    assert_int_equal(m.seg[2], 6);
    assert_int_equal(m.seg[6], 8);

    struct seen s;
    replay_all(env, &s);
    size_t at = expect_range(&s, 0, &m, 0, 4);
    assert_int_equal(expect_range(&s, at, &m, 6, 8), s.n);
    assert_int_equal(s.n, 6);
}

/* Names that are not "<base>" followed by a segment number (ten digits, or
 * more without a leading zero). Each holds a copy of segment 1, so
 * replaying one would show up as duplicates. */
static const char *const decoys[] = {
    PREFIX "12x4567890",     PREFIX "123",       PREFIX "00000000001",
    PREFIX "000000001",      "other-0000000002", PREFIX "0000000003.bak",
    "x" PREFIX "0000000004", "t-log0000000005",
};

static void non_segments_are_ignored_and_kept(void **state)
{
    struct env *env = *state;
    struct model m = {0};
    char path[400], seg1[400];
    session(env, 0, 1, 3, &m);
    seg_file(env, 1, seg1, sizeof seg1);
    size_t len;
    unsigned char *copy = read_all(seg1, &len);
    for (size_t i = 0; i < sizeof decoys / sizeof decoys[0]; i++) {
        file_in(env, decoys[i], path, sizeof path);
        write_file(path, copy, len);
    }
    free(copy);

    struct iot_clog *l = NULL;
    assert_int_equal(iot_clog_open(env->base, false, 0, &l), IOT_OK);
    assert_int_equal(iot_clog_current(l), 2);
    struct seen s = {0};
    assert_int_equal(iot_clog_replay(l, on_record, &s), IOT_OK);
    assert_int_equal(expect_range(&s, 0, &m, 0, 3), 3);
    assert_int_equal(s.n, 3);
    iot_clog_release_before(l, 1000);
    iot_clog_close(l);
    assert_false(exists(seg1));
    for (size_t i = 0; i < sizeof decoys / sizeof decoys[0]; i++) {
        file_in(env, decoys[i], path, sizeof path);
        assert_true(exists(path));
    }
}

/* ---- release_before ----------------------------------------------------- */

static void assert_segments(const struct env *env, uint64_t gone_below, uint64_t last)
{
    char path[400];
    for (uint64_t seg = 1; seg <= last; seg++) {
        seg_file(env, seg, path, sizeof path);
        assert_int_equal(exists(path), seg >= gone_below);
    }
}

static void release_before_deletes_older_segments(void **state)
{
    struct env *env = *state;
    struct model m = {0};
    for (uint64_t i = 0; i < 5; i++) /* segments 1-5, two records each */
        session(env, 0, 1 + 2 * i, 2, &m);
    struct iot_clog *l = NULL;
    assert_int_equal(iot_clog_open(env->base, false, 0, &l), IOT_OK);
    iot_clog_release_before(l, 1);
    assert_segments(env, 1, 5);
    iot_clog_release_before(l, 3);
    assert_segments(env, 3, 5);
    iot_clog_release_before(l, 3);
    assert_segments(env, 3, 5);
    struct seen s = {0};
    assert_int_equal(iot_clog_replay(l, on_record, &s), IOT_OK);
    assert_int_equal(expect_range(&s, 0, &m, 4, 10), s.n);
    assert_int_equal(s.n, 6);

    append_ids(l, 11, 1, &m); /* segment 6 */
    assert_int_equal(m.seg[10], 6);
    iot_clog_release_before(l, 6); /* everything but the open segment */
    assert_segments(env, 6, 6);
    append_ids(l, 12, 1, &m);
    assert_int_equal(m.seg[11], 6);
    iot_clog_close(l);

    replay_all(env, &s);
    assert_int_equal(expect_range(&s, 0, &m, 10, 12), s.n);
    assert_int_equal(s.n, 2);
}

/* ---- replay callback errors --------------------------------------------- */

static void callback_error_stops_replay(void **state)
{
    struct env *env = *state;
    struct model m = {0};
    session(env, 0, 1, 3, &m);
    session(env, 0, 4, 3, &m);
    const int codes[] = {IOT_EINTERNAL, IOT_ENOMEM, 42};
    for (size_t stop = 1; stop <= 6; stop++) {
        struct iot_clog *l = NULL;
        assert_int_equal(iot_clog_open(env->base, false, 0, &l), IOT_OK);
        struct seen s = {.stop_after = stop, .stop_rc = codes[stop % 3]};
        assert_int_equal(iot_clog_replay(l, on_record, &s), codes[stop % 3]);
        assert_int_equal(s.n, stop);
        assert_int_equal(expect_range(&s, 0, &m, 0, stop), stop);
        iot_clog_close(l);
    }
}

/* ---- append limits and failures ----------------------------------------- */

static void oversized_record_is_refused(void **state)
{
    struct env *env = *state;
    struct iot_clog *l = NULL;
    unsigned char byte = 0;
    uint64_t seg = 0;
    assert_int_equal(iot_clog_open(env->base, false, 0, &l), IOT_OK);
    assert_int_equal(iot_clog_append(l, 1, &byte, (size_t)IOT_CLOG_RECORD_MAX + 1, &seg),
                     IOT_ELIMIT);
    assert_int_equal(iot_clog_append(l, 1, &byte, SIZE_MAX, NULL), IOT_ELIMIT);
    assert_int_equal(count_files(env), 0);
    struct model m = {0};
    append_ids(l, 2, 2, &m);
    assert_int_equal(m.seg[0], 1);
    iot_clog_close(l);
    struct seen s;
    replay_all(env, &s);
    assert_int_equal(expect_range(&s, 0, &m, 0, 2), s.n);
    assert_int_equal(s.n, 2);
}

/* A write cut short (here by RLIMIT_FSIZE: EFBIG) leaves no partial record
 * behind, and the next append starts a new segment. */
static void failed_append_moves_to_new_segment(void **state)
{
    struct env *env = *state;
    struct model m = {0};
    struct iot_clog *l = NULL;
    assert_int_equal(iot_clog_open(env->base, false, 0, &l), IOT_OK);
    append_ids(l, 1, 3, &m); /* 1 + 7 + 8 bytes of data */
    size_t good = offset_of(&m, 0, 3);

    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    struct rlimit low = {good + HEADER + 10, saved.rlim_max};
    void (*old)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
    unsigned char data[MAX_DATA];
    payload(11, data, len_of(11));
    int rc = iot_clog_append(l, 11, data, len_of(11), NULL);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old);
    assert_int_equal(rc, IOT_EUNAVAILABLE);

    char path[400];
    seg_file(env, 1, path, sizeof path);
    assert_int_equal(file_size(path), good);
    append_ids(l, 4, 2, &m);
    assert_int_equal(m.seg[3], 2);
    iot_clog_close(l);
    struct seen s;
    replay_all(env, &s);
    assert_int_equal(expect_range(&s, 0, &m, 0, m.n), s.n);
    assert_int_equal(s.n, 5);
}

/* ---- durable ------------------------------------------------------------ */

static void durable_round_trip(void **state)
{
    struct env *env = *state;
    struct model m = {0};
    struct iot_clog *l = NULL;
    assert_int_equal(iot_clog_open(env->base, true, 200, &l), IOT_OK);
    append_ids(l, 0, 20, &m);
    iot_clog_close(l);
    assert_true(m.seg[m.n - 1] > 1);

    assert_int_equal(iot_clog_open(env->base, true, 200, &l), IOT_OK);
    struct seen s = {0};
    assert_int_equal(iot_clog_replay(l, on_record, &s), IOT_OK);
    assert_int_equal(expect_range(&s, 0, &m, 0, m.n), s.n);
    assert_int_equal(s.n, 20);
    append_ids(l, 20, 3, &m);
    assert_int_equal(m.seg[20], m.seg[19] + 1);
    iot_clog_release_before(l, m.seg[20]);
    iot_clog_close(l);

    replay_all(env, &s);
    assert_int_equal(expect_range(&s, 0, &m, 20, 23), s.n);
    assert_int_equal(s.n, 3);
}

/* Past segment 9999999999 the names grow an eleventh digit, and replay
 * still finds them. */
static void numbers_past_ten_digits(void **state)
{
    struct env *env = *state;
    char path[400];
    seg_file(env, UINT64_C(9999999999), path, sizeof path);
    write_file(path, "", 0);
    struct model m = {0};
    session(env, 0, 1, 2, &m);
    assert_true(m.seg[0] == UINT64_C(10000000000));
    struct seen s;
    replay_all(env, &s);
    assert_int_equal(expect_range(&s, 0, &m, 0, 2), 2);
    assert_int_equal(s.n, 2);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    iot_log_set_level(IOT_LOG_OFF); /* the corrupt records' warnings are expected */
    const struct CMUnitTest tests[] = {
        TEST(round_trip_after_reopen),
        TEST(fresh_open_of_empty_dir),
        TEST(open_of_missing_dir_fails),
        TEST(reopen_appends_to_new_segment),
        TEST(replay_skips_segment_opened_since),
        TEST(replay_skips_segments_rotated_since),
        TEST(rotation_by_segment_bytes),
        TEST(torn_tail_in_data),
        TEST(torn_tail_in_header),
        TEST(corrupt_record_ends_its_segment),
        TEST(garbage_segments_yield_nothing),
        TEST(non_segments_are_ignored_and_kept),
        TEST(release_before_deletes_older_segments),
        TEST(callback_error_stops_replay),
        TEST(oversized_record_is_refused),
        TEST(failed_append_moves_to_new_segment),
        TEST(durable_round_trip),
        TEST(numbers_past_ten_digits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
