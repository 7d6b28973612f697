/* devconfig.c — versioned device configurations (devconfig.h): the
 * version documents, the optimistic "newest + 1" insert with its retries,
 * and the reads of the newest version and of the history. */
#include "core/devconfig.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/docs_util.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/json_out.h"
#include "util/log.h"

static void version_id(int64_t device_id, int64_t version, char *buf, size_t size)
{
    snprintf(buf, size, "%lld:%010lld", (long long)device_id, (long long)version);
}

int iot_devconfig_encode(const json_t *config, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    if (!json_is_object(config))
        return IOT_EINVAL;
    char *s = iot_json_dumps(config); /* reals in shortest round-trip form */
    if (!s)
        return IOT_ENOMEM;
    size_t n = strlen(s);
    if (n > IOT_DEVCONFIG_MAX) {
        free(s);
        return IOT_ELIMIT;
    }
    *text = s;
    *len = n;
    return IOT_OK;
}

static int take_version(void *ctx, const struct iot_doc *doc)
{
    *(int64_t *)ctx = doc->ts_ms;
    return 1;
}

static int newest_version(struct iot_docs *d, int64_t device_id, int64_t *version)
{
    *version = 0;
    int rc = iot_devconfig_latest(d, device_id, take_version, version);
    return rc == IOT_ENOTFOUND ? IOT_OK : rc;
}

/* The stored body: what GET answers, so that reads splice it unparsed. */
static char *version_body(const struct iot_devconfig_write *w, int64_t version, size_t *len)
{
    char at[IOT_ISO8601_LEN + 1];
    iot_iso8601(w->now_ms, at, sizeof at);
    json_t *by = json_string(w->updated_by ? w->updated_by : "");
    struct iot_buf b = {0};
    iot_buf_printf(&b, "{\"device_id\":%lld,\"version\":%lld,\"config\":", (long long)w->device_id,
                   (long long)version);
    iot_buf_append(&b, w->config, w->config_len);
    iot_buf_printf(&b, ",\"updated_at\":\"%s\",\"updated_by\":", at);
    iot_buf_json(&b, by ? by : json_null());
    iot_buf_append(&b, "}", 1);
    json_decref(by);
    return iot_buf_take(&b, len);
}

static int insert_version(struct iot_docs *d, const struct iot_devconfig_write *w, int64_t version,
                          char **body, size_t *body_len)
{
    char id[IOT_DOCS_ID_MAX + 1];
    version_id(w->device_id, version, id, sizeof id);
    size_t len;
    char *text = version_body(w, version, &len);
    if (!text)
        return IOT_ENOMEM;
    struct iot_doc doc = {.id = id, .user_id = w->owner_id, .device_id = w->device_id,
                          .ts_ms = version, .body = text, .body_len = len};
    int rc = iot_docs_put(d, IOT_DOCS_CONFIGS, &doc, IOT_DOCS_NEW, NULL);
    if (rc == IOT_OK && body) {
        *body = text;
        if (body_len)
            *body_len = len;
    } else {
        free(text);
    }
    return rc;
}

int iot_devconfig_put(struct iot_docs *d, const struct iot_devconfig_write *w, int64_t *version,
                      char **body, size_t *body_len)
{
    if (body)
        *body = NULL;
    if (!w->config || w->device_id <= 0)
        return IOT_EINVAL;
    for (int attempt = 0; attempt < IOT_DOCS_WRITE_ATTEMPTS; attempt++) {
        int64_t newest;
        int rc = newest_version(d, w->device_id, &newest);
        if (rc)
            return rc;
        if (newest >= IOT_DEVCONFIG_VERSION_MAX)
            return IOT_ELIMIT;
        rc = insert_version(d, w, newest + 1, body, body_len);
        if (rc != IOT_ECONFLICT) {
            if (rc == IOT_OK)
                *version = newest + 1;
            return rc;
        }
        iot_docs_conflict_pause(attempt); /* lost the race: someone took newest + 1 */
    }
    return IOT_EAGAIN;
}

/* Passes the one document on and remembers that there was one. */
struct latest_ctx {
    iot_docs_fn fn;
    void *ctx;
    bool seen;
};

static int pass_latest(void *ctx, const struct iot_doc *doc)
{
    struct latest_ctx *l = ctx;
    l->seen = true;
    l->fn(l->ctx, doc);
    return 1;
}

int iot_devconfig_latest(struct iot_docs *d, int64_t device_id, iot_docs_fn fn, void *ctx)
{
    struct latest_ctx l = {fn, ctx, false};
    int rc = iot_devconfig_history(d, device_id, 0, 1, pass_latest, &l);
    return rc == IOT_OK && !l.seen ? IOT_ENOTFOUND : rc;
}

int iot_devconfig_history(struct iot_docs *d, int64_t device_id, int64_t before, size_t limit,
                          iot_docs_fn fn, void *ctx)
{
    char after[IOT_DOCS_ID_MAX + 1];
    struct iot_docs_filter f = {.device_id = device_id, .limit = limit};
    if (before > 0) {
        version_id(device_id, before, after, sizeof after);
        f.has_after = true;
        f.after_ts = before;
        f.after_id = after;
    }
    return iot_docs_find(d, IOT_DOCS_CONFIGS, &f, fn, ctx);
}

void iot_devconfig_announce(struct iot_cache *cache, int64_t device_id, int64_t version)
{
    char msg[48];
    int len = snprintf(msg, sizeof msg, "%lld %lld", (long long)device_id, (long long)version);
    int rc = iot_cache_publish(cache, IOT_DEVCONFIG_CHANNEL, msg, (size_t)len);
    if (rc)
        IOT_DEBUG("configuration %lld of device %lld not announced: %s", (long long)version,
                  (long long)device_id, iot_strerror(rc));
}

bool iot_devconfig_announcement(const char *msg, size_t len, int64_t *device_id,
                                int64_t *version)
{
    char text[48];
    if (len >= sizeof text)
        return false;
    memcpy(text, msg, len);
    text[len] = '\0';
    long long id, v;
    char extra;
    if (sscanf(text, "%lld %lld %c", &id, &v, &extra) != 2 || id <= 0 || v <= 0)
        return false;
    *device_id = id;
    *version = v;
    return true;
}
