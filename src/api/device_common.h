/* device_common.h — device helpers shared by the device, group and admin
 * handlers: loading a device (or a group) by path id with ownership checks, presence
 * (recording a sighting, reading the effective last-seen time), and
 * reading the editable device fields from a JSON body. */
#ifndef IOT_API_DEVICE_COMMON_H
#define IOT_API_DEVICE_COMMON_H

#include <jansson.h>
#include <stdbool.h>

#include "api/authn.h"
#include "http/request.h"
#include "store/registry.h"

struct iot_app;

/* Loads the device whose id is path parameter `param`; answers 404. */
bool iot_load_device(struct iot_req *r, size_t param, struct iot_device *d);
/* Loads it and checks that the principal owns it (or is the admin): 403. */
bool iot_load_owned_device(struct iot_req *r, size_t param, const struct iot_principal *p,
                           struct iot_device *d);
/* Loads the group whose id is path parameter 0 (404) and, when `owner` is
 * given, checks that this user owns it (403); NULL: anyone's (the admin). */
bool iot_load_owned_group(struct iot_req *r, const struct iot_user *owner, struct iot_group *g);

/* Writes a changed device to the registry and drops its cached copy (so
 * a new status or a deletion takes effect on the next request). */
int iot_device_save(struct iot_req *r, const struct iot_device *d);
/* Forgets everything cached about a device that is going away: key cache,
 * presence, latest values; and ends its live streams. */
void iot_device_forget(struct iot_req *r, const struct iot_device *d);
/* Drops the local cache entry of a device's (old) key. */
void iot_device_forget_key(struct iot_req *r, const struct iot_device *d);
/* Forgets, on this instance and (through the device notice channel) on
 * every other, the cached keys of all devices of owner `owner_id` (the
 * internal user id): after the owner's is_active changed, so that the next
 * request of each device reads the owner's new state. */
void iot_owner_devices_forget(struct iot_req *r, int64_t owner_id);
/* After a device changed from `before` to `after`, made `by`
 * "owner", "admin" or "device": device.updated with the changed fields
 * when `update` (an update endpoint), device.status_changed when the
 * status differs; a device no longer active leaves the presence set. */
void iot_device_after_change(struct iot_req *r, const struct iot_device *before,
                               const struct iot_device *after, const char *by, bool update);
/* Deletes a device with its memberships and telemetry. */
int iot_device_remove(struct iot_req *r, const struct iot_device *d);

/* The device of path parameter 0 for reading its telemetry: the caller is
 * that device (X-API-Key), its owner, or the admin. Answers 401/403/404;
 * a device key is refused (403) while its owner is deactivated or an admin
 * has switched the device off (iot_device_key_usable). */
bool iot_authn_device_reader(struct iot_req *r, struct iot_device *d);
/* The same, telling who the caller is: the user or the admin in *p, or
 * neither (p->admin and p->has_user false) when it is the device's key. */
bool iot_authn_device_reader_as(struct iot_req *r, struct iot_device *d, struct iot_principal *p);

/* Records that the device was seen now: cache presence at once, the
 * registry's last_seen in the ingest pipeline's next batch (within 1 s). */
void iot_device_seen(struct iot_req *r, struct iot_device *d);
/* The device's latest sighting, from the cache or the registry. */
int64_t iot_device_last_seen(struct iot_req *r, const struct iot_device *d);
bool iot_device_online(struct iot_req *r, const struct iot_device *d);
/* Device counts by status, with `online` = active devices whose latest
 * sighting lies within the online window: the registry's count, or the
 * cache's presence count when larger (the registry trails by up to a
 * second), at most the active devices. Two store round trips whatever the
 * number of devices. */
int iot_device_stats_now(struct iot_app *app, struct iot_device_stats *out);

/* Reads the editable text fields present in body into d (name,
 * description, device_type, status, location, firmware_version,
 * hardware_version — those allowed by `fields`). Returns the number of
 * fields set, or IOT_EINVAL after answering 400. */
#define IOT_DEV_NAME 0x01u
#define IOT_DEV_DESCRIPTION 0x02u
#define IOT_DEV_TYPE 0x04u
#define IOT_DEV_STATUS 0x08u
#define IOT_DEV_LOCATION 0x10u
#define IOT_DEV_VERSIONS 0x20u
#define IOT_DEV_ALL 0x3fu
int iot_read_device_fields(struct iot_req *r, json_t *body, unsigned fields, struct iot_device *d);

/* Subscribes this instance to the device notices of its peers (changed
 * and rotated keys, deleted devices); stop before freeing the key cache
 * and the streams. */
int iot_device_notices_start(struct iot_app *app);
void iot_device_notices_stop(struct iot_app *app);

#endif
