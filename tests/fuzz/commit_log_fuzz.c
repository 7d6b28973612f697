/* commit_log_fuzz.c — libFuzzer target for what a restart reads from disk:
 * the input becomes the one commit-log segment beside an empty SQLite
 * telemetry database, which is then replayed twice — by the log alone
 * (src/store/commit_log.c: framing, checksums, torn tails) and by opening
 * the telemetry store (src/store/sqlite/telemetry_sqlite_log.c: each
 * intact record's batch blob is decoded by telemetry_sqlite_batch.c,
 * staged and flushed into SQLite).
 *
 * The first byte picks a mode. Odd: the records' magic, length and CRC are
 * rewritten before the file is written, so mutations of the batch blobs
 * get past the checksum and reach the decoder. Even: the bytes as they are
 * (what a crash or a disk leaves).
 *
 * Build for fuzzing with clang -DFUZZING -fsanitize=fuzzer,address,undefined;
 * without FUZZING it is a plain program replaying files (fuzz_replay.h). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/commit_log.h"
#include "store/telemetry.h"
#include "util/crc32c.h"
#include "util/err.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER 24
#define MAGIC UINT32_C(0x4C544F49)
#define MAX_INPUT (1u << 20)

static char dir[256];

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Makes every record of buf intact: its length is cut to what follows, and
 * magic and checksum are set as iot_clog_append writes them. */
static void seal_records(uint8_t *buf, size_t len)
{
    size_t pos = 0;
    while (len - pos >= HEADER) {
        uint8_t *rec = buf + pos;
        size_t n = get32(rec + 4);
        if (n > len - pos - HEADER)
            n = len - pos - HEADER;
        put32(rec, MAGIC);
        put32(rec + 4, (uint32_t)n);
        uint32_t crc = iot_crc32c(0, rec + 4, 12);
        put32(rec + 16, iot_crc32c(crc, rec + HEADER, n));
        put32(rec + 20, 0);
        pos += HEADER + n;
    }
}

static bool write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

struct walk {
    uint64_t last_segment;
    size_t records;
};

/* Replay's promises: records arrive in segment order, data within the
 * record bound. */
static int on_record(void *ctx, uint64_t segment, uint64_t id, const unsigned char *rec,
                     size_t len)
{
    struct walk *w = ctx;
    if (segment < w->last_segment || len > IOT_CLOG_RECORD_MAX || (len && !rec))
        abort();
    w->last_segment = segment;
    w->records++;
    volatile unsigned char sink = 0;
    for (size_t i = 0; i < len; i++)
        sink ^= rec[i];
    (void)sink;
    (void)id;
    return IOT_OK;
}

static void replay_log_alone(const char *base)
{
    struct iot_clog *log;
    if (iot_clog_open(base, false, 0, &log) != IOT_OK)
        abort(); /* the directory is ours */
    struct walk w = {0, 0};
    if (iot_clog_replay(log, on_record, &w) != IOT_OK)
        abort(); /* on_record never fails, and reading a file does not */
    iot_clog_close(log);
}

/* Opening the store replays the log into it; a record that passes its
 * checksum but does not decode makes open fail, which is fine: no crash,
 * no leak. */
static void replay_into_store(const char *db)
{
    char url[352];
    snprintf(url, sizeof url, "sqlite://%s", db);
    struct iot_telemetry t;
    if (iot_telemetry_open(url, false, &t) == IOT_OK) {
        struct iot_tm_stats st;
        iot_tm_stats(&t, &st);
        iot_telemetry_close(&t);
    }
}

static void remove_files(const char *db)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal", "-log-0000000001",
                                           "-log-0000000002"};
    char path[352];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(path, sizeof path, "%s%s", db, suffixes[i]);
        unlink(path);
    }
}

/* libFuzzer ends with exit(): the scratch directory goes then. */
static void remove_dir(void)
{
    if (dir[0])
        rmdir(dir);
}

static bool setup(void)
{
    if (dir[0])
        return true;
    iot_log_set_level(IOT_LOG_OFF); /* a torn tail is warned about, at every input */
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/iot-clog-fuzz-XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    atexit(remove_dir);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > MAX_INPUT || !setup())
        return 0;
    size_t len = size - 1;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, len);
    if (data[0] & 1)
        seal_records(buf, len);

    char db[320], base[336], seg[352];
    snprintf(db, sizeof db, "%s/telemetry.db", dir);
    snprintf(base, sizeof base, "%s-log-", db);
    snprintf(seg, sizeof seg, "%s0000000001", base);
    if (write_file(seg, buf, len)) {
        replay_log_alone(base);
        replay_into_store(db);
    }
    remove_files(db);
    free(buf);
    return 0;
}

#ifndef FUZZING
#include "fuzz_replay.h"

int main(int argc, char **argv)
{
    return fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);
}
#endif
