#include "store/commit_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/crc32c.h"
#include "util/err.h"
#include "util/log.h"

#define MAGIC UINT32_C(0x4C544F49) /* "IOTL" little-endian */
#define HEADER 24
#define DIGITS 10

struct iot_clog {
    char *dir;    /* directory of the segments */
    char *prefix; /* file-name prefix inside dir */
    bool durable;
    size_t segment_bytes;
    uint64_t *segs; /* existing segment numbers, ascending */
    size_t n_segs, cap_segs;
    uint64_t current; /* where appends go */
    uint64_t opened;  /* current at open: replay reads the segments below */
    int fd;           /* the current segment, or -1 */
    uint64_t size;    /* bytes in it */
};

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void seg_path(const struct iot_clog *l, uint64_t seg, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s%0*" PRIu64, l->dir, l->prefix, DIGITS, seg);
}

static int add_seg(struct iot_clog *l, uint64_t seg)
{
    if (l->n_segs == l->cap_segs) {
        size_t cap = l->cap_segs ? 2 * l->cap_segs : 8;
        uint64_t *grown = realloc(l->segs, cap * sizeof *grown);
        if (!grown)
            return IOT_ENOMEM;
        l->segs = grown;
        l->cap_segs = cap;
    }
    size_t i = l->n_segs++;
    while (i > 0 && l->segs[i - 1] > seg) {
        l->segs[i] = l->segs[i - 1];
        i--;
    }
    l->segs[i] = seg;
    return IOT_OK;
}

/* The segment number in a directory entry's name, or 0 if it is not one
 * (DIGITS is the names' minimum width; numbers past 10^10 are longer). */
static uint64_t seg_of(const struct iot_clog *l, const char *name)
{
    size_t plen = strlen(l->prefix);
    if (strncmp(name, l->prefix, plen) != 0)
        return 0;
    size_t digits = strlen(name + plen);
    if (digits < DIGITS || digits > 19 || (digits > DIGITS && name[plen] == '0'))
        return 0; /* one name per number: only the ten-digit form has padding */
    uint64_t v = 0;
    for (const char *p = name + plen; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    return v;
}

static int list_segments(struct iot_clog *l)
{
    DIR *d = opendir(l->dir);
    if (!d)
        return IOT_EUNAVAILABLE;
    int rc = IOT_OK;
    struct dirent *e;
    while (rc == IOT_OK && (e = readdir(d)) != NULL) {
        uint64_t seg = seg_of(l, e->d_name);
        if (seg)
            rc = add_seg(l, seg);
    }
    closedir(d);
    return rc;
}

int iot_clog_open(const char *base, bool durable, size_t segment_bytes, struct iot_clog **out)
{
    *out = NULL;
    struct iot_clog *l = calloc(1, sizeof *l);
    if (!l)
        return IOT_ENOMEM;
    l->fd = -1;
    l->durable = durable;
    l->segment_bytes = segment_bytes ? segment_bytes : IOT_CLOG_SEGMENT_BYTES;
    const char *slash = strrchr(base, '/');
    l->dir = slash ? strndup(base, slash == base ? 1 : (size_t)(slash - base)) : strdup(".");
    l->prefix = strdup(slash ? slash + 1 : base);
    int rc = l->dir && l->prefix ? list_segments(l) : IOT_ENOMEM;
    if (rc) {
        iot_clog_close(l);
        return rc;
    }
    l->current = l->n_segs ? l->segs[l->n_segs - 1] + 1 : 1;
    l->opened = l->current;
    *out = l;
    return IOT_OK;
}

/* ---- replay ------------------------------------------------------------ */

static int read_file(const char *path, unsigned char **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return errno == ENOENT ? IOT_ENOTFOUND : IOT_EUNAVAILABLE;
    }
    size_t size = (size_t)st.st_size, got = 0;
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return IOT_ENOMEM;
    }
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* shorter than fstat said: read what is there */
        got += (size_t)n;
    }
    close(fd);
    *data = buf;
    *len = got;
    return IOT_OK;
}

/* Length of the intact record at buf[pos..len), or 0. */
static size_t record_at(const unsigned char *buf, size_t len, size_t pos)
{
    if (len - pos < HEADER || get32(buf + pos) != MAGIC)
        return 0;
    uint32_t n = get32(buf + pos + 4);
    if (n > IOT_CLOG_RECORD_MAX || len - pos - HEADER < n)
        return 0;
    uint32_t crc = iot_crc32c(0, buf + pos + 4, 12);
    crc = iot_crc32c(crc, buf + pos + HEADER, n);
    return crc == get32(buf + pos + 16) ? HEADER + (size_t)n : 0;
}

static int replay_segment(struct iot_clog *l, uint64_t seg, iot_clog_record_fn fn, void *ctx)
{
    char path[4096];
    seg_path(l, seg, path, sizeof path);
    unsigned char *buf = NULL;
    size_t len = 0, pos = 0, rec;
    int rc = read_file(path, &buf, &len);
    if (rc)
        return rc == IOT_ENOTFOUND ? IOT_OK : rc;
    while (rc == IOT_OK && pos < len && (rec = record_at(buf, len, pos)) != 0) {
        rc = fn(ctx, seg, get64(buf + pos + 8), buf + pos + HEADER, rec - HEADER);
        pos += rec;
    }
    if (rc == IOT_OK && pos < len)
        IOT_WARN("commit log %s: %zu bytes at offset %zu are not an intact record and are "
                 "ignored (a write cut short by a crash is never acknowledged)",
                 path, len - pos, pos);
    free(buf);
    return rc;
}

int iot_clog_replay(struct iot_clog *l, iot_clog_record_fn fn, void *ctx)
{
    int rc = IOT_OK;
    for (size_t i = 0; i < l->n_segs && rc == IOT_OK; i++)
        if (l->segs[i] < l->opened)
            rc = replay_segment(l, l->segs[i], fn, ctx);
    return rc;
}

/* ---- append ------------------------------------------------------------ */

static void sync_dir(const struct iot_clog *l)
{
    int fd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static void close_segment(struct iot_clog *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}

/* Opens a fresh segment `current` for appends. */
static int new_segment(struct iot_clog *l)
{
    close_segment(l);
    char path[4096];
    for (int tries = 0; tries < 16; tries++, l->current++) {
        seg_path(l, l->current, path, sizeof path);
        l->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
        if (l->fd >= 0)
            break;
        if (errno != EEXIST) {
            IOT_ERROR("commit log: cannot create %s: %s", path, strerror(errno));
            return IOT_EUNAVAILABLE;
        }
    }
    if (l->fd < 0 || add_seg(l, l->current) != IOT_OK) {
        close_segment(l);
        return IOT_EUNAVAILABLE;
    }
    l->size = 0;
    if (l->durable)
        sync_dir(l);
    return IOT_OK;
}

static bool write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        size_t done = (size_t)w;
        while (n > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return true;
}

/* A failed append: cut the partial record off if possible, and leave the
 * segment, so that no later record can follow a broken one. */
static int append_failed(struct iot_clog *l, const char *what)
{
    IOT_ERROR("commit log: %s failed: %s", what, strerror(errno));
    if (ftruncate(l->fd, (off_t)l->size) != 0)
        IOT_WARN("commit log: cannot cut a partial record off: %s", strerror(errno));
    close_segment(l);
    l->current++;
    return IOT_EUNAVAILABLE;
}

int iot_clog_append(struct iot_clog *l, uint64_t id, const void *data, size_t len,
                    uint64_t *segment)
{
    if (len > IOT_CLOG_RECORD_MAX)
        return IOT_ELIMIT;
    if (l->fd < 0 || l->size >= l->segment_bytes) {
        if (l->fd >= 0)
            l->current++;
        int rc = new_segment(l);
        if (rc)
            return rc;
    }
    unsigned char h[HEADER];
    put32(h, MAGIC);
    put32(h + 4, (uint32_t)len);
    put64(h + 8, id);
    put32(h + 16, iot_crc32c(iot_crc32c(0, h + 4, 12), data, len));
    put32(h + 20, 0);
    struct iovec iov[2] = {{h, HEADER}, {(void *)data, len}};
    if (!write_all(l->fd, iov, len ? 2 : 1))
        return append_failed(l, "write");
    if (l->durable && fdatasync(l->fd) != 0)
        return append_failed(l, "fdatasync");
    l->size += HEADER + len;
    if (segment)
        *segment = l->current;
    return IOT_OK;
}

uint64_t iot_clog_current(const struct iot_clog *l) { return l->current; }

void iot_clog_release_before(struct iot_clog *l, uint64_t segment)
{
    size_t kept = 0;
    for (size_t i = 0; i < l->n_segs; i++) {
        if (l->segs[i] >= segment) {
            l->segs[kept++] = l->segs[i];
            continue;
        }
        char path[4096];
        seg_path(l, l->segs[i], path, sizeof path);
        if (unlink(path) != 0 && errno != ENOENT) {
            IOT_WARN("commit log: cannot delete %s: %s", path, strerror(errno));
            l->segs[kept++] = l->segs[i]; /* tried again next time */
        }
    }
    l->n_segs = kept;
}

void iot_clog_close(struct iot_clog *l)
{
    if (!l)
        return;
    close_segment(l);
    free(l->segs);
    free(l->dir);
    free(l->prefix);
    free(l);
}
