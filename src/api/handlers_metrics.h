/* handlers_metrics.h — GET /metrics: the Prometheus text exposition of
 * core/metrics.h, for the admin, or for anyone when IOTFLOW_METRICS=public
 * (api/metrics.c). */
#ifndef IOT_API_HANDLERS_METRICS_H
#define IOT_API_HANDLERS_METRICS_H

#include "http/request.h"

void iot_h_metrics(struct iot_req *r);

#endif
