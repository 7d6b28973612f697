/* commit_log.h — an append-only log of checksummed records in numbered
 * segment files: what a store writes, in one write(2), before it
 * acknowledges a batch, and replays after a crash (the SQLite telemetry
 * store's commit path; see telemetry_sqlite_int.h).
 *
 * Files: "<base>0000000001", "<base>0000000002", ... (at least ten
 * digits). Appends go to the
 * newest segment, created on the first append after open (never one that
 * a crash left behind, whose tail may be torn) and replaced by the next
 * one once it holds segment_bytes. A record:
 *   u32 magic "IOTL", u32 length of data, u64 id (the caller's, e.g. a
 *   batch number), u32 CRC-32C of length, id and data, u32 zero; data.
 * (all little-endian). Replay stops reading a segment at its first record
 * that is short, has a wrong magic or a wrong checksum: a write cut short
 * by a crash, which was never acknowledged.
 *
 * Durability: append returns once write(2) has put the record in the page
 * cache (survives kill -9 of the process); with `durable` it also
 * fdatasyncs the segment (survives power loss), and the directory when a
 * segment is created. The caller deletes segments (release_before) once
 * their records are applied elsewhere, durably.
 *
 * Not thread-safe: the caller serialises every call on one handle. */
#ifndef IOT_STORE_COMMIT_LOG_H
#define IOT_STORE_COMMIT_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IOT_CLOG_SEGMENT_BYTES (64u << 20)
#define IOT_CLOG_RECORD_MAX (1u << 30) /* bytes of data in one record */

struct iot_clog;

/* Lists the segments "<base>NNNNNNNNNN" that exist (creates nothing).
 * segment_bytes 0 means IOT_CLOG_SEGMENT_BYTES. IOT_EUNAVAILABLE when the
 * directory cannot be read. */
int iot_clog_open(const char *base, bool durable, size_t segment_bytes, struct iot_clog **out);

/* Calls fn(ctx, segment, id, data, len) for every intact record of the
 * segments that existed at open, oldest first; data is borrowed for the
 * call. A non-zero return from fn stops the replay and is returned. */
typedef int (*iot_clog_record_fn)(void *ctx, uint64_t segment, uint64_t id,
                                  const unsigned char *data, size_t len);
int iot_clog_replay(struct iot_clog *l, iot_clog_record_fn fn, void *ctx);

/* Appends one record; *segment (may be NULL) receives the number of the
 * segment that holds it. On failure (IOT_EUNAVAILABLE: I/O error or disk
 * full; IOT_ELIMIT: len > IOT_CLOG_RECORD_MAX) no intact record was
 * written, and the next append starts a new segment. */
int iot_clog_append(struct iot_clog *l, uint64_t id, const void *data, size_t len,
                    uint64_t *segment);

/* The segment appends go to: the open one, or the one the next append
 * creates. (A full segment stays current until that append replaces it.) */
uint64_t iot_clog_current(const struct iot_clog *l);

/* Deletes every segment numbered below `segment`. */
void iot_clog_release_before(struct iot_clog *l, uint64_t segment);

/* Closes the open segment. NULL is a no-op. Deletes nothing. */
void iot_clog_close(struct iot_clog *l);

#endif
