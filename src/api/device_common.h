/* device_common.h — device helpers shared by the device, group and admin
 * handlers: loading a device by path id with ownership checks, presence
 * (recording a sighting, reading the effective last-seen time), and
 * reading the editable device fields from a JSON body. */
#ifndef IOT_API_DEVICE_COMMON_H
#define IOT_API_DEVICE_COMMON_H

#include <jansson.h>
#include <stdbool.h>

#include "api/authn.h"
#include "http/request.h"
#include "store/registry.h"

/* Loads the device whose id is path parameter `param`; answers 404. */
bool iot_load_device(struct iot_req *r, size_t param, struct iot_device *d);
/* Loads it and checks that the principal owns it (or is the admin): 403. */
bool iot_load_owned_device(struct iot_req *r, size_t param, const struct iot_principal *p,
                           struct iot_device *d);

/* Records that the device was seen now (cache presence + registry). */
void iot_device_seen(struct iot_req *r, struct iot_device *d);
/* The device's latest sighting, from the cache or the registry. */
int64_t iot_device_last_seen(struct iot_req *r, const struct iot_device *d);
bool iot_device_online(struct iot_req *r, const struct iot_device *d);

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

#endif
