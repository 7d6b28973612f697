/* device_common.c — device helpers shared by the device, group, user and
 * admin handlers (device_common.h), and the "device:notice" channel that
 * keeps every instance's key cache honest. */
#include "api/device_common.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "api/app.h"
#include "api/stream.h"
#include "api/views.h"
#include "core/device_auth.h"
#include "core/events.h"
#include "core/latest.h"
#include "core/presence.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

bool iot_load_device(struct iot_req *r, size_t param, struct iot_device *d)
{
    int64_t id;
    int rc = iot_parse_id(iot_req_param(r, param), &id)
                 ? iot_reg_device_get(&iot_app_of(r)->registry, id, d)
                 : IOT_ENOTFOUND;
    if (rc == IOT_ENOTFOUND) {
        iot_reply_error(r, 404, "Device not found", "no device found with ID: %s",
                        iot_req_param(r, param));
        return false;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "device");
        return false;
    }
    return true;
}

bool iot_load_owned_device(struct iot_req *r, size_t param, const struct iot_principal *p,
                           struct iot_device *d)
{
    if (!iot_load_device(r, param, d))
        return false;
    if (!p->admin && (!p->has_user || d->user_id != p->user.id)) {
        iot_reply_error(r, 403, "Forbidden", "this device does not belong to you");
        return false;
    }
    return true;
}

bool iot_load_owned_group(struct iot_req *r, const struct iot_user *owner, struct iot_group *g)
{
    int64_t id;
    int rc = iot_parse_id(iot_req_param(r, 0), &id)
                 ? iot_reg_group_get(&iot_app_of(r)->registry, id, g)
                 : IOT_ENOTFOUND;
    if (rc == IOT_ENOTFOUND) {
        iot_reply_error(r, 404, "Group not found", "no group found with ID: %s",
                        iot_req_param(r, 0));
        return false;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "group");
        return false;
    }
    if (owner && g->user_id != owner->id) {
        iot_reply_error(r, 403, "Forbidden", "this group does not belong to you");
        return false;
    }
    return true;
}

bool iot_authn_device_reader(struct iot_req *r, struct iot_device *d)
{
    struct iot_principal p;
    return iot_authn_device_reader_as(r, d, &p);
}

bool iot_authn_device_reader_as(struct iot_req *r, struct iot_device *d, struct iot_principal *p)
{
    memset(p, 0, sizeof *p);
    if (!iot_req_header(r, "X-API-Key"))
        return iot_authn_any(r, p) && iot_load_owned_device(r, 0, p, d);
    int64_t id;
    if (!iot_authn_device(r, IOT_DEVICE_AUTH_READ, d))
        return false;
    if (!iot_parse_id(iot_req_param(r, 0), &id)) {
        iot_reply_error(r, 404, "Device not found", "no device found with ID: %s", iot_req_param(r, 0));
        return false;
    }
    if (id != d->id) {
        iot_reply_error(r, 403, "Forbidden", "a device key gives access to its own device only");
        return false;
    }
    return true;
}

/* Other iotflowd instances sharing the cache keep API keys in their own
 * key caches (core/devcache.h) and may hold the device's live streams and
 * MQTT connections: a notice on IOT_DEVICE_NOTICE_CHANNEL (its payloads in
 * core/device_auth.h) makes them forget the key at once (rather than when
 * their cache entry expires), end the streams of a deleted device and
 * check its connections again. */
#define OWNER_NOTICE "owner "

static void notify_peers(struct iot_app *app, const struct iot_device *d, bool deleted)
{
    char msg[IOT_KEY_HASH_LEN + 48];
    int len = snprintf(msg, sizeof msg, "%lld %s %d", (long long)d->id, d->api_key_hash,
                       deleted ? 1 : 0);
    int rc = iot_cache_publish(&app->cache, IOT_DEVICE_NOTICE_CHANNEL, msg, (size_t)len);
    if (rc)
        IOT_DEBUG("device notice not published (%s); peers forget the key when it expires",
                  iot_strerror(rc));
}

static void on_device_notice(void *ctx, const char *channel, const char *msg, size_t len)
{
    (void)channel;
    struct iot_app *app = ctx;
    struct iot_device_notice n;
    if (!iot_device_notice_parse(msg, len, &n))
        return;
    if (n.owner) {
        iot_devcache_forget_owner(app->devcache, n.id);
        return;
    }
    iot_devcache_forget(app->devcache, n.key_hash);
    if (n.deleted)
        iot_streams_end_device(app->streams, n.id);
    else /* a new key or status: its streams' credentials are checked now */
        iot_streams_recheck_device(app->streams, n.id);
}

void iot_owner_devices_forget(struct iot_req *r, int64_t owner_id)
{
    struct iot_app *app = iot_app_of(r);
    iot_devcache_forget_owner(app->devcache, owner_id);
    char msg[48];
    int len = snprintf(msg, sizeof msg, OWNER_NOTICE "%lld", (long long)owner_id);
    int rc = iot_cache_publish(&app->cache, IOT_DEVICE_NOTICE_CHANNEL, msg, (size_t)len);
    if (rc)
        IOT_WARN("owner notice not published (%s); other instances refuse or accept the"
                 " devices of user %lld when their key cache entries expire",
                 iot_strerror(rc), (long long)owner_id);
}

int iot_device_notices_start(struct iot_app *app)
{
    return iot_cache_subscribe(&app->cache, IOT_DEVICE_NOTICE_CHANNEL, on_device_notice, app,
                               &app->device_notices);
}

void iot_device_notices_stop(struct iot_app *app)
{
    iot_cache_unsubscribe(&app->cache, app->device_notices);
    app->device_notices = NULL;
}

int iot_device_save(struct iot_req *r, const struct iot_device *d)
{
    struct iot_app *app = iot_app_of(r);
    int rc = iot_reg_device_update(&app->registry, d);
    iot_devcache_forget(app->devcache, d->api_key_hash);
    notify_peers(app, d, false);
    return rc;
}

void iot_device_forget_key(struct iot_req *r, const struct iot_device *d)
{
    struct iot_app *app = iot_app_of(r);
    iot_devcache_forget(app->devcache, d->api_key_hash);
    notify_peers(app, d, false);
}

void iot_device_forget(struct iot_req *r, const struct iot_device *d)
{
    struct iot_app *app = iot_app_of(r);
    iot_devcache_forget(app->devcache, d->api_key_hash);
    iot_cache_presence_remove(&app->cache, d->id);
    iot_latest_forget(&app->cache, d->id);
    iot_streams_end_device(app->streams, d->id);
    iot_events_device_gone(app->events, d->id, d->user_id);
    notify_peers(app, d, true);
}

/* Names of the editable fields that differ. */
static json_t *changed_fields(const struct iot_device *a, const struct iot_device *b)
{
    static const struct { const char *name; size_t offset; } fields[] = {
        {"name", offsetof(struct iot_device, name)},
        {"description", offsetof(struct iot_device, description)},
        {"device_type", offsetof(struct iot_device, device_type)},
        {"status", offsetof(struct iot_device, status)},
        {"location", offsetof(struct iot_device, location)},
        {"firmware_version", offsetof(struct iot_device, firmware_version)},
        {"hardware_version", offsetof(struct iot_device, hardware_version)},
    };
    json_t *changed = json_array();
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        if (strcmp((const char *)a + fields[i].offset, (const char *)b + fields[i].offset) != 0)
            json_array_append_new(changed, json_string(fields[i].name));
    return changed;
}

void iot_device_after_change(struct iot_req *r, const struct iot_device *before,
                               const struct iot_device *after, const char *by, bool update)
{
    struct iot_events *ev = iot_app_of(r)->events;
    if (update)
        iot_events_emit(ev, IOT_EV_DEVICE_UPDATED, after->user_id, after->id,
                        json_pack("{s:o, s:s}", "changed", changed_fields(before, after), "by", by));
    if (strcmp(before->status, after->status) == 0)
        return;
    iot_events_emit(ev, IOT_EV_DEVICE_STATUS_CHANGED, after->user_id, after->id,
                    json_pack("{s:s, s:s, s:s}", "from", before->status, "to", after->status,
                              "by", by));
    /* The presence set holds active devices only: one count of it is the
     * online count of /status (iot_device_stats_now). */
    if (strcmp(after->status, "active") != 0 &&
        iot_cache_presence_remove(&iot_app_of(r)->cache, after->id) != IOT_OK)
        IOT_DEBUG("presence of device %lld not dropped", (long long)after->id);
}

int iot_device_remove(struct iot_req *r, const struct iot_device *d)
{
    struct iot_app *app = iot_app_of(r);
    int rc = iot_reg_device_delete(&app->registry, d->id);
    if (rc)
        return rc;
    iot_device_forget(r, d);
    /* The registry recorded the clean-up with the delete: if the telemetry
     * store fails now, the cleaner retries it (and logs). */
    iot_cleaner_after_delete(app->cleaner, IOT_CLEANUP_DEVICE, d->id);
    return IOT_OK;
}

void iot_device_seen(struct iot_req *r, struct iot_device *d)
{
    struct iot_app *app = iot_app_of(r);
    /* Before the touch: the watch reads the old sighting on a transition. */
    int64_t now = iot_now_ms();
    /* Only an active device is online (a switched-off one may still read
     * its credentials): the presence set and the watch hold active ones. */
    if (strcmp(d->status, "active") == 0) {
        iot_events_device_seen(app->events, d->id, d->user_id, d->last_seen);
        int rc = iot_cache_presence_touch(&app->cache, d->id, now);
        if (rc)
            IOT_DEBUG("presence of device %lld not cached: %s", (long long)d->id,
                      iot_strerror(rc));
    }
    /* The registry's last_seen follows within a second, in one batch. */
    iot_ingest_note_seen(app->ingest, d->id, now);
    d->last_seen = iot_presence_latest(d->last_seen, now);
}

int64_t iot_device_last_seen(struct iot_req *r, const struct iot_device *d)
{
    int64_t cached = 0;
    if (iot_cache_presence_get(&iot_app_of(r)->cache, d->id, &cached) != IOT_OK)
        cached = 0;
    return iot_presence_latest(d->last_seen, cached);
}

bool iot_device_online(struct iot_req *r, const struct iot_device *d)
{
    return iot_presence_online(iot_device_last_seen(r, d), iot_now_ms(),
                               iot_app_of(r)->cfg->online_window);
}

int iot_device_stats_now(struct iot_app *app, struct iot_device_stats *out)
{
    int64_t since = iot_now_ms() - app->cfg->online_window * 1000;
    int rc = iot_reg_device_stats(&app->registry, since, out);
    if (rc)
        return rc;
    /* The registry's last_seen trails sightings by up to a second; the
     * cache's presence set does not. One count of that set, not a round
     * trip per active device: it holds active devices only (a device
     * leaves it when switched off), capped at their number for a status
     * change racing a sighting. A cache that does not answer leaves the
     * registry's count. */
    int64_t seen = 0;
    if (iot_cache_presence_count(&app->cache, since, &seen) == IOT_OK && seen > out->online)
        out->online = seen < out->active ? seen : out->active;
    return IOT_OK;
}

int iot_read_device_fields(struct iot_req *r, json_t *body, unsigned fields, struct iot_device *d)
{
    struct {
        unsigned flag;
        const char *key;
        size_t min, max;
        char *buf;
        size_t size;
    } spec[] = {
        {IOT_DEV_NAME, "name", 1, IOT_DEVICE_NAME_MAX, d->name, sizeof d->name},
        {IOT_DEV_DESCRIPTION, "description", 0, IOT_DESCRIPTION_MAX, d->description, sizeof d->description},
        {IOT_DEV_TYPE, "device_type", 1, IOT_DEVICE_TYPE_MAX, d->device_type, sizeof d->device_type},
        {IOT_DEV_STATUS, "status", 1, IOT_STATUS_MAX, d->status, sizeof d->status},
        {IOT_DEV_LOCATION, "location", 0, IOT_LOCATION_MAX, d->location, sizeof d->location},
        {IOT_DEV_VERSIONS, "firmware_version", 0, IOT_VERSION_MAX, d->firmware_version, sizeof d->firmware_version},
        {IOT_DEV_VERSIONS, "hardware_version", 0, IOT_VERSION_MAX, d->hardware_version, sizeof d->hardware_version},
    };
    char old_status[sizeof d->status];
    memcpy(old_status, d->status, sizeof old_status);
    int set = 0;
    for (size_t i = 0; i < sizeof spec / sizeof *spec; i++) {
        if (!(fields & spec[i].flag))
            continue;
        int rc = iot_field_text(r, body, spec[i].key, spec[i].min, spec[i].max, spec[i].buf, spec[i].size);
        if (rc < 0)
            return rc;
        set += rc;
    }
    if (!iot_device_status_valid(d->status)) {
        memcpy(d->status, old_status, sizeof old_status);
        iot_reply_error(r, 400, "Invalid status", "status must be active, inactive, or maintenance");
        return IOT_EINVAL;
    }
    return set;
}
