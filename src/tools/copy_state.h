/* copy_state.h — the progress file of `iotflowd copy-telemetry`: which
 * stores a copy runs between and the last message it wrote (device, ts,
 * seq: the export's cursor), with its counts, so that an interrupted copy
 * resumes where it stopped.
 *
 * Text, one "key=value" a line under a first line naming the format. Saved
 * whole into a temporary file beside it, fsynced, renamed over the old one
 * and the directory fsynced: a crash at any point leaves the old state or
 * the new one, never a torn file. URLs are kept redacted
 * (iot_config_redact_url), so the file holds no password. One thread. */
#ifndef IOT_TOOLS_COPY_STATE_H
#define IOT_TOOLS_COPY_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IOT_COPY_URL_MAX 1024 /* bytes of a redacted URL, NUL included */

struct iot_copy_state {
    char from[IOT_COPY_URL_MAX]; /* the source store, redacted */
    char to[IOT_COPY_URL_MAX];   /* the destination store, redacted */
    /* The last message written; all INT64_MIN before the first batch. */
    int64_t device, ts, seq;
    int64_t copied;  /* messages written up to it, over every run */
    int64_t batches; /* batches written, over every run */
    bool done;       /* the export reached the end of the source */
};

/* A state before anything is copied, between these (redacted) URLs. */
void iot_copy_state_init(struct iot_copy_state *st, const char *from, const char *to);

/* Reads `path` into *st. IOT_ENOTFOUND when there is no such file,
 * IOT_EINVAL when it is not a state file (err says which line),
 * IOT_EUNAVAILABLE when it cannot be read (err has the system's reason). */
int iot_copy_state_load(const char *path, struct iot_copy_state *st, char *err, size_t err_size);

/* Replaces `path` with *st atomically and durably (above). On failure the
 * old file is intact and err has the system's reason. */
int iot_copy_state_save(const char *path, const struct iot_copy_state *st, char *err,
                        size_t err_size);

/* The default path for a copy to the (redacted) URL `to`, in the current
 * directory: ".copy-telemetry-<16 hex of its SHA-256>.state". */
void iot_copy_state_default_path(const char *to, char *out, size_t size);

#endif
