/* handlers_docs.h — the handlers of device configurations, device metadata
 * and search, and user preferences (documents store), for routes.c. */
#ifndef IOT_API_HANDLERS_DOCS_H
#define IOT_API_HANDLERS_DOCS_H

#include "http/request.h"

/* docs_config.c */
void iot_h_device_config_get(struct iot_req *r);
void iot_h_device_config_put(struct iot_req *r);
void iot_h_device_config_history(struct iot_req *r);
void iot_h_device_own_config_get(struct iot_req *r);
void iot_h_group_config_put(struct iot_req *r);

/* docs_metadata.c */
void iot_h_device_metadata_get(struct iot_req *r);
void iot_h_device_metadata_put(struct iot_req *r);
void iot_h_device_tag_add(struct iot_req *r);
void iot_h_device_tag_remove(struct iot_req *r);

/* docs_search.c */
void iot_h_device_search(struct iot_req *r);

/* docs_prefs.c */
void iot_h_user_prefs_get(struct iot_req *r);
void iot_h_user_prefs_put(struct iot_req *r);

#endif
