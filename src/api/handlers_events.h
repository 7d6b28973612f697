/* handlers_events.h — the event log and analytics report endpoints
 * (src/api/events.c, src/api/reports.c), listed in routes.c. */
#ifndef IOT_API_HANDLERS_EVENTS_H
#define IOT_API_HANDLERS_EVENTS_H

#include "http/request.h"

void iot_h_events_list(struct iot_req *r);
void iot_h_events_summary(struct iot_req *r);

void iot_h_report_create(struct iot_req *r);
void iot_h_reports_of_device(struct iot_req *r);
void iot_h_report_get(struct iot_req *r);
void iot_h_reports_daily_run(struct iot_req *r);

#endif
