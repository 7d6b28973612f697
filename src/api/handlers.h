/* handlers.h — every HTTP handler of the API, one group per resource file
 * (auth.c, users.c, devices.c, telemetry*.c, stream.c, groups.c, admin.c,
 * health.c). routes.c maps them to methods and paths. */
#ifndef IOT_API_HANDLERS_H
#define IOT_API_HANDLERS_H

#include "http/request.h"

/* auth.c */
void iot_h_auth_register(struct iot_req *r);
void iot_h_auth_login(struct iot_req *r);
void iot_h_auth_logout(struct iot_req *r);

/* users.c */
void iot_h_user_get(struct iot_req *r);
void iot_h_user_list(struct iot_req *r);
void iot_h_user_update(struct iot_req *r);
void iot_h_user_activate(struct iot_req *r);
void iot_h_user_deactivate(struct iot_req *r);
void iot_h_user_delete(struct iot_req *r);

/* devices.c */
void iot_h_device_register(struct iot_req *r);
void iot_h_device_self_status(struct iot_req *r);
void iot_h_device_heartbeat(struct iot_req *r);
void iot_h_device_config(struct iot_req *r);
void iot_h_device_credentials(struct iot_req *r);
void iot_h_devices_of_user(struct iot_req *r);
void iot_h_device_status_by_id(struct iot_req *r);
void iot_h_device_groups(struct iot_req *r);

void iot_h_device_rotate_key(struct iot_req *r);

/* telemetry.c (ingest), telemetry_query.c (reads), telemetry_catalog.c
 * (the measurement catalog), stream.c (live) */
void iot_h_telemetry_post(struct iot_req *r);
void iot_h_telemetry_batch(struct iot_req *r);
void iot_h_telemetry_history(struct iot_req *r);
void iot_h_telemetry_latest(struct iot_req *r);
void iot_h_telemetry_aggregated(struct iot_req *r);
void iot_h_telemetry_delete(struct iot_req *r);
void iot_h_telemetry_status(struct iot_req *r);
void iot_h_telemetry_user(struct iot_req *r);
void iot_h_telemetry_stream(struct iot_req *r);
void iot_h_telemetry_measurements(struct iot_req *r);

/* groups.c */
void iot_h_group_create(struct iot_req *r);
void iot_h_group_list(struct iot_req *r);
void iot_h_group_get(struct iot_req *r);
void iot_h_group_update(struct iot_req *r);
void iot_h_group_delete(struct iot_req *r);
void iot_h_group_add_device(struct iot_req *r);
void iot_h_group_remove_device(struct iot_req *r);
void iot_h_group_devices(struct iot_req *r);
void iot_h_group_bulk_add(struct iot_req *r);

/* admin.c */
void iot_h_admin_devices(struct iot_req *r);
void iot_h_admin_device_get(struct iot_req *r);
void iot_h_admin_device_update(struct iot_req *r);
void iot_h_admin_device_delete(struct iot_req *r);
void iot_h_admin_device_status(struct iot_req *r);
void iot_h_admin_stats(struct iot_req *r);
void iot_h_admin_statuses(struct iot_req *r);

/* health.c */
void iot_h_health(struct iot_req *r);
void iot_h_status(struct iot_req *r);
void iot_h_root(struct iot_req *r);

#endif
