/* metrics.c — GET /metrics. What the metrics tell (request rates per
 * route, store backends, queue depth) helps an attacker as much as an
 * operator, so by default only the admin (admin token, or an active
 * is_admin user) reads them, with the 401/403 of every admin endpoint; a
 * scraper without credentials needs IOTFLOW_METRICS=public. */
#include <string.h>

#include "api/app.h"
#include "api/authn.h"
#include "api/handlers_metrics.h"
#include "core/metrics.h"
#include "mqtt/mqtt_server.h"
#include "util/buf.h"

#define EXPOSITION_TYPE "text/plain; version=0.0.4; charset=utf-8"

void iot_h_metrics(struct iot_req *r)
{
    struct iot_app *app = iot_app_of(r);
    struct iot_principal p;
    if (strcmp(app->cfg->metrics, "public") != 0 && !iot_authn_admin(r, &p))
        return;
    struct iot_mqtt_stats mqtt;
    if (app->mqtt)
        iot_mqtt_stats(app->mqtt, &mqtt);
    struct iot_buf b = {0};
    iot_metrics_render(&b, &(struct iot_metrics_sources){.ingest = app->ingest,
                                                         .events = app->events,
                                                         .alerting = app->alerting,
                                                         .mqtt = app->mqtt ? &mqtt : NULL,
                                                         .started_at_ms = app->started_at_ms,
                                                         .started_mono_us = app->started_mono_us});
    size_t len = 0;
    char *text = iot_buf_take(&b, &len);
    iot_reply_raw(r, 200, text, len); /* NULL: a 500 in JSON */
    if (text)
        r->resp_type = EXPOSITION_TYPE;
}
