/* docs_config.c — device configurations (core/devconfig.h) over HTTP: the
 * owner's GET/PUT /devices/{id}/config and its history, the device's own
 * GET /devices/config (X-API-Key, ETag), and PUT /groups/{id}/config,
 * one configuration for every device of a group.
 *
 * A device with no configuration yet has version 0 and an empty one:
 * {"device_id":N,"version":0,"config":{},"updated_at":null,"updated_by":null}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/authn.h"
#include "api/device_common.h"
#include "api/doc_page.h"
#include "api/docs_common.h"
#include "api/handlers_docs.h"
#include "api/views.h"
#include "core/devconfig.h"
#include "core/events.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

/* History pages: limit up to 100 (default 20, larger is clamped, 0 is the
 * default); cursors "<version>.v<version>". */
static const struct iot_doc_paging history_paging = {
    .def = 20, .max = 100, .rule = IOT_DOC_LIMIT_CLAMP, .sep = '.'};
/* Bytes of configurations one history page carries at most (a page ends
 * early, with a cursor, once it holds this much). */
#define HISTORY_PAGE_BYTES (1024 * 1024)
/* Devices one group call configures at most. */
#define GROUP_DEVICES_MAX 10000

/* ---- reading the newest version ---------------------------------------------- */

struct newest {
    char *body; /* copied out of the store's callback */
    size_t len;
    int64_t version;
};

static int copy_newest(void *ctx, const struct iot_doc *doc)
{
    struct newest *n = ctx;
    n->body = malloc(doc->body_len + 1);
    if (n->body) {
        memcpy(n->body, doc->body, doc->body_len);
        n->body[doc->body_len] = '\0';
        n->len = doc->body_len;
    }
    n->version = doc->ts_ms;
    return 1;
}

/* Answers the device's newest configuration with its ETag, or 304 when
 * the client holds it already: one find(limit 1), nothing more. */
static void reply_newest(struct iot_req *r, int64_t device_id)
{
    struct newest n = {NULL, 0, 0};
    int rc = iot_devconfig_latest(&iot_app_of(r)->docs, device_id, copy_newest, &n);
    if (rc && rc != IOT_ENOTFOUND) {
        iot_reply_store_error(r, rc, "device configuration");
        return;
    }
    if (rc == IOT_OK && !n.body) {
        iot_reply_store_error(r, IOT_ENOMEM, "device configuration");
        return;
    }
    snprintf(r->etag, sizeof r->etag, "\"v%lld\"", (long long)n.version);
    if (iot_req_etag_matches(r, r->etag)) {
        free(n.body);
        iot_reply_raw(r, 304, calloc(1, 1), 0);
        return;
    }
    if (rc == IOT_ENOTFOUND) {
        iot_reply_json(r, 200, json_pack("{s:I, s:i, s:{}, s:n, s:n}", "device_id",
                                         (json_int_t)device_id, "version", 0, "config",
                                         "updated_at", "updated_by"));
        return;
    }
    iot_reply_raw(r, 200, n.body, n.len);
}

void iot_h_device_config_get(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_device d;
    if (!iot_authn_any(r, &p) || !iot_load_owned_device(r, 0, &p, &d))
        return;
    reply_newest(r, d.id);
}

void iot_h_device_own_config_get(struct iot_req *r)
{
    struct iot_device d;
    /* Any status: a device in maintenance or switched off still learns
     * what it should run with. Key lookups come from the local cache. */
    if (!iot_authn_device(r, IOT_DEVICE_AUTH_ANY, &d))
        return;
    reply_newest(r, d.id);
}

/* ---- writing ---------------------------------------------------------------------- */

/* The body as a configuration's text; answers 400/413 itself. */
static bool read_config(struct iot_req *r, char **text, size_t *len)
{
    json_t *body = iot_req_json_object(r);
    if (!body)
        return false;
    int rc = iot_devconfig_encode(body, text, len);
    json_decref(body);
    if (rc)
        iot_reply_docs_error(r, rc, "configuration", IOT_DEVCONFIG_MAX);
    return rc == IOT_OK;
}

/* What a configuration PUT works from: who calls, and the body as a
 * configuration's text (freed by the handler). */
struct config_put {
    struct iot_principal p;
    char *text;
    size_t len;
};

/* Authenticates the caller, loads the target of path parameter 0 — the
 * device d, or the group g when d is NULL — which the caller must own
 * unless the admin, then reads the body; in that order, so that a
 * missing target answers 404 before a bad body 400. Answers 4xx itself. */
static bool begin_put(struct iot_req *r, struct config_put *c, struct iot_device *d,
                      struct iot_group *g)
{
    if (!iot_authn_any(r, &c->p))
        return false;
    bool found = d ? iot_load_owned_device(r, 0, &c->p, d)
                   : iot_load_owned_group(r, c->p.admin ? NULL : &c->p.user, g);
    return found && read_config(r, &c->text, &c->len);
}

/* What a configuration write needs of a device. */
struct target {
    int64_t id, owner_id;
};

static int store_version(struct iot_req *r, const struct target *d, const char *actor,
                         const char *text, size_t len, int64_t *version, char **body,
                         size_t *body_len)
{
    struct iot_app *app = iot_app_of(r);
    struct iot_devconfig_write w = {.device_id = d->id, .owner_id = d->owner_id, .config = text,
                                    .config_len = len, .updated_by = actor,
                                    .now_ms = iot_now_ms()};
    int rc = iot_devconfig_put(&app->docs, &w, version, body, body_len);
    if (rc)
        return rc;
    iot_events_emit(app->events, IOT_EV_DEVICE_CONFIG_CHANGED, d->owner_id, d->id,
                    json_pack("{s:I, s:s}", "version", (json_int_t)*version, "updated_by", actor));
    iot_devconfig_announce(&app->cache, d->id, *version); /* to MQTT subscribers */
    return IOT_OK;
}

void iot_h_device_config_put(struct iot_req *r)
{
    struct config_put c;
    struct iot_device d;
    if (!begin_put(r, &c, &d, NULL))
        return;
    int64_t version;
    char *body = NULL;
    size_t body_len = 0;
    struct target t = {d.id, d.user_id};
    int rc = store_version(r, &t, iot_docs_actor(&c.p), c.text, c.len, &version, &body, &body_len);
    free(c.text);
    if (rc) {
        iot_reply_docs_error(r, rc, "device configuration", IOT_DEVCONFIG_MAX);
        return;
    }
    if (iot_docs_orphaned(iot_app_of(r), IOT_DOCS_CONFIGS, d.id, 0)) {
        free(body);
        iot_reply_error(r, 404, "Device not found", "device %lld was deleted meanwhile",
                        (long long)d.id);
        return;
    }
    IOT_INFO("device %lld: configuration version %lld", (long long)d.id, (long long)version);
    snprintf(r->etag, sizeof r->etag, "\"v%lld\"", (long long)version);
    iot_reply_raw(r, 200, body, body_len);
}

/* ---- history -------------------------------------------------------------------- */

void iot_h_device_config_history(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_device d;
    struct iot_doc_cursor c;
    size_t limit;
    if (!iot_authn_any(r, &p) || !iot_load_owned_device(r, 0, &p, &d) ||
        !iot_doc_page_args(r, &history_paging, &limit, &c))
        return;
    struct iot_buf out = {0};
    struct iot_doc_splice h = {.out = &out,
                               .page = {.limit = limit, .max_bytes = HISTORY_PAGE_BYTES}};
    iot_buf_printf(&out, "{\"device_id\":%lld,\"history\":[", (long long)d.id);
    /* Versions start at 1: a cursor at or below it ends the history. */
    int rc = c.set && c.ts <= 1 ? IOT_OK
                                : iot_devconfig_history(&iot_app_of(r)->docs, d.id,
                                                        c.set ? c.ts : 0, limit, iot_doc_splice,
                                                        &h);
    if (rc) {
        iot_buf_free(&out);
        iot_reply_store_error(r, rc, "device configuration");
        return;
    }
    /* The version (the order key) names the next page, not the stored id. */
    int64_t last = h.page.last_ts;
    if ((h.more || iot_doc_page_full(&h.page)) && last > 1) {
        char id[IOT_DOCS_ID_MAX + 1], cursor[IOT_DOC_CURSOR_MAX];
        snprintf(id, sizeof id, "v%lld", (long long)last);
        iot_doc_cursor_format(&history_paging, last, id, cursor);
        iot_buf_printf(&out, "],\"count\":%zu,\"next_cursor\":\"%s\"}", h.page.count, cursor);
    } else {
        iot_buf_printf(&out, "],\"count\":%zu,\"next_cursor\":null}", h.page.count);
    }
    size_t len;
    char *text = iot_buf_take(&out, &len);
    iot_reply_raw(r, 200, text, len);
}

/* ---- a group's devices ---------------------------------------------------------- */

struct members {
    struct target *v;
    size_t n;
};

static int collect_member(void *ctx, const struct iot_device *d, int64_t added_at)
{
    (void)added_at;
    struct members *m = ctx;
    m->v[m->n++] = (struct target){d->id, d->user_id};
    return 0;
}

/* Stores a new version for each member; stops at the first failure, the
 * devices done so far keeping theirs (a retry gives every device one
 * more). */
static int configure_members(struct iot_req *r, const struct members *m, const char *actor,
                             const char *text, size_t len, json_t *done)
{
    for (size_t i = 0; i < m->n; i++) {
        int64_t version;
        int rc = store_version(r, &m->v[i], actor, text, len, &version, NULL, NULL);
        if (rc)
            return rc;
        if (iot_docs_orphaned(iot_app_of(r), IOT_DOCS_CONFIGS, m->v[i].id, 0))
            continue; /* deleted meanwhile: left out */
        json_array_append_new(done, json_pack("{s:I, s:I}", "device_id", (json_int_t)m->v[i].id,
                                              "version", (json_int_t)version));
    }
    return IOT_OK;
}

void iot_h_group_config_put(struct iot_req *r)
{
    struct config_put c;
    struct iot_group g;
    if (!begin_put(r, &c, NULL, &g))
        return;
    struct members m = {calloc(GROUP_DEVICES_MAX + 1, sizeof *m.v), 0};
    struct iot_page all = {.limit = GROUP_DEVICES_MAX + 1};
    int rc = m.v ? iot_reg_group_devices(&iot_app_of(r)->registry, g.id, NULL, all,
                                         collect_member, &m, NULL)
                 : IOT_ENOMEM;
    json_t *done = json_array();
    if (rc == IOT_OK && m.n > GROUP_DEVICES_MAX)
        iot_reply_error(r, 400, "Group too large",
                        "a group configuration reaches at most %d devices", GROUP_DEVICES_MAX);
    else if (rc == IOT_OK &&
             (rc = configure_members(r, &m, iot_docs_actor(&c.p), c.text, c.len, done)))
        iot_reply_docs_error(r, rc, "device configuration", IOT_DEVCONFIG_MAX);
    else if (rc)
        iot_reply_store_error(r, rc, "group");
    else
        IOT_INFO("group %lld: configuration applied to %zu devices", (long long)g.id, m.n);
    if (r->status == 0)
        iot_reply_json(r, 200, json_pack("{s:I, s:I, s:O}", "group_id", (json_int_t)g.id,
                                         "updated", (json_int_t)json_array_size(done), "devices",
                                         done));
    json_decref(done);
    free(m.v);
    free(c.text);
}
