/* ingest.h — the telemetry ingest pipeline (the hot path, see
 * docs/ARCHITECTURE.md "Telemetry ingest").
 *
 * Request threads submit jobs (the messages of one request) to a bounded
 * queue; one writer thread takes everything queued, commits it to the
 * telemetry store in one batch (group commit), then — still off the
 * request path — sends the cache one batch of writes (core/fanout.h): the
 * latest values (core/latest.h), presence, and each message published on
 * its device's channel; then it hands the batch to the `after_commit`
 * hook (the alert rules, core/alerting.h) and calls every job's `done`.
 * A job is acknowledged only after its batch is durable. Registry
 * last_seen updates — from telemetry and from heartbeats — are gathered and
 * written in one batch per second. (Retention runs on a thread of its own,
 * core/retention.h: a purge would stall the writer.) */
#ifndef IOT_CORE_INGEST_H
#define IOT_CORE_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "store/cache.h"
#include "store/registry.h"
#include "store/telemetry.h"

struct iot_ingest_job {
    const struct iot_tm_message *msgs;
    size_t n;
    int status; /* set before done(): IOT_OK or the store's error */
    /* Runs on the writer thread; the job may be freed from then on. */
    void (*done)(struct iot_ingest_job *job);
    void *ctx;
    struct iot_ingest_job *next; /* queue link, owned by the pipeline */
};

/* Called on the writer thread after each committed batch (after its
 * cache fan-out, before its jobs are acknowledged): the messages and their
 * points are borrowed for the call only. It must not block — copy and
 * hand over (core/alerting.h does). */
typedef void (*iot_ingest_commit_fn)(void *ctx, const struct iot_tm_message *msgs, size_t n);

struct iot_ingest_config {
    size_t queue_max;        /* messages waiting; more → IOT_ELIMIT */
    size_t batch_max;        /* messages per commit */
    int64_t seen_flush_ms;   /* period of registry last_seen writes */
    iot_ingest_commit_fn after_commit; /* NULL: none */
    void *after_commit_ctx;
};

struct iot_ingest_stats {
    int64_t committed_messages;
    int64_t committed_points; /* the measurement values of those messages */
    int64_t commits;
    int64_t rejected_full;
    int64_t failed;
    int64_t queued; /* now */
};

struct iot_ingest;

struct iot_ingest *iot_ingest_start(const struct iot_ingest_config *cfg, struct iot_telemetry *tm,
                                    struct iot_cache *cache, struct iot_registry *reg);
/* Queues a job. IOT_ELIMIT when the queue is full (answer 503 +
 * Retry-After), IOT_EUNAVAILABLE once stopping. On success `done` will be
 * called exactly once. */
int iot_ingest_submit(struct iot_ingest *ing, struct iot_ingest_job *job);
struct iot_events;
/* iot_ingest_submit for the telemetry of device d (POST /telemetry, an MQTT
 * PUBLISH), with the sighting's online transition (core/events.h): whether
 * the device comes online is read before the writer can record the
 * sighting in the cache store, and recorded only once the queue took the
 * job (a refused sighting must not hide the next one). d is not used after
 * the submit's own steps; the job may be done and freed by the return. */
int iot_ingest_submit_sighting(struct iot_ingest *ing, struct iot_events *ev,
                               struct iot_ingest_job *job, const struct iot_device *d);
void iot_ingest_stats(struct iot_ingest *ing, struct iot_ingest_stats *out);
/* Records a sighting of a device (a heartbeat, say) for the next batched
 * registry last_seen write. Any thread. */
void iot_ingest_note_seen(struct iot_ingest *ing, int64_t device_id, int64_t ts);
/* Refuses new jobs (submit → IOT_EUNAVAILABLE), commits and acknowledges
 * every queued one, flushes last_seen and joins the writer. Idempotent. */
void iot_ingest_stop(struct iot_ingest *ing);
/* Frees a stopped pipeline. NULL is a no-op. */
void iot_ingest_free(struct iot_ingest *ing);

/* The pub/sub channel of a device's messages, e.g. "telemetry:42". */
void iot_ingest_channel(int64_t device_id, char *buf, size_t size);

#endif
