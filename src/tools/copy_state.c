/* copy_state.c — the progress file of copy-telemetry (copy_state.h). */
#include "tools/copy_state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/secrets.h"
#include "util/err.h"

#define STATE_MAGIC "iotflowd copy-telemetry state 1"
#define STATE_MAX 8192 /* bytes of a state file: two URLs and a few numbers */

void iot_copy_state_init(struct iot_copy_state *st, const char *from, const char *to)
{
    memset(st, 0, sizeof *st);
    snprintf(st->from, sizeof st->from, "%s", from);
    snprintf(st->to, sizeof st->to, "%s", to);
    st->device = st->ts = st->seq = INT64_MIN;
}

void iot_copy_state_default_path(const char *to, char *out, size_t size)
{
    char hex[IOT_SHA256_HEX_LEN + 1];
    iot_sha256_hex(to, strlen(to), hex, sizeof hex);
    snprintf(out, size, ".copy-telemetry-%.16s.state", hex);
}

/* ---- reading ------------------------------------------------------------- */

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return IOT_EINVAL;
    *out = (int64_t)v;
    return IOT_OK;
}

/* One "key=value" line (NUL-terminated, without its newline). */
static int parse_line(struct iot_copy_state *st, char *line)
{
    char *eq = strchr(line, '=');
    if (!eq)
        return IOT_EINVAL;
    *eq = '\0';
    const char *key = line, *val = eq + 1;
    int64_t done;
    if (strcmp(key, "from") == 0 || strcmp(key, "to") == 0) {
        char *dst = key[0] == 'f' ? st->from : st->to;
        return snprintf(dst, IOT_COPY_URL_MAX, "%s", val) < IOT_COPY_URL_MAX ? IOT_OK
                                                                           : IOT_EINVAL;
    }
    if (strcmp(key, "device") == 0)
        return parse_i64(val, &st->device);
    if (strcmp(key, "ts") == 0)
        return parse_i64(val, &st->ts);
    if (strcmp(key, "seq") == 0)
        return parse_i64(val, &st->seq);
    if (strcmp(key, "copied") == 0)
        return parse_i64(val, &st->copied);
    if (strcmp(key, "batches") == 0)
        return parse_i64(val, &st->batches);
    if (strcmp(key, "done") == 0 && parse_i64(val, &done) == IOT_OK && (done == 0 || done == 1)) {
        st->done = done == 1;
        return IOT_OK;
    }
    return IOT_EINVAL;
}

static int parse_state(char *text, struct iot_copy_state *st, char *err, size_t err_size)
{
    iot_copy_state_init(st, "", "");
    int lineno = 0;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        int bad = lineno == 1 ? strcmp(line, STATE_MAGIC) != 0 : parse_line(st, line) != IOT_OK;
        if (bad) {
            snprintf(err, err_size, "line %d is not part of a copy-telemetry state", lineno);
            return IOT_EINVAL;
        }
        line = nl ? nl + 1 : NULL;
    }
    if (lineno == 0 || !st->from[0] || !st->to[0] || st->copied < 0 || st->batches < 0) {
        snprintf(err, err_size, "it is not a complete copy-telemetry state");
        return IOT_EINVAL;
    }
    return IOT_OK;
}

int iot_copy_state_load(const char *path, struct iot_copy_state *st, char *err, size_t err_size)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return IOT_ENOTFOUND;
        snprintf(err, err_size, "%s", strerror(errno));
        return IOT_EUNAVAILABLE;
    }
    char *text = malloc(STATE_MAX + 1);
    if (!text) {
        fclose(f);
        return IOT_ENOMEM;
    }
    size_t n = fread(text, 1, STATE_MAX + 1, f);
    int read_error = ferror(f);
    fclose(f);
    int rc;
    if (read_error) {
        snprintf(err, err_size, "read error");
        rc = IOT_EUNAVAILABLE;
    } else if (n > STATE_MAX || memchr(text, '\0', n)) {
        snprintf(err, err_size, "it is not a copy-telemetry state");
        rc = IOT_EINVAL;
    } else {
        text[n] = '\0';
        rc = parse_state(text, st, err, err_size);
    }
    free(text);
    return rc;
}

/* ---- writing ------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* fsync of the directory holding `path`, so that the rename is durable. */
static int sync_dir_of(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int save_failed(char *err, size_t err_size, const char *what, const char *tmp)
{
    snprintf(err, err_size, "%s: %s", what, strerror(errno));
    if (tmp)
        unlink(tmp);
    return IOT_EUNAVAILABLE;
}

int iot_copy_state_save(const char *path, const struct iot_copy_state *st, char *err,
                        size_t err_size)
{
    char text[STATE_MAX];
    int len = snprintf(text, sizeof text,
                       STATE_MAGIC "\nfrom=%s\nto=%s\ndevice=%" PRId64 "\nts=%" PRId64
                                   "\nseq=%" PRId64 "\ncopied=%" PRId64 "\nbatches=%" PRId64
                                   "\ndone=%d\n",
                       st->from, st->to, st->device, st->ts, st->seq, st->copied, st->batches,
                       st->done ? 1 : 0);
    if (len < 0 || (size_t)len >= sizeof text) {
        snprintf(err, err_size, "state too large");
        return IOT_EINVAL;
    }
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        snprintf(err, err_size, "path too long");
        return IOT_EINVAL;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return save_failed(err, err_size, "create", NULL);
    if (write_all(fd, text, (size_t)len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return save_failed(err, err_size, "write", tmp);
    }
    if (close(fd) != 0)
        return save_failed(err, err_size, "close", tmp);
    if (rename(tmp, path) != 0)
        return save_failed(err, err_size, "rename", tmp);
    if (sync_dir_of(path) != 0)
        return save_failed(err, err_size, "fsync of the directory", NULL);
    return IOT_OK;
}
