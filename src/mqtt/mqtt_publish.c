/* mqtt_publish.c — a client's PUBLISH to the telemetry topics: the same
 * checks and parse as POST /telemetry(/batch) (core/device_auth.h,
 * core/tm_message.h), one ingest job per PUBLISH, and the PUBACK only once
 * the job's batch is committed. Answers leave in the order the PUBLISHes
 * came (§4.6): a refusal known at once waits in the FIFO behind the
 * messages still being committed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/mqtt_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/json_in.h"
#include "util/log.h"

#define RETRY_FULL_QUEUE_MS 5

/* A refusal worth a log line: the first few of a connection, then every
 * power of two, so that a device in a loop cannot flood the log. */
static void log_refusal(struct mqtt_conn *c, uint8_t reason, const char *text)
{
    atomic_fetch_add(&c->loop->srv->rejected, 1);
    c->refusals++;
    if (c->refusals <= 8 || (c->refusals & (c->refusals - 1)) == 0)
        IOT_INFO("mqtt: device %lld (%s): message refused (0x%02x, %llu so far): %s",
                 (long long)c->device.id, c->addr, reason, (unsigned long long)c->refusals,
                 text);
}

static void pending_free(struct mqtt_pending *pd)
{
    iot_tm_parsed_free(&pd->parsed);
    free(pd->reason_text);
    free(pd);
}

/* A pending entry for PUBLISH p of c; NULL after failing the connection. */
static struct mqtt_pending *pending_new(struct mqtt_conn *c, uint8_t qos, uint16_t packet_id)
{
    struct mqtt_pending *pd = calloc(1, sizeof *pd);
    if (!pd) {
        mqtt_conn_fail(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
        return NULL;
    }
    pd->conn = c;
    pd->qos = qos;
    pd->packet_id = packet_id;
    return pd;
}

/* ---- answers, in order ------------------------------------------------------- */

/* Sends the PUBACKs at the head of the FIFO whose answer is known. On
 * 3.1.1 a message that could not be stored has no answer: the connection
 * closes so that the client sends it again. */
static void send_ready(struct mqtt_conn *c)
{
    while (!c->closed && c->fifo_head && c->fifo_head->done) {
        struct mqtt_pending *pd = c->fifo_head;
        if (c->version == MQTT_V311 && pd->reason >= 0x80) {
            mqtt_conn_close(c, &(struct mqtt_close){.will = true});
            return;
        }
        c->fifo_head = pd->next;
        if (!c->fifo_head)
            c->fifo_tail = NULL;
        c->inflight--;
        struct mqtt_packet p = {.type = MQTT_PUBACK};
        p.u.ack.packet_id = pd->packet_id;
        p.u.ack.reason = c->version == MQTT_V5 ? pd->reason : 0;
        if (c->version == MQTT_V5 && pd->reason_text && c->problem_info)
            mqtt_props_set_data(&p.u.ack.props, MQTT_PROP_REASON_STRING, pd->reason_text,
                                strlen(pd->reason_text));
        mqtt_conn_send(c, &p);
        pending_free(pd);
    }
}

static void fifo_push(struct mqtt_conn *c, struct mqtt_pending *pd)
{
    pd->next = NULL;
    if (c->fifo_tail)
        c->fifo_tail->next = pd;
    else
        c->fifo_head = pd;
    c->fifo_tail = pd;
    c->inflight++;
}

/* A message answered at once (refused, or dropped on 3.1.1). */
static void answer_now(struct mqtt_conn *c, const struct mqtt_publish *p, uint8_t reason,
                       const char *text)
{
    log_refusal(c, reason, text);
    if (p->qos == 0)
        return; /* nobody to tell: dropped, logged */
    struct mqtt_pending *pd = pending_new(c, p->qos, p->packet_id);
    if (!pd)
        return;
    pd->done = true;
    /* 3.1.1 has no negative PUBACK: a message that can never be stored
     * is acknowledged and dropped (else the client resends it forever). */
    pd->reason = c->version == MQTT_V5 ? reason : MQTT_RC_SUCCESS;
    pd->reason_text = text ? strdup(text) : NULL;
    fifo_push(c, pd);
    send_ready(c);
}

/* ---- the device and its limits --------------------------------------------- */

/* The device may publish now; else answered (or closed) and false. */
static bool device_may_publish(struct mqtt_conn *c, const struct mqtt_publish *p)
{
    const struct iot_device_gate *g = c->loop->srv->env.devices;
    struct iot_device d;
    int store_rc = IOT_OK;
    char text[160];
    switch (iot_device_authenticate_hash(g, c->device.api_key_hash, IOT_DEVICE_AUTH_ACTIVE, &d,
                                         &store_rc)) {
    case IOT_DEVICE_OK:
        c->device = d;
        break;
    case IOT_DEVICE_HELD_OFF:
        snprintf(text, sizeof text, "an admin set device %lld to '%s'", (long long)d.id,
                 d.status);
        answer_now(c, p, MQTT_RC_NOT_AUTHORIZED, text);
        return false;
    case IOT_DEVICE_MAINTENANCE:
        answer_now(c, p, MQTT_RC_NOT_AUTHORIZED, "the device is in maintenance mode");
        return false;
    case IOT_DEVICE_UNKNOWN_KEY:
    case IOT_DEVICE_OWNER_INACTIVE:
        mqtt_conn_fail(c, MQTT_RC_NOT_AUTHORIZED, "the device's key is no longer accepted");
        return false;
    case IOT_DEVICE_CHANGED:
    case IOT_DEVICE_STORE_ERROR:
        /* Transient: no answer on 3.1.1 (the client resends after reconnecting). */
        if (c->version == MQTT_V311)
            mqtt_conn_close(c, &(struct mqtt_close){.will = true});
        else
            answer_now(c, p, MQTT_RC_UNSPECIFIED_ERROR, "the device registry is unavailable; retry");
        return false;
    }
    int64_t retry_ms = 0, limit;
    const char *what;
    if (!iot_device_rate_take(g, d.id, &retry_ms)) {
        what = "telemetry messages";
        limit = g->rate_limit;
    } else if (!iot_device_bytes_take(g, d.id, (int64_t)p->payload.len, &retry_ms)) {
        what = "bytes of telemetry";
        limit = g->byte_rate_limit;
    } else {
        return true;
    }
    snprintf(text, sizeof text, "device %lld may send %lld %s per minute; retry in %lld s",
             (long long)d.id, (long long)limit, what, (long long)(retry_ms + 999) / 1000);
    if (c->version == MQTT_V311 && p->qos == 1) {
        log_refusal(c, MQTT_RC_QUOTA_EXCEEDED, text);
        mqtt_conn_close(c, &(struct mqtt_close){.will = false}); /* unacknowledged: resent later */
    } else {
        answer_now(c, p, MQTT_RC_QUOTA_EXCEEDED, text);
    }
    return false;
}

/* ---- into the pipeline ------------------------------------------------------ */

/* Runs on the ingest writer thread: hands the answer to the loop. */
static void job_done(struct iot_ingest_job *job)
{
    struct mqtt_pending *pd = job->ctx;
    pd->post.kind = MQTT_POST_COMMITTED;
    mqtt_loop_post(pd->conn->loop, &pd->post);
}

/* Parses the payload into pd->parsed; false with a reason otherwise. */
static bool parse_payload(struct mqtt_conn *c, bool batch, const uint8_t *payload, size_t len,
                          struct mqtt_pending *pd, uint8_t *reason, char *err, size_t err_size)
{
    *reason = MQTT_RC_PAYLOAD_FORMAT_INVALID;
    json_t *body = iot_json_parse((const char *)payload, len, err, err_size);
    if (!body)
        return false;
    if (!batch && !json_is_object(body)) {
        json_decref(body);
        snprintf(err, err_size, "the payload must be a JSON object");
        return false;
    }
    int rc = (batch ? iot_tm_parse_batch : iot_tm_parse_one)(body, c->device.id,
                                                             c->device.user_id, iot_now_ms(),
                                                             &pd->parsed, err, err_size);
    json_decref(body); /* the parsed set holds its own reference */
    if (rc == IOT_OK)
        return true;
    if (rc != IOT_EINVAL) {
        *reason = MQTT_RC_UNSPECIFIED_ERROR;
        snprintf(err, err_size, "%s", iot_strerror(rc));
    }
    return false;
}

/* Queues pd's job: IOT_OK, IOT_ELIMIT (the queue is full: pd is kept for a
 * retry) or IOT_EUNAVAILABLE (stopping). */
static int submit(struct mqtt_conn *c, struct mqtt_pending *pd)
{
    struct iot_mqtt_server *s = c->loop->srv;
    pd->job = (struct iot_ingest_job){.msgs = pd->parsed.msgs, .n = pd->parsed.n,
                                      .done = job_done, .ctx = pd};
    c->refs++; /* the job's, dropped when its answer is read */
    int rc = iot_ingest_submit_sighting(s->env.ingest, s->env.events, &pd->job, &c->device);
    if (rc) {
        c->refs--;
        return rc;
    }
    if (pd->qos == 1)
        fifo_push(c, pd);
    return IOT_OK;
}

/* After submit refused: a full queue stalls the connection (it reads no
 * more until the message is taken), a stopping server ends it. */
static void submit_refused(struct mqtt_conn *c, struct mqtt_pending *pd, int rc)
{
    if (rc == IOT_ELIMIT) {
        c->stalled = pd;
        c->retry_at = mqtt_now() + RETRY_FULL_QUEUE_MS;
        c->loop->retrying = true;
        return;
    }
    pending_free(pd);
    mqtt_conn_fail(c, MQTT_RC_SERVER_SHUTTING_DOWN, "the server is shutting down");
}

bool mqtt_publish_retry(struct mqtt_conn *c)
{
    struct mqtt_pending *pd = c->stalled;
    if (!pd)
        return true;
    c->stalled = NULL;
    int rc = submit(c, pd);
    if (rc)
        submit_refused(c, pd, rc);
    return rc == IOT_OK;
}

void mqtt_publish_in(struct mqtt_conn *c, const struct mqtt_publish *p)
{
    const struct iot_mqtt_config *cfg = &c->loop->srv->cfg;
    if (p->qos == 2) {
        mqtt_conn_fail(c, MQTT_RC_QOS_NOT_SUPPORTED, "QoS 2 is not supported: use 0 or 1");
        return;
    }
    if (c->version == MQTT_V5) {
        if (p->retain) {
            mqtt_conn_fail(c, MQTT_RC_RETAIN_NOT_SUPPORTED, "retained messages are not supported");
            return;
        }
        if (mqtt_props_has(&p->props, MQTT_PROP_SUBSCRIPTION_ID)) { /* §3.3.4 */
            mqtt_conn_fail(c, MQTT_RC_PROTOCOL_ERROR, "a client may not send subscription ids");
            return;
        }
        if (mqtt_props_has(&p->props, MQTT_PROP_TOPIC_ALIAS)) {
            mqtt_conn_fail(c, MQTT_RC_TOPIC_ALIAS_INVALID, "topic aliases are not supported");
            return;
        }
        if (p->qos == 1 && c->inflight >= cfg->inflight) {
            mqtt_conn_fail(c, MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED,
                           "more QoS 1 messages in flight than the Receive Maximum");
            return;
        }
    }
    bool batch = mqtt_str_is(&p->topic, MQTT_TOPIC_BATCH);
    if (!batch && !mqtt_str_is(&p->topic, MQTT_TOPIC_TELEMETRY)) {
        answer_now(c, p, MQTT_RC_TOPIC_NAME_INVALID,
                   "devices publish to " MQTT_TOPIC_TELEMETRY " or " MQTT_TOPIC_BATCH " only");
        return;
    }
    if (!device_may_publish(c, p))
        return;
    struct mqtt_pending *pd = pending_new(c, p->qos, p->packet_id);
    if (!pd)
        return;
    char err[256];
    uint8_t reason;
    if (!parse_payload(c, batch, p->payload.ptr, p->payload.len, pd, &reason, err, sizeof err)) {
        pending_free(pd);
        answer_now(c, p, reason, err);
        return;
    }
    int rc = submit(c, pd);
    if (rc)
        submit_refused(c, pd, rc);
}

void mqtt_publish_committed(struct mqtt_pending *pd)
{
    struct mqtt_conn *c = pd->conn;
    struct iot_mqtt_server *s = c->loop->srv;
    bool stored = pd->job.status == IOT_OK;
    if (stored)
        atomic_fetch_add(&s->published, 1);
    else
        IOT_WARN("mqtt: device %lld: a message was not stored: %s", (long long)c->device.id,
                 iot_strerror(pd->job.status));
    iot_tm_parsed_free(&pd->parsed);
    if (pd->qos == 0 || c->closed) {
        /* QoS 0 has no answer; a closed connection's FIFO was let go. */
        pending_free(pd);
        mqtt_conn_unref(c);
        return;
    }
    pd->done = true;
    if (!stored) {
        pd->reason = MQTT_RC_UNSPECIFIED_ERROR;
        pd->reason_text = strdup("the telemetry store did not confirm the write; send it again");
    }
    bool was_full = c->inflight >= s->cfg.inflight;
    send_ready(c);
    /* 3.1.1 stopped reading at the in-flight limit: go on with what it sent. */
    if (!c->closed && was_full && c->inflight < s->cfg.inflight && c->rlen)
        mqtt_conn_process(c);
    else if (!c->closed)
        mqtt_conn_update_events(c);
    mqtt_conn_unref(c);
}

/* Runs inside mqtt_conn_close: nothing here may close the connection. */
void mqtt_publish_will(struct mqtt_conn *c)
{
    c->has_will = false;
    const struct iot_device_gate *g = c->loop->srv->env.devices;
    struct iot_device d;
    int store_rc;
    int64_t retry_ms;
    const char *why = NULL;
    if (iot_device_authenticate_hash(g, c->device.api_key_hash, IOT_DEVICE_AUTH_ACTIVE, &d,
                                     &store_rc) != IOT_DEVICE_OK)
        why = "the device may not publish";
    else if (!iot_device_rate_take(g, d.id, &retry_ms) ||
             !iot_device_bytes_take(g, d.id, (int64_t)c->will_len, &retry_ms))
        why = "over the device's rate limit"; /* a will is a message like any */
    struct mqtt_pending *pd = why ? NULL : calloc(1, sizeof *pd);
    char err[256];
    uint8_t reason;
    if (!why && !pd)
        why = "out of memory";
    if (pd) {
        c->device = d;
        pd->conn = c;
        if (!parse_payload(c, c->will_batch, c->will_payload, c->will_len, pd, &reason, err,
                           sizeof err))
            why = err;
        else if (submit(c, pd) != IOT_OK)
            why = "the ingest queue is full or closed";
    }
    if (why) {
        if (pd)
            pending_free(pd);
        IOT_INFO("mqtt: device %lld: will not stored: %s", (long long)c->device.id, why);
    }
}

void mqtt_publish_forget(struct mqtt_conn *c)
{
    /* Answered entries are freed; the others belong to the pipeline until
     * their COMMITTED post, which frees them (the connection is closed). */
    for (struct mqtt_pending *pd = c->fifo_head, *next; pd; pd = next) {
        next = pd->next;
        if (pd->done)
            pending_free(pd);
    }
    c->fifo_head = c->fifo_tail = NULL;
    c->inflight = 0;
    if (c->stalled) {
        pending_free(c->stalled);
        c->stalled = NULL;
    }
}
