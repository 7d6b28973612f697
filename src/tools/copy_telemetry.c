/* copy_telemetry.c — `iotflowd copy-telemetry` (copy_telemetry.h): the
 * options, the checks before anything is opened, the batch loop with its
 * retries and state saves, and the progress lines. */
#include "tools/copy_telemetry.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/config.h"
#include "core/secrets.h"
#include "core/tm_message.h"
#include "store/telemetry.h"
#include "tools/copy_state.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

enum {
    BATCH_DEFAULT = 500,
    BATCH_MAX = 5000,          /* messages per write_batch */
    BATCH_BYTES = 32 << 20,    /* data + metadata text of one batch; it ends early past it */
    RETRIES = 5,               /* after the first try of a read or a write */
    RETRY_FIRST_MS = 500,      /* then doubling: 0.5 + 1 + 2 + 4 + 8 s of waits */
    PROGRESS_MS = 5000,
    EXIT_FAILED = 1,
    EXIT_USAGE = 2,
    EXIT_STOPPED = 3,          /* --max-batches reached: not finished */
    PATH_MAX_LEN = 4096,
};

#define SAY(...) (fputs("copy-telemetry: ", stderr), fprintf(stderr, __VA_ARGS__), fputc('\n', stderr))

struct options {
    const char *from, *to;
    const char *state_path; /* NULL: the default, named after --to */
    int64_t batch;
    /* Hidden test hook: stop (exit 3) after this many batches of this run,
     * as an interruption would, but at a known point. 0: no limit. */
    int64_t max_batches;
};

/* One exported message; its text lives in the batch's buffer (which may
 * move while the batch fills, hence offsets). */
struct item {
    int64_t device, ts, seq, user;
    size_t data_off, data_len, meta_off, meta_len;
    bool has_meta;
};

struct batch {
    struct item *items;
    size_t n, cap;
    char *text;
    size_t text_len, text_cap;
    int rc; /* IOT_ENOMEM when the export callback could not keep a message */
    struct iot_tm_message *msgs; /* n messages built from items, for the write */
    json_t **roots;              /* what their points borrow */
    size_t built;                /* messages holding points and roots */
};

struct copier {
    struct options opt;
    char from_shown[IOT_COPY_URL_MAX], to_shown[IOT_COPY_URL_MAX]; /* redacted */
    char state_path[PATH_MAX_LEN];
    struct iot_telemetry src, dst;
    struct iot_copy_state st;
    struct batch b;
    sigset_t signals;
    int signal;     /* the signal that stops the copy; 0: none */
    int64_t total;  /* messages in the source when the copy started */
    int64_t copied_before, batches_this_run;
    int64_t started_us, last_progress_us;
};

/* ---- options --------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: iotflowd copy-telemetry --from URL --to URL [--state FILE] [--batch N]\n\n"
            "Copies every telemetry message of one store into another, e.g. from the\n"
            "embedded SQLite store to Cassandra. Messages keep their identity (device,\n"
            "timestamp, seq), owner, data and metadata; the destination computes latest\n"
            "values, rollups and the measurement catalog from them. Copying a message\n"
            "twice stores it once, so a copy can always be run again.\n\n"
            "  --from URL     the store to read (a SQLite file or sqlite: URL: stop the\n"
            "                 server that uses it first; one process per file)\n"
            "  --to URL       the store to write\n"
            "                 (a URL written env:NAME is read from the environment\n"
            "                 variable NAME, so that no password shows in ps)\n"
            "  --state FILE   where progress is kept after every batch; a rerun resumes\n"
            "                 from it (default: .copy-telemetry-<hash of --to>.state in\n"
            "                 the current directory)\n"
            "  --batch N      messages per write, 1-%d (default %d)\n"
            "  --help         this text\n\n"
            "Exit status: 0 done, 1 failed (rerun to resume), 2 bad usage, 128+N when\n"
            "stopped by signal N (rerun to resume). See docs/OPERATIONS.md.\n",
            BATCH_MAX, BATCH_DEFAULT);
}

static int parse_count(const char *flag, const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "copy-telemetry: %s must be a whole number from %" PRId64 " to %" PRId64
                        "\n", flag, min, max);
        return EXIT_USAGE;
    }
    *out = (int64_t)v;
    return 0;
}

/* "--name value" or "--name=value" at argv[*i]; *value NULL when absent. */
static bool take_flag(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t len = strlen(name);
    const char *arg = argv[*i];
    if (strncmp(arg, name, len) != 0)
        return false;
    if (arg[len] == '=')
        *value = arg + len + 1;
    else if (arg[len] == '\0')
        *value = *i + 1 < argc ? argv[++*i] : NULL;
    else
        return false;
    return true;
}

/* "env:NAME" stands for the value of the environment variable NAME: a
 * password on the command line shows in ps. */
static int from_env(const char *flag, const char **url)
{
    if (strncmp(*url, "env:", 4) != 0)
        return 0;
    const char *v = getenv(*url + 4);
    if (!v || !*v) {
        fprintf(stderr, "copy-telemetry: %s names the environment variable %.64s, which is not "
                        "set\n", flag, *url + 4);
        return EXIT_USAGE;
    }
    *url = v;
    return 0;
}

/* 0 to go on, -1 after --help (exit 0), EXIT_USAGE. */
static int parse_options(int argc, char **argv, struct options *opt)
{
    *opt = (struct options){.batch = BATCH_DEFAULT};
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int rc = 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return -1;
        } else if (take_flag(argc, argv, &i, "--from", &v)) {
            opt->from = v;
        } else if (take_flag(argc, argv, &i, "--to", &v)) {
            opt->to = v;
        } else if (take_flag(argc, argv, &i, "--state", &v)) {
            opt->state_path = v;
        } else if (take_flag(argc, argv, &i, "--batch", &v)) {
            rc = v ? parse_count("--batch", v, 1, BATCH_MAX, &opt->batch) : 0;
        } else if (take_flag(argc, argv, &i, "--max-batches", &v)) {
            rc = v ? parse_count("--max-batches", v, 1, INT64_MAX, &opt->max_batches) : 0;
        } else {
            /* not echoed: it may be a URL with a password in the wrong place */
            fprintf(stderr, "copy-telemetry: unexpected argument #%d (see --help)\n", i);
            return EXIT_USAGE;
        }
        if (rc)
            return rc;
        if (!v) {
            fprintf(stderr, "copy-telemetry: %s needs a value (see --help)\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!opt->from || !opt->to || !*opt->from || !*opt->to) {
        fprintf(stderr, "copy-telemetry: --from and --to are required (see --help)\n");
        return EXIT_USAGE;
    }
    return from_env("--from", &opt->from) || from_env("--to", &opt->to) ? EXIT_USAGE : 0;
}

/* ---- checks before anything is opened --------------------------------------- */

/* A URL is kept in the state file, one line: no control characters. */
static int check_url(const char *which, const char *url, char *shown)
{
    iot_config_redact_url(url, shown, IOT_COPY_URL_MAX);
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            SAY("the %s URL holds a control character", which);
            return EXIT_USAGE;
        }
    }
    if (strlen(url) >= IOT_COPY_URL_MAX) {
        SAY("the %s URL is longer than %d bytes", which, IOT_COPY_URL_MAX - 1);
        return EXIT_USAGE;
    }
    if (!iot_telemetry_backend(url)) {
        SAY("no telemetry backend takes the %s URL %s (compiled in: %s)", which, shown,
            iot_telemetry_backend_names());
        return EXIT_USAGE;
    }
    return 0;
}

/* Opening a SQLite store creates a missing file, so a mistyped source would
 * copy nothing and leave an empty store behind; and a store opened twice
 * in one process would replay its commit log twice. */
static int check_files(const struct copier *cp)
{
    char src[PATH_MAX_LEN], dst[PATH_MAX_LEN];
    if (iot_telemetry_file(cp->opt.from, src, sizeof src) != IOT_OK)
        return 0; /* a server store, or memory */
    struct stat s, d;
    if (stat(src, &s) != 0) {
        SAY("no source store at %s: %s", cp->from_shown, strerror(errno));
        return EXIT_FAILED;
    }
    if (iot_telemetry_file(cp->opt.to, dst, sizeof dst) == IOT_OK && stat(dst, &d) == 0 &&
        s.st_dev == d.st_dev && s.st_ino == d.st_ino) {
        SAY("--from and --to are the same store (%s)", cp->from_shown);
        return EXIT_USAGE;
    }
    return 0;
}

/* ---- signals ------------------------------------------------------------------- */

/* Waits up to ms for SIGINT/SIGTERM (0: only looks); true once one came. */
static bool stop_requested(struct copier *cp, int64_t ms)
{
    if (cp->signal)
        return true;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    int64_t until = iot_mono_us() + ms * 1000;
    for (;;) {
        int sig = sigtimedwait(&cp->signals, NULL, &ts);
        if (sig > 0) {
            cp->signal = sig;
            return true;
        }
        int64_t left = until - iot_mono_us();
        if (errno != EINTR || left <= 0)
            return false;
        ts = (struct timespec){.tv_sec = left / 1000000, .tv_nsec = (left % 1000000) * 1000};
    }
}

/* ---- one batch: export, rebuild, write ------------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return IOT_OK;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return IOT_ENOMEM;
    *p = q;
    *cap = n;
    return IOT_OK;
}

static int keep_text(struct batch *b, const char *s, size_t len, size_t *off)
{
    if (grow((void **)&b->text, &b->text_cap, b->text_len + len + 1, 1))
        return IOT_ENOMEM;
    if (len)
        memcpy(b->text + b->text_len, s, len);
    *off = b->text_len;
    b->text_len += len;
    return IOT_OK;
}

static int on_export(void *ctx, const struct iot_tm_record *r, int64_t user_id)
{
    struct batch *b = ctx;
    struct item it = {.device = r->device_id, .ts = r->ts, .seq = r->seq, .user = user_id,
                      .data_len = r->data_len, .meta_len = r->meta_len,
                      .has_meta = r->meta_json != NULL};
    if (grow((void **)&b->items, &b->cap, b->n + 1, sizeof *b->items) ||
        keep_text(b, r->data_json, r->data_len, &it.data_off) ||
        (it.has_meta && keep_text(b, r->meta_json, r->meta_len, &it.meta_off))) {
        b->rc = IOT_ENOMEM;
        return 1;
    }
    b->items[b->n++] = it;
    return b->text_len >= BATCH_BYTES; /* a batch of huge messages ends early */
}

static void batch_release(struct batch *b)
{
    for (size_t i = 0; i < b->built; i++) {
        free((void *)b->msgs[i].points);
        json_decref(b->roots[i]);
    }
    b->built = 0;
}

static void batch_free(struct batch *b)
{
    batch_release(b);
    free(b->items);
    free(b->text);
    free(b->msgs);
    free(b->roots);
    memset(b, 0, sizeof *b);
}

static int read_attempt(struct copier *cp)
{
    struct batch *b = &cp->b;
    batch_release(b);
    b->n = 0;
    b->text_len = 0;
    b->rc = IOT_OK;
    int rc = iot_tm_export_scan(&cp->src, cp->st.device, cp->st.ts, cp->st.seq, cp->opt.batch,
                                on_export, b);
    return rc ? rc : b->rc;
}

static int write_attempt(struct copier *cp)
{
    return iot_tm_write_batch(&cp->dst, cp->b.msgs, cp->b.n);
}

/* The store may answer differently in a moment; anything else will not. */
static bool transient(int rc)
{
    return rc == IOT_EUNAVAILABLE || rc == IOT_ETIMEOUT || rc == IOT_EAGAIN;
}

/* Runs attempt until it succeeds, fails for good, RETRIES retries have
 * failed or a signal asks to stop (IOT_EAGAIN with cp->signal set). */
static int with_retries(struct copier *cp, const char *what, int (*attempt)(struct copier *))
{
    int64_t delay_ms = RETRY_FIRST_MS;
    for (int retry = 0;; retry++) {
        int rc = attempt(cp);
        if (rc == IOT_OK || !transient(rc) || retry == RETRIES)
            return rc;
        SAY("%s failed (%s); retry %d of %d in %.1f s", what, iot_strerror(rc), retry + 1,
            RETRIES, (double)delay_ms / 1000);
        if (stop_requested(cp, delay_ms))
            return IOT_EAGAIN;
        delay_ms *= 2;
    }
}

/* Each exported message as a message to write: same identity, owner and
 * text, points rebuilt from the data by the submission rules. */
static int build_messages(struct copier *cp)
{
    struct batch *b = &cp->b;
    struct iot_tm_message *msgs = realloc(b->msgs, (b->n ? b->n : 1) * sizeof *msgs);
    if (msgs)
        b->msgs = msgs;
    json_t **roots = msgs ? realloc(b->roots, (b->n ? b->n : 1) * sizeof *roots) : NULL;
    if (roots)
        b->roots = roots;
    if (!msgs || !roots)
        return IOT_ENOMEM;
    for (size_t i = 0; i < b->n; i++) {
        const struct item *it = &b->items[i];
        struct iot_tm_message *m = &b->msgs[i];
        *m = (struct iot_tm_message){.device_id = it->device, .user_id = it->user, .ts = it->ts,
                                     .seq = it->seq, .data_json = b->text + it->data_off,
                                     .data_len = it->data_len,
                                     .meta_json = it->has_meta ? b->text + it->meta_off : NULL,
                                     .meta_len = it->has_meta ? it->meta_len : 0};
        char err[256] = "";
        int rc = iot_tm_points_from_stored(m->data_json, m->data_len, m, &b->roots[i], err,
                                           sizeof err);
        if (rc) {
            char when[IOT_ISO8601_LEN + 1];
            iot_iso8601(it->ts, when, sizeof when);
            SAY("the message of device %" PRId64 " at %s (seq %" PRId64 ") cannot be copied: %s",
                it->device, when, it->seq, rc == IOT_EINVAL ? err : iot_strerror(rc));
            return rc;
        }
        b->built = i + 1;
    }
    return IOT_OK;
}

/* ---- progress ------------------------------------------------------------------- */

static double rate(const struct copier *cp)
{
    double secs = (double)(iot_mono_us() - cp->started_us) / 1e6;
    return secs > 0 ? (double)(cp->st.copied - cp->copied_before) / secs : 0;
}

static void progress(struct copier *cp)
{
    int64_t now = iot_mono_us();
    if (now - cp->last_progress_us < PROGRESS_MS * 1000)
        return;
    cp->last_progress_us = now;
    double pct = cp->total > 0 ? 100.0 * (double)cp->st.copied / (double)cp->total : 100.0;
    SAY("%" PRId64 " / %" PRId64 " messages (%.1f%%), %.0f msg/s, device %" PRId64,
        cp->st.copied, cp->total, pct > 100 ? 100.0 : pct, rate(cp), cp->st.device);
}

/* ---- the copy ------------------------------------------------------------------ */

static int open_store(const char *which, const char *url, const char *shown, bool durable,
                      struct iot_telemetry *out)
{
    int rc = iot_telemetry_open(url, durable, out);
    if (rc)
        SAY("cannot open the %s store %s: %s", which, shown, iot_strerror(rc));
    return rc;
}

/* The state file: resumes from it, or starts one. */
static int load_state(struct copier *cp)
{
    char err[256] = "";
    struct iot_copy_state st;
    int rc = iot_copy_state_load(cp->state_path, &st, err, sizeof err);
    if (rc == IOT_ENOTFOUND) {
        iot_copy_state_init(&cp->st, cp->from_shown, cp->to_shown);
        return IOT_OK;
    }
    if (rc) {
        SAY("cannot use the state file %s: %s (delete it to start over)", cp->state_path, err);
        return rc;
    }
    if (strcmp(st.from, cp->from_shown) != 0 || strcmp(st.to, cp->to_shown) != 0) {
        char from[IOT_COPY_URL_MAX], to[IOT_COPY_URL_MAX]; /* redacted when saved; and again */
        iot_config_redact_url(st.from, from, sizeof from);
        iot_config_redact_url(st.to, to, sizeof to);
        SAY("the state file %s belongs to a copy from %s to %s; pass another --state, or "
            "delete it to start over", cp->state_path, from, to);
        return IOT_ECONFLICT;
    }
    cp->st = st;
    if (st.device == INT64_MIN && st.ts == INT64_MIN && st.seq == INT64_MIN)
        return IOT_OK;
    char when[IOT_ISO8601_LEN + 1];
    iot_iso8601(st.ts, when, sizeof when);
    if (st.done)
        SAY("%s says this copy finished (%" PRId64 " messages); copying only what comes after "
            "its last message (delete it to copy everything again)", cp->state_path, st.copied);
    else
        SAY("resuming from %s: %" PRId64 " messages copied in %" PRId64 " batches, the last "
            "one of device %" PRId64 " at %s (seq %" PRId64 ")", cp->state_path, st.copied,
            st.batches, st.device, when, st.seq);
    return IOT_OK;
}

static int save_state(struct copier *cp)
{
    char err[256] = "";
    int rc = iot_copy_state_save(cp->state_path, &cp->st, err, sizeof err);
    if (rc)
        SAY("cannot record progress in %s: %s", cp->state_path, err);
    return rc;
}

/* One batch: IOT_OK with b.n == 0 at the end of the source. */
static int copy_batch(struct copier *cp)
{
    int rc = with_retries(cp, "reading the source", read_attempt);
    if (rc || cp->b.n == 0)
        return rc;
    if ((rc = build_messages(cp)))
        return rc;
    if ((rc = with_retries(cp, "writing the destination", write_attempt)))
        return rc;
    const struct item *last = &cp->b.items[cp->b.n - 1];
    cp->st.device = last->device;
    cp->st.ts = last->ts;
    cp->st.seq = last->seq;
    cp->st.copied += (int64_t)cp->b.n;
    cp->st.batches++;
    cp->batches_this_run++;
    return save_state(cp);
}

static void summary(struct copier *cp)
{
    double secs = (double)(iot_mono_us() - cp->started_us) / 1e6;
    SAY("done: %" PRId64 " messages copied (%" PRId64 " in this run, %.1f s, %.0f msg/s) from %s "
        "to %s", cp->st.copied, cp->st.copied - cp->copied_before, secs, rate(cp),
        cp->from_shown, cp->to_shown);
    struct iot_tm_stats s = {0}, d = {0};
    if (iot_tm_stats(&cp->src, &s) || iot_tm_stats(&cp->dst, &d)) {
        SAY("cannot read the stores' totals to compare them");
        return;
    }
    SAY("source: %" PRId64 " messages of %" PRId64 " devices; destination: %" PRId64
        " messages of %" PRId64 " devices", s.messages, s.devices, d.messages, d.devices);
    if (d.messages < s.messages)
        SAY("warning: the destination holds fewer messages than the source (does its retention "
            "drop old messages, or did something delete some?)");
}

/* Returns the exit status. */
static int copy_all(struct copier *cp)
{
    struct iot_tm_stats s = {0};
    int rc = iot_tm_stats(&cp->src, &s);
    if (rc) {
        SAY("cannot read the source's totals: %s", iot_strerror(rc));
        return EXIT_FAILED;
    }
    cp->total = s.messages;
    SAY("copying %" PRId64 " messages of %" PRId64 " devices from %s to %s, in batches of %" PRId64
        " (state: %s)", s.messages, s.devices, cp->from_shown, cp->to_shown, cp->opt.batch,
        cp->state_path);
    cp->copied_before = cp->st.copied;
    cp->started_us = cp->last_progress_us = iot_mono_us();
    for (;;) {
        if (stop_requested(cp, 0))
            break;
        if (cp->opt.max_batches && cp->batches_this_run >= cp->opt.max_batches) {
            SAY("stopped after %" PRId64 " batches (--max-batches), %" PRId64 " messages copied; "
                "run the same command again to resume", cp->batches_this_run, cp->st.copied);
            return EXIT_STOPPED;
        }
        rc = copy_batch(cp);
        if (rc == IOT_EAGAIN && cp->signal)
            break;
        if (rc) {
            SAY("failed (%s) after %" PRId64 " messages; %s keeps the progress: run the same "
                "command again to resume", iot_strerror(rc), cp->st.copied, cp->state_path);
            return EXIT_FAILED;
        }
        if (cp->b.n == 0) {
            cp->st.done = true;
            if (save_state(cp))
                return EXIT_FAILED;
            summary(cp);
            return EXIT_SUCCESS;
        }
        progress(cp);
    }
    SAY("interrupted by signal %d after %" PRId64 " messages; %s keeps the progress: run the "
        "same command again to resume", cp->signal, cp->st.copied, cp->state_path);
    return 128 + cp->signal;
}

static int run(struct copier *cp)
{
    int rc = check_url("--from", cp->opt.from, cp->from_shown);
    if (!rc)
        rc = check_url("--to", cp->opt.to, cp->to_shown);
    if (!rc)
        rc = check_files(cp);
    if (rc)
        return rc;
    if (cp->opt.state_path)
        snprintf(cp->state_path, sizeof cp->state_path, "%s", cp->opt.state_path);
    else
        iot_copy_state_default_path(cp->to_shown, cp->state_path, sizeof cp->state_path);
    if (load_state(cp))
        return EXIT_FAILED;
    /* The destination fsyncs every batch before the state says it is copied. */
    if (open_store("source", cp->opt.from, cp->from_shown, false, &cp->src))
        return EXIT_FAILED;
    if (open_store("destination", cp->opt.to, cp->to_shown, true, &cp->dst)) {
        iot_telemetry_close(&cp->src);
        return EXIT_FAILED;
    }
    int status = EXIT_FAILED;
    if (cp->src.ops->version < 3 || !cp->src.ops->export_scan)
        SAY("the source's backend (%s) cannot export its messages", cp->src.ops->name);
    else
        status = copy_all(cp);
    iot_telemetry_close(&cp->dst);
    iot_telemetry_close(&cp->src);
    return status;
}

int iot_copy_telemetry_main(int argc, char **argv)
{
    struct copier *cp = calloc(1, sizeof *cp);
    if (!cp) {
        fprintf(stderr, "copy-telemetry: out of memory\n");
        return EXIT_FAILED;
    }
    int status = parse_options(argc, argv, &cp->opt);
    if (status == 0) {
        /* Blocked before the stores start threads, which inherit the mask:
         * only stop_requested() takes these signals. */
        sigemptyset(&cp->signals);
        sigaddset(&cp->signals, SIGINT);
        sigaddset(&cp->signals, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &cp->signals, NULL);
        iot_log_set_level(IOT_LOG_WARN);
        status = iot_secrets_init() ? EXIT_FAILED : run(cp);
    } else if (status < 0) {
        status = EXIT_SUCCESS;
    }
    batch_free(&cp->b);
    free(cp);
    return status;
}
