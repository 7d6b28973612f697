/* handlers_alerts.h — the alert rules (api/alert_rules.c) and alerts
 * (api/alerts.c) endpoints, and what the two files share: the stores an
 * alert change touches, owner checks, and keyset pages of documents. */
#ifndef IOT_API_HANDLERS_ALERTS_H
#define IOT_API_HANDLERS_ALERTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/authn.h"
#include "api/doc_page.h"
#include "core/alerting_docs.h"
#include "http/request.h"
#include "store/docs.h"

/* alert_rules.c */
void iot_h_alert_rule_create(struct iot_req *r);
void iot_h_alert_rule_list(struct iot_req *r);
void iot_h_alert_rule_get(struct iot_req *r);
void iot_h_alert_rule_update(struct iot_req *r);
void iot_h_alert_rule_delete(struct iot_req *r);

/* alerts.c */
void iot_h_alert_list(struct iot_req *r);
void iot_h_alert_create(struct iot_req *r);
void iot_h_alert_get(struct iot_req *r);
void iot_h_alert_acknowledge(struct iot_req *r);
void iot_h_alert_resolve(struct iot_req *r);
void iot_h_alert_summary(struct iot_req *r);
void iot_h_alert_stream(struct iot_req *r);

/* ---- shared by the two (alerts.c) ------------------------------------------- */

/* Pages of alerts and of alert rules: limit up to 1000 (default 100,
 * larger is clamped, 0 counts as 1); cursors "<ts>_<id>". */
extern const struct iot_doc_paging iot_alerts_paging;

/* The stores of r's application, for core/alerting_docs.h. */
struct iot_alert_env iot_alert_env_of(struct iot_req *r);

/* A document's owner is the caller, or the caller is the admin; else
 * answers 403 ("this <what> does not belong to you") and returns false. */
bool iot_alerts_owner_ok(struct iot_req *r, const struct iot_principal *p, int64_t owner,
                         const char *what);

/* Finds one page (f->limit items, within a byte budget) and answers 200
 * {"status": "success", <key>: [bodies], "count": n, "next_cursor": ...},
 * or the store's error. */
void iot_alerts_page_reply(struct iot_req *r, enum iot_docs_coll coll, struct iot_docs_filter *f,
                           const char *key);

#endif
