/* alert_rules.c — /api/v1/alert-rules: a user's alert rules (stored in
 * IOT_DOCS_RULES, name unique per user); every change tells the alerting
 * engine (core/alerting.h) so that the next message is judged by the new
 * rules, here and on every instance. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/handlers_alerts.h"
#include "api/views.h"
#include "core/alerting.h"
#include "core/alerting_rule.h"
#include "core/secrets.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/json_out.h"

/* The most rules one user may have: each is evaluated on every message of
 * the devices it covers. Past it, a create answers 409. */
#define RULES_PER_USER_MAX 1000

/* A stored rule with its owner and rev. */
struct stored_rule {
    struct iot_alert_rule rule;
    int64_t user_id, rev;
    int rc;
};

static int take_rule(void *ctx, const struct iot_doc *doc)
{
    struct stored_rule *s = ctx;
    json_t *body = json_loadb(doc->body, doc->body_len, 0, NULL);
    s->rc = body ? iot_alert_rule_from_json(body, &s->rule) : IOT_EINTERNAL;
    s->user_id = doc->user_id;
    s->rev = doc->rev;
    json_decref(body);
    return 0;
}

/* Loads the rule of path parameter 0 and checks the caller may touch it. */
static bool load_rule(struct iot_req *r, const struct iot_principal *p, struct stored_rule *s)
{
    const char *id = iot_req_param(r, 0);
    s->rc = IOT_EINTERNAL;
    int rc = iot_docs_check_id(id) == IOT_OK
                 ? iot_docs_get(&iot_app_of(r)->docs, IOT_DOCS_RULES, id, take_rule, s)
                 : IOT_ENOTFOUND;
    if (rc == IOT_OK)
        rc = s->rc;
    if (rc == IOT_ENOTFOUND) {
        iot_reply_error(r, 404, "Alert rule not found", "no alert rule found with ID: %s", id);
        return false;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "alert rule");
        return false;
    }
    return iot_alerts_owner_ok(r, p, s->user_id, "alert rule");
}

/* The rule's device or group belongs to `owner`: 404 when it does not
 * exist, 403 when it is someone else's. */
static bool scope_ok(struct iot_req *r, const struct iot_alert_rule *rule, int64_t owner)
{
    struct iot_registry *reg = &iot_app_of(r)->registry;
    bool device = rule->scope == IOT_ALERT_SCOPE_DEVICE;
    if (rule->scope == IOT_ALERT_SCOPE_ALL)
        return true;
    int64_t id = device ? rule->device_id : rule->group_id, holder = 0;
    struct iot_device d;
    struct iot_group g;
    int rc = device ? iot_reg_device_get(reg, id, &d) : iot_reg_group_get(reg, id, &g);
    if (rc == IOT_OK)
        holder = device ? d.user_id : g.user_id;
    const char *what = device ? "device" : "group";
    if (rc == IOT_ENOTFOUND)
        iot_reply_error(r, 404, "Not found", "no %s found with ID: %lld", what, (long long)id);
    else if (rc)
        iot_reply_store_error(r, rc, what);
    else if (holder != owner)
        iot_reply_error(r, 403, "Forbidden", "this %s does not belong to you", what);
    return rc == IOT_OK && holder == owner;
}

/* Reads the request body into rule; answers 400. */
static bool read_body(struct iot_req *r, bool create, struct iot_alert_rule *rule)
{
    json_t *body = iot_req_json_object(r);
    if (!body)
        return false;
    char err[160];
    int rc = iot_alert_rule_read(body, create, rule, err, sizeof err);
    json_decref(body);
    if (rc)
        iot_reply_error(r, 400, "Validation error", "%s", err);
    return rc == IOT_OK;
}

/* Writes the rule (new, or over `rev`). */
static int put_rule(struct iot_req *r, const struct iot_alert_rule *rule, int64_t owner, int64_t rev)
{
    json_t *view = iot_alert_rule_json(rule);
    char *text = view ? iot_json_dumps(view) : NULL;
    json_decref(view);
    if (!text)
        return IOT_ENOMEM;
    char key[IOT_DOCS_KEY_MAX + 1];
    iot_alert_rule_key(rule->name, key);
    struct iot_doc doc = {.id = rule->id, .user_id = owner,
                          .device_id = rule->scope == IOT_ALERT_SCOPE_DEVICE ? rule->device_id : 0,
                          .ts_ms = rule->created_at, .k1 = key, .body = text,
                          .body_len = strlen(text)};
    int rc = iot_docs_put(&iot_app_of(r)->docs, IOT_DOCS_RULES, &doc, rev, NULL);
    free(text);
    return rc;
}

static int count_rules(void *ctx, const char *k1, const char *k2, int64_t count)
{
    (void)k1;
    (void)k2;
    *(int64_t *)ctx += count;
    return 0;
}

static bool under_rule_limit(struct iot_req *r, int64_t owner)
{
    int64_t n = 0;
    struct iot_docs_filter f = {.user_id = owner};
    int rc = iot_docs_count_by(&iot_app_of(r)->docs, IOT_DOCS_RULES, &f, IOT_DOCS_GROUP_NONE,
                               count_rules, &n);
    if (rc) {
        iot_reply_store_error(r, rc, "alert rule");
        return false;
    }
    if (n >= RULES_PER_USER_MAX) {
        iot_reply_error(r, 409, "Too many alert rules",
                        "a user may have at most %d alert rules; delete one first",
                        RULES_PER_USER_MAX);
        return false;
    }
    return true;
}

static void reply_name_taken(struct iot_req *r, const struct iot_alert_rule *rule)
{
    iot_reply_error(r, 409, "Alert rule with this name already exists",
                    "you already have an alert rule named '%s'", rule->name);
}

static void reply_rule(struct iot_req *r, int status, const char *message,
                       const struct iot_alert_rule *rule)
{
    json_t *out = json_pack("{s:s, s:o}", "status", "success", "rule", iot_alert_rule_json(rule));
    if (message)
        json_object_set_new(out, "message", json_string(message));
    iot_reply_json(r, status, out);
}

void iot_h_alert_rule_create(struct iot_req *r)
{
    struct iot_user u;
    struct iot_alert_rule rule;
    iot_alert_rule_defaults(&rule);
    if (!iot_authn_user(r, &u) || !read_body(r, true, &rule) || !scope_ok(r, &rule, u.id) ||
        !under_rule_limit(r, u.id))
        return;
    iot_random_hex(rule.id, IOT_ALERT_ID_LEN);
    rule.created_at = rule.updated_at = iot_now_ms();
    int rc = put_rule(r, &rule, u.id, IOT_DOCS_NEW);
    if (rc == IOT_ECONFLICT) {
        reply_name_taken(r, &rule);
        return;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "alert rule");
        return;
    }
    iot_alerting_user_changed(iot_app_of(r)->alerting, u.id);
    reply_rule(r, 201, "Alert rule created successfully", &rule);
}

void iot_h_alert_rule_list(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_docs_filter f = {0};
    struct iot_doc_cursor c;
    if (!iot_authn_any(r, &p) || !iot_doc_page_filter(r, &iot_alerts_paging, &f, &c))
        return;
    if (!p.admin)
        f.user_id = p.user.id;
    const char *device = iot_req_query(r, "device_id");
    if (device && !iot_parse_id(device, &f.device_id)) {
        iot_reply_error(r, 400, "Invalid device_id", "'device_id' must be a positive integer");
        return;
    }
    iot_alerts_page_reply(r, IOT_DOCS_RULES, &f, "rules");
}

void iot_h_alert_rule_get(struct iot_req *r)
{
    struct iot_principal p;
    struct stored_rule s;
    if (iot_authn_any(r, &p) && load_rule(r, &p, &s))
        reply_rule(r, 200, NULL, &s.rule);
}

void iot_h_alert_rule_update(struct iot_req *r)
{
    struct iot_principal p;
    struct stored_rule s;
    if (!iot_authn_any(r, &p) || !load_rule(r, &p, &s) || !read_body(r, false, &s.rule) ||
        !scope_ok(r, &s.rule, s.user_id))
        return;
    s.rule.updated_at = iot_now_ms();
    int rc = put_rule(r, &s.rule, s.user_id, s.rev);
    if (rc == IOT_ECONFLICT) {
        /* The name is taken, or the rule changed since it was read: say
         * which, so that the client knows whether a retry can work. */
        struct stored_rule now;
        int again = iot_docs_get(&iot_app_of(r)->docs, IOT_DOCS_RULES, s.rule.id, take_rule, &now);
        if (again == IOT_OK && now.rev == s.rev)
            reply_name_taken(r, &s.rule);
        else
            iot_reply_error(r, 409, "Conflict", "the alert rule changed meanwhile; read it and retry");
        return;
    }
    if (rc) {
        iot_reply_store_error(r, rc, "alert rule");
        return;
    }
    iot_alerting_user_changed(iot_app_of(r)->alerting, s.user_id);
    reply_rule(r, 200, "Alert rule updated successfully", &s.rule);
}

void iot_h_alert_rule_delete(struct iot_req *r)
{
    struct iot_principal p;
    struct stored_rule s;
    if (!iot_authn_any(r, &p) || !load_rule(r, &p, &s))
        return;
    int rc = iot_docs_remove(&iot_app_of(r)->docs, IOT_DOCS_RULES, s.rule.id);
    if (rc && rc != IOT_ENOTFOUND) {
        iot_reply_store_error(r, rc, "alert rule");
        return;
    }
    iot_alerting_user_changed(iot_app_of(r)->alerting, s.user_id);
    iot_reply_json(r, 200, json_pack("{s:s, s:s++}", "status", "success", "message", "Alert rule '",
                                     s.rule.name, "' deleted successfully"));
}
