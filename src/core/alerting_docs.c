/* alerting_docs.c — alert documents, their state changes, announcements
 * and the active-alert cache (alerting_docs.h). */
#include "core/alerting_docs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/events.h"
#include "core/secrets.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/json_out.h"
#include "util/log.h"

#define CHANGE_ATTEMPTS 8
#define GEN_TTL_MS (3600 * 1000)
#define ACTIVE_TTL_MS (300 * 1000)
#define GEN_LEN 16
#define COMPLETE_FIELD "_complete" /* present in a hash filled from the store */

void iot_alert_channel_of_user(int64_t user_id, char *buf, size_t size)
{
    snprintf(buf, size, "alerts:user:%lld", (long long)user_id);
}

static json_t *text_or_null(const char *s) { return s ? json_string(s) : json_null(); }

/* ---- the active-alert cache ------------------------------------------------ */

static void gen_key(int64_t user_id, char *buf, size_t size)
{
    snprintf(buf, size, "alerts:gen:%lld", (long long)user_id);
}

/* The user's current generation; a new one is made when none is cached. */
static int current_gen(struct iot_cache *cache, int64_t user_id, char gen[GEN_LEN + 1])
{
    char key[64];
    gen_key(user_id, key, sizeof key);
    struct iot_cache_value v = {0};
    int rc = iot_cache_get(cache, key, &v);
    if (rc == IOT_OK && v.len == GEN_LEN) {
        memcpy(gen, v.data, GEN_LEN + 1);
        iot_cache_value_free(&v);
        return IOT_OK;
    }
    iot_cache_value_free(&v);
    if (rc != IOT_OK && rc != IOT_ENOTFOUND)
        return rc;
    iot_random_hex(gen, GEN_LEN);
    return iot_cache_set(cache, key, gen, GEN_LEN, GEN_TTL_MS);
}

/* After a change of one of the user's alerts: every list cached so far is
 * stale. A new generation rather than a delete, so that a reader that read
 * the store before the change cannot put its old list back. */
static void cache_stale(struct iot_cache *cache, int64_t user_id)
{
    char key[64], gen[GEN_LEN + 1];
    gen_key(user_id, key, sizeof key);
    iot_random_hex(gen, GEN_LEN);
    int rc = iot_cache_set(cache, key, gen, GEN_LEN, GEN_TTL_MS);
    if (rc) /* the old list may then be read until it expires (ACTIVE_TTL_MS) */
        IOT_WARN("alerts: active-alert cache of user %lld not renewed (%s)", (long long)user_id,
                 iot_strerror(rc));
}

static void active_key(int64_t user_id, const char *gen, char *buf, size_t size)
{
    snprintf(buf, size, "alerts:active:%lld:%s", (long long)user_id, gen);
}

struct cached_list {
    json_t *alerts;
    bool complete, broken;
};

static int add_cached(void *ctx, const char *field, const char *value, size_t len)
{
    struct cached_list *c = ctx;
    if (strcmp(field, COMPLETE_FIELD) == 0) {
        c->complete = true;
        return 0;
    }
    json_t *body = json_loadb(value, len, 0, NULL);
    if (!body) {
        c->broken = true;
        return 1;
    }
    json_array_append_new(c->alerts, body);
    return 0;
}

static bool read_cached(struct iot_cache *cache, const char *key, json_t **out)
{
    struct cached_list c = {json_array(), false, false};
    int rc = iot_cache_hash_get_all(cache, key, add_cached, &c);
    if (rc != IOT_OK || !c.complete || c.broken) {
        json_decref(c.alerts);
        return false;
    }
    *out = c.alerts;
    return true;
}

struct stored_list {
    json_t *alerts;
    size_t n;
};

static int add_stored(void *ctx, const struct iot_doc *doc)
{
    struct stored_list *s = ctx;
    json_t *body = json_loadb(doc->body, doc->body_len, 0, NULL);
    if (body)
        json_array_append_new(s->alerts, body);
    return ++s->n > IOT_ALERT_CACHE_MAX;
}

/* Writes the list as the generation's hash: one field per alert and the
 * completeness mark. Failures only cost the next reader a store read. */
static void fill_cache(struct iot_cache *cache, const char *key, json_t *alerts)
{
    size_t n = json_array_size(alerts);
    struct iot_cache_field *fields = calloc(n + 1, sizeof *fields);
    char **texts = calloc(n + 1, sizeof *texts);
    size_t k = 0;
    for (size_t i = 0; fields && texts && i < n; i++) {
        json_t *a = json_array_get(alerts, i);
        const char *id = json_string_value(json_object_get(a, "id"));
        if (!id || !(texts[k] = iot_json_dumps(a)))
            goto out;
        fields[k] = (struct iot_cache_field){id, texts[k], strlen(texts[k])};
        k++;
    }
    if (fields && texts) {
        fields[k] = (struct iot_cache_field){COMPLETE_FIELD, "1", 1};
        iot_cache_hash_set(cache, key, fields, k + 1, ACTIVE_TTL_MS);
    }
out:
    for (size_t i = 0; texts && i < k; i++)
        free(texts[i]);
    free(texts);
    free(fields);
}

int iot_alert_active_of_user(const struct iot_alert_env *env, int64_t user_id, json_t **out,
                             bool *from_cache)
{
    char gen[GEN_LEN + 1], key[128];
    bool cached = current_gen(env->cache, user_id, gen) == IOT_OK;
    if (cached) {
        active_key(user_id, gen, key, sizeof key);
        if (read_cached(env->cache, key, out)) {
            *from_cache = true;
            return IOT_OK;
        }
    }
    *from_cache = false;
    struct stored_list s = {json_array(), 0};
    struct iot_docs_filter f = {.user_id = user_id, .k1 = IOT_ALERT_STATUS_ACTIVE,
                                .limit = IOT_ALERT_CACHE_MAX + 1};
    int rc = iot_docs_find(env->docs, IOT_DOCS_ALERTS, &f, add_stored, &s);
    if (rc == IOT_OK && s.n > IOT_ALERT_CACHE_MAX)
        rc = IOT_ELIMIT;
    if (rc) {
        json_decref(s.alerts);
        return rc;
    }
    if (cached)
        fill_cache(env->cache, key, s.alerts);
    *out = s.alerts;
    return IOT_OK;
}

/* ---- announcing a change ------------------------------------------------------ */

static void publish(struct iot_cache *cache, const char *channel, const char *msg, size_t len)
{
    int rc = iot_cache_publish(cache, channel, msg, len);
    if (rc)
        IOT_DEBUG("alerts: change not published on %s: %s", channel, iot_strerror(rc));
}

static void emit_event(const struct iot_alert_env *env, const char *type, int64_t user_id,
                       int64_t device_id, json_t *body)
{
    const char *keys[] = {"id", "rule_id", "severity", "status", "measurement", "value"};
    json_t *details = json_object();
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        json_t *v = json_object_get(body, keys[i]);
        /* Copies, not references: the details go to the event log's thread,
         * and a value shared with `body` would have its reference count
         * changed from two threads at once. */
        if (v)
            json_object_set_new(details, strcmp(keys[i], "id") ? keys[i] : "alert_id",
                                json_deep_copy(v));
    }
    iot_events_emit(env->events, type, user_id, device_id, details);
}

/* After the store took a change: the owner's cached list is stale, live
 * streams hear {"type": <event type>, "alert": body}, the event log gets
 * the event. */
static void announce(const struct iot_alert_env *env, const char *type, int64_t user_id,
                     int64_t device_id, json_t *body)
{
    cache_stale(env->cache, user_id);
    json_t *msg = json_pack("{s:s, s:O}", "type", type, "alert", body);
    char *text = msg ? iot_json_dumps(msg) : NULL;
    json_decref(msg);
    if (text) {
        char channel[64];
        iot_alert_channel_of_user(user_id, channel, sizeof channel);
        publish(env->cache, channel, text, strlen(text));
        publish(env->cache, IOT_ALERT_CHANNEL_ALL, text, strlen(text));
        free(text);
    }
    emit_event(env, type, user_id, device_id, body);
}

/* ---- writing ---------------------------------------------------------------- */

static int put_body(const struct iot_alert_env *env, const char *id, int64_t user_id,
                    int64_t device_id, json_t *body, int64_t expect_rev, int64_t *rev)
{
    char *text = iot_json_dumps(body);
    if (!text)
        return IOT_ENOMEM;
    int64_t raised = 0;
    iot_parse_iso8601(json_string_value(json_object_get(body, "raised_at")), &raised);
    struct iot_doc doc = {.id = id, .user_id = user_id, .device_id = device_id, .ts_ms = raised,
                          .k1 = json_string_value(json_object_get(body, "status")),
                          .k2 = json_string_value(json_object_get(body, "severity")),
                          .body = text, .body_len = strlen(text)};
    int rc = iot_docs_put(env->docs, IOT_DOCS_ALERTS, &doc, expect_rev, rev);
    free(text);
    return rc;
}

int iot_alert_raise(const struct iot_alert_env *env, const struct iot_alert_new *a,
                    char id_out[IOT_ALERT_ID_LEN + 1], json_t **body_out)
{
    iot_random_hex(id_out, IOT_ALERT_ID_LEN);
    json_t *body = json_pack(
        "{s:s, s:o, s:I, s:o, s:O, s:o, s:o, s:s, s:s, s:s, s:o, s:n, s:n, s:n, s:n}", "id", id_out,
        "rule_id", text_or_null(a->rule_id), "device_id", (json_int_t)a->device_id, "measurement",
        text_or_null(a->measurement), "value", a->value ? a->value : json_null(), "operator",
        text_or_null(a->op), "threshold", a->has_threshold ? json_real(a->threshold) : json_null(),
        "severity", iot_alert_severity_name(a->severity), "status", IOT_ALERT_STATUS_ACTIVE,
        "message", a->message ? a->message : "", "raised_at", iot_json_time(a->raised_ms),
        "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by");
    if (!body)
        return IOT_ENOMEM;
    int rc = put_body(env, id_out, a->user_id, a->device_id, body, IOT_DOCS_NEW, NULL);
    if (rc == IOT_OK)
        announce(env, IOT_EV_ALERT_RAISED, a->user_id, a->device_id, body);
    if (rc == IOT_OK && body_out)
        *body_out = body;
    else
        json_decref(body);
    return rc;
}

struct loaded {
    struct iot_alert_doc *out;
    int rc;
};

static int take_doc(void *ctx, const struct iot_doc *doc)
{
    struct loaded *l = ctx;
    l->out->body = json_loadb(doc->body, doc->body_len, 0, NULL);
    l->out->user_id = doc->user_id;
    l->out->device_id = doc->device_id;
    l->out->rev = doc->rev;
    l->rc = l->out->body ? IOT_OK : IOT_EINTERNAL;
    return 0;
}

int iot_alert_load(const struct iot_alert_env *env, const char *id, struct iot_alert_doc *out)
{
    memset(out, 0, sizeof *out);
    if (iot_docs_check_id(id) != IOT_OK)
        return IOT_ENOTFOUND;
    struct loaded l = {out, IOT_EINTERNAL};
    int rc = iot_docs_get(env->docs, IOT_DOCS_ALERTS, id, take_doc, &l);
    return rc ? rc : l.rc;
}

void iot_alert_doc_clear(struct iot_alert_doc *d)
{
    json_decref(d->body);
    d->body = NULL;
}

static bool allowed(enum iot_alert_action action, const char *status)
{
    if (!status)
        return false;
    if (action == IOT_ALERT_ACKNOWLEDGE)
        return strcmp(status, IOT_ALERT_STATUS_ACTIVE) == 0;
    return strcmp(status, IOT_ALERT_STATUS_RESOLVED) != 0;
}

/* The body after the action, as a new object. */
static json_t *changed_body(json_t *body, enum iot_alert_action action, const char *by)
{
    bool ack = action == IOT_ALERT_ACKNOWLEDGE;
    json_t *next = json_deep_copy(body);
    if (!next)
        return NULL;
    const char *status = ack ? IOT_ALERT_STATUS_ACKNOWLEDGED : IOT_ALERT_STATUS_RESOLVED;
    json_object_set_new(next, "status", json_string(status));
    json_object_set_new(next, ack ? "acknowledged_at" : "resolved_at",
                        iot_json_time(iot_now_ms()));
    json_object_set_new(next, ack ? "acknowledged_by" : "resolved_by", json_string(by));
    return next;
}

int iot_alert_apply(const struct iot_alert_env *env, enum iot_alert_action action, const char *by,
                    struct iot_alert_doc *doc)
{
    char id[IOT_DOCS_ID_MAX + 1];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(doc->body, "id")));
    for (int attempt = 0; attempt < CHANGE_ATTEMPTS; attempt++) {
        if (!allowed(action, json_string_value(json_object_get(doc->body, "status"))))
            return IOT_ECONFLICT;
        json_t *next = changed_body(doc->body, action, by);
        if (!next)
            return IOT_ENOMEM;
        int64_t rev = 0;
        int rc = put_body(env, id, doc->user_id, doc->device_id, next, doc->rev, &rev);
        if (rc == IOT_OK) {
            json_decref(doc->body);
            doc->body = next;
            doc->rev = rev;
            announce(env, action == IOT_ALERT_ACKNOWLEDGE ? IOT_EV_ALERT_ACKNOWLEDGED
                                                          : IOT_EV_ALERT_RESOLVED,
                     doc->user_id, doc->device_id, next);
            return IOT_OK;
        }
        json_decref(next);
        if (rc != IOT_ECONFLICT)
            return rc;
        /* Someone changed it since it was read: read it again and decide
         * on its new state. */
        iot_alert_doc_clear(doc);
        rc = iot_alert_load(env, id, doc);
        if (rc)
            return rc;
    }
    return IOT_EAGAIN;
}
