/* docs_metadata.c — device metadata (core/metadata.h) over HTTP: GET/PUT
 * /devices/{id}/metadata (tags, attributes, location) and POST/DELETE
 * /devices/{id}/tags/{tag}, for the device's owner or the admin.
 *
 * PUT replaces the whole metadata: a field left out becomes empty ([], {},
 * null). Adding a tag that is there already changes nothing (200). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/authn.h"
#include "api/device_common.h"
#include "api/docs_common.h"
#include "api/handlers_docs.h"
#include "core/events.h"
#include "core/metadata.h"
#include "util/clock.h"
#include "util/err.h"

static bool load_device(struct iot_req *r, struct iot_device *d)
{
    struct iot_principal p;
    return iot_authn_any(r, &p) && iot_load_owned_device(r, 0, &p, d);
}

static void emit_changed(struct iot_req *r, const struct iot_device *d, const char *change,
                         const char *tag)
{
    iot_events_emit(iot_app_of(r)->events, IOT_EV_DEVICE_METADATA_CHANGED, d->user_id, d->id,
                    json_pack("{s:s, s:s?}", "change", change, "tag", tag));
}

/* Answers a stored metadata text (taken) or the store's error; 404 when
 * the device went while it was written (iot_docs_orphaned). */
static void reply_stored(struct iot_req *r, const struct iot_device *d, int rc, char *body)
{
    if (rc) {
        free(body);
        iot_reply_docs_error(r, rc, "device metadata", IOT_METADATA_ATTRIBUTES_MAX);
        return;
    }
    if (iot_docs_orphaned(iot_app_of(r), IOT_DOCS_METADATA, d->id, 0)) {
        free(body);
        iot_reply_error(r, 404, "Device not found", "device %lld was deleted meanwhile",
                        (long long)d->id);
        return;
    }
    iot_reply_raw(r, 200, body, body ? strlen(body) : 0);
}

void iot_h_device_metadata_get(struct iot_req *r)
{
    struct iot_device d;
    if (!load_device(r, &d))
        return;
    json_t *meta = NULL;
    int rc = iot_metadata_load(&iot_app_of(r)->docs, d.id, &meta, NULL);
    if (rc == IOT_ENOTFOUND)
        iot_reply_json(r, 200, iot_metadata_empty(d.id));
    else if (rc)
        iot_reply_store_error(r, rc, "device metadata");
    else
        iot_reply_json(r, 200, meta);
}

void iot_h_device_metadata_put(struct iot_req *r)
{
    struct iot_device d;
    if (!load_device(r, &d))
        return;
    json_t *body = iot_req_json_object(r);
    if (!body)
        return;
    char why[200];
    bool too_large;
    json_t *meta = iot_metadata_parse(body, &too_large, why, sizeof why);
    json_decref(body);
    if (!meta) {
        iot_reply_error(r, too_large ? 413 : 400,
                        too_large ? "Payload Too Large" : "Validation error", "%s", why);
        return;
    }
    char *stored = NULL;
    int rc = iot_metadata_store(&iot_app_of(r)->docs, d.id, d.user_id, meta, IOT_DOCS_ANY_REV,
                                iot_now_ms(), &stored);
    json_decref(meta);
    if (rc == IOT_OK)
        emit_changed(r, &d, "replaced", NULL);
    reply_stored(r, &d, rc, stored);
}

/* The tag of path parameter 1; answers 400 when it is not one. */
static const char *path_tag(struct iot_req *r)
{
    const char *tag = iot_req_param(r, 1);
    if (tag && iot_metadata_tag_valid(tag))
        return tag;
    iot_reply_error(r, 400, "Validation error",
                    "a tag is 1 to %d bytes of text without control characters",
                    IOT_METADATA_TAG_MAX);
    return NULL;
}

void iot_h_device_tag_add(struct iot_req *r)
{
    struct iot_device d;
    const char *tag;
    if (!load_device(r, &d) || !(tag = path_tag(r)))
        return;
    bool added;
    char *stored = NULL;
    int rc = iot_metadata_tag_add(&iot_app_of(r)->docs, d.id, d.user_id, tag, iot_now_ms(), &added,
                                  &stored);
    if (rc == IOT_ELIMIT) {
        iot_reply_error(r, 400, "Too many tags", "a device has at most %d tags",
                        IOT_METADATA_TAGS_MAX);
        return;
    }
    if (rc == IOT_OK && added)
        emit_changed(r, &d, "tag_added", tag);
    reply_stored(r, &d, rc, stored);
}

void iot_h_device_tag_remove(struct iot_req *r)
{
    struct iot_device d;
    const char *tag;
    if (!load_device(r, &d) || !(tag = path_tag(r)))
        return;
    char *stored = NULL;
    int rc = iot_metadata_tag_remove(&iot_app_of(r)->docs, d.id, d.user_id, tag, iot_now_ms(),
                                     &stored);
    if (rc == IOT_ENOTFOUND) {
        iot_reply_error(r, 404, "Tag not found", "device %lld has no tag '%s'", (long long)d.id,
                        tag);
        return;
    }
    if (rc == IOT_OK)
        emit_changed(r, &d, "tag_removed", tag);
    reply_stored(r, &d, rc, stored);
}
